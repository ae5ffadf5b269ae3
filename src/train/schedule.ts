// Learning-rate schedules of a training phase, per optimizer step (0-based, as Keras passes optimizer.iterations):
// constant; cosine = Keras CosineDecay with linear warm-up (keras/src/optimizers/schedules/learning_rate_schedule.py);
// one-cycle = fastai fit_one_cycle (fastai/callback/schedule.py: combined_cos(pct_start, lr/div, lr, lr/div_final)).

export const LR_SCHEDULES = ['constant', 'cosine', 'one-cycle'] as const;
export type LrScheduleKind = (typeof LR_SCHEDULES)[number];

/** fastai fit_one_cycle defaults: start at lr/25, end at lr/1e5, rise over the first 25% of steps. */
export const ONE_CYCLE = { div: 25, divFinal: 1e5, pctStart: 0.25 } as const;

export interface LrScheduleSpec {
  kind: LrScheduleKind;
  /** Peak learning rate (constant: the rate; cosine: Keras warmup_target; one-cycle: fastai lr_max). */
  lr: number;
  /** Optimizer steps of the phase. */
  totalSteps: number;
  /**
   * Steps of linear warm-up. constant/cosine: from 0 to lr (Keras CosineDecay with initial_learning_rate 0); cosine
   * then decays over the remaining steps. one-cycle: the rise from lr/25 (fastai pct_start = warmupSteps / totalSteps).
   */
  warmupSteps: number;
}

/** fastai sched_cos: cosine from start to end as pos goes 0 → 1. */
export function schedCos(start: number, end: number, pos: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - pos))) * (end - start)) / 2;
}

/** The learning rate of optimizer step `step` (0-based; steps past the end keep the last value). */
export function learningRateAt(s: LrScheduleSpec, step: number): number {
  const total = Math.max(1, s.totalSteps);
  const warmup = Math.min(Math.max(0, s.warmupSteps), total);
  switch (s.kind) {
    case 'constant':
      return warmup > 0 && step < warmup ? (s.lr * step) / warmup : s.lr;
    case 'cosine': {
      if (warmup > 0 && step < warmup) return (s.lr * step) / warmup;
      // Keras: decayed = (1 - alpha)·0.5·(1 + cos(π·min(t, decay_steps)/decay_steps)) + alpha, alpha 0.
      const decaySteps = Math.max(1, total - warmup);
      const t = Math.min(step - warmup, decaySteps);
      return s.lr * 0.5 * (1 + Math.cos((Math.PI * t) / decaySteps));
    }
    case 'one-cycle': {
      // fastai: pos = iteration / total iterations; the rise takes pct_start of them.
      const pct = warmup > 0 ? warmup / total : ONE_CYCLE.pctStart;
      const pos = Math.min(step / total, 1);
      if (pos < pct) return schedCos(s.lr / ONE_CYCLE.div, s.lr, pos / pct);
      return schedCos(s.lr, s.lr / ONE_CYCLE.divFinal, pct >= 1 ? 1 : (pos - pct) / (1 - pct));
    }
  }
}

/** The schedule of a phase of `epochs` over `rows` rows per epoch. */
export function phaseSchedule(o: { lr: number; epochs: number; batchSize: number; schedule?: { kind: LrScheduleKind; warmupEpochs: number } }, rows: number): LrScheduleSpec {
  const perEpoch = Math.max(1, Math.ceil(rows / o.batchSize));
  return { kind: o.schedule?.kind ?? 'constant', lr: o.lr, totalSteps: o.epochs * perEpoch, warmupSteps: Math.round((o.schedule?.warmupEpochs ?? 0) * perEpoch) };
}

/** One line for logs and reports, e.g. "cosine from 1e-4, 1 warm-up epoch". */
export function describeSchedule(s: LrScheduleSpec, warmupEpochs: number): string {
  const lr = s.lr.toPrecision(3).replace(/\.?0+(e|$)/, '$1');
  const warm = warmupEpochs > 0 ? `, ${warmupEpochs} warm-up epoch${warmupEpochs === 1 ? '' : 's'}` : '';
  if (s.kind === 'constant') return `constant ${lr}${warm}`;
  if (s.kind === 'cosine') return `cosine decay from ${lr} to 0${warm}`;
  return `one-cycle to ${lr} (from ${lr}/${ONE_CYCLE.div}, ending at ${lr}/${ONE_CYCLE.divFinal.toExponential(0)})${warmupEpochs > 0 ? `, rising over ${warmupEpochs} epoch${warmupEpochs === 1 ? '' : 's'}` : `, rising over ${ONE_CYCLE.pctStart * 100}% of the steps`}`;
}

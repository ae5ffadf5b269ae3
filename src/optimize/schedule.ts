// Pruning schedules as the TensorFlow Model Optimization Toolkit defines them (tfmot.sparsity.keras ConstantSparsity,
// PolynomialDecay), plus magnitude masks: which weights are zeroed at a given step and sparsity.

export interface PruningSchedule {
  kind: 'constant' | 'polynomial';
  initialSparsity: number;
  finalSparsity: number;
  beginStep: number;
  /** Last step at which masks are updated (-1: never stops, constant only). */
  endStep: number;
  /** Masks are updated every `frequency` steps from beginStep. */
  frequency: number;
  /** PolynomialDecay exponent (tfmot default 3). */
  power: number;
}

/** Target sparsity at `step` (tfmot: final + (initial − final)·(1 − p)^power, p the clipped progress). */
export function sparsityAt(s: PruningSchedule, step: number): number {
  if (s.kind === 'constant') return s.finalSparsity;
  const span = Math.max(1, s.endStep - s.beginStep);
  const p = Math.min(1, Math.max(0, (step - s.beginStep) / span));
  return s.finalSparsity + (s.initialSparsity - s.finalSparsity) * (1 - p) ** s.power;
}

/** Whether masks are recomputed at `step` (tfmot's should_prune). The end step always updates, so the schedule lands on its final sparsity. */
export function shouldUpdate(s: PruningSchedule, step: number): boolean {
  if (step < s.beginStep) return false;
  if (s.endStep >= 0 && step > s.endStep) return false;
  return (step - s.beginStep) % s.frequency === 0 || step === s.endStep;
}

/**
 * A schedule over `totalSteps` fine-tuning steps: polynomial decay from `initial` to `final` reaching the final
 * sparsity at 70% of training (the rest recovers at fixed masks); constant prunes at step 0 and keeps re-selecting.
 */
export function defaultSchedule(kind: 'constant' | 'polynomial', final: number, totalSteps: number, initial = 0): PruningSchedule {
  const endStep = kind === 'polynomial' ? Math.max(0, Math.floor(0.7 * totalSteps) - 1) : Math.max(0, totalSteps - 1);
  const frequency = Math.max(1, Math.round((endStep + 1) / 10));
  return { kind, initialSparsity: kind === 'polynomial' ? initial : final, finalSparsity: final, beginStep: 0, endStep, frequency, power: 3 };
}

/**
 * Magnitude mask (1 keep, 0 prune) zeroing exactly round(sparsity·n) weights of smallest |w|; ties broken by index
 * so the pruned fraction is exact and deterministic.
 */
export function magnitudeMask(values: ArrayLike<number>, sparsity: number): Float32Array {
  const n = values.length;
  const k = Math.min(n, Math.max(0, Math.round(sparsity * n)));
  const mask = new Float32Array(n).fill(1);
  if (k === 0) return mask;
  const abs = Float32Array.from({ length: n }, (_, i) => Math.abs(values[i]!));
  // Threshold = the k-th smallest |w| (typed-array sort: fast on multi-million-weight conv kernels).
  const threshold = abs.slice().sort()[k - 1]!;
  let below = 0;
  for (let i = 0; i < n; i++) if (abs[i]! < threshold) below++;
  let ties = k - below;
  for (let i = 0; i < n; i++) {
    if (abs[i]! < threshold) mask[i] = 0;
    else if (abs[i] === threshold && ties > 0) {
      mask[i] = 0;
      ties--;
    }
  }
  return mask;
}

export function zeroFraction(values: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) z++;
  return values.length ? z / values.length : 0;
}

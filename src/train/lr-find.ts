// The learning-rate range test (Leslie Smith 2015; fastai lr_find, fastai/callback/schedule.py): train from the
// current weights with the rate growing exponentially from 1e-7 to 10 over 100 steps, record the loss smoothed as
// fastai's AvgSmoothLoss (β 0.98, debiased), stop once it passes 4x the best seen, then suggest a rate from the curve
// with fastai's rules: valley (its default: the longest descending stretch, a bit past its first third), steep (the
// steepest descent per log-rate), minimum (a tenth of the rate at the lowest loss). The caller restores the weights.
// The test knows nothing of the task: a trainer (classification's head and tail, the CenterNet head and tail) gives it
// one step at a rate, returning that batch's loss.
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';

/** fastai lr_find defaults. */
export const LR_FIND = { startLr: 1e-7, endLr: 10, steps: 100, beta: 0.98, divergence: 4 } as const;

export type LrFindOptions = { startLr: number; endLr: number; steps: number; beta: number; divergence: number };

export interface LrPoint {
  lr: number;
  loss: number;
}

export interface LrSuggestions {
  /** fastai's default suggestion (valley). */
  valley?: LrPoint;
  steep?: LrPoint;
  /** A tenth of the rate at the lowest loss (point: that lowest loss). */
  minimum?: LrPoint;
}

export interface LrFindResult {
  /** Which phase was tested: the head on stored features, or the unfrozen blocks + head. */
  phase: 'head' | 'fine-tune';
  /** Rate of each step and the smoothed loss after it. */
  lrs: number[];
  losses: number[];
  /** Why the test ended: all steps run, or the smoothed loss passed `divergence` x its best (or became NaN). */
  stop: 'complete' | 'diverged';
  suggestions: LrSuggestions;
  /** The rule whose rate is used (valley, unless it had too few points) and its rate. */
  chosen?: { rule: keyof LrSuggestions; lr: number };
  seconds: number;
  options: LrFindOptions;
}

/** The rate of step i (0-based): fastai SchedExp(start, end) at pos = i / steps. */
export function rangeTestLr(o: LrFindOptions, i: number): number {
  return o.startLr * Math.pow(o.endLr / o.startLr, i / o.steps);
}

/**
 * Run the range test: `step(lr, i)` trains one batch at `lr` and returns its loss. Stops after `steps` steps, on a
 * NaN loss, or when the smoothed loss exceeds `divergence` x the best smoothed loss so far (the point is recorded).
 */
export async function lrRangeTest(step: (lr: number, i: number) => Promise<number>, phase: LrFindResult['phase'], options: Partial<LrFindOptions> = {}): Promise<LrFindResult> {
  const o: LrFindOptions = { ...LR_FIND, ...options };
  const t0 = performance.now();
  const lrs: number[] = [];
  const losses: number[] = [];
  let avg = 0;
  let best = Infinity;
  let stop: LrFindResult['stop'] = 'complete';
  for (let i = 0; i < o.steps; i++) {
    const lr = rangeTestLr(o, i);
    const loss = await step(lr, i);
    avg = o.beta * avg + (1 - o.beta) * loss;
    const smooth = avg / (1 - Math.pow(o.beta, i + 1));
    lrs.push(lr);
    losses.push(smooth);
    if (!Number.isFinite(smooth)) {
      stop = 'diverged';
      break;
    }
    if (smooth < best) best = smooth;
    if (smooth > o.divergence * best) {
      stop = 'diverged';
      break;
    }
  }
  const suggestions = suggestLr(lrs, losses, o.steps);
  const rule = (['valley', 'steep', 'minimum'] as const).find((r) => suggestions[r]);
  return { phase, lrs, losses, stop, suggestions, ...(rule ? { chosen: { rule, lr: suggestions[rule]!.lr } } : {}), seconds: (performance.now() - t0) / 1000, options: o };
}

/**
 * fastai's suggestions on a recorded curve: it drops the first tenth of the planned steps and the last 5 points
 * (start-up noise and the divergence), and everything from the first NaN on.
 */
export function suggestLr(lrs: readonly number[], losses: readonly number[], steps: number): LrSuggestions {
  let l = lrs.slice(Math.floor(steps / 10), Math.max(0, lrs.length - 5));
  let y = losses.slice(Math.floor(steps / 10), Math.max(0, losses.length - 5));
  const nan = y.findIndex((v) => !Number.isFinite(v));
  if (nan >= 0) {
    l = l.slice(0, nan);
    y = y.slice(0, nan);
  }
  if (y.length < 2) return {};
  return { valley: valley(l, y), steep: steep(l, y), minimum: minimum(l, y) };
}

/** fastai valley: the longest strictly descending subsequence; the point a third and a sixth into its span. */
export function valley(lrs: readonly number[], losses: readonly number[]): LrPoint {
  const n = losses.length;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  return { lr: lrs[idx]!, loss: losses[idx]! };
}

/** fastai steep: the rate where the loss falls fastest per unit of log rate. */
export function steep(lrs: readonly number[], losses: readonly number[]): LrPoint {
  let best = 0;
  let bestGrad = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const g = (losses[i + 1]! - losses[i]!) / (Math.log(lrs[i + 1]!) - Math.log(lrs[i]!));
    if (g < bestGrad) {
      bestGrad = g;
      best = i;
    }
  }
  return { lr: lrs[best]!, loss: losses[best]! };
}

/** fastai minimum: a tenth of the rate at the lowest loss (with the curve's loss nearest that rate, for plots). */
export function minimum(lrs: readonly number[], losses: readonly number[]): LrPoint {
  let i = 0;
  for (let j = 1; j < losses.length; j++) if (losses[j]! < losses[i]!) i = j;
  const lr = lrs[i]! / 10;
  let near = 0;
  for (let j = 1; j < lrs.length; j++) if (Math.abs(Math.log(lrs[j]! / lr)) < Math.abs(Math.log(lrs[near]! / lr))) near = j;
  return { lr, loss: losses[near]! };
}

/** One training step of a range test: train a batch at `lr` and return its loss (NaN stops the test). */
export type RangeTestStep = (lr: number, i: number) => Promise<number>;

/**
 * The range test with a progress bar (a line a minute in CI) and the result's text at the end: what every phase's test
 * runs. `step` is the phase's trainer; `note` adds to each step's progress text (the run's ETA).
 */
export async function rangeTestWithProgress(phase: LrFindResult['phase'], step: RangeTestStep, o: { logger: Logger; shouldStop?: () => boolean; note?: (i: number) => string }): Promise<LrFindResult> {
  const progress = createProgress({ label: `LR range test (${phase})`, total: LR_FIND.steps, unit: 'step', logger: o.logger, plainIntervalMs: 60_000 });
  const r = await lrRangeTest(async (lr, i) => {
    if (o.shouldStop?.()) return NaN;
    const loss = await step(lr, i);
    progress.tick(1, `lr ${lr.toExponential(2)} loss ${loss.toFixed(4)}${o.note?.(i) ?? ''}`);
    // Let signal handlers and progress output run between steps.
    await new Promise((res) => setImmediate(res));
    return loss;
  }, phase);
  progress.done(describeLrFind(r));
  return r;
}

/** The tests as the manifest's training section records them (the curves go to history.json). */
export function lrFindRecord(tests: readonly LrFindResult[]) {
  return tests.map((r) => ({ phase: r.phase, steps: r.lrs.length, stop: r.stop, suggestions: r.suggestions, chosen: r.chosen ?? null }));
}

/** A short text of the result for the log. */
export function describeLrFind(r: LrFindResult): string {
  const f = (p?: LrPoint) => (p ? p.lr.toExponential(2) : 'n/a');
  const head = `${r.lrs.length} steps from ${r.options.startLr.toExponential(0)}${r.stop === 'diverged' ? `, stopped when the loss diverged at lr ${r.lrs[r.lrs.length - 1]!.toExponential(2)}` : ` to ${r.lrs[r.lrs.length - 1]!.toExponential(2)}`}`;
  const sugg = r.chosen ? `suggested lr ${r.chosen.lr.toExponential(2)} (${r.chosen.rule}; steep ${f(r.suggestions.steep)}, minimum/10 ${f(r.suggestions.minimum)})` : 'no suggestion: the loss diverged within the first steps (check the data and the model)';
  return `${head}; ${sugg}`;
}

// Learning-rate schedules against their published formulas (Keras CosineDecay with warm-up, fastai fit_one_cycle's
// combined_cos) at known steps, the phase plan from the options (defaults, conflicts), and the LR range test
// (fastai lr_find): its rate sequence, smoothing, divergence stop and suggestions on synthetic loss curves.
import { describe, expect, it } from 'vitest';
import { describeLrFind, lrRangeTest, minimum, rangeTestLr, steep, suggestLr, valley, LR_FIND } from '../src/train/lr-find.js';
import { learningRateAt, phaseSchedule, schedCos, type LrScheduleSpec } from '../src/train/schedule.js';
import { DEFAULT_FINE_TUNE_EPOCHS, planPhases } from '../src/train/steps/prepare.js';
import type { TrainOptions } from '../src/train/types.js';
import { createMemoryLogger } from '../src/util/log.js';

const at = (s: LrScheduleSpec, steps: number[]) => steps.map((t) => learningRateAt(s, t));

describe('learning-rate schedules', () => {
  it('constant: the rate throughout, or a linear warm-up from 0 then the rate', () => {
    expect(at({ kind: 'constant', lr: 0.01, totalSteps: 100, warmupSteps: 0 }, [0, 50, 99])).toEqual([0.01, 0.01, 0.01]);
    const w = at({ kind: 'constant', lr: 0.01, totalSteps: 100, warmupSteps: 10 }, [0, 5, 10, 60]);
    expect(w[0]).toBe(0);
    expect(w[1]).toBeCloseTo(0.005, 12);
    expect(w.slice(2)).toEqual([0.01, 0.01]);
  });

  it('cosine is Keras CosineDecay(initial 0, decay_steps = total - warm-up, alpha 0, warmup_target lr)', () => {
    // No warm-up: lr·½(1 + cos(π t / T)); T = 100.
    const plain = { kind: 'cosine' as const, lr: 1, totalSteps: 100, warmupSteps: 0 };
    const [s0, s25, s50, s75, s100, s150] = at(plain, [0, 25, 50, 75, 100, 150]);
    expect(s0).toBe(1);
    expect(s25).toBeCloseTo(0.8535533905932737, 12); // ½(1 + cos(π/4))
    expect(s50).toBeCloseTo(0.5, 12);
    expect(s75).toBeCloseTo(0.1464466094067262, 12);
    expect(s100).toBeCloseTo(0, 12);
    expect(s150).toBeCloseTo(0, 12); // Keras clamps the step at decay_steps
    // Warm-up of 20 steps to 0.002, then decay over the remaining 80: step 60 is half-way down.
    const warm = { kind: 'cosine' as const, lr: 0.002, totalSteps: 100, warmupSteps: 20 };
    const [w0, w10, w20, w60, w100] = at(warm, [0, 10, 20, 60, 100]);
    expect(w0).toBe(0);
    expect(w10).toBeCloseTo(0.001, 15);
    expect(w20).toBeCloseTo(0.002, 15);
    expect(w60).toBeCloseTo(0.001, 15);
    expect(w100).toBeCloseTo(0, 15);
  });

  it('one-cycle is fastai combined_cos(pct_start, lr/25, lr, lr/1e5) at pos = step / total', () => {
    const s = { kind: 'one-cycle' as const, lr: 1, totalSteps: 100, warmupSteps: 0 };
    const [s0, s25, s50, s100] = at(s, [0, 25, 50, 100]);
    expect(s0).toBeCloseTo(1 / 25, 12);
    expect(s25).toBeCloseTo(1, 12);
    // Half-way through the 75% descent (pos 0.625): (lr + lr/1e5)/2; pos 0.5 is a third of the way: sched_cos at 1/3.
    expect(learningRateAt({ ...s, totalSteps: 1000 }, 625)).toBeCloseTo((1 + 1e-5) / 2, 12);
    expect(s50).toBeCloseTo(1 + ((1 + Math.cos(Math.PI * (1 - 1 / 3))) * (1e-5 - 1)) / 2, 12);
    expect(s100).toBeCloseTo(1e-5, 12);
    // fastai sched_cos itself: start at 0, end at 1, the middle is the mean.
    expect([schedCos(2, 8, 0), schedCos(2, 8, 0.5), schedCos(2, 8, 1)]).toEqual([2, 5, 8]);
    // A given warm-up sets the rise: 40 of 100 steps (pct_start 0.4).
    expect(learningRateAt({ ...s, warmupSteps: 40 }, 40)).toBeCloseTo(1, 12);
    expect(learningRateAt({ ...s, warmupSteps: 40 }, 20)).toBeCloseTo((1 / 25 + 1) / 2, 12);
  });

  it('a phase schedule counts optimizer steps per epoch (a partial last batch is a step) and warm-up in epochs', () => {
    expect(phaseSchedule({ lr: 0.1, epochs: 3, batchSize: 8, schedule: { kind: 'cosine', warmupEpochs: 0.5 } }, 33)).toEqual({ kind: 'cosine', lr: 0.1, totalSteps: 15, warmupSteps: 3 });
    expect(phaseSchedule({ lr: 0.1, epochs: 2, batchSize: 8 }, 16)).toEqual({ kind: 'constant', lr: 0.1, totalSteps: 4, warmupSteps: 0 });
  });
});

describe('phase plan', () => {
  const base = { data: 'd', name: 'n', epochs: 4, batchSize: 8, imageSize: 32, head: 'flatten', dropout: 0, fineTune: 0, weights: 'none', augment: [], seed: 1, resume: false, validationSplit: 0.2, testSplit: 0, engine: 'tfjs', classWeights: 'auto', logger: createMemoryLogger() } satisfies TrainOptions;

  it('gives fine-tuning its own epochs, a tenth of the head rate and a cosine schedule with a short warm-up by default', () => {
    expect(planPhases(base)).toEqual({ head: { epochs: 4, lr: 0.001, lrFrom: 'default', schedule: 'constant', warmupEpochs: 0 }, fineTune: undefined });
    const p = planPhases({ ...base, epochs: 10, fineTune: 3 });
    expect(p.fineTune).toEqual({ epochs: DEFAULT_FINE_TUNE_EPOCHS, lr: 0.0001, lrFrom: 'default', schedule: 'cosine', warmupEpochs: 1 });
    expect(p.fineTune!.epochs).not.toBe(10); // --epochs no longer sets the fine-tune phase
    const q = planPhases({ ...base, fineTune: 3, fineTuneEpochs: 2, fineTuneLr: 5e-5, lr: 0.01, lrSchedule: 'one-cycle' });
    expect(q.head).toMatchObject({ lr: 0.01, lrFrom: 'option', schedule: 'one-cycle', warmupEpochs: 0 });
    expect(q.fineTune).toEqual({ epochs: 2, lr: 5e-5, lrFrom: 'option', schedule: 'one-cycle', warmupEpochs: 0 });
    expect(planPhases({ ...base, fineTune: 1, fineTuneEpochs: 2 }).fineTune!.warmupEpochs).toBeCloseTo(0.4, 12);
  });

  it('refuses fine-tune options without --fine-tune and a warm-up as long as a phase', () => {
    expect(() => planPhases({ ...base, fineTuneEpochs: 3 })).toThrow(/--fine-tune-epochs sets the fine-tune phase, which only runs with --fine-tune K/);
    expect(() => planPhases({ ...base, fineTuneLr: 1e-4 })).toThrow(/--fine-tune-lr/);
    expect(() => planPhases({ ...base, warmupEpochs: 4 })).toThrow(/--warmup-epochs 4 leaves nothing of the 4-epoch head phase/);
    expect(() => planPhases({ ...base, epochs: 10, fineTune: 1, fineTuneEpochs: 2, warmupEpochs: 2 })).toThrow(/2-epoch fine-tune phase \(--fine-tune-epochs 2\)/);
  });
});

describe('LR range test', () => {
  it('steps the rate exponentially from 1e-7 towards 10 over 100 steps, as fastai SchedExp(start, end)(i / num_it)', () => {
    expect(rangeTestLr(LR_FIND, 0)).toBe(1e-7);
    expect(rangeTestLr(LR_FIND, 50)).toBeCloseTo(Math.sqrt(1e-7 * 10), 15);
    expect(rangeTestLr(LR_FIND, 99)).toBeCloseTo(1e-7 * Math.pow(1e8, 0.99), 9);
  });

  it('smooths like fastai AvgSmoothLoss (β 0.98, debiased) and runs every step when the loss never diverges', async () => {
    const seen: number[] = [];
    const r = await lrRangeTest(async (lr) => (seen.push(lr), 2), 'head');
    expect(r.stop).toBe('complete');
    expect(r.lrs).toHaveLength(100);
    expect(seen).toEqual(r.lrs);
    // A constant loss stays exactly that after debiasing.
    for (const l of r.losses) expect(l).toBeCloseTo(2, 12);
    const two = await lrRangeTest(async (_lr, i) => [1, 3][i]!, 'head', { steps: 2 });
    expect(two.losses[0]).toBeCloseTo(1, 12);
    expect(two.losses[1]).toBeCloseTo((0.98 * 0.02 * 1 + 0.02 * 3) / (1 - 0.98 ** 2), 12);
  });

  // A typical curve: flat at 2.3, falling fastest around 1e-3, lowest near 3e-2, then blowing up.
  const curve = (lr: number) => {
    const x = Math.log10(lr);
    return 0.8 + 1.5 / (1 + Math.exp(2.5 * (x + 3))) + (lr > 0.03 ? 40 * (lr - 0.03) ** 1.5 : 0);
  };

  it('stops once the smoothed loss passes 4x its best and suggests rates in the falling stretch', async () => {
    const r = await lrRangeTest(async (lr) => curve(lr), 'fine-tune');
    expect(r.stop).toBe('diverged');
    expect(r.lrs.length).toBeLessThan(100);
    expect(r.losses[r.losses.length - 1]).toBeGreaterThan(4 * Math.min(...r.losses));
    const { valley: v, steep: s, minimum: m } = r.suggestions;
    // valley: inside the descent, above its start and below the minimum's rate.
    expect(v!.lr).toBeGreaterThan(1e-4);
    expect(v!.lr).toBeLessThan(3e-2);
    // steep: where the smoothed curve falls fastest, within half a decade of the raw curve's 1e-3 (smoothing lags).
    expect(Math.abs(Math.log10(s!.lr) - Math.log10(1e-3))).toBeLessThan(0.7);
    // minimum: a tenth of the rate at the lowest smoothed loss.
    const iMin = r.losses.slice(10, r.losses.length - 5).reduce((b, l, i, a) => (l < a[b]! ? i : b), 0) + 10;
    expect(m!.lr).toBeCloseTo(r.lrs[iMin]! / 10, 15);
    expect(r.chosen).toEqual({ rule: 'valley', lr: v!.lr });
    expect(describeLrFind(r)).toMatch(/stopped when the loss diverged at lr .*suggested lr \S+ \(valley; steep/);
  });

  it('implements fastai valley / steep / minimum exactly on small curves', () => {
    const lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
    // Longest strictly falling run is indices 1..5 (5 points); fastai: max_start = 5 - 5 = 0, idx = 0 + 1 + 0 = 1.
    expect(valley(lrs, [3, 5, 4, 3, 2, 1, 1.5])).toEqual({ lr: 1e-4, loss: 5 });
    // Steepest drop per decade is between 1e-2 and 1e-1 (−3): its first point.
    expect(steep(lrs, [3, 2.9, 2.5, 2, -1, -1.2, 0]).lr).toBe(1e-2);
    expect(minimum(lrs, [3, 2.9, 2.5, 2, 1, 0.5, 4]).lr).toBeCloseTo(0.1, 15);
    // fastai drops the first num_it/10 and the last 5 points before suggesting, and everything from a NaN on.
    expect(suggestLr([1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 1], 100)).toEqual({});
    const lr20 = Array.from({ length: 20 }, (_, i) => 10 ** (i - 10));
    const sug = suggestLr(lr20, lr20.map((_, i) => (i === 12 ? NaN : 10 - i)), 20);
    expect(sug.minimum!.lr).toBeCloseTo(lr20[11]! / 10, 20); // the lowest before the NaN at 12
  });
});

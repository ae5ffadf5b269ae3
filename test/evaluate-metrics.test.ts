// Evaluation metric functions against hand-computed cases (never predicted classes, one class present, top-k
// ties, perfect and worst predictions, ECE by hand), plus latency percentiles, gates and comparison deltas.
import { describe, expect, it } from 'vitest';
import { compareResults } from '../src/evaluate/compare.js';
import { checkGates } from '../src/evaluate/gates.js';
import { percentile } from '../src/runtime/latency.js';
import {
  addPredictions,
  binOf,
  classificationMetrics,
  createAccumulator,
  finalizeMetrics,
  LOG_LOSS_EPS,
  topConfusions,
} from '../src/tasks/classification/metrics.js';
import { argmax, rankOf, softmaxRows } from '../src/tasks/scores.js';
import type { EvaluationResult } from '../src/evaluate/run.js';

const close = (a: number, b: number, digits = 10) => expect(a).toBeCloseTo(b, digits);

describe('classification metrics', () => {
  // 3 classes; class 2 is never predicted. preds = [0, 0, 0, 1], true = [0, 1, 2, 1].
  const probs = [0.7, 0.2, 0.1, 0.5, 0.4, 0.1, 0.6, 0.3, 0.1, 0.1, 0.8, 0.1];
  const labels = [0, 1, 2, 1];
  const m = classificationMetrics(probs, labels, 3, { topK: 2, labelNames: ['a', 'b', 'c'], refs: ['i0', 'i1', 'i2', 'i3'] });

  it('accuracy, top-k, log loss and the confusion matrix', () => {
    close(m.accuracy, 0.5);
    close(m.topK.accuracy, 0.75); // example 2's true class is ranked third
    expect(m.topK.k).toBe(2);
    close(m.logLoss, -(Math.log(0.7) + Math.log(0.4) + Math.log(0.1) + Math.log(0.8)) / 4);
    expect(m.confusion).toEqual([
      [1, 0, 0],
      [1, 1, 0],
      [1, 0, 0],
    ]);
    expect(m.count).toBe(4);
  });

  it('per-class precision/recall/F1 with a never-predicted class, macro and weighted averages', () => {
    const [a, b, c] = m.perClass;
    close(a!.precision, 1 / 3);
    close(a!.recall, 1);
    close(a!.f1, 0.5);
    close(b!.precision, 1);
    close(b!.recall, 0.5);
    close(b!.f1, 2 / 3);
    expect([c!.precision, c!.recall, c!.f1, c!.support, c!.predicted]).toEqual([0, 0, 0, 1, 0]);
    close(m.macro.precision, 4 / 9);
    close(m.macro.recall, 0.5);
    close(m.macro.f1, 7 / 18);
    close(m.weighted.precision, 7 / 12);
    close(m.weighted.recall, 0.5);
    close(m.weighted.f1, 11 / 24);
    expect(m.macro.support).toBe(4);
  });

  it('lists the most confidently wrong examples, highest score first', () => {
    expect(m.mostConfidentWrong.map((w) => [w.ref, w.trueLabel, w.predictedLabel, w.score, w.trueScore])).toEqual([
      ['i2', 'c', 'a', 0.6, 0.1],
      ['i1', 'b', 'a', 0.5, 0.4],
    ]);
    const one = classificationMetrics(probs, labels, 3, { worst: 1 });
    expect(one.mostConfidentWrong.map((w) => w.index)).toEqual([2]);
    expect(classificationMetrics(probs, labels, 3, { worst: 0 }).mostConfidentWrong).toEqual([]);
  });

  it('averages over the classes present when only one class is in the data', () => {
    // All true class 0 of a 3-class model, predicted [0, 0, 0, 1]: class 2 is neither present nor predicted.
    const p = [0.9, 0.05, 0.05, 0.8, 0.1, 0.1, 0.6, 0.3, 0.1, 0.3, 0.6, 0.1];
    const r = classificationMetrics(p, [0, 0, 0, 0], 3);
    close(r.accuracy, 0.75);
    close(r.perClass[0]!.f1, 6 / 7);
    close(r.macro.f1, 3 / 7); // (6/7 + 0) / 2 — class 2 is left out
    close(r.weighted.f1, 6 / 7);
    const perfect = classificationMetrics([0.9, 0.05, 0.05, 0.7, 0.2, 0.1], [0, 0], 3);
    expect([perfect.accuracy, perfect.macro.f1, perfect.weighted.f1, perfect.macro.precision]).toEqual([1, 1, 1, 1]);
  });

  it('perfect and worst one-hot predictions', () => {
    const eye = [1, 0, 0, 0, 1, 0, 0, 0, 1];
    const perfect = classificationMetrics(eye, [0, 1, 2], 3);
    expect(perfect.accuracy).toBe(1);
    expect(perfect.macro.f1).toBe(1);
    expect(perfect.ece).toBe(0);
    close(perfect.logLoss, -Math.log(1 - LOG_LOSS_EPS));
    expect(perfect.mostConfidentWrong).toEqual([]);
    const worst = classificationMetrics(eye, [1, 2, 0], 3, { topK: 1 });
    expect(worst.accuracy).toBe(0);
    expect(worst.topK.accuracy).toBe(0);
    expect(worst.macro.f1).toBe(0);
    close(worst.logLoss, -Math.log(LOG_LOSS_EPS)); // clipped: finite (~16.12), not Infinity
    expect(Number.isFinite(worst.logLoss)).toBe(true);
    close(worst.ece, 1);
  });

  it('breaks ties by the lower class index, for argmax and top-k alike', () => {
    expect(argmax([0.3, 0.4, 0.4])).toBe(1);
    expect(argmax([0.5, 0.5])).toBe(0);
    expect(rankOf([0.4, 0.3, 0.3], 1)).toBe(1);
    expect(rankOf([0.4, 0.3, 0.3], 2)).toBe(2);
    const tie = [0.4, 0.3, 0.3, 0.4, 0.3, 0.3];
    // true 1 ranks 2nd (inside top-2); true 2 ranks 3rd (outside) although its score equals class 1's.
    expect(classificationMetrics(tie, [1, 2], 3, { topK: 2 }).topK.accuracy).toBe(0.5);
    const uniform = [1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3];
    const u = classificationMetrics(uniform, [0, 2], 3, { topK: 1 });
    expect(u.accuracy).toBe(0.5);
    expect(u.topK.accuracy).toBe(u.accuracy); // top-1 always equals accuracy
    expect(classificationMetrics(uniform, [0, 2], 3, { topK: 7 }).topK).toEqual({ k: 3, accuracy: 1 });
  });

  it('expected calibration error on a hand example (15 bins)', () => {
    // confidences 0.9 (right), 0.9 (wrong) → bin 13; 0.65 and 0.62 (both right) → bin 9.
    const p = [0.9, 0.1, 0.9, 0.1, 0.35, 0.65, 0.62, 0.38];
    const r = classificationMetrics(p, [0, 1, 1, 0], 2);
    close(r.ece, 0.5 * Math.abs(0.5 - 0.9) + 0.5 * Math.abs(1 - 0.635));
    expect(r.calibration).toHaveLength(15);
    expect(r.calibration[13]!.count).toBe(2);
    close(r.calibration[13]!.accuracy, 0.5);
    close(r.calibration[9]!.confidence, 0.635);
    expect(r.calibration.filter((b) => b.count > 0)).toHaveLength(2);
    expect([binOf(0, 15), binOf(1, 15), binOf(0.5, 2), binOf(0.51, 2)]).toEqual([0, 14, 0, 1]);
  });

  it('accumulates batches to the same result as one pass', () => {
    const acc = createAccumulator(3, { topK: 2 });
    addPredictions(acc, probs.slice(0, 6), labels.slice(0, 2), ['i0', 'i1']);
    addPredictions(acc, probs.slice(6), labels.slice(2), ['i2', 'i3']);
    expect(finalizeMetrics(acc, ['a', 'b', 'c'])).toEqual(m);
  });

  it('rejects labels outside the model and mis-sized score arrays', () => {
    expect(() => classificationMetrics([0.5, 0.5], [2], 2)).toThrow(/outside/);
    expect(() => classificationMetrics([0.5, 0.5, 0.1], [0], 2)).toThrow(/expected 1 x 2/);
  });

  it('lists the most frequent confusions', () => {
    const pairs = topConfusions([[5, 3, 1], [0, 4, 4], [2, 0, 6]], 3);
    expect(pairs.map((p) => [p.trueIndex, p.predictedIndex, p.count])).toEqual([[1, 2, 4], [0, 1, 3], [2, 0, 2]]);
    close(pairs[0]!.fraction, 0.5);
    close(pairs[1]!.fraction, 3 / 9);
    expect(topConfusions(m.confusion, 10).map((p) => [p.trueIndex, p.predictedIndex])).toEqual([[1, 0], [2, 0]]);
    expect(topConfusions([[2, 0], [0, 2]], 5)).toEqual([]);
  });

  it('softmax turns scores into probabilities', () => {
    const s = softmaxRows(new Float32Array([0, Math.log(3), 5, 5]), 2);
    close(s[0]!, 0.25, 6);
    close(s[1]!, 0.75, 6);
    close(s[2]!, 0.5, 6);
  });
});

describe('latency percentiles', () => {
  it('interpolates linearly between order statistics', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    const xs = Array.from({ length: 20 }, (_, i) => i + 1);
    close(percentile(xs, 95), 19.05);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 100)).toBe(20);
  });
});

function fakeResult(name: string, accuracy: number, f1: number, p95: number, raw: number, ips: number): EvaluationResult {
  return {
    model: { name, version: 1, dir: '/x', manifestSha256: 'abc', task: 'image-classification' },
    engine: { name: 'tfjs', description: 'tfjs cpu' },
    images: { evaluated: 10, skipped: 0, skippedFiles: [] },
    seconds: 1,
    metrics: { accuracy, macro: { f1, precision: 0, recall: 0, support: 10 } } as EvaluationResult['metrics'],
    latency: { p50Ms: p95 / 2, p95Ms: p95, p99Ms: p95 * 1.2, throughput: { best: { batchSize: 4, imagesPerSecond: ips }, tried: [] } } as unknown as EvaluationResult['latency'],
    size: { format: 'tfjs', rawBytes: raw, gzipBytes: raw / 2, byFormat: {} },
  };
}

describe('gates and comparison', () => {
  const a = fakeResult('a', 0.9, 0.85, 20, 1000, 100);
  const b = fakeResult('b', 0.8, 0.7, 10, 250, 300);

  it('reports each failed gate with the shortfall', () => {
    const gates = checkGates([a, b], { minAccuracy: 0.85, minF1: 0.8, maxLatencyMs: 15 });
    const failed = gates.filter((g) => !g.passed);
    expect(failed.map((g) => `${g.model}:${g.gate}`)).toEqual(['a v1:max-latency-ms', 'b v1:min-accuracy', 'b v1:min-f1']);
    close(failed[0]!.shortBy, 5);
    close(failed[1]!.shortBy, 0.05);
    expect(failed[1]!.message).toMatch(/accuracy 0\.8 is below --min-accuracy 0\.85 by 0\.05/);
    expect(checkGates([a], { maxLatencyMs: 15, latencyPercentile: 'p50' })[0]!.passed).toBe(true);
    expect(checkGates([a, b], {})).toEqual([]);
  });

  it('computes deltas against the first model', () => {
    const rows = compareResults([a, b]);
    expect(rows[0]!.delta).toBeUndefined();
    close(rows[1]!.delta!.accuracy, -0.1);
    close(rows[1]!.delta!.macroF1, -0.15);
    close(rows[1]!.delta!.sizeRawRatio, 0.25);
    close(rows[1]!.delta!.p50Ms!, -5);
    close(rows[1]!.delta!.imagesPerSecondRatio!, 3);
  });
});

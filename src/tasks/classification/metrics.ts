// Classification metrics as pure functions over label indices (the image and tabular classification tasks share
// them); predicted class, top-k rank and softmax come from the one ranking in tasks/scores.ts.
// Streaming: an accumulator takes batches of probabilities, so memory is O(classes² + worst N), not O(dataset).
//
// Conventions (stated once, relied on by tests and reports):
// - Predicted class = argmax; on equal scores the LOWER class index wins (as numpy.argmax).
// - Top-k: classes are ranked by score, equal scores broken by lower index first (the same rule as argmax, so
//   top-1 accuracy always equals accuracy). The true class counts if its rank is < k; k is capped at the class count.
// - Log loss: mean of -ln(p_true) with p clipped to [1e-7, 1 - 1e-7] (float32 resolution; a confidently wrong
//   example costs at most ~16.1 instead of Infinity).
// - Precision of a class never predicted, recall of a class with no support, and F1 when both are 0 are 0
//   (scikit-learn's zero_division=0). Macro averages run over the classes present in the data or in the
//   predictions (scikit-learn's default label set); weighted averages weight by support.
// - ECE: 15 equal-width confidence bins (lower, upper], confidence = max probability (Guo et al. 2017);
//   ECE = Σ_b (n_b / n) · |accuracy_b − confidence_b|.

import { argmax, rankOf } from '../scores.js';
import type { MetricsOptions } from '../types.js';

export const LOG_LOSS_EPS = 1e-7;
export const DEFAULT_ECE_BINS = 15;

export interface ClassMetrics {
  /** Class index (into the model's labels). */
  index: number;
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose true class is this one. */
  support: number;
  /** Examples predicted as this class. */
  predicted: number;
}

export interface AverageMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface CalibrationBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean confidence of the examples in the bin (0 when empty). */
  confidence: number;
  /** Fraction of them predicted correctly (0 when empty). */
  accuracy: number;
}

export interface ConfidentError {
  /** Position of the example in the evaluated stream. */
  index: number;
  /** Where the example came from (image path), when known. */
  ref?: string;
  trueIndex: number;
  predictedIndex: number;
  trueLabel: string;
  predictedLabel: string;
  /** Score of the (wrong) predicted class. */
  score: number;
  /** Score the model gave the true class. */
  trueScore: number;
}

export interface ClassificationMetrics {
  count: number;
  accuracy: number;
  topK: { k: number; accuracy: number };
  logLoss: number;
  ece: number;
  calibration: CalibrationBin[];
  labels: string[];
  perClass: ClassMetrics[];
  macro: AverageMetrics;
  weighted: AverageMetrics;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** The most confidently wrong examples, highest predicted score first (ties: earlier example first). */
  mostConfidentWrong: ConfidentError[];
}

export interface ClassificationAccumulator {
  readonly numClasses: number;
  readonly topK: number;
  readonly bins: number;
  readonly worstN: number;
  count: number;
  correct: number;
  topKCorrect: number;
  logLossSum: number;
  confusion: number[][];
  binCount: number[];
  binConfidence: number[];
  binCorrect: number[];
  worst: Array<Omit<ConfidentError, 'trueLabel' | 'predictedLabel'>>;
}

export function createAccumulator(numClasses: number, opts: MetricsOptions = {}): ClassificationAccumulator {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  const topK = Math.min(Math.max(1, Math.floor(opts.topK ?? 5)), numClasses);
  const bins = Math.max(1, Math.floor(opts.bins ?? DEFAULT_ECE_BINS));
  return {
    numClasses,
    topK,
    bins,
    worstN: Math.max(0, Math.floor(opts.worst ?? 10)),
    count: 0,
    correct: 0,
    topKCorrect: 0,
    logLossSum: 0,
    confusion: Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0)),
    binCount: new Array<number>(bins).fill(0),
    binConfidence: new Array<number>(bins).fill(0),
    binCorrect: new Array<number>(bins).fill(0),
    worst: [],
  };
}

/** Bin index for a confidence in [0, 1] with (lower, upper] bins; 0 goes to the first bin. */
export function binOf(confidence: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.ceil(confidence * bins) - 1));
}

function insertWorst(acc: ClassificationAccumulator, item: ClassificationAccumulator['worst'][number]): void {
  if (acc.worstN === 0) return;
  const list = acc.worst;
  if (list.length === acc.worstN && item.score <= list[list.length - 1]!.score) return;
  // Keep descending by score; an equal score goes after existing ones (earlier examples first).
  let i = list.length;
  while (i > 0 && list[i - 1]!.score < item.score) i--;
  list.splice(i, 0, item);
  if (list.length > acc.worstN) list.pop();
}

/**
 * Add a batch: `probs` holds labels.length rows of numClasses probabilities; `refs` optionally names each example
 * (image paths) for the confidently-wrong list.
 */
export function addPredictions(acc: ClassificationAccumulator, probs: ArrayLike<number>, labels: ArrayLike<number>, refs?: readonly string[]): void {
  const k = acc.numClasses;
  if (probs.length !== labels.length * k) throw new RangeError(`expected ${labels.length} x ${k} scores, got ${probs.length}`);
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= k) throw new RangeError(`label ${t} is outside 0..${k - 1}`);
    const o = i * k;
    const p = argmax(probs, o, k);
    const conf = probs[o + p]!;
    const pt = probs[o + t]!;
    const index = acc.count;
    acc.count++;
    acc.confusion[t]![p]!++;
    const ok = p === t;
    if (ok) acc.correct++;
    if (rankOf(probs, t, o, k) < acc.topK) acc.topKCorrect++;
    acc.logLossSum += -Math.log(Math.min(1 - LOG_LOSS_EPS, Math.max(LOG_LOSS_EPS, pt)));
    const b = binOf(conf, acc.bins);
    acc.binCount[b]!++;
    acc.binConfidence[b]! += conf;
    if (ok) acc.binCorrect[b]!++;
    else insertWorst(acc, { index, ...(refs ? { ref: refs[i] } : {}), trueIndex: t, predictedIndex: p, score: conf, trueScore: pt });
  }
}

const safeDiv = (a: number, b: number): number => (b > 0 ? a / b : 0);

/** Per-class precision/recall/F1/support and macro/weighted averages from a confusion matrix (rows = true). */
export function classReport(confusion: number[][], labels: readonly string[]): { perClass: ClassMetrics[]; macro: AverageMetrics; weighted: AverageMetrics } {
  const k = confusion.length;
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < k; c++) {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < k; r++) predicted += confusion[r]![c]!;
    const precision = safeDiv(tp, predicted);
    const recall = safeDiv(tp, support);
    perClass.push({ index: c, label: labels[c] ?? String(c), precision, recall, f1: safeDiv(2 * precision * recall, precision + recall), support, predicted });
  }
  const present = perClass.filter((m) => m.support > 0 || m.predicted > 0);
  const total = perClass.reduce((a, m) => a + m.support, 0);
  const mean = (f: (m: ClassMetrics) => number) => safeDiv(present.reduce((a, m) => a + f(m), 0), present.length);
  const wmean = (f: (m: ClassMetrics) => number) => safeDiv(perClass.reduce((a, m) => a + f(m) * m.support, 0), total);
  return {
    perClass,
    macro: { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1), support: total },
    weighted: { precision: wmean((m) => m.precision), recall: wmean((m) => m.recall), f1: wmean((m) => m.f1), support: total },
  };
}

/** Expected calibration error and the reliability-diagram bins from per-bin sums. */
export function calibrationFrom(binCount: number[], binConfidence: number[], binCorrect: number[]): { ece: number; bins: CalibrationBin[] } {
  const n = binCount.reduce((a, b) => a + b, 0);
  const B = binCount.length;
  let ece = 0;
  const bins = binCount.map((count, b) => {
    const confidence = safeDiv(binConfidence[b]!, count);
    const accuracy = safeDiv(binCorrect[b]!, count);
    ece += safeDiv(count, n) * Math.abs(accuracy - confidence);
    return { lower: b / B, upper: (b + 1) / B, count, confidence, accuracy };
  });
  return { ece, bins };
}

export function finalizeMetrics(acc: ClassificationAccumulator, labels: readonly string[] = []): ClassificationMetrics {
  const name = (i: number) => labels[i] ?? String(i);
  const { perClass, macro, weighted } = classReport(acc.confusion, Array.from({ length: acc.numClasses }, (_, i) => name(i)));
  const { ece, bins } = calibrationFrom(acc.binCount, acc.binConfidence, acc.binCorrect);
  return {
    count: acc.count,
    accuracy: safeDiv(acc.correct, acc.count),
    topK: { k: acc.topK, accuracy: safeDiv(acc.topKCorrect, acc.count) },
    logLoss: safeDiv(acc.logLossSum, acc.count),
    ece,
    calibration: bins,
    labels: Array.from({ length: acc.numClasses }, (_, i) => name(i)),
    perClass,
    macro,
    weighted,
    confusion: acc.confusion.map((row) => [...row]),
    mostConfidentWrong: acc.worst.map((w) => ({ ...w, trueLabel: name(w.trueIndex), predictedLabel: name(w.predictedIndex) })),
  };
}

export interface ConfusionPair {
  trueIndex: number;
  predictedIndex: number;
  count: number;
  /** count / support of the true class. */
  fraction: number;
}

/** The n largest off-diagonal cells (most frequent mistakes), largest first; ties by true then predicted index. */
export function topConfusions(confusion: number[][], n: number): ConfusionPair[] {
  const pairs: ConfusionPair[] = [];
  confusion.forEach((row, t) => {
    const support = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      if (p !== t && count > 0) pairs.push({ trueIndex: t, predictedIndex: p, count, fraction: count / support });
    });
  });
  pairs.sort((a, b) => b.count - a.count || a.trueIndex - b.trueIndex || a.predictedIndex - b.predictedIndex);
  return pairs.slice(0, Math.max(0, n));
}

/** All metrics at once for in-memory predictions: probs is labels.length x numClasses, row-major. */
export function classificationMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number, opts: MetricsOptions & { labelNames?: readonly string[]; refs?: readonly string[] } = {}): ClassificationMetrics {
  const acc = createAccumulator(numClasses, opts);
  addPredictions(acc, probs, labels, opts.refs);
  return finalizeMetrics(acc, opts.labelNames);
}

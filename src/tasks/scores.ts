// The one ranking and the one softmax over score rows (flat [n, width] arrays, as engines output them): top-k,
// argmax, rank, softmax, and the roundings each surface renders scores with. Every caller — serve, predict, watch,
// the audit log, the metrics — ranks here, so "best first, equal scores by lower class index" holds everywhere.

/** A label and its score, as every surface shows one class. */
export interface LabelScore {
  label: string;
  score: number;
}

/** How a surface writes a score: rounding is rendering, never part of the ranking. */
export type Rounding = (v: number) => number;

export const ROUND = {
  /** As computed (serve's /predict and :classify answers). */
  none: ((v) => v) as Rounding,
  /** `digits` decimals (watch events: 4; the audit log: 6). */
  decimals: (digits: number): Rounding => (v) => Number(v.toFixed(digits)),
  /** `digits` significant digits (predict rows: 6 — float32 carries about 7); NaN and ±Infinity pass through. */
  significant: (digits: number): Rounding => (v) => (Number.isFinite(v) ? Number(v.toPrecision(digits)) : v),
};

/** True when class `a` ranks before class `b`: higher score, NaN last, equal scores by lower index. */
function before(scores: ArrayLike<number>, offset: number, a: number, b: number): boolean {
  const sa = scores[offset + a]!;
  const sb = scores[offset + b]!;
  if (sa > sb) return true;
  if (sa < sb) return false;
  const na = sa !== sa;
  const nb = sb !== sb;
  if (na !== nb) return nb;
  return a < b;
}

/**
 * Class indices of the `k` best scores of one row — `width` values from `offset` — best first; equal scores keep the
 * lower index first (so top-1 is argmax), NaN ranks last. k is capped at the row width.
 */
export function topIndices(scores: ArrayLike<number>, k: number, offset = 0, width = scores.length - offset): number[] {
  const n = Math.max(0, Math.min(Math.floor(k), width));
  if (n === 0) return [];
  if (n * 8 >= width) {
    const all = Array.from({ length: width }, (_, j) => j);
    all.sort((a, b) => (a === b ? 0 : before(scores, offset, a, b) ? -1 : 1));
    return all.slice(0, n);
  }
  // Insertion into a short sorted list: k is small, the row may hold 1000 classes.
  const idx: number[] = [];
  for (let j = 0; j < width; j++) {
    if (idx.length === n && !before(scores, offset, j, idx[n - 1]!)) continue;
    let p = idx.length < n ? idx.push(j) - 1 : n - 1;
    idx[p] = j;
    while (p > 0 && before(scores, offset, j, idx[p - 1]!)) {
      idx[p] = idx[p - 1]!;
      idx[p - 1] = j;
      p--;
    }
  }
  return idx;
}

/**
 * The `k` best labels of row `row` of an [n, width] score array (width: the label count unless given), best first,
 * each score written with `round`. A class without a label is named by its index.
 */
export function topK(scores: ArrayLike<number>, row: number, labels: readonly string[], k: number, opts: { width?: number; round?: Rounding } = {}): LabelScore[] {
  const width = opts.width ?? labels.length;
  const round = opts.round ?? ROUND.none;
  const offset = row * width;
  return topIndices(scores, k, offset, width).map((j) => ({ label: labels[j] ?? String(j), score: round(scores[offset + j]!) }));
}

/** Index of the highest score in row [offset, offset+k); the lowest index wins ties (numpy.argmax). */
export function argmax(scores: ArrayLike<number>, offset = 0, k = scores.length - offset): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let j = 0; j < k; j++) {
    const s = scores[offset + j]!;
    if (s > bestScore) {
      bestScore = s;
      best = j;
    }
  }
  return best;
}

/** 0-based rank of class `t` in a row: classes scoring higher, plus equal-scoring classes with a lower index. */
export function rankOf(scores: ArrayLike<number>, t: number, offset = 0, k = scores.length - offset): number {
  const st = scores[offset + t]!;
  let rank = 0;
  for (let j = 0; j < k; j++) {
    const s = scores[offset + j]!;
    if (s > st || (s === st && j < t)) rank++;
  }
  return rank;
}

/**
 * Softmax in place over each row of `k` values. The row maximum is subtracted first, so exp never overflows
 * (logits of 1e4 work) and the largest term is exactly 1.
 */
export function softmaxRows<A extends Float32Array | Float64Array>(scores: A, k: number): A {
  for (let o = 0; o < scores.length; o += k) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, scores[o + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += scores[o + j] = Math.exp(scores[o + j]! - max);
    for (let j = 0; j < k; j++) scores[o + j]! /= sum;
  }
  return scores;
}

/** Softmax of one row, in place. */
export const softmax = <A extends Float32Array | Float64Array>(row: A): A => softmaxRows(row, row.length);

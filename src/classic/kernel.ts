// SVM kernels and the kernel-row cache the SMO solver reads from: rows of K are computed on demand and kept
// in an LRU bounded by bytes, as libsvm's Cache does, so memory stays flat however large the training set.
import { dot, row, type Matrix } from './linalg.js';

export type KernelType = 'linear' | 'rbf' | 'poly';

export interface KernelSpec {
  type: KernelType;
  /** rbf: exp(−γ‖x−z‖²); poly: (γ⟨x,z⟩ + coef0)^degree. */
  gamma: number;
  coef0: number;
  degree: number;
}

export function kernelValue(k: KernelSpec, a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  switch (k.type) {
    case 'linear':
      return dot(a, b, n);
    case 'poly':
      return (k.gamma * dot(a, b, n) + k.coef0) ** k.degree;
    case 'rbf': {
      let s0 = 0, s1 = 0;
      let i = 0;
      for (; i + 1 < n; i += 2) {
        const t0 = a[i]! - b[i]!, t1 = a[i + 1]! - b[i + 1]!;
        s0 += t0 * t0;
        s1 += t1 * t1;
      }
      if (i < n) s0 += (a[i]! - b[i]!) ** 2;
      return Math.exp(-k.gamma * (s0 + s1));
    }
  }
}

export interface KernelRows {
  /** K(x_i, x_j) for all j (length = rows of the data). The array may be shared: do not modify it. */
  row(i: number): Float32Array;
  diag(i: number): number;
  readonly hits: number;
  readonly misses: number;
}

/** Kernel rows over a data matrix with an LRU cache of at most `cacheBytes`. */
export function kernelRows(x: Matrix, k: KernelSpec, cacheBytes = 256 * 1024 * 1024): KernelRows {
  const n = x.rows, d = x.cols;
  const sq = new Float64Array(n);
  for (let i = 0; i < n; i++) sq[i] = dot(row(x, i), row(x, i), d);
  const capacity = Math.max(2, Math.floor(cacheBytes / (4 * n)));
  const cache = new Map<number, Float32Array>();
  let hits = 0, misses = 0;
  // Rows are float32 in the cache anyway; a float32 copy of X halves the memory each kernel row streams through.
  const data = Float32Array.from(x.data);
  const compute = (i: number): Float32Array => {
    const out = new Float32Array(n);
    const xi = data.subarray(i * d, (i + 1) * d);
    const d4 = d - (d % 4);
    for (let j = 0; j < n; j++) {
      // Four independent accumulators: about twice the throughput of one dependent chain in V8.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const o = j * d;
      let t = 0;
      for (; t < d4; t += 4) {
        s0 += xi[t]! * data[o + t]!;
        s1 += xi[t + 1]! * data[o + t + 1]!;
        s2 += xi[t + 2]! * data[o + t + 2]!;
        s3 += xi[t + 3]! * data[o + t + 3]!;
      }
      for (; t < d; t++) s0 += xi[t]! * data[o + t]!;
      out[j] = s0 + s1 + s2 + s3;
    }
    if (k.type === 'rbf') for (let j = 0; j < n; j++) out[j] = Math.exp(-k.gamma * Math.max(0, sq[i]! + sq[j]! - 2 * out[j]!));
    else if (k.type === 'poly') for (let j = 0; j < n; j++) out[j] = (k.gamma * out[j]! + k.coef0) ** k.degree;
    return out;
  };
  return {
    row(i) {
      const cached = cache.get(i);
      if (cached) {
        hits++;
        cache.delete(i);
        cache.set(i, cached);
        return cached;
      }
      misses++;
      const r = compute(i);
      if (cache.size >= capacity) cache.delete(cache.keys().next().value!);
      cache.set(i, r);
      return r;
    },
    diag(i) {
      return k.type === 'rbf' ? 1 : k.type === 'linear' ? sq[i]! : (k.gamma * sq[i]! + k.coef0) ** k.degree;
    },
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
  };
}

// SVM kernels over dense rows: single values, whole rows from dot products (dense.ts), and the full-row LRU cache
// bounded by bytes that ε-SVR and tests read from (C-SVC's solver caches partial Q rows instead: qmatrix.ts).
import { denseRows, type DenseRows } from './dense.js';
import { dot, type Matrix } from './linalg.js';

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

/**
 * In place: dot products ⟨a, x_perm[t]⟩ (at out[t − start]) become kernel values K(a, x_perm[t]); `sqA` = ‖a‖².
 * rbf uses ‖a‖² + ‖b‖² − 2⟨a,b⟩, clamped at 0 against rounding.
 */
export function dotsToKernel(k: KernelSpec, sqA: number, sq: Float64Array, perm: Int32Array, start: number, end: number, out: Float64Array): void {
  const n = end - start;
  if (k.type === 'rbf') {
    const g = k.gamma;
    for (let t = 0; t < n; t++) {
      const d2 = sqA + sq[perm[start + t]!]! - 2 * out[t]!;
      out[t] = Math.exp(-g * (d2 > 0 ? d2 : 0));
    }
  } else if (k.type === 'poly') {
    for (let t = 0; t < n; t++) out[t] = (k.gamma * out[t]! + k.coef0) ** k.degree;
  }
}

/** K(xᵢ, xᵢ) from the squared norm. */
export function kernelDiag(k: KernelSpec, sq: number): number {
  return k.type === 'rbf' ? 1 : k.type === 'linear' ? sq : (k.gamma * sq + k.coef0) ** k.degree;
}

export interface KernelRows {
  /** K(x_i, x_j) for all j (length = rows of the data). The array may be shared: do not modify it. */
  row(i: number): Float32Array;
  diag(i: number): number;
  readonly hits: number;
  readonly misses: number;
}

/** Whole kernel rows over all rows of `x`, in an LRU cache of at most `cacheBytes`. */
export function kernelRows(x: Matrix | DenseRows, k: KernelSpec, cacheBytes = 256 * 1024 * 1024): KernelRows {
  const dense = 'dots' in x ? x : denseRows(x);
  const n = dense.rows;
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const scratch = new Float64Array(n);
  const capacity = Math.max(2, Math.floor(cacheBytes / (4 * n)));
  const cache = new Map<number, Float32Array>();
  let hits = 0, misses = 0;
  const compute = (i: number, out: Float32Array): Float32Array => {
    dense.dots(i, all, 0, n, scratch);
    dotsToKernel(k, dense.sq[i]!, dense.sq, all, 0, n, scratch);
    out.set(scratch);
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
      // A full cache recycles its least recently used row's array rather than allocating another.
      let buf: Float32Array | undefined;
      if (cache.size >= capacity) {
        const oldest = cache.keys().next().value!;
        buf = cache.get(oldest);
        cache.delete(oldest);
      }
      const r = compute(i, buf ?? new Float32Array(n));
      cache.set(i, r);
      return r;
    },
    diag: (i) => kernelDiag(k, dense.sq[i]!),
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
  };
}

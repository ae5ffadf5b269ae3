// Dense row-major matrices and the few numerical kernels the classic solvers need: standardisation,
// Gram matrices, and a Cholesky solve for symmetric positive-definite systems (the normal equations).

/** n rows x d columns, row-major. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  const m = { rows, cols, data: new Float64Array(rows * cols) };
  if (data) {
    if (data.length !== rows * cols) throw new Error(`matrix data has ${data.length} values, expected ${rows}x${cols}`);
    m.data.set(data);
  }
  return m;
}

export function fromRows(rows: ArrayLike<number>[]): Matrix {
  const d = rows[0]?.length ?? 0;
  const m = matrix(rows.length, d);
  rows.forEach((r, i) => m.data.set(r, i * d));
  return m;
}

export function row(m: Matrix, i: number): Float64Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Rows picked by index (copies). */
export function takeRows(m: Matrix, idx: ArrayLike<number>): Matrix {
  const out = matrix(idx.length, m.cols);
  for (let k = 0; k < idx.length; k++) out.data.set(row(m, idx[k]!), k * m.cols);
  return out;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

export interface Standardization {
  mean: number[];
  /** Divisor per feature: the standard deviation, or 1 for a constant feature. */
  scale: number[];
}

export function fitStandardization(x: Matrix): Standardization {
  const { rows: n, cols: d } = x;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const r = row(x, i);
    for (let j = 0; j < d; j++) mean[j] += r[j]!;
  }
  for (let j = 0; j < d; j++) mean[j] /= Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    const r = row(x, i);
    for (let j = 0; j < d; j++) {
      const c = r[j]! - mean[j]!;
      sq[j] += c * c;
    }
  }
  const scale = Array.from(sq, (s) => {
    const sd = Math.sqrt(s / Math.max(n, 1));
    return sd > 1e-12 ? sd : 1;
  });
  return { mean: Array.from(mean), scale };
}

/** (x - mean) / scale, into a new matrix. */
export function standardize(x: Matrix, s: Standardization): Matrix {
  const out = matrix(x.rows, x.cols);
  for (let i = 0; i < x.rows; i++) {
    const o = i * x.cols;
    for (let j = 0; j < x.cols; j++) out.data[o + j] = (x.data[o + j]! - s.mean[j]!) / s.scale[j]!;
  }
  return out;
}

/** XᵀX (d x d, symmetric), accumulated row by row so X is read once in order. */
export function gram(x: Matrix): Matrix {
  const d = x.cols;
  const g = matrix(d, d);
  for (let i = 0; i < x.rows; i++) {
    const r = row(x, i);
    for (let a = 0; a < d; a++) {
      const ra = r[a]!;
      if (ra === 0) continue;
      const o = a * d;
      for (let b = a; b < d; b++) g.data[o + b] += ra * r[b]!;
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) g.data[a * d + b] = g.data[b * d + a]!;
  return g;
}

/** Xᵀv (length d). */
export function xtv(x: Matrix, v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.cols);
  for (let i = 0; i < x.rows; i++) {
    const vi = v[i]!;
    if (vi === 0) continue;
    const r = row(x, i);
    for (let j = 0; j < x.cols; j++) out[j] += r[j]! * vi;
  }
  return out;
}

/** Xw (length n). */
export function xv(x: Matrix, w: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) out[i] = dot(row(x, i), w, x.cols);
  return out;
}

/**
 * In-place Cholesky factorisation A = LLᵀ (lower triangle of `a` becomes L). Returns false when A is not
 * numerically positive definite (a pivot ≤ tolerance), so callers can regularise and retry.
 */
export function cholesky(a: Matrix): boolean {
  const n = a.rows;
  const A = a.data;
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(A[i * n + i]!));
  const tol = Math.max(maxDiag, 1e-300) * n * 1e-13;
  for (let j = 0; j < n; j++) {
    let s = A[j * n + j]!;
    for (let k = 0; k < j; k++) s -= A[j * n + k]! * A[j * n + k]!;
    if (!(s > tol)) return false;
    const ljj = Math.sqrt(s);
    A[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let t = A[i * n + j]!;
      const oi = i * n, oj = j * n;
      for (let k = 0; k < j; k++) t -= A[oi + k]! * A[oj + k]!;
      A[oi + j] = t / ljj;
    }
  }
  return true;
}

/** Solve LLᵀx = b given the factor from cholesky(). */
export function choleskySolve(l: Matrix, b: ArrayLike<number>): Float64Array {
  const n = l.rows;
  const L = l.data;
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = y[i]!;
    for (let k = 0; k < i; k++) s -= L[i * n + k]! * y[k]!;
    y[i] = s / L[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * y[k]!;
    y[i] = s / L[i * n + i]!;
  }
  return y;
}

/**
 * Solve (A + λI)x = b for symmetric positive semi-definite A. When A + λI is singular (collinear features,
 * e.g. a full one-hot block), a small ridge is added and reported through `ridgeAdded`.
 */
export function solveSpd(a: Matrix, b: ArrayLike<number>, lambda = 0): { x: Float64Array; ridgeAdded: number } {
  const n = a.rows;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a.data[i * n + i]!;
  let extra = 0;
  for (let attempt = 0; attempt < 12; attempt++) {
    const f = matrix(n, n, a.data);
    for (let i = 0; i < n; i++) f.data[i * n + i] += lambda + extra;
    if (cholesky(f)) return { x: choleskySolve(f, b), ridgeAdded: extra };
    extra = extra === 0 ? Math.max(trace / Math.max(n, 1), 1e-12) * 1e-10 : extra * 10;
  }
  throw new Error('the normal equations could not be solved (matrix not positive definite even with a ridge)');
}

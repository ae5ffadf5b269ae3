// Least-squares linear regression with optional L2 (ridge): closed form through the normal equations (Cholesky)
// or accelerated gradient descent for inputs too wide for a d x d solve. Works on standardised features.
import { dot, gram, row, solveSpd, xtv, xv, type Matrix } from './linalg.js';

export type LinearSolver = 'closed-form' | 'gd';

export interface LinearFit {
  /** Weights on standardised features. */
  w: Float64Array;
  b: number;
  solver: LinearSolver;
  iterations?: number;
  /** Ridge added to make the normal equations solvable (collinear features), 0 when none was needed. */
  ridgeAdded?: number;
}

export interface LinearOptions {
  /** Objective: (1/2n)‖y − Xw − b‖² + (λ/2)‖w‖²; the intercept is not penalised. */
  l2?: number;
  solver?: LinearSolver;
  maxIter?: number;
  tol?: number;
  onIteration?: (iter: number, gradNorm: number) => void;
}

/** Feature counts above this use gradient descent by default (a d x d solve costs d³/3). */
export const CLOSED_FORM_MAX_FEATURES = 2048;

export function fitLinear(x: Matrix, y: Float64Array, opts: LinearOptions = {}): LinearFit {
  const n = x.rows;
  const lambda = opts.l2 ?? 0;
  const solver = opts.solver ?? (x.cols <= CLOSED_FORM_MAX_FEATURES ? 'closed-form' : 'gd');
  // Centering X and y removes the intercept from the system; b is recovered from the means.
  const xMean = new Float64Array(x.cols);
  for (let i = 0; i < n; i++) {
    const r = row(x, i);
    for (let j = 0; j < x.cols; j++) xMean[j] += r[j]! / n;
  }
  let yMean = 0;
  for (let i = 0; i < n; i++) yMean += y[i]! / n;
  const xc: Matrix = { rows: n, cols: x.cols, data: new Float64Array(x.data.length) };
  for (let i = 0; i < n; i++) for (let j = 0; j < x.cols; j++) xc.data[i * x.cols + j] = x.data[i * x.cols + j]! - xMean[j]!;
  const yc = Float64Array.from(y, (v) => v - yMean);

  let w: Float64Array;
  let iterations: number | undefined;
  let ridgeAdded: number | undefined;
  if (solver === 'closed-form') {
    const solved = solveSpd(gram(xc), xtv(xc, yc), n * lambda);
    w = solved.x;
    ridgeAdded = solved.ridgeAdded / n;
  } else {
    const r = gradientDescent(xc, yc, lambda, opts);
    w = r.w;
    iterations = r.iterations;
  }
  const b = yMean - dot(w, xMean);
  return { w, b, solver, ...(iterations !== undefined ? { iterations } : {}), ...(ridgeAdded !== undefined ? { ridgeAdded } : {}) };
}

/** Largest eigenvalue of XᵀX/n by power iteration: the gradient's Lipschitz constant. */
function lipschitz(x: Matrix): number {
  let v = new Float64Array(x.cols).fill(1 / Math.sqrt(x.cols));
  let lam = 0;
  for (let k = 0; k < 30; k++) {
    const u = xtv(x, xv(x, v));
    const norm = Math.sqrt(dot(u, u));
    if (norm === 0) return 1e-12;
    lam = norm / x.rows;
    v = u.map((t) => t / norm);
  }
  return lam * 1.05;
}

/** Nesterov-accelerated gradient descent (FISTA without a prox) on the centred ridge objective. */
function gradientDescent(x: Matrix, y: Float64Array, lambda: number, opts: LinearOptions): { w: Float64Array; iterations: number } {
  const n = x.rows, d = x.cols;
  const step = 1 / (lipschitz(x) + lambda);
  const maxIter = opts.maxIter ?? 5000;
  const tol = opts.tol ?? 1e-6;
  const g0 = Math.sqrt(dot(xtv(x, y), xtv(x, y))) / n || 1;
  let w = new Float64Array(d);
  let z = new Float64Array(d);
  let t = 1;
  let iter = 0;
  for (; iter < maxIter; iter++) {
    const resid = xv(x, z);
    for (let i = 0; i < n; i++) resid[i] -= y[i]!;
    const g = xtv(x, resid);
    for (let j = 0; j < d; j++) g[j] = g[j]! / n + lambda * z[j]!;
    const gnorm = Math.sqrt(dot(g, g));
    opts.onIteration?.(iter, gnorm);
    if (gnorm <= tol * g0) break;
    const wNext = new Float64Array(d);
    for (let j = 0; j < d; j++) wNext[j] = z[j]! - step * g[j]!;
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    const mom = (t - 1) / tNext;
    for (let j = 0; j < d; j++) z[j] = wNext[j]! + mom * (wNext[j]! - w[j]!);
    w = wNext;
    t = tNext;
  }
  return { w: z, iterations: iter };
}


// Multinomial logistic regression (softmax cross-entropy with L2) fitted by L-BFGS — full-batch, deterministic,
// and well suited to the smooth convex objective. Works on standardised features.
import { row, type Matrix } from './linalg.js';

export interface LogisticFit {
  /** k x d weights (row per class) on standardised features. */
  w: Float64Array;
  b: Float64Array;
  classes: number;
  iterations: number;
  loss: number;
  converged: boolean;
}

export interface LogisticOptions {
  /** Objective: mean cross-entropy + (λ/2)‖W‖²; biases are not penalised. */
  l2?: number;
  maxIter?: number;
  tol?: number;
  onIteration?: (iter: number, loss: number) => void;
}

/** Softmax probabilities for rows of x (n x k). */
export function softmaxScores(x: Matrix, w: Float64Array, b: Float64Array, k: number): Float64Array {
  const d = x.cols;
  const out = new Float64Array(x.rows * k);
  for (let i = 0; i < x.rows; i++) {
    const r = row(x, i);
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let s = b[c]!;
      const o = c * d;
      for (let j = 0; j < d; j++) s += w[o + j]! * r[j]!;
      out[i * k + c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[i * k + c] = Math.exp(out[i * k + c]! - max);
    for (let c = 0; c < k; c++) out[i * k + c] /= sum;
  }
  return out;
}

export function fitLogistic(x: Matrix, labels: Int32Array, k: number, opts: LogisticOptions = {}): LogisticFit {
  const n = x.rows, d = x.cols;
  const lambda = opts.l2 ?? 1e-4;
  const size = k * (d + 1);
  // θ = [W (k*d) | b (k)]
  const objective = (theta: Float64Array, grad: Float64Array): number => {
    const w = theta.subarray(0, k * d), b = theta.subarray(k * d);
    const p = softmaxScores(x, w, b, k);
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const yi = labels[i]!;
      loss -= Math.log(Math.max(p[i * k + yi]!, 1e-300));
      const r = row(x, i);
      for (let c = 0; c < k; c++) {
        const e = (p[i * k + c]! - (c === yi ? 1 : 0)) / n;
        if (e === 0) continue;
        const o = c * d;
        for (let j = 0; j < d; j++) grad[o + j] += e * r[j]!;
        grad[k * d + c] += e;
      }
    }
    loss /= n;
    let reg = 0;
    for (let j = 0; j < k * d; j++) {
      reg += theta[j]! * theta[j]!;
      grad[j] += lambda * theta[j]!;
    }
    return loss + (lambda / 2) * reg;
  };
  const res = lbfgs(objective, new Float64Array(size), { maxIter: opts.maxIter ?? 300, tol: opts.tol ?? 1e-6, onIteration: opts.onIteration });
  return { w: res.x.slice(0, k * d), b: res.x.slice(k * d), classes: k, iterations: res.iterations, loss: res.f, converged: res.converged };
}

interface LbfgsOptions {
  maxIter: number;
  tol: number;
  memory?: number;
  onIteration?: (iter: number, f: number) => void;
}

/** Limited-memory BFGS with a backtracking Armijo line search (Nocedal & Wright, algorithm 7.4/7.5). */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, opts: LbfgsOptions) {
  const m = opts.memory ?? 10;
  const n = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fg(x, g);
  const S: Float64Array[] = [], Y: Float64Array[] = [], R: number[] = [];
  const dotv = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
    return s;
  };
  const g0 = Math.sqrt(dotv(g, g)) || 1;
  let iter = 0;
  let converged = false;
  for (; iter < opts.maxIter; iter++) {
    if (Math.sqrt(dotv(g, g)) <= opts.tol * Math.max(1, g0)) {
      converged = true;
      break;
    }
    // Two-loop recursion: direction = −H g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let i = S.length - 1; i >= 0; i--) {
      const a = R[i]! * dotv(S[i]!, q);
      alpha[i] = a;
      for (let j = 0; j < n; j++) q[j] -= a * Y[i]![j]!;
    }
    const gamma = S.length ? dotv(S[S.length - 1]!, Y[Y.length - 1]!) / dotv(Y[Y.length - 1]!, Y[Y.length - 1]!) : 1 / Math.max(g0, 1e-12);
    for (let j = 0; j < n; j++) q[j] *= gamma;
    for (let i = 0; i < S.length; i++) {
      const beta = R[i]! * dotv(Y[i]!, q);
      for (let j = 0; j < n; j++) q[j] += S[i]![j]! * (alpha[i]! - beta);
    }
    const dir = q.map((v) => -v);
    let slope = dotv(g, dir);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      S.length = Y.length = R.length = 0;
      for (let j = 0; j < n; j++) dir[j] = -g[j]! / Math.max(g0, 1e-12);
      slope = dotv(g, dir);
    }
    let step = 1;
    const xNew = new Float64Array(n);
    const gNew = new Float64Array(n);
    let fNew = Infinity;
    for (let ls = 0; ls < 40; ls++) {
      for (let j = 0; j < n; j++) xNew[j] = x[j]! + step * dir[j]!;
      fNew = fg(xNew, gNew);
      if (fNew <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNew < f) && Math.abs(fNew - f) <= 1e-15 * Math.max(1, Math.abs(f))) {
      converged = true;
      break;
    }
    const s = new Float64Array(n), y = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      s[j] = xNew[j]! - x[j]!;
      y[j] = gNew[j]! - g[j]!;
    }
    const sy = dotv(s, y);
    if (sy > 1e-12) {
      S.push(s);
      Y.push(y);
      R.push(1 / sy);
      if (S.length > m) {
        S.shift();
        Y.shift();
        R.shift();
      }
    }
    const rel = Math.abs(f - fNew) / Math.max(1, Math.abs(f));
    x = Float64Array.from(xNew);
    g = Float64Array.from(gNew);
    f = fNew;
    opts.onIteration?.(iter, f);
    if (rel < 1e-12) {
      converged = true;
      break;
    }
  }
  return { x, f, iterations: iter, converged };
}

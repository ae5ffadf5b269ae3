// Multinomial logistic regression (softmax cross-entropy with L2) fitted by L-BFGS — full-batch, deterministic,
// and well suited to the smooth convex objective. Works on standardised features. The two products each
// evaluation needs, X·Wᵀ and Eᵀ·X, run in WebAssembly SIMD (kernel.wat) on float32 rows in blocks that stay in
// cache; softmax, loss and the gradient's running sums are f64.
import { fillRows, kernelInstance, paddedCols } from './dense.js';
import { row, type Matrix } from './linalg.js';
import { softmaxRows } from '../tasks/scores.js';

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
  /**
   * Objective: mean cross-entropy + (λ/2)‖W‖²; biases are not penalised. scikit-learn's LogisticRegression
   * minimises C·Σ cross-entropy + ½‖W‖², the same objective scaled, when C = 1/(λ·n).
   */
  l2?: number;
  maxIter?: number;
  tol?: number;
  /** 'wasm-simd' (default when the rows fit in wasm32 memory) or 'js' (f64 loops). */
  engine?: 'wasm-simd' | 'js';
  onIteration?: (iter: number, loss: number) => void;
}

/** Softmax probabilities for rows of x (n x k). */
export function softmaxScores(x: Matrix, w: Float64Array, b: Float64Array, k: number): Float64Array {
  const d = x.cols;
  const out = new Float64Array(x.rows * k);
  for (let i = 0; i < x.rows; i++) {
    const r = row(x, i);
    for (let c = 0; c < k; c++) {
      let s = b[c]!;
      const o = c * d;
      for (let j = 0; j < d; j++) s += w[o + j]! * r[j]!;
      out[i * k + c] = s;
    }
  }
  return softmaxRows(out, k);
}

type Objective = (theta: Float64Array, grad: Float64Array) => number;

/** Rows per SIMD block: X·Wᵀ and Eᵀ·X of one block read rows still in L2. Even (X·Wᵀ works on row pairs). */
const BLOCK = 128;
/** Blocks whose float32 gradient sums are added into the f64 gradient at a time. */
const FLUSH_BLOCKS = 8;

/** Mean cross-entropy over rows and its gradient into grad (k·d weights, then k biases); no penalty. */
function crossEntropyWasm(x: Matrix, labels: Int32Array, k: number): Objective | undefined {
  const n = x.rows, d = x.cols, stride = paddedCols(d), kk = Math.ceil(k / 4) * 4, rowBytes = stride * 4;
  // Memory: X (n + 1 rows: a zero row pairs with an odd last row) | W (kk rows) | G (kk rows) | Z (f64) | E.
  const xBytes = (n + 1) * rowBytes, wBytes = kk * rowBytes;
  const zBytes = (BLOCK + 1) * kk * 8, eBytes = (BLOCK + 1) * kk * 4;
  const inst = kernelInstance(xBytes + 2 * wBytes + zBytes + eBytes);
  if (!inst) return undefined;
  const { buffer, fn } = inst;
  const wPtr = xBytes, gPtr = wPtr + wBytes, zPtr = gPtr + wBytes, ePtr = zPtr + zBytes;
  fillRows(new Float32Array(buffer, 0, n * stride), x, stride, new Float64Array(n));
  const W = new Float32Array(buffer, wPtr, kk * stride), G = new Float32Array(buffer, gPtr, kk * stride);
  const Z = new Float64Array(buffer, zPtr, (BLOCK + 1) * kk), E = new Float32Array(buffer, ePtr, BLOCK * kk);
  const bias = new Float64Array(k);
  const flush = (grad: Float64Array) => {
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) grad[c * d + j] += G[c * stride + j]!;
    G.fill(0);
  };
  return (theta, grad) => {
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) W[c * stride + j] = theta[c * d + j]!;
    for (let c = 0; c < k; c++) bias[c] = theta[k * d + c]!;
    grad.fill(0);
    let loss = 0;
    for (let r0 = 0, block = 0; r0 < n; r0 += BLOCK, block++) {
      const rows = Math.min(BLOCK, n - r0);
      fn.gemm_xwt(r0 * rowBytes, rows + (rows & 1), rowBytes, wPtr, kk, zPtr);
      for (let i = 0; i < rows; i++) {
        const zo = i * kk, yi = labels[r0 + i]!;
        let max = -Infinity;
        for (let c = 0; c < k; c++) {
          const v = Z[zo + c]! + bias[c]!;
          Z[zo + c] = v;
          if (v > max) max = v;
        }
        let sum = 0;
        for (let c = 0; c < k; c++) sum += Math.exp(Z[zo + c]! - max);
        loss += max + Math.log(sum) - Z[zo + yi]!;
        for (let c = 0; c < k; c++) {
          const e = Math.exp(Z[zo + c]! - max) / sum - (c === yi ? 1 : 0);
          E[zo + c] = e;
          grad[k * d + c] += e;
        }
      }
      fn.gemm_etx(r0 * rowBytes, rows, rowBytes, ePtr, kk, gPtr);
      if (block % FLUSH_BLOCKS === FLUSH_BLOCKS - 1 || r0 + BLOCK >= n) flush(grad);
    }
    for (let t = 0; t < grad.length; t++) grad[t] /= n;
    return loss / n;
  };
}

function crossEntropyJs(x: Matrix, labels: Int32Array, k: number): Objective {
  const n = x.rows, d = x.cols;
  return (theta, grad) => {
    const p = softmaxScores(x, theta.subarray(0, k * d), theta.subarray(k * d), k);
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
    return loss / n;
  };
}

export function fitLogistic(x: Matrix, labels: Int32Array, k: number, opts: LogisticOptions = {}): LogisticFit {
  const d = x.cols;
  const lambda = opts.l2 ?? 1e-4;
  const size = k * (d + 1);
  const ce = (opts.engine !== 'js' && crossEntropyWasm(x, labels, k)) || crossEntropyJs(x, labels, k);
  // θ = [W (k*d) | b (k)]
  const objective: Objective = (theta, grad) => {
    const loss = ce(theta, grad);
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

function dotv(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Limited-memory BFGS with a backtracking Armijo line search (Nocedal & Wright, algorithm 7.4/7.5). The m most
 * recent (s, y) pairs live in a preallocated ring: nothing is allocated per iteration.
 */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, opts: LbfgsOptions) {
  const m = opts.memory ?? 10;
  const n = x0.length;
  let x = Float64Array.from(x0), xNew = new Float64Array(n);
  let g = new Float64Array(n), gNew = new Float64Array(n);
  let f = fg(x, g);
  const S = Array.from({ length: m }, () => new Float64Array(n)), Y = Array.from({ length: m }, () => new Float64Array(n));
  const R = new Float64Array(m), A = new Float64Array(m);
  let stored = 0, newest = -1;
  const dir = new Float64Array(n);
  const g0 = Math.sqrt(dotv(g, g)) || 1;
  let iter = 0;
  let converged = false;
  for (; iter < opts.maxIter; iter++) {
    if (Math.sqrt(dotv(g, g)) <= opts.tol * Math.max(1, g0)) {
      converged = true;
      break;
    }
    // Two-loop recursion: dir = −H g.
    dir.set(g);
    for (let h = 0; h < stored; h++) {
      const s = (newest - h + m) % m;
      const a = R[s]! * dotv(S[s]!, dir);
      A[s] = a;
      const ys = Y[s]!;
      for (let j = 0; j < n; j++) dir[j] -= a * ys[j]!;
    }
    const gamma = stored ? dotv(S[newest]!, Y[newest]!) / dotv(Y[newest]!, Y[newest]!) : 1 / Math.max(g0, 1e-12);
    for (let j = 0; j < n; j++) dir[j] *= gamma;
    for (let h = stored - 1; h >= 0; h--) {
      const s = (newest - h + m) % m;
      const beta = R[s]! * dotv(Y[s]!, dir);
      const ss = S[s]!, c = A[s]! - beta;
      for (let j = 0; j < n; j++) dir[j] += c * ss[j]!;
    }
    for (let j = 0; j < n; j++) dir[j] = -dir[j]!;
    let slope = dotv(g, dir);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      stored = 0;
      for (let j = 0; j < n; j++) dir[j] = -g[j]! / Math.max(g0, 1e-12);
      slope = dotv(g, dir);
    }
    let step = 1;
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
    const slot = (newest + 1) % m;
    const s = S[slot]!, y = Y[slot]!;
    for (let j = 0; j < n; j++) {
      s[j] = xNew[j]! - x[j]!;
      y[j] = gNew[j]! - g[j]!;
    }
    const sy = dotv(s, y);
    if (sy > 1e-12) {
      R[slot] = 1 / sy;
      newest = slot;
      stored = Math.min(stored + 1, m);
    } else if (stored === m) stored--; // the slot held the oldest pair, now overwritten
    const rel = Math.abs(f - fNew) / Math.max(1, Math.abs(f));
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    opts.onIteration?.(iter, f);
    if (rel < 1e-12) {
      converged = true;
      break;
    }
  }
  return { x, f, iterations: iter, converged };
}

// Support vector machines on standardised features: kernel C-SVC (SMO) or linear C-SVC (dual coordinate descent),
// one-vs-rest / one-vs-one for many classes, Platt-scaled probabilities (cross-validated, as libsvm does),
// and ε-SVR. The fitted model is plain JSON-serialisable data: support vectors, coefficients, biases.
import { solveDcd } from './dcd.js';
import { denseRows, type DenseRows } from './dense.js';
import { dotsToKernel, kernelRows, type KernelSpec } from './kernel.js';
import { row, type Matrix } from './linalg.js';
import { svcQ, svrQ } from './qmatrix.js';
import { solveSmo } from './smo.js';
import { createRng, shuffleInPlace } from '../util/random.js';

export type SvmSolver = 'smo' | 'dcd';
export type Multiclass = 'ovr' | 'ovo';

/** One binary decision function f(x) = Σ coefᵢ K(svᵢ, x) + bias (or wᵀx + bias for linear models). */
export interface SvmMachine {
  /** Class whose side is f > 0. */
  positive: number;
  /** Class on the f < 0 side; −1 means "every other class" (one-vs-rest). */
  negative: number;
  /** Indices into SvmModel.supportVectors. */
  sv: number[];
  coef: number[];
  bias: number;
  /** Primal weights, present for linear kernels (faster to apply than the support-vector expansion). */
  w?: number[];
  /** Platt sigmoid P(positive | f) = 1 / (1 + exp(a f + b)). */
  platt?: { a: number; b: number };
  iterations: number;
  converged: boolean;
}

export interface SvmModel {
  kind: 'svc' | 'svr';
  kernel: KernelSpec;
  solver: SvmSolver;
  /** 'binary' for two classes (one machine: positive = class 1) and for regression. */
  multiclass: 'binary' | Multiclass;
  classes: number;
  C: number;
  epsilon?: number;
  probability: boolean;
  supportVectors: number[][];
  machines: SvmMachine[];
}

export interface SvmOptions {
  kernel: KernelSpec;
  C: number;
  solver?: SvmSolver;
  multiclass?: Multiclass;
  probability?: boolean;
  /** SMO stopping tolerance (libsvm 1e-3); DCD projected-gradient tolerance (liblinear 0.1). */
  eps?: number;
  /** Kernel cache per binary problem, in bytes (libsvm -m / scikit-learn cache_size, which are in MB). */
  cacheBytes?: number;
  /** libsvm's shrinking heuristic (default on). */
  shrinking?: boolean;
  seed?: number;
  onProgress?: (done: number, total: number, detail: string) => void;
}

interface Trained {
  /** Data rows (in the matrix the kernel is over) with non-zero coefficients. */
  rows: number[];
  coef: number[];
  bias: number;
  w?: Float64Array;
  iterations: number;
  converged: boolean;
  /** SMO: the dual objective ½αᵀQα − eᵀα at the solution. */
  objective?: number;
}

const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** Train one binary C-SVC on data rows `rows` of x, labels yᵢ ∈ {−1, +1} aligned with rows. */
function trainBinary(x: Matrix, dense: DenseRows | undefined, rows: Int32Array, y: Int8Array, opts: SvmOptions, onIter?: (iter: number, v: number) => void): Trained {
  if (opts.solver === 'dcd') {
    const yAll = new Int8Array(x.rows);
    rows.forEach((r, s) => (yAll[r] = y[s]!));
    const res = solveDcd(x, yAll, { C: opts.C, eps: opts.eps ?? 0.1, seed: opts.seed }, rows);
    const sv: number[] = [], coef: number[] = [];
    res.alpha.forEach((a, s) => {
      if (a > 0) sv.push(rows[s]!), coef.push(a * y[s]!);
    });
    return { rows: sv, coef, bias: res.b, w: res.w, iterations: res.epochs, converged: res.converged };
  }
  const l = rows.length;
  const Q = svcQ(dense!, opts.kernel, rows, y, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
  const res = solveSmo({ l, y, p: new Float64Array(l).fill(-1), C: new Float64Array(l).fill(opts.C), Q }, { eps: opts.eps ?? 1e-3, shrinking: opts.shrinking, onProgress: onIter });
  const sv: number[] = [], coef: number[] = [];
  for (let s = 0; s < l; s++) if (res.alpha[s]! > 0) sv.push(rows[s]!), coef.push(res.alpha[s]! * y[s]!);
  let w: Float64Array | undefined;
  if (opts.kernel.type === 'linear') {
    w = new Float64Array(x.cols);
    sv.forEach((r, s) => {
      const xr = row(x, r);
      for (let t = 0; t < x.cols; t++) w![t] += coef[s]! * xr[t]!;
    });
  }
  return { rows: sv, coef, bias: -res.rho, ...(w ? { w } : {}), iterations: res.iterations, converged: res.converged, objective: res.objective };
}

/** Decision values of a trained machine on data rows `target` of x. */
function decisionsOnRows(t: Trained, x: Matrix, dense: DenseRows | undefined, kernel: KernelSpec, target: ArrayLike<number>): Float64Array {
  const out = new Float64Array(target.length);
  if (t.w) {
    for (let k = 0; k < target.length; k++) {
      const xr = row(x, target[k]!);
      let s = t.bias;
      for (let j = 0; j < x.cols; j++) s += t.w[j]! * xr[j]!;
      out[k] = s;
    }
    return out;
  }
  const sv = Int32Array.from(t.rows);
  const kv = new Float64Array(sv.length);
  for (let k = 0; k < target.length; k++) {
    const r = target[k]!;
    dense!.dots(r, sv, 0, sv.length, kv);
    dotsToKernel(kernel, dense!.sq[r]!, dense!.sq, sv, 0, sv.length, kv);
    let s = t.bias;
    for (let v = 0; v < sv.length; v++) s += t.coef[v]! * kv[v]!;
    out[k] = s;
  }
  return out;
}

/** Platt (2000) with the Newton method of Lin, Lin & Weng (2007), as libsvm's sigmoid_train. */
export function fitPlatt(dec: ArrayLike<number>, positive: ArrayLike<boolean>): { a: number; b: number } {
  const n = dec.length;
  let prior1 = 0;
  for (let i = 0; i < n; i++) if (positive[i]) prior1++;
  const prior0 = n - prior1;
  const hi = (prior1 + 1) / (prior1 + 2), lo = 1 / (prior0 + 2);
  const t = Float64Array.from({ length: n }, (_, i) => (positive[i] ? hi : lo));
  const objective = (A: number, B: number) => {
    let f = 0;
    for (let i = 0; i < n; i++) {
      const z = dec[i]! * A + B;
      f += z >= 0 ? t[i]! * z + Math.log1p(Math.exp(-z)) : (t[i]! - 1) * z + Math.log1p(Math.exp(z));
    }
    return f;
  };
  let A = 0, B = Math.log((prior0 + 1) / (prior1 + 1));
  let fval = objective(A, B);
  for (let iter = 0; iter < 100; iter++) {
    let h11 = 1e-12, h22 = 1e-12, h21 = 0, g1 = 0, g2 = 0;
    for (let i = 0; i < n; i++) {
      const z = dec[i]! * A + B;
      const [p, q] = z >= 0 ? [Math.exp(-z) / (1 + Math.exp(-z)), 1 / (1 + Math.exp(-z))] : [1 / (1 + Math.exp(z)), Math.exp(z) / (1 + Math.exp(z))];
      const d2 = p * q;
      h11 += dec[i]! * dec[i]! * d2;
      h22 += d2;
      h21 += dec[i]! * d2;
      const d1 = t[i]! - p;
      g1 += dec[i]! * d1;
      g2 += d1;
    }
    if (Math.abs(g1) < 1e-5 && Math.abs(g2) < 1e-5) break;
    const det = h11 * h22 - h21 * h21;
    const dA = -(h22 * g1 - h21 * g2) / det, dB = -(-h21 * g1 + h11 * g2) / det;
    const gd = g1 * dA + g2 * dB;
    let step = 1;
    while (step >= 1e-10) {
      const nA = A + step * dA, nB = B + step * dB;
      const nf = objective(nA, nB);
      if (nf < fval + 1e-4 * step * gd) {
        A = nA;
        B = nB;
        fval = nf;
        break;
      }
      step /= 2;
    }
    if (step < 1e-10) break;
  }
  return { a: A, b: B };
}

export function plattProbability(f: number, p: { a: number; b: number }): number {
  const z = f * p.a + p.b;
  return z >= 0 ? Math.exp(-z) / (1 + Math.exp(-z)) : 1 / (1 + Math.exp(z));
}

/** Cross-validated decision values (5 folds, as libsvm) so the sigmoid is not fitted on over-confident training scores. */
function cvDecisions(x: Matrix, dense: DenseRows | undefined, rows: Int32Array, y: Int8Array, opts: SvmOptions): Float64Array {
  const l = rows.length;
  const folds = Math.min(5, l);
  const perm = shuffleInPlace(Array.from({ length: l }, (_, i) => i), createRng(opts.seed ?? 1));
  const dec = new Float64Array(l);
  for (let f = 0; f < folds; f++) {
    const start = Math.floor((f * l) / folds), end = Math.floor(((f + 1) * l) / folds);
    const trainPos = [...perm.slice(0, start), ...perm.slice(end)];
    const hasPos = trainPos.some((s) => y[s] === 1), hasNeg = trainPos.some((s) => y[s] === -1);
    if (!hasPos || !hasNeg) {
      for (let k = start; k < end; k++) dec[perm[k]!] = hasPos ? 1 : -1;
      continue;
    }
    const t = trainBinary(x, dense, Int32Array.from(trainPos, (s) => rows[s]!), Int8Array.from(trainPos, (s) => y[s]!), { ...opts, probability: false });
    const held = perm.slice(start, end);
    const d = decisionsOnRows(t, x, dense, opts.kernel, held.map((s) => rows[s]!));
    held.forEach((s, k) => (dec[s] = d[k]!));
  }
  return dec;
}

/** Train a C-SVC on standardised rows `x` with labels 0..k−1. */
export function trainSvc(x: Matrix, labels: Int32Array, k: number, opts: SvmOptions): SvmModel {
  const multiclass: SvmModel['multiclass'] = k <= 2 ? 'binary' : (opts.multiclass ?? 'ovr');
  const solver = opts.solver ?? 'smo';
  const problems: Array<{ positive: number; negative: number }> = [];
  if (multiclass === 'binary') problems.push({ positive: 1, negative: 0 });
  else if (multiclass === 'ovr') for (let c = 0; c < k; c++) problems.push({ positive: c, negative: -1 });
  else for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) problems.push({ positive: a, negative: b });

  // Every machine reads the same float32 rows; one-vs-one pairs pick theirs by index (no copies).
  const dense = solver === 'smo' ? denseRows(x) : undefined;
  const svIndex = new Map<number, number>();
  const supportVectors: number[][] = [];
  const machines: SvmMachine[] = [];
  problems.forEach((pr, m) => {
    const picked: number[] = [];
    labels.forEach((c, i) => (pr.negative === -1 || multiclass === 'binary' || c === pr.positive || c === pr.negative) && picked.push(i));
    const rows = Int32Array.from(picked);
    const y = Int8Array.from(rows, (i) => (labels[i] === pr.positive ? 1 : -1));
    const detail = multiclass === 'binary' ? 'binary' : pr.negative === -1 ? `class ${pr.positive} vs rest` : `class ${pr.positive} vs ${pr.negative}`;
    const t = trainBinary(x, dense, rows, y, { ...opts, solver }, (iter, v) => opts.onProgress?.(m, problems.length, `${detail}: iteration ${iter}, KKT gap ${v.toExponential(2)}`));
    const machine: SvmMachine = { positive: pr.positive, negative: multiclass === 'binary' ? 0 : pr.negative, sv: [], coef: t.coef, bias: t.bias, iterations: t.iterations, converged: t.converged };
    if (t.w) machine.w = Array.from(t.w);
    // Linear DCD models are applied through w alone; kernel models need their support vectors.
    if (solver === 'smo') {
      for (const r of t.rows) {
        if (!svIndex.has(r)) {
          svIndex.set(r, supportVectors.length);
          supportVectors.push(Array.from(row(x, r)));
        }
        machine.sv.push(svIndex.get(r)!);
      }
    } else machine.coef = [];
    if (opts.probability) {
      const dec = cvDecisions(x, dense, rows, y, { ...opts, solver });
      machine.platt = fitPlatt(dec, Array.from(y, (v) => v === 1));
    }
    machines.push(machine);
    opts.onProgress?.(m + 1, problems.length, `${detail}: ${t.rows.length} support vectors, ${t.iterations} ${solver === 'dcd' ? 'epochs' : 'iterations'}`);
  });
  return { kind: 'svc', kernel: opts.kernel, solver, multiclass, classes: k, C: opts.C, probability: Boolean(opts.probability), supportVectors, machines };
}

/** ε-SVR through the same SMO solver: 2l dual variables α, α* over l rows (libsvm's formulation). */
export function trainSvr(x: Matrix, target: Float64Array, opts: SvmOptions & { epsilon: number }): SvmModel {
  const l = x.rows;
  const Q = svrQ(kernelRows(x, opts.kernel, opts.cacheBytes ?? DEFAULT_CACHE_BYTES), l);
  const y = new Int8Array(2 * l), p = new Float64Array(2 * l);
  for (let i = 0; i < l; i++) {
    y[i] = 1;
    y[i + l] = -1;
    p[i] = opts.epsilon - target[i]!;
    p[i + l] = opts.epsilon + target[i]!;
  }
  const res = solveSmo({ l: 2 * l, y, p, C: new Float64Array(2 * l).fill(opts.C), Q }, { eps: opts.eps ?? 1e-3, shrinking: opts.shrinking, onProgress: (it, v) => opts.onProgress?.(0, 1, `iteration ${it}, KKT gap ${v.toExponential(2)}`) });
  const supportVectors: number[][] = [];
  const machine: SvmMachine = { positive: 0, negative: 0, sv: [], coef: [], bias: -res.rho, iterations: res.iterations, converged: res.converged };
  for (let i = 0; i < l; i++) {
    const c = res.alpha[i]! - res.alpha[i + l]!;
    if (c === 0) continue;
    machine.sv.push(supportVectors.length);
    machine.coef.push(c);
    supportVectors.push(Array.from(row(x, i)));
  }
  if (opts.kernel.type === 'linear') {
    const w = new Array<number>(x.cols).fill(0);
    machine.sv.forEach((s, k) => supportVectors[s]!.forEach((v, t) => (w[t]! += machine.coef[k]! * v)));
    machine.w = w;
  }
  return { kind: 'svr', kernel: opts.kernel, solver: 'smo', multiclass: 'binary', classes: 0, C: opts.C, epsilon: opts.epsilon, probability: false, supportVectors, machines: [machine] };
}

/** Support vectors as dense float32 rows (SIMD dot products), built once per model. */
const packedSvs = new WeakMap<SvmModel, { dense: DenseRows; all: Int32Array }>();

function packSvs(model: SvmModel): { dense: DenseRows; all: Int32Array } {
  let p = packedSvs.get(model);
  if (!p) {
    const n = model.supportVectors.length, d = model.supportVectors[0]?.length ?? 0;
    const flat = new Float64Array(n * d);
    model.supportVectors.forEach((v, i) => flat.set(v, i * d));
    p = { dense: denseRows({ rows: n, cols: d, data: flat }), all: Int32Array.from({ length: n }, (_, i) => i) };
    packedSvs.set(model, p);
  }
  return p;
}

/** K(svᵢ, x) for every support vector, via dot products (rbf: ‖s‖² + ‖x‖² − 2⟨s,x⟩). */
function kernelAgainstSvs(model: SvmModel, x: ArrayLike<number>, out: Float64Array): void {
  const { dense, all } = packSvs(model);
  let xx = 0;
  for (let t = 0; t < x.length; t++) xx += x[t]! * x[t]!;
  dense.dotsWith(x, all, 0, all.length, out);
  dotsToKernel(model.kernel, xx, dense.sq, all, 0, all.length, out);
}

/** Decision value of every machine for one standardised input row. */
export function svmDecisions(model: SvmModel, xrow: ArrayLike<number>, kcache?: Float64Array): Float64Array {
  const d = xrow.length;
  let kv: Float64Array | undefined;
  const out = new Float64Array(model.machines.length);
  model.machines.forEach((m, i) => {
    let s = m.bias;
    if (m.w) {
      for (let t = 0; t < d; t++) s += m.w[t]! * xrow[t]!;
    } else {
      if (!kv) {
        kv = kcache && kcache.length === model.supportVectors.length ? kcache : new Float64Array(model.supportVectors.length);
        kernelAgainstSvs(model, xrow, kv);
      }
      for (let k = 0; k < m.sv.length; k++) s += m.coef[k]! * kv[m.sv[k]!]!;
    }
    out[i] = s;
  });
  return out;
}

/** Pairwise coupling of one-vs-one probabilities (Wu, Lin & Weng 2004, method 2; libsvm multiclass_probability). */
export function pairwiseCoupling(r: number[][], k: number): Float64Array {
  const Q = Array.from({ length: k }, () => new Float64Array(k));
  const p = new Float64Array(k).fill(1 / k);
  const Qp = new Float64Array(k);
  for (let t = 0; t < k; t++) {
    for (let j = 0; j < t; j++) {
      Q[t]![t] += r[j]![t]! * r[j]![t]!;
      Q[t]![j] = Q[j]![t]!;
    }
    for (let j = t + 1; j < k; j++) {
      Q[t]![t] += r[j]![t]! * r[j]![t]!;
      Q[t]![j] = -r[j]![t]! * r[t]![j]!;
    }
  }
  const eps = 0.005 / k;
  for (let iter = 0; iter < Math.max(100, k); iter++) {
    let pQp = 0;
    for (let t = 0; t < k; t++) {
      Qp[t] = 0;
      for (let j = 0; j < k; j++) Qp[t] += Q[t]![j]! * p[j]!;
      pQp += p[t]! * Qp[t]!;
    }
    let maxErr = 0;
    for (let t = 0; t < k; t++) maxErr = Math.max(maxErr, Math.abs(Qp[t]! - pQp));
    if (maxErr < eps) break;
    for (let t = 0; t < k; t++) {
      const diff = (-Qp[t]! + pQp) / Q[t]![t]!;
      p[t] += diff;
      pQp = (pQp + diff * (diff * Q[t]![t]! + 2 * Qp[t]!)) / (1 + diff) / (1 + diff);
      for (let j = 0; j < k; j++) {
        Qp[j] = (Qp[j]! + diff * Q[t]![j]!) / (1 + diff);
        p[j] /= 1 + diff;
      }
    }
  }
  return p;
}

/** Model output for one row: regression value, class probabilities (probability models) or class scores. */
export function svmOutput(model: SvmModel, dec: Float64Array): Float64Array {
  const k = model.classes;
  if (model.kind === 'svr') return Float64Array.of(dec[0]!);
  if (model.multiclass === 'binary') {
    const f = dec[0]!;
    if (model.probability) {
      const p = plattProbability(f, model.machines[0]!.platt!);
      return Float64Array.of(1 - p, p);
    }
    return Float64Array.of(-f, f);
  }
  if (model.multiclass === 'ovr') {
    if (!model.probability) return Float64Array.from(dec);
    const p = Float64Array.from(model.machines, (m, i) => plattProbability(dec[i]!, m.platt!));
    const sum = p.reduce((a, b) => a + b, 0) || 1;
    return p.map((v) => v / sum);
  }
  if (model.probability) {
    const minP = 1e-7;
    const r = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    model.machines.forEach((m, i) => {
      const p = Math.min(Math.max(plattProbability(dec[i]!, m.platt!), minP), 1 - minP);
      r[m.positive]![m.negative] = p;
      r[m.negative]![m.positive] = 1 - p;
    });
    return pairwiseCoupling(r, k);
  }
  // One-vs-one without probabilities: votes per class (libsvm's rule); ties go to the lower class index.
  const votes = new Float64Array(k);
  model.machines.forEach((m, i) => (votes[dec[i]! > 0 ? m.positive : m.negative] += 1));
  return votes;
}


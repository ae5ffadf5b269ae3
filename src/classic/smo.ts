// SMO for the SVM dual, following libsvm's Solver (Fan, Chen & Lin 2005: second-order working-set selection):
//   min ½αᵀQα + pᵀα  s.t. yᵀα = 0, 0 ≤ αᵢ ≤ Cᵢ,  Qᵢⱼ = yᵢyⱼK(x[idxᵢ], x[idxⱼ]).
// One solver serves C-SVC (p = −1) and ε-SVR (2l variables over l data rows).
import type { KernelRows } from './kernel.js';

export interface SmoProblem {
  /** Number of dual variables. */
  l: number;
  /** ±1 per variable. */
  y: Int8Array;
  p: Float64Array;
  /** Upper bound per variable. */
  C: Float64Array;
  /** Data row of each variable (identity for SVC; i mod n for SVR). */
  idx: Int32Array;
  kernel: KernelRows;
}

export interface SmoOptions {
  /** Stopping tolerance on the maximal KKT violation (libsvm -e, default 1e-3). */
  eps?: number;
  maxIter?: number;
  onProgress?: (iter: number, violation: number) => void;
}

export interface SmoResult {
  alpha: Float64Array;
  rho: number;
  objective: number;
  iterations: number;
  /** False when maxIter was reached before the KKT violation fell below eps. */
  converged: boolean;
}

const TAU = 1e-12;

export function solveSmo(prob: SmoProblem, opts: SmoOptions = {}): SmoResult {
  const { l, y, p, C, idx, kernel } = prob;
  const eps = opts.eps ?? 1e-3;
  const maxIter = opts.maxIter ?? Math.max(10_000_000, 100 * l);
  const alpha = new Float64Array(l);
  const G = Float64Array.from(p);
  const QD = new Float64Array(l);
  for (let i = 0; i < l; i++) QD[i] = kernel.diag(idx[i]!);
  const isUpper = (t: number) => alpha[t]! >= C[t]!;
  const isLower = (t: number) => alpha[t]! <= 0;

  let iter = 0;
  let converged = false;
  while (iter < maxIter) {
    // Working-set selection (WSS3): i maximises the violation, j the second-order decrease of the objective.
    let Gmax = -Infinity, Gmax2 = -Infinity, i = -1, j = -1, objMin = Infinity;
    for (let t = 0; t < l; t++) {
      if (y[t] === 1) {
        if (!isUpper(t) && -G[t]! >= Gmax) (Gmax = -G[t]!), (i = t);
      } else if (!isLower(t) && G[t]! >= Gmax) (Gmax = G[t]!), (i = t);
    }
    if (i === -1) {
      converged = true;
      break;
    }
    const Ki = kernel.row(idx[i]!);
    const yi = y[i]!;
    for (let t = 0; t < l; t++) {
      const Qit = yi * y[t]! * Ki[idx[t]!]!;
      if (y[t] === 1) {
        if (!isLower(t)) {
          const gd = Gmax + G[t]!;
          if (G[t]! >= Gmax2) Gmax2 = G[t]!;
          if (gd > 0) {
            const quad = QD[i]! + QD[t]! - 2 * yi * Qit;
            const obj = -(gd * gd) / (quad > 0 ? quad : TAU);
            if (obj <= objMin) (j = t), (objMin = obj);
          }
        }
      } else if (!isUpper(t)) {
        const gd = Gmax - G[t]!;
        if (-G[t]! >= Gmax2) Gmax2 = -G[t]!;
        if (gd > 0) {
          const quad = QD[i]! + QD[t]! + 2 * yi * Qit;
          const obj = -(gd * gd) / (quad > 0 ? quad : TAU);
          if (obj <= objMin) (j = t), (objMin = obj);
        }
      }
    }
    if (Gmax + Gmax2 < eps || j === -1) {
      converged = true;
      break;
    }
    iter++;
    if (opts.onProgress && iter % 1000 === 0) opts.onProgress(iter, Gmax + Gmax2);

    const Kj = kernel.row(idx[j]!);
    const yj = y[j]!;
    const Ci = C[i]!, Cj = C[j]!;
    const Qij = yi * yj * Ki[idx[j]!]!;
    const oldAi = alpha[i]!, oldAj = alpha[j]!;
    let ai = oldAi, aj = oldAj;
    if (yi !== yj) {
      let quad = QD[i]! + QD[j]! + 2 * Qij;
      if (quad <= 0) quad = TAU;
      const delta = (-G[i]! - G[j]!) / quad;
      const diff = ai - aj;
      ai += delta;
      aj += delta;
      if (diff > 0) {
        if (aj < 0) (aj = 0), (ai = diff);
      } else if (ai < 0) (ai = 0), (aj = -diff);
      if (diff > Ci - Cj) {
        if (ai > Ci) (ai = Ci), (aj = Ci - diff);
      } else if (aj > Cj) (aj = Cj), (ai = Cj + diff);
    } else {
      let quad = QD[i]! + QD[j]! - 2 * Qij;
      if (quad <= 0) quad = TAU;
      const delta = (G[i]! - G[j]!) / quad;
      const sum = ai + aj;
      ai -= delta;
      aj += delta;
      if (sum > Ci) {
        if (ai > Ci) (ai = Ci), (aj = sum - Ci);
      } else if (aj < 0) (aj = 0), (ai = sum);
      if (sum > Cj) {
        if (aj > Cj) (aj = Cj), (ai = sum - Cj);
      } else if (ai < 0) (ai = 0), (aj = sum);
    }
    alpha[i] = ai;
    alpha[j] = aj;
    const dAi = (ai - oldAi) * yi, dAj = (aj - oldAj) * yj;
    for (let t = 0; t < l; t++) {
      const it = idx[t]!;
      G[t] += y[t]! * (Ki[it]! * dAi + Kj[it]! * dAj);
    }
  }

  // ρ: average of yᵢ∇ᵢ over free variables, else the middle of the feasible interval.
  let ub = Infinity, lb = -Infinity, nFree = 0, sumFree = 0;
  for (let t = 0; t < l; t++) {
    const yG = y[t]! * G[t]!;
    if (isUpper(t)) {
      if (y[t] === -1) ub = Math.min(ub, yG);
      else lb = Math.max(lb, yG);
    } else if (isLower(t)) {
      if (y[t] === 1) ub = Math.min(ub, yG);
      else lb = Math.max(lb, yG);
    } else {
      nFree++;
      sumFree += yG;
    }
  }
  const rho = nFree > 0 ? sumFree / nFree : (ub + lb) / 2;
  let objective = 0;
  for (let t = 0; t < l; t++) objective += alpha[t]! * (G[t]! + p[t]!);
  return { alpha, rho, objective: objective / 2, iterations: iter, converged };
}

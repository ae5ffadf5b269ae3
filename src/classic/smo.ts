// SMO for the SVM dual, after libsvm's Solver (Fan, Chen & Lin 2005: second-order working-set selection WSS3;
// shrinking with gradient reconstruction from Ḡ):  min ½αᵀQα + pᵀα  s.t. yᵀα = 0, 0 ≤ αᵢ ≤ Cᵢ, starting from α = 0.
// One solver serves C-SVC (p = −1) and ε-SVR (2l variables over l data rows); Q comes from qmatrix.ts.
import { swapEntries, type QMatrix } from './qmatrix.js';

export interface SmoProblem {
  /** Number of dual variables. */
  l: number;
  /** ±1 per variable. */
  y: Int8Array;
  p: Float64Array;
  /** Upper bound per variable. */
  C: Float64Array;
  Q: QMatrix;
}

export interface SmoOptions {
  /** Stopping tolerance on the maximal KKT violation (libsvm -e, default 1e-3). */
  eps?: number;
  maxIter?: number;
  /** libsvm's shrinking heuristic (-h, default on): same solution within eps, fewer kernel evaluations. */
  shrinking?: boolean;
  onProgress?: (iter: number, violation: number) => void;
}

export interface SmoResult {
  alpha: Float64Array;
  rho: number;
  objective: number;
  iterations: number;
  /** False when maxIter was reached before the KKT violation fell below eps. */
  converged: boolean;
  /** Fewest variables left active by shrinking (l when nothing was shrunk). */
  minActive: number;
}

const TAU = 1e-12;
const LOWER = 0, UPPER = 1, FREE = 2;


export function solveSmo(prob: SmoProblem, opts: SmoOptions = {}): SmoResult {
  const { l, Q } = prob;
  const eps = opts.eps ?? 1e-3;
  const shrinking = opts.shrinking ?? true;
  const maxIter = opts.maxIter ?? Math.max(10_000_000, 100 * l);
  // Working copies in the solver's order: shrinking swaps variables so the active ones are a prefix [0, active).
  const y = Int8Array.from(prob.y), p = Float64Array.from(prob.p), C = Float64Array.from(prob.C);
  const QD = Q.QD;
  const alpha = new Float64Array(l);
  const status = new Uint8Array(l).fill(LOWER);
  const G = Float64Array.from(p);
  /** Ḡᵢ = Σ_{j at upper bound} Cⱼ Qᵢⱼ: lets the gradient of shrunk variables be rebuilt from the free ones. */
  const Gbar = new Float64Array(l);
  const activeSet = Int32Array.from({ length: l }, (_, i) => i);
  let active = l;
  let unshrink = false;
  const sel = { i: -1, j: -1, gap: 0 };

  const updateStatus = (t: number) => (status[t] = alpha[t]! >= C[t]! ? UPPER : alpha[t]! <= 0 ? LOWER : FREE);

  const perVariable = [y, status, G, alpha, p, C, Gbar, activeSet];
  const swap = (i: number, j: number) => {
    Q.swapIndex(i, j);
    for (const a of perVariable) swapEntries(a, i, j);
  };

  /** Rebuild G of the inactive variables from Ḡ and the free variables' contributions. */
  const reconstructGradient = () => {
    if (active === l) return;
    for (let j = active; j < l; j++) G[j] = Gbar[j]! + p[j]!;
    let nFree = 0;
    for (let j = 0; j < active; j++) if (status[j] === FREE) nFree++;
    if (nFree * l > 2 * active * (l - active)) {
      for (let i = active; i < l; i++) {
        const Qi = Q.getQ(i, active);
        let s = 0;
        for (let j = 0; j < active; j++) if (status[j] === FREE) s += alpha[j]! * Qi[j]!;
        G[i] += s;
      }
    } else {
      for (let i = 0; i < active; i++) {
        if (status[i] !== FREE) continue;
        const Qi = Q.getQ(i, l);
        const ai = alpha[i]!;
        for (let j = active; j < l; j++) G[j] += ai * Qi[j]!;
      }
    }
  };

  /** WSS3: i maximises the violation, j the second-order decrease of the objective. True when optimal. */
  const selectWorkingSet = (): boolean => {
    let Gmax = -Infinity, Gmax2 = -Infinity, gi = -1, gj = -1, objMin = Infinity;
    for (let t = 0; t < active; t++) {
      if (y[t] === 1) {
        if (status[t] !== UPPER && -G[t]! >= Gmax) (Gmax = -G[t]!), (gi = t);
      } else if (status[t] !== LOWER && G[t]! >= Gmax) (Gmax = G[t]!), (gi = t);
    }
    if (gi === -1) {
      sel.gap = -Infinity;
      return true;
    }
    const Qi = Q.getQ(gi, active);
    const yi = y[gi]!, QDi = QD[gi]!;
    for (let t = 0; t < active; t++) {
      if (y[t] === 1) {
        if (status[t] === LOWER) continue;
        const g = G[t]!;
        if (g >= Gmax2) Gmax2 = g;
        const gd = Gmax + g;
        if (gd > 0) {
          const quad = QDi + QD[t]! - 2 * yi * Qi[t]!;
          const obj = -(gd * gd) / (quad > 0 ? quad : TAU);
          if (obj <= objMin) (gj = t), (objMin = obj);
        }
      } else {
        if (status[t] === UPPER) continue;
        const g = -G[t]!;
        if (g >= Gmax2) Gmax2 = g;
        const gd = Gmax + g;
        if (gd > 0) {
          const quad = QDi + QD[t]! + 2 * yi * Qi[t]!;
          const obj = -(gd * gd) / (quad > 0 ? quad : TAU);
          if (obj <= objMin) (gj = t), (objMin = obj);
        }
      }
    }
    sel.gap = Gmax + Gmax2;
    if (Gmax + Gmax2 < eps || gj === -1) return true;
    sel.i = gi;
    sel.j = gj;
    return false;
  };

  const beShrunk = (t: number, Gmax1: number, Gmax2: number): boolean => {
    if (status[t] === UPPER) return y[t] === 1 ? -G[t]! > Gmax1 : -G[t]! > Gmax2;
    if (status[t] === LOWER) return y[t] === 1 ? G[t]! > Gmax2 : G[t]! > Gmax1;
    return false;
  };

  const doShrinking = () => {
    let Gmax1 = -Infinity; // max { −yᵢ∇ᵢ | i in I_up }
    let Gmax2 = -Infinity; // max { yᵢ∇ᵢ | i in I_low }
    for (let t = 0; t < active; t++) {
      const st = status[t]!, g = G[t]!;
      if (y[t] === 1) {
        if (st !== UPPER && -g >= Gmax1) Gmax1 = -g;
        if (st !== LOWER && g >= Gmax2) Gmax2 = g;
      } else {
        if (st !== UPPER && -g >= Gmax2) Gmax2 = -g;
        if (st !== LOWER && g >= Gmax1) Gmax1 = g;
      }
    }
    // Near the end, bring every variable back once so the final iterations see the whole gradient.
    if (!unshrink && Gmax1 + Gmax2 <= eps * 10) {
      unshrink = true;
      reconstructGradient();
      active = l;
    }
    for (let t = 0; t < active; t++) {
      if (!beShrunk(t, Gmax1, Gmax2)) continue;
      active--;
      while (active > t) {
        if (!beShrunk(active, Gmax1, Gmax2)) {
          swap(t, active);
          break;
        }
        active--;
      }
    }
  };

  let iter = 0;
  let converged = false;
  let minActive = l;
  let counter = Math.min(l, 1000) + 1;
  while (iter < maxIter) {
    if (--counter === 0) {
      counter = Math.min(l, 1000);
      if (shrinking) doShrinking();
      if (active < minActive) minActive = active;
    }
    if (selectWorkingSet()) {
      // Optimal on the active set: check again on all variables.
      reconstructGradient();
      active = l;
      if (selectWorkingSet()) {
        converged = true;
        break;
      }
      counter = 1; // shrink on the next iteration
    }
    iter++;
    if (opts.onProgress && iter % 1000 === 0) opts.onProgress(iter, sel.gap);
    const i = sel.i, j = sel.j;
    let Qi = Q.getQ(i, active);
    let Qj = Q.getQ(j, active);
    const Ci = C[i]!, Cj = C[j]!;
    const oldAi = alpha[i]!, oldAj = alpha[j]!;
    let ai = oldAi, aj = oldAj;
    if (y[i] !== y[j]) {
      let quad = QD[i]! + QD[j]! + 2 * Qi[j]!;
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
      let quad = QD[i]! + QD[j]! - 2 * Qi[j]!;
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
    const dAi = ai - oldAi, dAj = aj - oldAj;
    for (let t = 0; t < active; t++) G[t] += Qi[t]! * dAi + Qj[t]! * dAj;

    // Ḡ follows every variable that reaches or leaves its upper bound.
    const wasUi = status[i] === UPPER, wasUj = status[j] === UPPER;
    updateStatus(i);
    updateStatus(j);
    if (wasUi !== (status[i] === UPPER)) {
      Qi = Q.getQ(i, l);
      const c = wasUi ? -Ci : Ci;
      for (let t = 0; t < l; t++) Gbar[t] += c * Qi[t]!;
    }
    if (wasUj !== (status[j] === UPPER)) {
      Qj = Q.getQ(j, l);
      const c = wasUj ? -Cj : Cj;
      for (let t = 0; t < l; t++) Gbar[t] += c * Qj[t]!;
    }
  }
  if (!converged && active < l) {
    reconstructGradient();
    active = l;
  }

  // ρ: average of yᵢ∇ᵢ over free variables, else the middle of the feasible interval.
  let ub = Infinity, lb = -Infinity, nFree = 0, sumFree = 0;
  for (let t = 0; t < active; t++) {
    const yG = y[t]! * G[t]!;
    if (status[t] === UPPER) {
      if (y[t] === -1) ub = Math.min(ub, yG);
      else lb = Math.max(lb, yG);
    } else if (status[t] === LOWER) {
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
  const out = new Float64Array(l);
  for (let t = 0; t < l; t++) out[activeSet[t]!] = alpha[t]!;
  return { alpha: out, rho, objective: objective / 2, iterations: iter, converged, minActive };
}

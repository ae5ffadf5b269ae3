// Dual coordinate descent for linear SVMs (Hsieh et al. 2008, as in liblinear's L1-loss dual solver with
// shrinking): O(nnz) per epoch and no kernel matrix, so it scales to data far beyond SMO's reach.
// The bias is learned as an extra constant feature (B = 1), which liblinear also regularises.
import { row, type Matrix } from './linalg.js';
import { createRng, type Rng } from '../util/random.js';

export interface DcdOptions {
  C: number;
  /** Stopping tolerance on the projected-gradient gap (liblinear default 0.1). */
  eps?: number;
  maxEpochs?: number;
  seed?: number;
  onEpoch?: (epoch: number, gap: number) => void;
}

export interface DcdResult {
  w: Float64Array;
  b: number;
  alpha: Float64Array;
  epochs: number;
  converged: boolean;
}

/** y ∈ {−1, +1}; optionally only the rows in `subset`. */
export function solveDcd(x: Matrix, y: Int8Array, opts: DcdOptions, subset?: Int32Array): DcdResult {
  const rows = subset ?? Int32Array.from({ length: x.rows }, (_, i) => i);
  const l = rows.length, d = x.cols;
  const U = opts.C;
  const eps = opts.eps ?? 0.1;
  const maxEpochs = opts.maxEpochs ?? 1000;
  const rng: Rng = createRng(opts.seed ?? 1);
  const w = new Float64Array(d);
  let b = 0;
  const alpha = new Float64Array(l);
  const QD = new Float64Array(l);
  for (let s = 0; s < l; s++) {
    const r = row(x, rows[s]!);
    let q = 1;
    for (let t = 0; t < d; t++) q += r[t]! * r[t]!;
    QD[s] = q;
  }
  const index = Int32Array.from({ length: l }, (_, i) => i);
  let active = l;
  let PGmaxOld = Infinity, PGminOld = -Infinity;
  let epoch = 0;
  let converged = false;
  for (; epoch < maxEpochs; epoch++) {
    for (let s = 0; s < active; s++) {
      const t = s + Math.floor(rng() * (active - s));
      const tmp = index[s]!;
      index[s] = index[t]!;
      index[t] = tmp;
    }
    let PGmax = -Infinity, PGmin = Infinity;
    for (let s = 0; s < active; s++) {
      const k = index[s]!;
      const r = row(x, rows[k]!);
      const yk = y[rows[k]!]!;
      let wx = b;
      for (let t = 0; t < d; t++) wx += w[t]! * r[t]!;
      const G = yk * wx - 1;
      let PG = 0;
      if (alpha[k] === 0) {
        if (G > PGmaxOld) {
          active--;
          index[s] = index[active]!;
          index[active] = k;
          s--;
          continue;
        }
        if (G < 0) PG = G;
      } else if (alpha[k] === U) {
        if (G < PGminOld) {
          active--;
          index[s] = index[active]!;
          index[active] = k;
          s--;
          continue;
        }
        if (G > 0) PG = G;
      } else PG = G;
      if (PG > PGmax) PGmax = PG;
      if (PG < PGmin) PGmin = PG;
      if (Math.abs(PG) > 1e-12) {
        const old = alpha[k]!;
        const a = Math.min(Math.max(old - G / QD[k]!, 0), U);
        alpha[k] = a;
        const delta = (a - old) * yk;
        for (let t = 0; t < d; t++) w[t] += delta * r[t]!;
        b += delta;
      }
    }
    opts.onEpoch?.(epoch, PGmax - PGmin);
    if (PGmax - PGmin <= eps) {
      if (active === l) {
        converged = true;
        break;
      }
      // Converged on the shrunk set: check again on everything before stopping.
      active = l;
      PGmaxOld = Infinity;
      PGminOld = -Infinity;
      continue;
    }
    PGmaxOld = PGmax <= 0 ? Infinity : PGmax;
    PGminOld = PGmin >= 0 ? -Infinity : PGmin;
  }
  return { w, b, alpha, epochs: epoch + (converged ? 1 : 0), converged };
}

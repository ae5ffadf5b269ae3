// The optimised SVM solver against the plain algorithm it replaced: a reference SMO (WSS3 over a full f64 Q, no
// shrinking, no cache) written here, SIMD kernel rows against direct kernel values, the libsvm-style Q cache through
// index swaps, shrinking on vs off, the float32 SIMD logistic objective against the f64 loops, and the generated
// WebAssembly against its source.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderKernelWasm, KERNEL_WASM_TS } from '../scripts/wasm-kernels.js';
import { denseRows } from '../src/classic/dense.js';
import { kernelValue, type KernelSpec } from '../src/classic/kernel.js';
import { row, type Matrix } from '../src/classic/linalg.js';
import { fitLogistic } from '../src/classic/logistic.js';
import { svcQ } from '../src/classic/qmatrix.js';
import { solveSmo } from '../src/classic/smo.js';
import { trainSvc, svmDecisions } from '../src/classic/svm.js';
import { blobs, circles } from '../src/classic/synth.js';

const rbf = (gamma: number): KernelSpec => ({ type: 'rbf', gamma, coef0: 0, degree: 3 });

/** The unoptimised solver: every Q entry in f64 up front, WSS3 over all variables every iteration. */
function referenceSmo(x: Matrix, y: Int8Array, C: number, k: KernelSpec, eps: number) {
  const l = x.rows;
  const Q = Array.from({ length: l }, (_, i) => Float64Array.from({ length: l }, (_, j) => y[i]! * y[j]! * kernelValue(k, row(x, i), row(x, j))));
  const alpha = new Float64Array(l), G = new Float64Array(l).fill(-1);
  const up = (t: number) => alpha[t]! < C, low = (t: number) => alpha[t]! > 0;
  for (let iter = 0; iter < 1e6; iter++) {
    let Gmax = -Infinity, Gmax2 = -Infinity, i = -1, j = -1, best = Infinity;
    for (let t = 0; t < l; t++) if ((y[t] === 1 ? up(t) : low(t)) && -y[t]! * G[t]! >= Gmax) (Gmax = -y[t]! * G[t]!), (i = t);
    for (let t = 0; t < l; t++) {
      if (!(y[t] === 1 ? low(t) : up(t))) continue;
      const v = y[t]! * G[t]!;
      Gmax2 = Math.max(Gmax2, v);
      const b = Gmax + v;
      if (b > 0) {
        const a = Q[i]![i]! + Q[t]![t]! - 2 * y[i]! * y[t]! * Q[i]![t]!;
        const obj = -(b * b) / (a > 0 ? a : 1e-12);
        if (obj <= best) (best = obj), (j = t);
      }
    }
    if (Gmax + Gmax2 < eps || j === -1) break;
    // The two-variable subproblem along yᵢαᵢ + yⱼαⱼ = const, clipped to the box.
    const a = Math.max(Q[i]![i]! + Q[j]![j]! - 2 * y[i]! * y[j]! * Q[i]![j]!, 1e-12);
    const bij = -y[i]! * G[i]! + y[j]! * G[j]!;
    const oldI = alpha[i]!, oldJ = alpha[j]!;
    const sum = y[i]! * oldI + y[j]! * oldJ;
    let ai = oldI + (y[i]! * bij) / a;
    const lo = y[i] === y[j] ? Math.max(0, sum * y[i]! - C) : Math.max(0, sum * y[i]!);
    const hi = y[i] === y[j] ? Math.min(C, sum * y[i]!) : Math.min(C, C + sum * y[i]!);
    ai = Math.min(hi, Math.max(lo, ai));
    const aj = y[j]! * (sum - y[i]! * ai);
    alpha[i] = ai;
    alpha[j] = aj;
    for (let t = 0; t < l; t++) G[t] += Q[t]![i]! * (ai - oldI) + Q[t]![j]! * (aj - oldJ);
  }
  let obj = 0;
  for (let t = 0; t < l; t++) obj += alpha[t]! * (G[t]! - 1);
  return { alpha, objective: obj / 2 };
}

function noisyCircles(n: number, seed: number) {
  const g = circles(n, seed, 0.45);
  return { x: g.x, y: Int8Array.from(g.labels, (c) => (c ? 1 : -1)) };
}

function solve(x: Matrix, y: Int8Array, C: number, k: KernelSpec, eps: number, shrinking: boolean, cacheBytes = 1 << 26) {
  const l = x.rows;
  const Q = svcQ(denseRows(x), k, Int32Array.from({ length: l }, (_, i) => i), y, cacheBytes);
  return { ...solveSmo({ l, y, p: new Float64Array(l).fill(-1), C: new Float64Array(l).fill(C), Q }, { eps, shrinking }), cache: Q.cache };
}

const svSet = (alpha: Float64Array, tol = 0) => Array.from(alpha).flatMap((a, i) => (a > tol ? [i] : []));

describe('SMO with shrinking and the Q cache, against the plain algorithm', () => {
  const { x, y } = noisyCircles(240, 7);
  const k = rbf(1);
  const C = 5;

  it('reaches the reference dual objective and support vectors, with shrinking on and off', () => {
    const ref = referenceSmo(x, y, C, k, 1e-6);
    for (const shrinking of [true, false]) {
      const res = solve(x, y, C, k, 1e-6, shrinking);
      expect(res.converged).toBe(true);
      // Q is kept in float32 (as libsvm's Qfloat): the objectives agree to float32 precision.
      expect(Math.abs(res.objective - ref.objective)).toBeLessThan(2e-6 * Math.abs(ref.objective));
      // Same support vectors: compare those clearly away from 0 (a coefficient of 1e-9 is a tolerance artefact).
      expect(svSet(res.alpha, 1e-6)).toEqual(svSet(ref.alpha, 1e-6));
      for (let i = 0; i < y.length; i++) expect(Math.abs(res.alpha[i]! - ref.alpha[i]!)).toBeLessThan(1e-3 * C);
    }
  });

  it('shrinking really shrinks, and on vs off agree within the tolerance (objective, α, decision values)', () => {
    const big = noisyCircles(1500, 3);
    const on = solve(big.x, big.y, 10, k, 1e-3, true);
    const off = solve(big.x, big.y, 10, k, 1e-3, false);
    expect(on.minActive).toBeLessThan(big.x.rows / 2);
    expect(off.minActive).toBe(big.x.rows);
    expect(Math.abs(on.objective - off.objective)).toBeLessThan(1e-3 * Math.abs(off.objective));
    // Decision values on the training rows from each solution differ by well under the KKT tolerance's effect.
    const f = (alpha: Float64Array, rho: number, i: number) => {
      let s = -rho;
      for (let j = 0; j < alpha.length; j++) if (alpha[j]) s += alpha[j]! * big.y[j]! * kernelValue(k, row(big.x, i), row(big.x, j));
      return s;
    };
    for (let i = 0; i < big.x.rows; i += 97) expect(Math.abs(f(on.alpha, on.rho, i) - f(off.alpha, off.rho, i))).toBeLessThan(0.02);
    const bounded = (a: Float64Array) => a.filter((v) => v >= 10).length;
    expect(Math.abs(bounded(on.alpha) - bounded(off.alpha))).toBeLessThanOrEqual(Math.ceil(0.01 * bounded(off.alpha)));
  });

  it('gives the same solution with a cache of two rows as with room for all of Q', () => {
    const roomy = solve(x, y, C, k, 1e-5, true);
    const tiny = solve(x, y, C, k, 1e-5, true, 2 * 4 * x.rows);
    expect(tiny.cache.misses).toBeGreaterThan(roomy.cache.misses);
    expect(tiny.objective).toBeCloseTo(roomy.objective, 8);
    expect(svSet(tiny.alpha)).toEqual(svSet(roomy.alpha));
  });
});

describe('Q rows and their cache', () => {
  it('keep Qᵢⱼ = yᵢyⱼK(xᵢ, xⱼ) through index swaps, partial rows and evictions', () => {
    const g = blobs(40, 2, 5, 9);
    const y = Int8Array.from(g.labels, (c) => (c ? 1 : -1));
    const k = rbf(0.3);
    const Q = svcQ(denseRows(g.x), k, Int32Array.from({ length: 40 }, (_, i) => i), y, 5 * 4 * 40);
    const order = Array.from({ length: 40 }, (_, i) => i); // variable position → original row
    const check = (i: number, len: number) => {
      const r = Q.getQ(i, len);
      for (let t = 0; t < len; t++) expect(r[t]).toBeCloseTo(y[order[i]!]! * y[order[t]!]! * kernelValue(k, row(g.x, order[i]!), row(g.x, order[t]!)), 5);
      expect(Q.QD[i]).toBeCloseTo(1, 12);
    };
    for (const [i, len] of [[0, 40], [3, 20], [7, 40], [3, 40]] as const) check(i, len);
    for (const [a, b] of [[1, 30], [3, 39], [0, 12], [5, 6]] as const) {
      Q.swapIndex(a, b);
      [order[a], order[b]] = [order[b]!, order[a]!];
    }
    for (const [i, len] of [[0, 40], [3, 40], [7, 15], [30, 40], [12, 40], [39, 25]] as const) check(i, len);
    expect(Q.cache.hits).toBeGreaterThan(0);
  });

  it('SIMD dot products match the JS loop and direct kernel values (odd widths, zero padding)', () => {
    const g = blobs(33, 3, 13, 4);
    const simd = denseRows(g.x), js = denseRows(g.x, { engine: 'js' });
    expect(simd.engine).toBe('wasm-simd');
    // Five rows: one group of four and one row on its own.
    const perm = Int32Array.from([5, 0, 32, 7, 7, 18]);
    const a = new Float64Array(5), b = new Float64Array(5);
    simd.dots(3, perm, 1, 6, a);
    js.dots(3, perm, 1, 6, b);
    for (let t = 0; t < 5; t++) {
      expect(a[t]).toBeCloseTo(b[t]!, 4);
      expect(a[t]).toBeCloseTo(kernelValue({ type: 'linear', gamma: 1, coef0: 0, degree: 1 }, row(g.x, 3), row(g.x, perm[t + 1]!)), 4);
    }
  });
});

describe('the optimised SVM end to end', () => {
  it('one-vs-one and one-vs-rest give the same decision values with shrinking on and off', () => {
    const g = blobs(300, 3, 6, 12, 1.6);
    for (const multiclass of ['ovo', 'ovr'] as const) {
      const on = trainSvc(g.x, g.labels, 3, { kernel: rbf(0.2), C: 2, multiclass, eps: 1e-4 });
      const off = trainSvc(g.x, g.labels, 3, { kernel: rbf(0.2), C: 2, multiclass, eps: 1e-4, shrinking: false });
      expect(on.supportVectors.length).toBe(off.supportVectors.length);
      for (let i = 0; i < 300; i += 23) {
        const a = svmDecisions(on, row(g.x, i)), b = svmDecisions(off, row(g.x, i));
        a.forEach((v, m) => expect(v).toBeCloseTo(b[m]!, 2));
      }
    }
  });
});

describe('logistic regression on the SIMD path', () => {
  it('reaches the loss and weights of the f64 loops', () => {
    const g = blobs(500, 5, 21, 8, 2.5);
    const simd = fitLogistic(g.x, g.labels, 5, { l2: 1e-3, tol: 1e-8, maxIter: 500 });
    const js = fitLogistic(g.x, g.labels, 5, { l2: 1e-3, tol: 1e-8, maxIter: 500, engine: 'js' });
    expect(simd.loss).toBeCloseTo(js.loss, 6);
    for (let t = 0; t < js.w.length; t += 7) expect(simd.w[t]).toBeCloseTo(js.w[t]!, 2);
  });
});

describe('WebAssembly kernels', () => {
  it('kernel-wasm.ts is assembled from kernel.wat (regenerate: npx tsx scripts/wasm-kernels.ts)', async () => {
    expect(await readFile(KERNEL_WASM_TS, 'utf8')).toBe(await renderKernelWasm());
  });
});

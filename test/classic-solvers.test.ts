// Classic solvers against known solutions: least squares vs an independent normal-equation solve and known weights,
// SVMs on hand-checkable separable problems (support vectors, margin 2/‖w‖), RBF vs linear on non-linear data,
// multiclass, Platt probabilities, logistic regression optimality and ε-SVR.
import { describe, expect, it } from 'vitest';
import { fromRows, matrix, row, takeRows, type Matrix } from '../src/classic/linalg.js';
import { fitLinear } from '../src/classic/linear.js';
import { regressionMetrics } from '../src/tasks/regression/metrics.js';
import { fitLogistic, softmaxScores } from '../src/classic/logistic.js';
import { blobs, circles, linearData, xor } from '../src/classic/synth.js';
import { pairwiseCoupling, svmDecisions, svmOutput, trainSvc, trainSvr, type SvmModel } from '../src/classic/svm.js';
import { kernelRows, kernelValue, type KernelSpec } from '../src/classic/kernel.js';

const linearKernel: KernelSpec = { type: 'linear', gamma: 1, coef0: 0, degree: 3 };
const rbf = (gamma: number): KernelSpec => ({ type: 'rbf', gamma, coef0: 0, degree: 3 });

/** Independent reference: Gaussian elimination with partial pivoting on [X 1]ᵀ[X 1] θ = [X 1]ᵀ y. */
function normalEquationReference(x: Matrix, y: Float64Array): number[] {
  const p = x.cols + 1;
  const a = Array.from({ length: p }, () => new Array<number>(p + 1).fill(0));
  for (let i = 0; i < x.rows; i++) {
    const r = [...row(x, i), 1];
    for (let u = 0; u < p; u++) {
      for (let v = 0; v < p; v++) a[u]![v]! += r[u]! * r[v]!;
      a[u]![p]! += r[u]! * y[i]!;
    }
  }
  for (let c = 0; c < p; c++) {
    let piv = c;
    for (let r = c + 1; r < p; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[piv]![c]!)) piv = r;
    [a[c], a[piv]] = [a[piv]!, a[c]!];
    for (let r = 0; r < p; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k <= p; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return a.map((r, i) => r[p]! / r[i]!);
}

function accuracy(model: SvmModel, x: Matrix, labels: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < x.rows; i++) {
    const out = svmOutput(model, svmDecisions(model, row(x, i)));
    let best = 0;
    for (let c = 1; c < out.length; c++) if (out[c]! > out[best]!) best = c;
    if (best === labels[i]) ok++;
  }
  return ok / x.rows;
}

function split(g: { x: Matrix; labels: Int32Array }, nTrain: number) {
  const tr = Array.from({ length: nTrain }, (_, i) => i);
  const te = Array.from({ length: g.x.rows - nTrain }, (_, i) => i + nTrain);
  return { xtr: takeRows(g.x, tr), ytr: Int32Array.from(tr, (i) => g.labels[i]!), xte: takeRows(g.x, te), yte: Int32Array.from(te, (i) => g.labels[i]!) };
}

describe('linear regression', () => {
  it('matches the normal-equation solution and recovers known weights', () => {
    const w = [1.5, -2, 0.25, 3];
    const { x, y } = linearData(400, w, 0.7, 0.01, 3);
    const ref = normalEquationReference(x, y);
    const fit = fitLinear(x, y);
    expect(fit.solver).toBe('closed-form');
    fit.w.forEach((v, j) => expect(v).toBeCloseTo(ref[j]!, 9));
    expect(fit.b).toBeCloseTo(ref[w.length]!, 9);
    fit.w.forEach((v, j) => expect(Math.abs(v - w[j]!)).toBeLessThan(0.01));
    expect(Math.abs(fit.b - 0.7)).toBeLessThan(0.01);
  });

  it('gradient descent converges to the closed-form solution', () => {
    const { x, y } = linearData(300, [2, -1, 0.5], -1, 0.3, 5);
    const cf = fitLinear(x, y, { l2: 0.05 });
    const gd = fitLinear(x, y, { l2: 0.05, solver: 'gd', tol: 1e-10, maxIter: 20000 });
    expect(gd.solver).toBe('gd');
    gd.w.forEach((v, j) => expect(v).toBeCloseTo(cf.w[j]!, 6));
    expect(gd.b).toBeCloseTo(cf.b, 6);
  });

  it('ridge solution zeroes the gradient of (1/2n)‖y − Xw − b‖² + (λ/2)‖w‖² and shrinks the weights', () => {
    const { x, y } = linearData(200, [3, -3], 0, 0.5, 9);
    const lambda = 0.5;
    const fit = fitLinear(x, y, { l2: lambda });
    const plain = fitLinear(x, y);
    const grad = [0, 0];
    let gb = 0;
    for (let i = 0; i < x.rows; i++) {
      const r = row(x, i);
      const e = r[0]! * fit.w[0]! + r[1]! * fit.w[1]! + fit.b - y[i]!;
      grad[0]! += (e * r[0]!) / x.rows;
      grad[1]! += (e * r[1]!) / x.rows;
      gb += e / x.rows;
    }
    expect(Math.abs(grad[0]! + lambda * fit.w[0]!)).toBeLessThan(1e-9);
    expect(Math.abs(grad[1]! + lambda * fit.w[1]!)).toBeLessThan(1e-9);
    expect(Math.abs(gb)).toBeLessThan(1e-9);
    expect(Math.hypot(fit.w[0]!, fit.w[1]!)).toBeLessThan(Math.hypot(plain.w[0]!, plain.w[1]!));
  });

  it('solves collinear features (duplicated column) with a reported ridge instead of failing', () => {
    const { x, y } = linearData(100, [1, 2], 0, 0.1, 2);
    const dup = matrix(100, 3);
    for (let i = 0; i < 100; i++) dup.data.set([x.data[i * 2]!, x.data[i * 2 + 1]!, x.data[i * 2 + 1]!], i * 3);
    const fit = fitLinear(dup, y);
    expect(fit.ridgeAdded).toBeGreaterThan(0);
    expect(fit.w[1]! + fit.w[2]!).toBeCloseTo(2, 1);
    const pred = Array.from({ length: 100 }, (_, i) => fit.b + fit.w[0]! * dup.data[i * 3]! + fit.w[1]! * dup.data[i * 3 + 1]! + fit.w[2]! * dup.data[i * 3 + 2]!);
    expect(regressionMetrics(y, pred).r2).toBeGreaterThan(0.99);
  });
});

describe('kernel rows and their cache', () => {
  it('match the kernel definitions and evict least-recently-used rows within the byte budget', () => {
    const g = blobs(50, 2, 7, 3);
    for (const k of [rbf(0.2), linearKernel, { type: 'poly', gamma: 0.5, coef0: 1, degree: 3 } as KernelSpec]) {
      const rows = kernelRows(g.x, k, 3 * 4 * 50); // room for 3 rows of 50 floats
      for (const i of [0, 7, 49]) {
        const r = rows.row(i);
        for (const j of [0, 1, 25, 49]) expect(r[j]).toBeCloseTo(kernelValue(k, row(g.x, i), row(g.x, j)), 3);
        expect(rows.diag(i)).toBeCloseTo(kernelValue(k, row(g.x, i), row(g.x, i)), 6);
      }
      expect([rows.hits, rows.misses]).toEqual([0, 3]);
      rows.row(7); // hit, now most recent
      rows.row(10); // miss: evicts row 0 (least recently used)
      rows.row(0); // miss again
      rows.row(7); // still cached
      expect([rows.hits, rows.misses]).toEqual([2, 5]);
    }
  });
});

describe('SVM (SMO) on hand-checkable problems', () => {
  it('finds the unique maximum-margin hyperplane and its two support vectors', () => {
    // Closest opposite pair: (0,0) and (2,2) → w = (0.5, 0.5), b = −1, margin 2/‖w‖ = 2√2, αs = 1/4.
    const x = fromRows([[0, 0], [-1, 0], [0, -1], [2, 2], [3, 2], [2, 3]]);
    const labels = Int32Array.from([0, 0, 0, 1, 1, 1]);
    const m = trainSvc(x, labels, 2, { kernel: linearKernel, C: 1e6, eps: 1e-9 });
    const mc = m.machines[0]!;
    expect(mc.w![0]).toBeCloseTo(0.5, 6);
    expect(mc.w![1]).toBeCloseTo(0.5, 6);
    expect(mc.bias).toBeCloseTo(-1, 6);
    expect(2 / Math.hypot(...mc.w!)).toBeCloseTo(2 * Math.SQRT2, 5);
    expect(m.supportVectors.map((v) => v.join(','))).toEqual(expect.arrayContaining(['0,0', '2,2']));
    expect(m.supportVectors).toHaveLength(2);
    expect(mc.coef.map((c) => Math.abs(c))).toEqual([expect.closeTo(0.25, 6), expect.closeTo(0.25, 6)]);
  });

  it('4 points in 2-D: margin 2/‖w‖ = 2, every point on the margin', () => {
    const x = fromRows([[0, 0], [0, 2], [2, 0], [2, 2]]);
    const labels = Int32Array.from([0, 0, 1, 1]);
    const m = trainSvc(x, labels, 2, { kernel: linearKernel, C: 1e6, eps: 1e-9 });
    const mc = m.machines[0]!;
    expect(2 / Math.hypot(...mc.w!)).toBeCloseTo(2, 6);
    for (let i = 0; i < 4; i++) expect(svmDecisions(m, row(x, i))[0]).toBeCloseTo(labels[i] ? 1 : -1, 6);
    // Same answer from the kernel expansion (no primal w): decision values are a property of the solution.
    const kernelOnly = { ...m, machines: m.machines.map(({ w: _w, ...rest }) => rest) };
    for (let i = 0; i < 4; i++) expect(svmDecisions(kernelOnly, row(x, i))[0]).toBeCloseTo(labels[i] ? 1 : -1, 6);
  });

  it('dual coordinate descent reaches the same separating direction', () => {
    const x = fromRows([[0, 0], [-1, 0], [0, -1], [2, 2], [3, 2], [2, 3]]);
    const labels = Int32Array.from([0, 0, 0, 1, 1, 1]);
    const m = trainSvc(x, labels, 2, { kernel: linearKernel, C: 100, solver: 'dcd', eps: 1e-6 });
    const w = m.machines[0]!.w!;
    expect(w[0]! / w[1]!).toBeCloseTo(1, 2);
    expect(accuracy(m, x, labels)).toBe(1);
  });
});

describe('SVM on non-linear problems', () => {
  it('an RBF SVM clearly beats a linear one on circles and on XOR', () => {
    for (const g of [circles(400, 11), xor(400, 12)]) {
      const { xtr, ytr, xte, yte } = split(g, 300);
      const lin = trainSvc(xtr, ytr, 2, { kernel: linearKernel, C: 1 });
      const kern = trainSvc(xtr, ytr, 2, { kernel: rbf(2), C: 10 });
      const accLin = accuracy(lin, xte, yte), accRbf = accuracy(kern, xte, yte);
      expect(accRbf).toBeGreaterThan(0.9);
      expect(accLin).toBeLessThan(0.75);
      expect(accRbf - accLin).toBeGreaterThan(0.2);
    }
  });

  it('poly kernel (degree 2) separates circles', () => {
    const { xtr, ytr, xte, yte } = split(circles(300, 21), 200);
    const m = trainSvc(xtr, ytr, 2, { kernel: { type: 'poly', gamma: 1, coef0: 1, degree: 2 }, C: 10 });
    expect(accuracy(m, xte, yte)).toBeGreaterThan(0.9);
  });
});

describe('multiclass and probabilities', () => {
  const g = blobs(240, 4, 5, 31, 0.9);
  const { xtr, ytr, xte, yte } = split(g, 160);

  it('one-vs-rest and one-vs-one classify 4 blobs', () => {
    const ovr = trainSvc(xtr, ytr, 4, { kernel: rbf(0.2), C: 1, multiclass: 'ovr' });
    const ovo = trainSvc(xtr, ytr, 4, { kernel: rbf(0.2), C: 1, multiclass: 'ovo' });
    expect(ovr.machines).toHaveLength(4);
    expect(ovo.machines).toHaveLength(6);
    expect(accuracy(ovr, xte, yte)).toBeGreaterThan(0.95);
    expect(accuracy(ovo, xte, yte)).toBeGreaterThan(0.95);
    // OvO votes: every machine votes once.
    const votes = svmOutput(ovo, svmDecisions(ovo, row(xte, 0)));
    expect(votes.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('Platt-scaled probabilities sum to 1, agree with the decision and rise with it', () => {
    for (const multiclass of ['ovr', 'ovo'] as const) {
      const m = trainSvc(xtr, ytr, 4, { kernel: rbf(0.2), C: 1, multiclass, probability: true, seed: 3 });
      expect(m.machines.every((mc) => mc.platt && mc.platt.a < 0)).toBe(true);
      for (let i = 0; i < 10; i++) {
        const p = svmOutput(m, svmDecisions(m, row(xte, i)));
        expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        p.forEach((v) => expect(v).toBeGreaterThanOrEqual(0));
      }
      expect(accuracy(m, xte, yte)).toBeGreaterThan(0.95);
    }
  });

  it('binary Platt probability is monotone in the decision value', () => {
    const c = circles(200, 61, 0.35);
    const m = trainSvc(c.x, c.labels, 2, { kernel: rbf(1), C: 1, probability: true, seed: 5 });
    const pts = Array.from({ length: 40 }, (_, i) => [Math.cos(i) * (0.5 + i * 0.05), Math.sin(i) * (0.5 + i * 0.05)]);
    const pairs = pts.map((pt) => [svmDecisions(m, pt)[0]!, svmOutput(m, svmDecisions(m, pt))[1]!] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < pairs.length; i++) expect(pairs[i]![1]).toBeGreaterThanOrEqual(pairs[i - 1]![1] - 1e-12);
    expect(pairs[0]![1]).toBeLessThan(0.5);
    expect(pairs[pairs.length - 1]![1]).toBeGreaterThan(0.5);
  });

  it('pairwise coupling recovers consistent pairwise probabilities', () => {
    const p = [0.5, 0.3, 0.2];
    const r = p.map((pi) => p.map((pj) => pi / (pi + pj)));
    const got = pairwiseCoupling(r, 3);
    got.forEach((v, i) => expect(v).toBeCloseTo(p[i]!, 2));
  });
});

describe('logistic regression', () => {
  it('reaches a stationary point of the regularised cross-entropy and classifies blobs', () => {
    const g = blobs(150, 3, 4, 41, 1.5);
    const lambda = 0.01;
    const fit = fitLogistic(g.x, g.labels, 3, { l2: lambda, tol: 1e-9, maxIter: 1000 });
    expect(fit.converged).toBe(true);
    const p = softmaxScores(g.x, fit.w, fit.b, 3);
    const d = g.x.cols;
    let maxGrad = 0;
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < d; j++) {
        let gcj = lambda * fit.w[c * d + j]!;
        for (let i = 0; i < g.x.rows; i++) gcj += ((p[i * 3 + c]! - (g.labels[i] === c ? 1 : 0)) * g.x.data[i * d + j]!) / g.x.rows;
        maxGrad = Math.max(maxGrad, Math.abs(gcj));
      }
    }
    expect(maxGrad).toBeLessThan(1e-5);
    let ok = 0;
    for (let i = 0; i < g.x.rows; i++) {
      const r = [p[i * 3]!, p[i * 3 + 1]!, p[i * 3 + 2]!];
      if (r.indexOf(Math.max(...r)) === g.labels[i]) ok++;
    }
    expect(ok / g.x.rows).toBeGreaterThan(0.9);
  });
});

describe('ε-SVR', () => {
  it('fits a linear function within the tube and recovers its slope with the linear kernel', () => {
    const { x, y } = linearData(120, [2, -1], 0.5, 0.02, 51);
    const m = trainSvr(x, y, { kernel: linearKernel, C: 100, epsilon: 0.1, eps: 1e-6 });
    const w = m.machines[0]!.w!;
    expect(w[0]).toBeCloseTo(2, 1);
    expect(w[1]).toBeCloseTo(-1, 1);
    let inside = 0;
    for (let i = 0; i < x.rows; i++) if (Math.abs(svmDecisions(m, row(x, i))[0]! - y[i]!) <= 0.1 + 1e-6) inside++;
    expect(inside / x.rows).toBeGreaterThan(0.95);
    // Support vectors sit on or outside the tube; the others have zero coefficients and are not stored.
    expect(m.supportVectors.length).toBeLessThan(x.rows);
  });
});

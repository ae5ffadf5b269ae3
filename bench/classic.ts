// Classic-model benchmark, two suites (`--suite sklearn|shells|all`, default all):
// - sklearn: mlctl's RBF SVM (one-vs-one, one-vs-rest) and logistic regression against scikit-learn's SVC (libsvm),
//   OneVsRestClassifier(SVC) and LogisticRegression(lbfgs) on the same 28x28x3 synthetic-image pixels in the same
//   run, with the same C, gamma, tol and cache size; each figure printed beside its target (bench/classic_sklearn.py).
// - shells: linear SVM (dual coordinate descent), RBF SVM and logistic regression on generated 784-dimensional data
//   with a curved class boundary (sphereShells), the SMO linear-kernel solver on a subset, and a linear-boundary
//   contrast.
// `npm run bench -- classic [--suite all] [--n 10000] [--test 2000] [--size 28] [--classes 8] [--noise 18] [--C 1]
//   [--tol 1e-3] [--cache-mb 256] [--logistic-tol 1e-6] [--seed 1] [--shells-n 10000] [--smo-linear-rows 2000]`
import { arg, writeBenchResult } from './_util.js';
import { sklearnSuite } from './_classic-sklearn.js';
import { fitStandardization, row, standardize, takeRows, type Matrix } from '../src/classic/linalg.js';
import { fitLogistic, softmaxScores } from '../src/classic/logistic.js';
import { svmDecisions, svmOutput, trainSvc, type SvmModel } from '../src/classic/svm.js';
import { sphereShells } from '../src/classic/synth.js';

interface Case {
  name: string;
  solver: string;
  trainRows: number;
  trainSeconds: number;
  accuracy: number;
  supportVectors: number | null;
  iterations: string;
  predictRowsPerSecond: number;
}

function svmAccuracy(m: SvmModel, x: Matrix, labels: Int32Array): { accuracy: number; rowsPerSecond: number } {
  const t0 = performance.now();
  let ok = 0;
  const kcache = new Float64Array(m.supportVectors.length);
  for (let i = 0; i < x.rows; i++) {
    const out = svmOutput(m, svmDecisions(m, row(x, i), kcache));
    if ((out[1]! > out[0]! ? 1 : 0) === labels[i]) ok++;
  }
  return { accuracy: ok / x.rows, rowsPerSecond: x.rows / ((performance.now() - t0) / 1000) };
}

async function shellsSuite(args: string[]): Promise<void> {
  const n = Number(arg(args, '--shells-n', '10000'));
  const seed = Number(arg(args, '--seed', '1'));
  const smoLinearRows = Number(arg(args, '--smo-linear-rows', '2000'));
  const d = 784;
  let peakRss = process.memoryUsage().rss;
  const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  const timer = setInterval(sampleRss, 200);
  try {
    console.log(`generating ${n} samples x ${d} features (8-d latent sphere shells + noise, 2 balanced classes) …`);
    const g = sphereShells(n, d, seed);
    const nTrain = Math.round(n * 0.8);
    const tr = Array.from({ length: nTrain }, (_, i) => i);
    const te = Array.from({ length: n - nTrain }, (_, i) => i + nTrain);
    const std = fitStandardization(takeRows(g.x, tr));
    const z = standardize(g.x, std);
    const xtr = takeRows(z, tr), xte = takeRows(z, te);
    const ytr = Int32Array.from(tr, (i) => g.labels[i]!), yte = Int32Array.from(te, (i) => g.labels[i]!);
    const cases: Case[] = [];
    const run = (name: string, solver: string, rows: number, fit: () => SvmModel) => {
      console.log(`training ${name} (${solver}) on ${rows} rows …`);
      const t0 = performance.now();
      const m = fit();
      const trainSeconds = (performance.now() - t0) / 1000;
      sampleRss();
      const { accuracy, rowsPerSecond } = svmAccuracy(m, xte, yte);
      const c: Case = { name, solver, trainRows: rows, trainSeconds, accuracy, supportVectors: m.solver === 'smo' ? m.supportVectors.length : null, iterations: m.machines.map((mc) => `${mc.iterations}${mc.converged ? '' : ' (limit)'}`).join(','), predictRowsPerSecond: rowsPerSecond };
      cases.push(c);
      console.log(`  ${trainSeconds.toFixed(1)}s, test accuracy ${(accuracy * 100).toFixed(1)}%`);
    };
    const linear = { type: 'linear' as const, gamma: 1, coef0: 0, degree: 3 };
    run('linear SVM', 'dcd (liblinear-style)', nTrain, () => trainSvc(xtr, ytr, 2, { kernel: linear, C: 0.01, solver: 'dcd', seed }));
    const sub = Array.from({ length: Math.min(smoLinearRows, nTrain) }, (_, i) => i);
    run('linear SVM', 'smo', sub.length, () => trainSvc(takeRows(xtr, sub), Int32Array.from(sub, (i) => ytr[i]!), 2, { kernel: linear, C: 0.01, solver: 'smo' }));
    run('RBF SVM', 'smo + kernel cache', nTrain, () => trainSvc(xtr, ytr, 2, { kernel: { type: 'rbf', gamma: 1 / d, coef0: 0, degree: 3 }, C: 10, solver: 'smo', cacheBytes: 512 * 1024 * 1024 }));
    {
      console.log(`training logistic regression (L-BFGS) on ${nTrain} rows …`);
      const t0 = performance.now();
      const fit = fitLogistic(xtr, ytr, 2, { l2: 1e-3, tol: 1e-4 });
      const trainSeconds = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      const p = softmaxScores(xte, fit.w, fit.b, 2);
      let ok = 0;
      for (let i = 0; i < xte.rows; i++) if ((p[i * 2 + 1]! > p[i * 2]! ? 1 : 0) === yte[i]) ok++;
      cases.push({ name: 'logistic regression', solver: 'lbfgs', trainRows: nTrain, trainSeconds, accuracy: ok / xte.rows, supportVectors: null, iterations: String(fit.iterations), predictRowsPerSecond: xte.rows / ((performance.now() - t1) / 1000) });
      console.log(`  ${trainSeconds.toFixed(1)}s, test accuracy ${((ok / xte.rows) * 100).toFixed(1)}%`);
    }
    // Contrast: the same embedding with a linear class boundary, where the linear SVM should match the RBF one.
    const plane = sphereShells(n, d, seed + 1, 8, 0.5, 'plane');
    const pz = standardize(plane.x, fitStandardization(takeRows(plane.x, tr)));
    const pxtr = takeRows(pz, tr), pxte = takeRows(pz, te);
    const pytr = Int32Array.from(tr, (i) => plane.labels[i]!), pyte = Int32Array.from(te, (i) => plane.labels[i]!);
    const planeCases: Case[] = [];
    for (const [name, solver, fit] of [
      ['linear SVM', 'dcd (liblinear-style)', () => trainSvc(pxtr, pytr, 2, { kernel: linear, C: 0.01, solver: 'dcd', seed })],
      ['RBF SVM', 'smo + kernel cache', () => trainSvc(pxtr, pytr, 2, { kernel: { type: 'rbf', gamma: 1 / d, coef0: 0, degree: 3 }, C: 10, solver: 'smo', cacheBytes: 512 * 1024 * 1024 })],
    ] as const) {
      console.log(`training ${name} (${solver}) on ${nTrain} rows, linear boundary …`);
      const t0 = performance.now();
      const m = fit();
      const trainSeconds = (performance.now() - t0) / 1000;
      const { accuracy, rowsPerSecond } = svmAccuracy(m, pxte, pyte);
      planeCases.push({ name: `${name} (plane)`, solver, trainRows: nTrain, trainSeconds, accuracy, supportVectors: m.solver === 'smo' ? m.supportVectors.length : null, iterations: m.machines.map((mc) => `${mc.iterations}${mc.converged ? '' : ' (limit)'}`).join(','), predictRowsPerSecond: rowsPerSecond });
      console.log(`  ${trainSeconds.toFixed(1)}s, test accuracy ${(accuracy * 100).toFixed(1)}%`);
    }
    console.log(`\n${n} samples x ${d} features: ${nTrain} train / ${n - nTrain} test; standardised; single thread (JS)`);
    const head = ['model'.padEnd(20), 'solver'.padEnd(22), 'rows'.padStart(6), 'train s'.padStart(8), 'x linear'.padStart(9), 'test acc'.padStart(9), 'Δ acc'.padStart(7), 'SVs'.padStart(6), 'iters'.padStart(10), 'pred rows/s'.padStart(12)];
    const table = (title: string, rows: Case[]) => {
      const ref = rows[0]!;
      console.log(`\n${title}`);
      console.log(head.join(' '));
      for (const c of rows) {
        console.log([
          c.name.padEnd(20), c.solver.padEnd(22), String(c.trainRows).padStart(6), c.trainSeconds.toFixed(1).padStart(8), `${(c.trainSeconds / ref.trainSeconds).toFixed(1)}x`.padStart(9),
          `${(c.accuracy * 100).toFixed(1)}%`.padStart(9), `${((c.accuracy - ref.accuracy) * 100 >= 0 ? '+' : '')}${((c.accuracy - ref.accuracy) * 100).toFixed(1)}`.padStart(7),
          String(c.supportVectors ?? '-').padStart(6), c.iterations.slice(0, 10).padStart(10), c.predictRowsPerSecond.toFixed(0).padStart(12),
        ].join(' '));
      }
    };
    table('curved class boundary (sphere shells in an 8-d latent space):', cases);
    table('linear class boundary (half-space), same embedding and noise:', planeCases);
    console.log(`peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
    await writeBenchResult('classic', { n, d, seed, trainRows: nTrain, testRows: n - nTrain, cases, planeCases, peakRssMiB: peakRss / 2 ** 20 });
  } finally {
    clearInterval(timer);
  }
}

export async function main(args: string[]): Promise<void> {
  const suite = arg(args, '--suite', 'all');
  if (!['sklearn', 'shells', 'all'].includes(suite)) throw new Error(`--suite must be sklearn, shells or all (got ${suite})`);
  if (suite !== 'shells') await sklearnSuite(args);
  if (suite !== 'sklearn') await shellsSuite(args);
}

// The scikit-learn suite of `npm run bench -- classic`: the same synthetic-image pixels (10,000 x 2,352 by default)
// go to bench/classic_sklearn.py and to mlctl's solvers in one run, one after the other (never side by side), and
// each figure is printed beside its target: fit time ≤ 2x scikit-learn's, support vectors within 1%, accuracy within
// 0.5 point, logistic loss within 1e-4.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, writeBenchResult } from './_util.js';
import { fitStandardization, row, standardize, takeRows, type Matrix } from '../src/classic/linalg.js';
import { fitLogistic, softmaxScores } from '../src/classic/logistic.js';
import { svmDecisions, svmOutput, trainSvc, type Multiclass } from '../src/classic/svm.js';
import { synthImagePixels } from '../src/classic/synth.js';

const PYTHON = process.env.MLCTL_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));

interface Fit {
  wall: number;
  cpu: number;
  supportVectors?: number;
  machineSupportVectors?: number[] | null;
  iterations: number;
  accuracy: number;
  loss?: number;
}

const hasSklearn = () => spawnSync(PYTHON, ['-c', 'import sklearn, scipy'], { stdio: 'ignore' }).status === 0;

/** scikit-learn from Debian (python3-sklearn), installed with apt-get when missing; false (and why) when it cannot be. */
function ensureSklearn(): { ok: true } | { ok: false; why: string } {
  if (hasSklearn()) return { ok: true };
  console.log('scikit-learn is not installed: installing the Debian package python3-sklearn with apt-get …');
  const root = process.getuid?.() === 0;
  const apt = (args: string[]) => spawnSync(root ? 'apt-get' : 'sudo', root ? args : ['-n', 'apt-get', ...args], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let res = apt(['install', '-y', '-qq', '--no-install-recommends', 'python3-sklearn']);
  if (res.status !== 0) {
    apt(['update', '-qq']);
    res = apt(['install', '-y', '-qq', '--no-install-recommends', 'python3-sklearn']);
  }
  if (hasSklearn()) return { ok: true };
  const detail = (res.error?.message ?? res.stderr ?? '').trim().split('\n').slice(-2).join(' ');
  return { ok: false, why: `apt-get install python3-sklearn failed${root ? '' : ' (not root, and sudo -n was refused)'}: ${detail || `exit ${res.status}`}` };
}

const cpuSeconds = (start: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
};

function timed<T>(fit: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const value = fit();
  return { value, wall: (performance.now() - t0) / 1000, cpu: cpuSeconds(c0) };
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < v.length; c++) if (v[c]! > v[best]!) best = c;
  return best;
}

/** mlctl's objective in f64: mean cross-entropy + λ/2‖W‖² (independent of the solver's float32 products). */
function logisticLoss(x: Matrix, labels: Int32Array, w: Float64Array, b: Float64Array, k: number, lambda: number): number {
  const p = softmaxScores(x, w, b, k);
  let ce = 0, reg = 0;
  for (let i = 0; i < x.rows; i++) ce -= Math.log(Math.max(p[i * k + labels[i]!]!, 1e-300));
  for (const v of w) reg += v * v;
  return ce / x.rows + (lambda / 2) * reg;
}

const fmtS = (s: number) => s.toFixed(1);
const pct = (a: number, b: number) => (b ? ((a - b) / b) * 100 : 0);

export async function sklearnSuite(args: string[]): Promise<void> {
  const n = Number(arg(args, '--n', '10000'));
  const nTest = Number(arg(args, '--test', '2000'));
  const size = Number(arg(args, '--size', '28'));
  const classes = Number(arg(args, '--classes', '8'));
  const noise = Number(arg(args, '--noise', '18'));
  const seed = Number(arg(args, '--seed', '1'));
  const C = Number(arg(args, '--C', '1'));
  const tol = Number(arg(args, '--tol', '1e-3'));
  const cacheMb = Number(arg(args, '--cache-mb', '256'));
  const logisticTol = Number(arg(args, '--logistic-tol', '1e-6'));
  const cases = arg(args, '--cases', 'ovo,ovr,logistic').split(',');
  const d = size * size * 3;
  const gamma = 1 / d;
  console.log(`load average at start: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')} (${os.cpus().length} cores)`);
  console.log(`generating ${n} + ${nTest} synthetic ${size}x${size} RGB images (${classes} classes, noise ${noise}) → ${d} pixel features, standardised …`);
  const g = synthImagePixels(n + nTest, size, classes, seed, noise);
  const tr = Array.from({ length: n }, (_, i) => i), te = Array.from({ length: nTest }, (_, i) => n + i);
  const z = standardize(g.x, fitStandardization(takeRows(g.x, tr)));
  const xtr = takeRows(z, tr), xte = takeRows(z, te);
  const ytr = Int32Array.from(tr, (i) => g.labels[i]!), yte = Int32Array.from(te, (i) => g.labels[i]!);
  // scikit-learn's multinomial LogisticRegression has mlctl's parametrisation only from 3 classes on.
  const logisticCases = classes >= 3 && cases.includes('logistic');
  if (!logisticCases && cases.includes('logistic')) console.log('logistic comparison skipped: with 2 classes scikit-learn fits one weight vector, mlctl a softmax pair (different penalties)');
  const logisticC = C;
  const lambda = 1 / (logisticC * n);

  let sk: Record<string, Fit> | undefined;
  let skNote = '';
  const avail = ensureSklearn();
  if (!avail.ok) {
    skNote = `scikit-learn unavailable (${avail.why}): only mlctl's figures are shown, without the reference`;
    console.log(skNote);
  } else {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mlctl-bench-sklearn-'));
    try {
      await writeFile(path.join(dir, 'xtr.f64'), new Uint8Array(xtr.data.buffer, xtr.data.byteOffset, xtr.data.byteLength));
      await writeFile(path.join(dir, 'xte.f64'), new Uint8Array(xte.data.buffer, xte.data.byteOffset, xte.data.byteLength));
      await writeFile(path.join(dir, 'ytr.i32'), new Uint8Array(ytr.buffer));
      await writeFile(path.join(dir, 'yte.i32'), new Uint8Array(yte.buffer));
      const skCases = cases.filter((c) => c !== 'logistic' || logisticCases);
      await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ trainRows: n, testRows: nTest, features: d, C, gamma, tol, cacheMb, cases: skCases, logisticC, logisticTol: 1e-4, logisticMaxIter: 1000 }));
      console.log(`fitting scikit-learn (${skCases.join(', ')}), single-threaded BLAS …`);
      const res = spawnSync(PYTHON, [path.join(here, 'classic_sklearn.py'), dir], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
      });
      if (res.status !== 0) throw new Error(`bench/classic_sklearn.py failed (exit ${res.status}): ${res.stderr}`);
      const doc = JSON.parse(res.stdout) as { sklearn: string; cases: Record<string, Fit> };
      sk = doc.cases;
      skNote = `scikit-learn ${doc.sklearn}`;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const ours: Record<string, Fit> = {};
  for (const mc of ['ovo', 'ovr'] as Multiclass[]) {
    if (!cases.includes(mc)) continue;
    console.log(`fitting mlctl RBF SVM (${mc}) …`);
    const { value: m, wall, cpu } = timed(() => trainSvc(xtr, ytr, classes, { kernel: { type: 'rbf', gamma, coef0: 0, degree: 3 }, C, multiclass: mc, eps: tol, cacheBytes: cacheMb * 2 ** 20 }));
    let ok = 0;
    const kcache = new Float64Array(m.supportVectors.length);
    for (let i = 0; i < xte.rows; i++) if (argmax(svmOutput(m, svmDecisions(m, row(xte, i), kcache))) === yte[i]) ok++;
    ours[mc] = { wall, cpu, supportVectors: m.supportVectors.length, machineSupportVectors: mc === 'ovr' ? m.machines.map((x) => x.sv.length) : null, iterations: m.machines.reduce((a, x) => a + x.iterations, 0), accuracy: ok / xte.rows };
  }
  if (logisticCases) {
    console.log('fitting mlctl logistic regression (L-BFGS) …');
    const { value: fit, wall, cpu } = timed(() => fitLogistic(xtr, ytr, classes, { l2: lambda, tol: logisticTol, maxIter: 1000 }));
    const p = softmaxScores(xte, fit.w, fit.b, classes);
    let ok = 0;
    for (let i = 0; i < xte.rows; i++) if (argmax(p.subarray(i * classes, (i + 1) * classes)) === yte[i]) ok++;
    ours.logistic = { wall, cpu, iterations: fit.iterations, accuracy: ok / xte.rows, loss: logisticLoss(xtr, ytr, fit.w, fit.b, classes, lambda) };
  }
  const load = os.loadavg();

  console.log(`\n${n} train / ${nTest} test rows x ${d} features (${size}x${size}x3 synthetic images, ${classes} classes); RBF C=${C}, gamma=1/${d}, tol=${tol}, cache ${cacheMb} MB, shrinking on; logistic λ=1/(C·n)=${lambda.toExponential(2)} (scikit-learn C=${logisticC}, tol 1e-4; mlctl tol ${logisticTol})`);
  console.log(`${skNote}; single thread each, one after the other. Ratios use CPU time (the machine is shared: wall time includes waiting for a core); wall times shown too.`);
  const rows: string[][] = [['case', 'mlctl s cpu (wall)', 'sklearn s cpu (wall)', 'ratio cpu (wall)', 'target', 'SVs mlctl/sklearn', 'Δ SVs', 'target', 'acc mlctl/sklearn', 'Δ pts', 'target', 'verdict']];
  const verdicts: Record<string, boolean | null> = {};
  const label: Record<string, string> = { ovo: 'RBF SVM one-vs-one', ovr: 'RBF SVM one-vs-rest', logistic: 'logistic (L-BFGS)' };
  for (const c of Object.keys(ours)) {
    const a = ours[c]!, b = sk?.[c];
    const ratio = b ? a.cpu / b.cpu : NaN, ratioWall = b ? a.wall / b.wall : NaN;
    const dAcc = b ? (a.accuracy - b.accuracy) * 100 : NaN;
    let svText = '-', dSv = '-', svOk = true;
    if (c === 'logistic') {
      const dl = b ? a.loss! - b.loss! : NaN;
      svText = `loss ${a.loss!.toFixed(6)}/${b ? b.loss!.toFixed(6) : '-'}`;
      dSv = b ? dl.toExponential(1) : '-';
      svOk = b ? Math.abs(dl) <= 1e-4 : true;
    } else {
      const total = (f: Fit) => (f.machineSupportVectors ? f.machineSupportVectors.reduce((x, y) => x + y, 0) : f.supportVectors!);
      svText = `${total(a)}/${b ? total(b) : '-'}`;
      const dp = b ? pct(total(a), total(b)) : NaN;
      dSv = b ? `${dp >= 0 ? '+' : ''}${dp.toFixed(2)}%` : '-';
      svOk = b ? Math.abs(dp) <= 1 : true;
    }
    const ok = b ? ratio <= 2 && svOk && Math.abs(dAcc) <= 0.5 : null;
    verdicts[c] = ok;
    rows.push([
      label[c]!, `${fmtS(a.cpu)} (${fmtS(a.wall)})`, b ? `${fmtS(b.cpu)} (${fmtS(b.wall)})` : '-', b ? `${ratio.toFixed(2)}x (${ratioWall.toFixed(2)}x)` : '-', '≤ 2x',
      svText, dSv, c === 'logistic' ? '|Δ| ≤ 1e-4' : '±1%',
      `${(a.accuracy * 100).toFixed(2)}/${b ? (b.accuracy * 100).toFixed(2) : '-'}%`, b ? `${dAcc >= 0 ? '+' : ''}${dAcc.toFixed(2)}` : '-', '±0.5', ok === null ? 'no reference' : ok ? 'ok' : 'MISSED',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  if (ours.ovr) console.log(`one-vs-rest support vectors per machine: mlctl ${ours.ovr.machineSupportVectors!.join(',')}${sk?.ovr ? `; scikit-learn ${sk.ovr.machineSupportVectors!.join(',')}` : ''} (union: ${ours.ovr.supportVectors}${sk?.ovr ? `/${sk.ovr.supportVectors}` : ''})`);
  console.log(`iterations: ${Object.keys(ours).map((c) => `${c} ${ours[c]!.iterations}${sk?.[c] ? `/${sk[c]!.iterations}` : ''}`).join(', ')} (mlctl/scikit-learn)`);
  console.log(`load average at end: ${load.map((v) => v.toFixed(2)).join(' ')}`);
  await writeBenchResult('classic-sklearn', { n, nTest, size, classes, noise, seed, C, gamma, tol, cacheMb, lambda, logisticTol, reference: skNote, mlctl: ours, sklearn: sk ?? null, verdicts, loadAverageEnd: load });
}

// Classic models through the CLI and the package: train → package → load → openEngine → predict, the ONNX file
// run by onnxruntime-node against the JS predictions, image folders as pixel vectors, and clear failures.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { type KernelSpec } from '../src/classic/kernel.js';
import { fitStandardization, row, standardize } from '../src/classic/linalg.js';
import { CLASSIC_FILE, CLASSIC_FORMAT, predict, type ClassicModel } from '../src/classic/model.js';
import { buildClassicOnnx, classicOnnxModel } from '../src/classic/onnx.js';
import { blobs, circles, linearData } from '../src/classic/synth.js';
import { trainSvc, trainSvr } from '../src/classic/svm.js';
import { fitLogistic } from '../src/classic/logistic.js';
import { encodeObjects, type TabularEncoding } from '../src/data/csv.js';
import { imageToInput } from '../src/data/preprocess.js';
import type { ImageInputSpec, TabularInputSpec } from '../src/artifacts/manifest.js';
import { openEngine } from '../src/runtime/engine.js';
import { createRng, gaussian } from '../src/util/random.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';
import { runFloat, floatIO } from '../src/runtime/float.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');

const cli = (args: string[]) => runCli(['train', ...args]);

async function runOnnx(bytes: Uint8Array | string, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes as Uint8Array);
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, shape) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!)));
}

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await mlctlHome('mlctl-classic-'));
  // Rings in (x1, x2) plus a categorical column that carries signal and a distractor.
  const rng = createRng(7);
  const lines = ['x1,x2,shade,noise,ring'];
  for (let i = 0; i < 240; i++) {
    const inner = i % 2 === 0;
    const r = (inner ? 1 : 2.2) + 0.15 * gaussian(rng), t = 2 * Math.PI * rng();
    lines.push(`${(r * Math.cos(t)).toFixed(4)},${(r * Math.sin(t)).toFixed(4)},${['dark', 'light', 'mid'][i % 3]},${gaussian(rng).toFixed(3)},${inner ? 'inner' : 'outer'}`);
  }
  await writeFile(path.join(dir, 'rings.csv'), lines.join('\n') + '\n');
  const lin = linearData(200, [2, -3, 0.5], 4, 0.05, 17);
  const reg = ['a,b,c,price', ...Array.from({ length: 200 }, (_, i) => `${Array.from(row(lin.x, i), (v) => v.toFixed(5)).join(',')},${lin.y[i]!.toFixed(5)}`)];
  await writeFile(path.join(dir, 'prices.csv'), reg.join('\n') + '\n');
});

afterAll(() => cleanup());

describe('mlctl train --model svm|logistic|linear on CSV', () => {
  it('trains an RBF SVM with probabilities, packages it and predicts the same through openEngine and ONNX', async () => {
    const res = await cli(['--model', 'svm', '--data', path.join(dir, 'rings.csv'), '--target', 'ring', '--name', 'rings', '--kernel', 'rbf', '--C', '10', '--gamma', '0.5', '--probability', '--json']);
    expect(res.code).toBe(0);
    expect(res.json!.ok).toBe(true);
    expect(res.json!.metrics.accuracy).toBeGreaterThan(0.9);
    const pkg = await loadPackage('rings');
    const m = pkg.manifest;
    expect(m.task).toBe('tabular-classification');
    expect(m.labels).toEqual(['inner', 'outer']);
    expect(m.output).toEqual({ name: 'probabilities', kind: 'probabilities', size: 2 });
    const input = m.input as TabularInputSpec;
    expect(input.kind).toBe('tabular');
    expect(input.features).toEqual(['x1', 'x2', 'shade=dark', 'shade=light', 'shade=mid', 'noise']);
    const transform = input.transform as { standardization: { mean: number[]; scale: number[] }; encoding: TabularEncoding };
    expect(transform.standardization.mean).toHaveLength(6);
    expect(m.formats).toEqual({ classic: CLASSIC_FILE, onnx: 'model.onnx' });
    const model = JSON.parse(await readFile(path.join(pkg.dir, CLASSIC_FILE), 'utf8')) as ClassicModel;
    expect(model.format).toBe(CLASSIC_FORMAT);
    expect(model.svm!.supportVectors.length).toBe(m.architecture.supportVectors);
    expect(model.svm!.supportVectors.length).toBeGreaterThan(2);
    expect(model.standardization).toEqual(transform.standardization);

    const engine = await openEngine(pkg);
    expect(engine.name).toBe('classic');
    expect(floatIO(engine).inputShape).toEqual([6]);
    const rows = [
      { x1: 0.1, x2: -0.9, shade: 'dark', noise: 0 },
      { x1: 2.1, x2: 0.4, shade: 'mid', noise: 1 },
      { x1: -1.6, x2: -1.5, shade: 'light', noise: -0.5 },
    ];
    const x = encodeObjects(rows, transform.encoding);
    const probs = await runFloat(engine, x, rows.length);
    expect(probs[0]!).toBeGreaterThan(0.8); // inner
    expect(probs[3]!).toBeGreaterThan(0.8); // outer
    expect(probs[5]!).toBeGreaterThan(0.8); // outer
    for (let i = 0; i < 3; i++) expect(probs[2 * i]! + probs[2 * i + 1]!).toBeCloseTo(1, 6);
    const onnx = await runOnnx(await readFile(path.join(pkg.dir, 'model.onnx')), x, [3, 6]);
    expectClose(onnx, probs, 1e-4);
    await engine.dispose();
    // --engine onnx: the package's model.onnx through the shared ONNX Runtime engine gives the same answers.
    const viaOrt = await openEngine(pkg, { engine: 'onnx' });
    expect(viaOrt.name).toBe('onnx');
    expectClose(await runFloat(viaOrt, x, 3), probs, 1e-4);
    await viaOrt.dispose();
    // The same CSV encoded for the package (evaluate's path): accuracy through the engine matches training's.
    const { tabularRowsForPackage } = await import('../src/data/tabular.js');
    const rowsForPkg = await tabularRowsForPackage(m, path.join(dir, 'rings.csv'));
    expect(rowsForPkg.rows).toBe(240);
    const all = await runFloat(await openEngine(pkg), rowsForPkg.x, rowsForPkg.rows);
    let correct = 0;
    for (let i = 0; i < rowsForPkg.rows; i++) if ((all[2 * i + 1]! > all[2 * i]! ? 1 : 0) === rowsForPkg.labels![i]) correct++;
    expect(correct / rowsForPkg.rows).toBeGreaterThan(0.9);
  });

  it('trains linear regression that recovers the generating weights; metrics R², MAE, RMSE', async () => {
    const res = await cli(['--model', 'linear', '--data', path.join(dir, 'prices.csv'), '--target', 'price', '--name', 'prices', '--json']);
    expect(res.code).toBe(0);
    const metrics = res.json!.metrics;
    expect(metrics.r2).toBeGreaterThan(0.999);
    expect(metrics.rmse).toBeLessThan(0.1);
    expect(metrics.mae).toBeLessThan(metrics.rmse + 1e-12);
    const pkg = await loadPackage('prices');
    expect(pkg.manifest.task).toBe('tabular-regression');
    expect(pkg.manifest.output.kind).toBe('regression');
    const model = JSON.parse(await readFile(path.join(pkg.dir, CLASSIC_FILE), 'utf8')) as ClassicModel;
    // Weights are stored on standardised features: back in raw units they are the generating ones.
    const raw = model.linear!.weights[0]!.map((w, j) => w / model.standardization.scale[j]!);
    expect(raw[0]).toBeCloseTo(2, 1);
    expect(raw[1]).toBeCloseTo(-3, 1);
    expect(raw[2]).toBeCloseTo(0.5, 1);
    const engine = await openEngine(pkg);
    const y = await runFloat(engine, Float32Array.of(1, 1, 1, 0, 0, 0), 2);
    expect(y[0]).toBeCloseTo(2 - 3 + 0.5 + 4, 1);
    expect(y[1]).toBeCloseTo(4, 1);
    expectClose(await runOnnx(await readFile(path.join(pkg.dir, 'model.onnx')), Float32Array.of(1, 1, 1, 0, 0, 0), [2, 3]), y, 1e-4);
  });

  it('trains ε-SVR on a numeric target in any units (target standardised inside, predictions in target units)', async () => {
    const lines = (await readFile(path.join(dir, 'prices.csv'), 'utf8')).trim().split('\n');
    // Same data with the target in thousands: C and ε must not need retuning.
    const scaled = [lines[0], ...lines.slice(1).map((l) => l.split(',').map((v, j) => (j === 3 ? String(Number(v) * 1000 + 50000) : v)).join(','))];
    await writeFile(path.join(dir, 'prices-k.csv'), scaled.join('\n') + '\n');
    const res = await cli(['--model', 'svm', '--svm-type', 'epsilon-svr', '--kernel', 'rbf', '--C', '10', '--epsilon', '0.05', '--data', path.join(dir, 'prices-k.csv'), '--target', 'price', '--name', 'svr', '--json']);
    expect(res.code).toBe(0);
    expect(res.json!.metrics.r2).toBeGreaterThan(0.95);
    const pkg = await loadPackage('svr');
    expect(pkg.manifest.task).toBe('tabular-regression');
    const engine = await openEngine(pkg);
    const [y] = await runFloat(engine, Float32Array.of(0, 0, 0), 1);
    expect(Math.abs(y! - 54000) / 1000).toBeLessThan(0.5);
    expectClose(await runOnnx(await readFile(path.join(pkg.dir, 'model.onnx')), Float32Array.of(0, 0, 0), [1, 3]), [y!], 1e-5);
  });

  it('trains multinomial logistic regression into a package with probabilities', async () => {
    const res = await cli(['--model', 'logistic', '--data', path.join(dir, 'rings.csv'), '--target', 'shade', '--drop-columns', 'ring', '--name', 'shades', '--validation-split', '0.25']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/trained logistic → shades v1/);
    const pkg = await loadPackage('shades');
    expect(pkg.manifest.labels).toEqual(['dark', 'light', 'mid']);
    expect(pkg.manifest.output.kind).toBe('probabilities');
  });

  it.skipIf(!tools.pythonOnnx)('the logistic ONNX graph passes the reference checker', async () => {
    const pkg = await loadPackage('shades');
    expect(onnxCheck(path.join(pkg.dir, 'model.onnx'))).toMatchObject({ stderr: '', status: 0 });
  });

  it('fails clearly on a bad CSV — line and column named, exit 1, nothing written', async () => {
    await writeFile(path.join(dir, 'bad.csv'), 'a,b,y\n1,2,x\n3,,y\n5,6,x\n');
    const res = await cli(['--model', 'svm', '--data', path.join(dir, 'bad.csv'), '--target', 'y', '--name', 'bad']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('line 3, column "b": missing value');
    expect(existsSync(path.join(dir, 'artifacts', 'bad'))).toBe(false);
    const usage = await cli(['--model', 'svm', '--data', path.join(dir, 'rings.csv'), '--target', 'ring', '--kernel', 'rbf', '--solver', 'dcd', '--name', 'bad']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--solver dcd trains linear SVMs only/);
    const noTarget = await cli(['--model', 'linear', '--data', path.join(dir, 'prices.csv'), '--name', 'bad']);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/--target COLUMN is required/);
  });
});

describe('image folders as pixel vectors', () => {
  it('trains an SVM on flattened pixels; the package takes images through the standard preprocessing', async () => {
    const data = path.join(dir, 'images');
    await synthDataset(data, { classes: 3, perClass: 10, size: 32 });
    const res = await cli(['--model', 'svm', '--data', data, '--features', 'pixels', '--pixel-size', '8', '--kernel', 'linear', '--name', 'pix', '--json']);
    expect(res.code).toBe(0);
    const pkg = await loadPackage('pix');
    const input = pkg.manifest.input as ImageInputSpec;
    expect(pkg.manifest.task).toBe('image-classification');
    expect(input.kind).toBe('image');
    expect([input.height, input.width]).toEqual([8, 8]);
    expect(pkg.manifest.architecture.features).toMatchObject({ kind: 'pixels', height: 8, width: 8 });
    const engine = await openEngine(pkg);
    expect(floatIO(engine).inputShape).toEqual([8, 8, 3]);
    const classes = pkg.manifest.labels;
    const files = (await import('node:fs/promises')).readdir;
    let ok = 0, total = 0;
    const x = new Float32Array(6 * 8 * 8 * 3);
    const truth: number[] = [];
    for (let c = 0; c < classes.length; c++) {
      const names = (await files(path.join(data, classes[c]!))).sort().slice(0, 2);
      for (const n of names) {
        await imageToInput(path.join(data, classes[c]!, n), input, x, truth.length * 192);
        truth.push(c);
      }
    }
    const scores = await runFloat(engine, x, truth.length);
    truth.forEach((t, i) => {
      const s = Array.from(scores.subarray(i * 3, i * 3 + 3));
      if (s.indexOf(Math.max(...s)) === t) ok++;
      total++;
    });
    expect(ok / total).toBeGreaterThan(0.8);
    expectClose(await runOnnx(await readFile(path.join(pkg.dir, 'model.onnx')), x, [truth.length, 8, 8, 3]), scores, 1e-3);
  });
});

describe('image folders as VGG16 features', () => {
  it('trains an SVM on pooled VGG16 features; the package runs images end to end (JS, TF.js and ONNX agree)', async () => {
    const data = path.join(dir, 'images-vgg');
    await synthDataset(data, { classes: 2, perClass: 4, size: 32 });
    const res = await cli(['--model', 'svm', '--kernel', 'linear', '--data', data, '--features', 'vgg16', '--weights', 'none', '--image-size', '32', '--backend', 'wasm', '--engine', 'tfjs', '--name', 'vggsvm', '--json']);
    expect(res.code).toBe(0);
    const pkg = await loadPackage('vggsvm');
    expect(pkg.manifest.formats).toEqual({ classic: CLASSIC_FILE, backbone: 'backbone/model.json', onnx: 'model.onnx' });
    expect(pkg.manifest.architecture.features).toMatchObject({ kind: 'vgg16', pooling: 'gap', dim: 512 });
    const input = pkg.manifest.input as ImageInputSpec;
    expect(input.preprocessing.mode).toBe('caffe');
    const classes = pkg.manifest.labels;
    const x = new Float32Array(2 * 32 * 32 * 3);
    for (let c = 0; c < 2; c++) {
      const first = (await (await import('node:fs/promises')).readdir(path.join(data, classes[c]!))).sort()[0]!;
      await imageToInput(path.join(data, classes[c]!, first), input, x, c * 32 * 32 * 3);
    }
    const tfjs = await openEngine(pkg, { engine: 'tfjs' });
    expect(floatIO(tfjs).inputShape).toEqual([32, 32, 3]);
    const scores = await runFloat(tfjs, x, 2);
    await tfjs.dispose();
    const onnx = await runOnnx(await readFile(path.join(pkg.dir, 'model.onnx')), x, [2, 32, 32, 3]);
    expectClose(onnx, scores, 1e-3);
    // Training images are classified as their folder.
    expect(scores[1]! > scores[0]!).toBe(false);
    expect(scores[3]! > scores[2]!).toBe(true);
  });
});

describe('ONNX graphs match the JS predictions for every SVM shape', () => {
  const kernels: KernelSpec[] = [
    { type: 'rbf', gamma: 0.3, coef0: 0, degree: 3 },
    { type: 'poly', gamma: 0.5, coef0: 1, degree: 2 },
    { type: 'linear', gamma: 1, coef0: 0, degree: 3 },
  ];
  const g = blobs(90, 3, 4, 71, 1.2);
  const std = fitStandardization(g.x);
  const z = standardize(g.x, std);
  const base = { format: CLASSIC_FORMAT, formatVersion: 1, inputSize: 4, standardization: std } as const;
  const probe = Float32Array.from(g.x.data.subarray(0, 20 * 4));

  it('ovr / ovo / probabilities / all kernels / dcd / logistic / svr', async () => {
    const models: ClassicModel[] = [];
    for (const kernel of kernels) {
      for (const multiclass of ['ovr', 'ovo'] as const) {
        for (const probability of [false, true]) {
          if (multiclass === 'ovo' && probability) continue; // pairwise coupling is iterative: no ONNX graph
          const svm = trainSvc(z, g.labels, 3, { kernel, C: 1, multiclass, probability, seed: 1 });
          models.push({ ...base, model: 'svm', task: 'classification', output: { kind: probability ? 'probabilities' : 'scores', size: 3 }, svm });
        }
      }
    }
    const dcd = trainSvc(z, g.labels, 3, { kernel: kernels[2]!, C: 1, solver: 'dcd' });
    models.push({ ...base, model: 'svm', task: 'classification', output: { kind: 'scores', size: 3 }, svm: dcd });
    const binLabels = Int32Array.from(g.labels, (c) => (c === 0 ? 1 : 0));
    const bin = trainSvc(z, binLabels, 2, { kernel: kernels[0]!, C: 1, probability: true, seed: 2 });
    models.push({ ...base, model: 'svm', task: 'classification', output: { kind: 'probabilities', size: 2 }, svm: bin });
    const target = Float64Array.from({ length: 90 }, (_, i) => g.x.data[i * 4]! * 2 - g.x.data[i * 4 + 1]!);
    const svr = trainSvr(z, target, { kernel: kernels[0]!, C: 10, epsilon: 0.05 });
    models.push({ ...base, model: 'svm', task: 'regression', output: { kind: 'regression', size: 1 }, svm: svr });
    const lr = fitLogistic(z, g.labels, 3);
    models.push({ ...base, model: 'logistic', task: 'classification', output: { kind: 'probabilities', size: 3 }, linear: { weights: [0, 1, 2].map((c) => Array.from(lr.w.subarray(c * 4, c * 4 + 4))), bias: Array.from(lr.b), activation: 'softmax' } });
    for (const m of models) {
      const js = predict(m, probe, 20);
      const onnx = await runOnnx(classicOnnxModel(m, { inputShape: [4] }), probe, [20, 4]);
      expectClose(onnx, js, 1e-4);
    }
    const ovoProb = trainSvc(z, g.labels, 3, { kernel: kernels[0]!, C: 1, multiclass: 'ovo', probability: true });
    expect(() => buildClassicOnnx({ ...base, model: 'svm', task: 'classification', output: { kind: 'probabilities', size: 3 }, svm: ovoProb }, { inputShape: [4] })).toThrow(/--multiclass ovr/);
  });
});

describe('circles through the whole stack', () => {
  it('circles data: svm rbf beats svm linear end to end (validation accuracy in the manifest)', async () => {
    const c = circles(300, 81);
    const lines = ['u,v,cls', ...Array.from({ length: 300 }, (_, i) => `${c.x.data[2 * i]!.toFixed(4)},${c.x.data[2 * i + 1]!.toFixed(4)},${c.labels[i] ? 'b' : 'a'}`)];
    await writeFile(path.join(dir, 'circles.csv'), lines.join('\n') + '\n');
    const acc: Record<string, number> = {};
    for (const kernel of ['linear', 'rbf']) {
      const res = await cli(['--model', 'svm', '--kernel', kernel, '--data', path.join(dir, 'circles.csv'), '--target', 'cls', '--name', `circles-${kernel}`, '--json']);
      expect(res.code).toBe(0);
      const pkg = await loadPackage(`circles-${kernel}`);
      acc[kernel] = (pkg.manifest.metrics!.validation as { accuracy: number }).accuracy;
    }
    expect(acc.rbf).toBeGreaterThan(0.9);
    expect(acc.rbf! - acc.linear!).toBeGreaterThan(0.2);
  });
});

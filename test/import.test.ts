// `mlctl import` on real model files made offline: torchvision resnet18 and a two-input/two-output module exported by
// python3-torch, and onnx.helper graphs for the edge cases (INT64/BOOL, no batch dimension, a dynamic dimension that
// needs --input-shape, an operator no runtime has, external data). Every imported package is checked against
// onnxruntime-node run directly on the source file: served answers within 1e-5 relative.
import * as ort from 'onnxruntime-node';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import { loadPackage } from '../src/artifacts/package.js';
import { pixelsToInput } from '../src/data/preprocess.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { buildServer } from '../src/serve/server.js';
import type { ModelRepository } from '../src/serve/types.js';
import { createLogger } from '../src/util/log.js';
import { openLocalClassifier } from '../src/watch/classify.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { pythonFixture } from './helpers/python-fixtures.js';
import { tools } from './helpers/tools.js';

type Any = Record<string, any>;

let home: MlctlHome;
const importCli = (...args: string[]) => runCli(['import', ...args, '--json']);

/** Largest |a - b| / max(|b|, 1e-6) over the values. */
function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1e-6));
  return worst;
}

/** A noisy picture (deterministic) encoded as JPEG. */
async function picture(seed: number, width = 300, height = 200): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = ((s >>> 16) & 0xff) ^ (i % 97);
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/**
 * torchvision's classification transform by hand (resize 224 bilinear, /255, ImageNet mean/std, CHW) from sharp's raw
 * pixels, without mlctl's preprocessing code, then resnet18.onnx in onnxruntime-node: the reference logits.
 */
async function referenceLogits(session: ort.InferenceSession, jpeg: Buffer): Promise<Float32Array> {
  const { data } = await sharp(jpeg).removeAlpha().toColourspace('srgb').resize(224, 224, { fit: 'fill', kernel: 'linear' }).raw().toBuffer({ resolveWithObject: true });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const n = 224 * 224;
  const x = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) x[c * n + p] = (data[p * 3 + c]! / 255 - mean[c]!) / std[c]!;
  const out = await session.run({ input: new ort.Tensor('float32', x, [1, 3, 224, 224]) });
  return out.logits!.data as Float32Array;
}

beforeAll(async () => {
  home = await mlctlHome('mlctl-import-');
});

afterAll(async () => {
  await home?.cleanup();
});

describe('preprocessing for channels-first models', () => {
  it('writes NCHW planes with the same values NHWC interleaves', () => {
    const rgb = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i * 37) % 256);
    const spec = { mode: 'torch', channelOrder: 'RGB', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255, resize: 'fill', interpolation: 'bilinear', antialias: true } as const;
    const hwc = pixelsToInput(rgb, { ...spec, mean: [...spec.mean], std: [...spec.std] });
    const chw = pixelsToInput(rgb, { ...spec, mean: [...spec.mean], std: [...spec.std] }, undefined, 0, 'NCHW');
    for (let p = 0; p < 6; p++) for (let c = 0; c < 3; c++) expect(chw[c * 6 + p]).toBe(hwc[p * 3 + c]);
    expect(chw[0]).toBeCloseTo((rgb[0]! / 255 - 0.485) / 0.229, 5);
  });
});

describe.skipIf(!tools.pythonTorch)('PyTorch exports', () => {
  let dir: string;
  let repo: ModelRepository;
  let app: FastifyInstance;
  let resnet: ort.InferenceSession;
  let two: ort.InferenceSession;

  beforeAll(async () => {
    dir = pythonFixture('import_torch.py');
    resnet = await ort.InferenceSession.create(path.join(dir, 'resnet18.onnx'));
    two = await ort.InferenceSession.create(path.join(dir, 'two.onnx'));
    const r1 = await importCli(path.join(dir, 'resnet18.onnx'), '--name', 'r18', '--task', 'image-classification', '--labels', 'cat,dog,fox', '--preprocessing', 'torch');
    expect(r1.json).toMatchObject({ ok: true, task: 'image-classification' });
    const r2 = await importCli(path.join(dir, 'two.onnx'), '--name', 'two');
    expect(r2.json).toMatchObject({ ok: true, task: null });
    repo = createRepository({ engine: 'onnx', maxBatch: 4, maxDelayMs: 5, metrics: createServeMetrics({ defaultMetrics: false }) });
    await repo.load(home.artifacts);
    app = buildServer(repo, { logger: false });
    await app.ready();
  }, 280_000);

  afterAll(async () => {
    await app?.close();
    await resnet?.release();
    await two?.release();
  });

  it('records a torchvision classifier as an NCHW image model with torch preprocessing, logits and its origin', async () => {
    const pkg = await loadPackage('r18');
    const m = pkg.manifest;
    expect(m.input).toMatchObject({ kind: 'image', name: 'input', height: 224, width: 224, layout: 'NCHW', preprocessing: { mode: 'torch', channelOrder: 'RGB', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });
    expect(m.output).toEqual({ name: 'logits', kind: 'scores', size: 3 });
    expect(m.formats).toEqual({ onnx: 'model.onnx' });
    expect(m.lineage[0]).toMatchObject({ op: 'import', params: { format: 'onnx', origin: path.join(dir, 'resnet18.onnx') } });
    // Stored as exported: the bytes ORT runs are the file's.
    expect(Buffer.compare(await fs.readFile(path.join(pkg.dir, 'model.onnx')), await fs.readFile(path.join(dir, 'resnet18.onnx')))).toBe(0);
    const audit = await fs.readFile(path.join(home.artifacts, 'audit.jsonl'), 'utf8');
    expect(audit).toMatch(/"command":"import".*"name":"r18"/);
  });

  it('serves /predict with the logits onnxruntime gives the same pixels (≤ 1e-5 relative)', async () => {
    let worst = 0;
    for (const seed of [1, 2, 3]) {
      const jpeg = await picture(seed);
      const res = await app.inject({ method: 'POST', url: '/predict?model=r18&top_k=3', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
      expect(res.statusCode).toBe(200);
      const body = res.json() as Any;
      const want = await referenceLogits(resnet, jpeg);
      worst = Math.max(worst, maxRelative(body.predictions[0], want));
      // Labels ranked by the softmax of those logits.
      const best = [...want].map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0])[0]![1];
      expect(body.labels[0][0].label).toBe(['cat', 'dog', 'fox'][best]);
    }
    console.log(`resnet18 /predict vs onnxruntime direct: max relative difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('evaluates the imported classifier on an image folder: the accuracy of the reference predictions', async () => {
    const data = path.join(home.dir, 'eval');
    const truth: Array<{ file: string; label: number }> = [];
    for (const [c, label] of ['cat', 'dog', 'fox'].entries()) {
      await fs.mkdir(path.join(data, label), { recursive: true });
      for (let i = 0; i < 2; i++) {
        const file = path.join(data, label, `${i}.jpg`);
        await fs.writeFile(file, await picture(10 + c * 2 + i, 120, 90));
        truth.push({ file, label: c });
      }
    }
    let right = 0;
    for (const t of truth) {
      const logits = await referenceLogits(resnet, await fs.readFile(t.file));
      if ([...logits].indexOf(Math.max(...logits)) === t.label) right++;
    }
    const r = await runCli(['evaluate', 'r18', '--data', data, '--split', 'all', '--json', '--latency-runs', '1']);
    expect(r.code).toBe(0);
    const res = r.json!.results[0] as Any;
    expect(res.images).toMatchObject({ evaluated: 6, skipped: 0 });
    expect(res.metrics.accuracy).toBeCloseTo(right / truth.length, 10);
  });

  it('classifies camera frames in watch with the softmax of the reference logits', async () => {
    const classifier = await openLocalClassifier({ model: 'r18@1', engine: 'onnx', maxBatch: 2, maxDelayMs: 5, logger: createLogger({ level: 'error' }) });
    try {
      expect(classifier.labels).toEqual(['cat', 'dog', 'fox']);
      const jpeg = await picture(7);
      const { scores } = await classifier.classify(jpeg);
      const logits = await referenceLogits(resnet, jpeg);
      const top = Math.max(...logits);
      const exp = Array.from(logits, (v) => Math.exp(v - top));
      const sum = exp.reduce((a, b) => a + b, 0);
      expect(maxRelative(scores, exp.map((e) => e / sum))).toBeLessThanOrEqual(1e-5);
    } finally {
      await classifier.close();
    }
  });

  it('quantizes the imported classifier to int8 from its own model.onnx, calibrated on the image folder', async () => {
    const data = path.join(home.dir, 'eval');
    const r = await runCli(['quantize', 'r18', '--dtype', 'int8', '--data', data, '--calibration', '4', '--latency-runs', '0', '--max-accuracy-drop', '1', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.quantizedNodes).toBeGreaterThanOrEqual(20);
    const q = await loadPackage('r18@2');
    expect(q.manifest.formats).toEqual({ onnx: 'model.onnx' });
    expect(q.manifest.lineage.map((e) => e.op)).toEqual(['import', 'quantize']);
    expect(q.manifest.input).toEqual((await loadPackage('r18@1')).manifest.input);
    expect(r.json!.int8OnnxBytes).toBeLessThan(r.json!.fp32OnnxBytes / 3);
  });

  it('imports a two-input, two-output module as a generic tensor model served over V2 with onnxruntime\'s answers', async () => {
    const m = (await loadPackage('two')).manifest;
    expect(m.task).toBeUndefined();
    expect(m.input).toEqual({ kind: 'tensors', tensors: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }, { name: 'extra', datatype: 'FP32', shape: [-1, 2] }] });
    expect(m.output).toEqual({ kind: 'tensors', tensors: [{ name: 'probs', datatype: 'FP32', shape: [-1, 3] }, { name: 'total', datatype: 'FP32', shape: [-1, 1] }] });
    const features = Float32Array.from([0.5, -1, 2, 0.25, 1, 1, -3, 0.75]);
    const extra = Float32Array.from([0.1, -0.2, 3, 0.5]);
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/two/infer',
      payload: { inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 4], data: [...features] }, { name: 'extra', datatype: 'FP32', shape: [2, 2], data: [...extra] }] },
    });
    expect(res.statusCode).toBe(200);
    const outs = Object.fromEntries((res.json() as Any).outputs.map((o: Any) => [o.name, o]));
    const want = await two.run({ features: new ort.Tensor('float32', features, [2, 4]), extra: new ort.Tensor('float32', extra, [2, 2]) });
    expect(outs.probs.shape).toEqual([2, 3]);
    expect(outs.total.shape).toEqual([2, 1]);
    const worst = Math.max(maxRelative(outs.probs.data, want.probs!.data as Float32Array), maxRelative(outs.total.data, want.total!.data as Float32Array));
    console.log(`two-input/two-output V2 vs onnxruntime direct: max relative difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a classifier whose labels do not match its outputs, and task options without a task, writing nothing', async () => {
    const few = await importCli(path.join(dir, 'resnet18.onnx'), '--name', 'bad', '--task', 'image-classification', '--labels', 'a,b', '--preprocessing', 'torch');
    expect(few.code).toBe(2);
    expect(few.json!.error).toMatchObject({ code: 'IMPORT_TASK_MISMATCH' });
    expect(few.json!.error.message).toMatch(/3 scores per image but --labels gives 2/);
    // A small image model for the rest: the checks come before anything is big.
    const noPre = await importCli(path.join(dir, 'yolov8.onnx'), '--name', 'bad', '--task', 'image-classification', '--labels', 'a,b,c');
    expect(noPre.json!.error.message).toMatch(/--preprocessing/);
    const noTask = await importCli(path.join(dir, 'yolov8.onnx'), '--name', 'bad', '--labels', 'a,b,c');
    expect(noTask.json!.error).toMatchObject({ code: 'OPTION_CONFLICT' });
    expect(existsSync(path.join(home.artifacts, 'bad'))).toBe(false);
  });
});

describe.skipIf(!tools.pythonOnnx)('ONNX edge cases (onnx.helper graphs)', () => {
  let dir: string;

  beforeAll(() => {
    dir = pythonFixture('import_edge.py');
  }, 120_000);

  it('imports INT64 and BOOL tensors, and a model without a batch dimension, as the model declares them', async () => {
    const r = await importCli(path.join(dir, 'int64_bool.onnx'), '--name', 'ints');
    expect(r.code).toBe(0);
    expect(r.json!.inputs).toEqual([{ name: 'ids', datatype: 'INT64', shape: [-1, 3] }]);
    expect(r.json!.outputs).toEqual([{ name: 'twice', datatype: 'INT64', shape: [-1, 3] }, { name: 'positive', datatype: 'BOOL', shape: [-1, 3] }]);
    const b = await importCli(path.join(dir, 'bool_nobatch.onnx'), '--name', 'bools');
    expect(b.json!.outputs).toEqual([{ name: 'flipped', datatype: 'BOOL', shape: [4] }]);
    const m = (await loadPackage('bools')).manifest;
    expect(m.input).toEqual({ kind: 'tensors', tensors: [{ name: 'mask', datatype: 'BOOL', shape: [4] }] });
  });

  it('asks for --input-shape when a dimension other than the batch is dynamic, then stores that size in the model', async () => {
    const r = await importCli(path.join(dir, 'dynamic.onnx'), '--name', 'dyn');
    expect(r.code).toBe(2);
    expect(r.json!.error.code).toBe('IMPORT_SHAPE_REQUIRED');
    expect(r.json!.error.message).toMatch(/input x FP32 \[-1, -1\].*--input-shape x:1xN/);
    expect(existsSync(path.join(home.artifacts, 'dyn'))).toBe(false);
    const ok = await importCli(path.join(dir, 'dynamic.onnx'), '--name', 'dyn', '--input-shape', 'x:1x5');
    expect(ok.code).toBe(0);
    expect(ok.json!.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 5] }]);
    const pkg = await loadPackage('dyn');
    const s = await ort.InferenceSession.create(path.join(pkg.dir, 'model.onnx'));
    expect((s.inputMetadata[0] as Any).shape[1]).toBe(5);
    await s.release();
    const wrong = await importCli(path.join(dir, 'dynamic.onnx'), '--name', 'dyn2', '--input-shape', 'y:1x5');
    expect(wrong.json!.error).toMatchObject({ code: 'OPTION_INVALID' });
    expect(wrong.json!.error.message).toMatch(/no input y \(its inputs: x\)/);
  });

  it('takes an image model\'s open height and width from --image-size', async () => {
    const args = [path.join(dir, 'any_size.onnx'), '--name', 'anysize', '--task', 'image-classification', '--labels', 'r,g,b', '--preprocessing', 'unit'];
    const open = await importCli(...args);
    expect(open.json!.error).toMatchObject({ code: 'IMPORT_SHAPE_REQUIRED' });
    const r = await importCli(...args, '--image-size', '32x48');
    expect(r.code).toBe(0);
    expect(r.json!.input).toMatchObject({ name: 'pixels', height: 32, width: 48, layout: 'NCHW' });
    expect(r.json!.inputs).toEqual([{ name: 'pixels', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
  });

  it('refuses an operator ONNX Runtime lacks at import, with its reason, and writes nothing', async () => {
    const r = await importCli(path.join(dir, 'unsupported.onnx'), '--name', 'frob');
    expect(r.code).toBe(1);
    expect(r.json!.error.code).toBe('IMPORT_UNRUNNABLE');
    expect(r.json!.error.message).toMatch(/Frobnicate/);
    expect(existsSync(path.join(home.artifacts, 'frob'))).toBe(false);
  });

  it('inlines external data into one self-contained model.onnx, and names a missing data file', async () => {
    const r = await importCli(path.join(dir, 'external.onnx'), '--name', 'ext');
    expect(r.code).toBe(0);
    expect(r.json!.source.externalData).toEqual(['external.weights']);
    const pkg = await loadPackage('ext');
    expect(Object.keys(pkg.manifest.files).sort()).toEqual(['model.onnx']);
    const { W, b } = JSON.parse(await fs.readFile(path.join(dir, 'external.json'), 'utf8')) as { W: number[][]; b: number[] };
    const x = [1, -2, 0.5, 3];
    const s = await ort.InferenceSession.create(await fs.readFile(path.join(pkg.dir, 'model.onnx')));
    const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 4]) })).y!.data as Float32Array;
    await s.release();
    const want = b.map((bj, j) => x.reduce((a, xi, i) => a + xi * W[i]![j]!, bj));
    expect(maxRelative(y, want)).toBeLessThan(1e-5);
    // The model without its data file.
    const alone = path.join(home.dir, 'alone');
    await fs.mkdir(alone, { recursive: true });
    await fs.copyFile(path.join(dir, 'external.onnx'), path.join(alone, 'external.onnx'));
    const missing = await importCli(path.join(alone, 'external.onnx'), '--name', 'ext2');
    expect(missing.json!.error.code).toBe('IMPORT_UNREADABLE');
    expect(missing.json!.error.message).toMatch(/external\.weights/);
  });

  it('says what a file that is not a model is', async () => {
    const junk = path.join(home.dir, 'junk.onnx');
    await fs.writeFile(junk, 'certainly not protobuf \u0000\u0001');
    const r = await importCli(junk, '--name', 'junk');
    expect(r.json!.error.code).toMatch(/IMPORT_UNREADABLE|IMPORT_UNRUNNABLE/);
    const graph = path.join(home.dir, 'model.json');
    await fs.writeFile(graph, JSON.stringify({ format: 'graph-model', modelTopology: {} }));
    const g = await importCli(graph, '--name', 'graph');
    expect(g.json!.error).toMatchObject({ code: 'IMPORT_UNREADABLE' });
    expect(g.json!.error.message).toMatch(/graph model/);
  });
});

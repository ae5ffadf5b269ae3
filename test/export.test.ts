// mlctl export, TF.js and ONNX formats and the command's failure modes: stock TF.js (over HTTP, as a browser loads it)
// and onnxruntime-node run the exported files and must agree with mlctl's own engine; bad input fails cleanly.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../src/artifacts/hash.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import type { ModelJson } from '../src/artifacts/tfjs-io.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { MlctlError } from '../src/errors.js';
import { exportModel } from '../src/export/index.js';
import { convertLayersModel, decodeModel, SUPPORTED_LAYERS } from '../src/onnx/index.js';
import type { ExportMetadata } from '../src/export/source.js';
import { openEngine } from '../src/runtime/engine.js';
import { runCli } from './helpers/cli.js';
import { tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';
import { runFloat } from '../src/runtime/float.js';

const SIZE = 32;
let root: string;
let cleanup: () => Promise<void>;
let pkg: LoadedPackage;

/** Deterministic inputs spanning the caffe-preprocessed range. */
function inputs(batch: number, seed = 3): Float32Array {
  const x = new Float32Array(batch * SIZE * SIZE * 3);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 1;
    x[i] = (s / 2147483648) * 255 - 124;
  }
  return x;
}

async function mlctlPredictions(p: LoadedPackage, x: Float32Array, batch: number): Promise<Float32Array> {
  const engine = await openEngine(p, { engine: 'tfjs' });
  try {
    return await runFloat(engine, x, batch);
  } finally {
    await engine.dispose();
  }
}

/** Serve a directory over loopback HTTP: stock tf.loadLayersModel fetches model.json and its shards like a browser. */
async function staticServer(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    const data = await fs.readFile(file).catch(() => undefined);
    res.writeHead(data ? 200 : 404, { 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    res.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

async function loadStock(dir: string): Promise<tf.LayersModel> {
  const srv = await staticServer(dir);
  try {
    return await tf.loadLayersModel(`${srv.url}/model.json`);
  } finally {
    await srv.close();
  }
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('mlctl-export-'));
  pkg = await tinyPackage(path.join(root, 'artifacts'), { size: SIZE });
});
afterAll(() => cleanup());

describe('export --format tfjs', () => {
  it('writes the package model byte for byte, loadable by stock tf.loadLayersModel, predicting exactly as mlctl does', async () => {
    const out = path.join(root, 'tfjs');
    const res = await exportModel(pkg, { format: 'tfjs', out });
    expect(Object.keys(res.files).sort()).toEqual(['group1-shard1of1.bin', 'labels.json', 'metadata.json', 'model.json']);
    for (const f of ['model.json', 'group1-shard1of1.bin']) {
      expect(res.files[f]!.sha256).toBe(pkg.manifest.files[f]!.sha256);
      expect(await sha256File(path.join(out, f))).toBe(pkg.manifest.files[f]!.sha256);
    }
    expect(await readJson(path.join(out, 'labels.json'))).toEqual(pkg.manifest.labels);

    const meta = await readJson<ExportMetadata>(path.join(out, 'metadata.json'));
    expect(meta.format).toBe('tfjs');
    expect(meta.labels).toEqual(pkg.manifest.labels);
    expect(meta.input).toEqual(pkg.manifest.input);
    expect(meta.source).toMatchObject({ name: 'tiny', version: pkg.manifest.version, manifestSha256: pkg.manifestSha256, files: pkg.manifest.files });
    const last = meta.lineage[meta.lineage.length - 1]!;
    expect(last.op).toBe('export:tfjs');
    expect(last.from).toEqual({ name: 'tiny', version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 });
    expect(meta.lineage.slice(0, -1)).toEqual(pkg.manifest.lineage);

    const x = inputs(4);
    const model = await loadStock(out);
    const stock = tf.tidy(() => (model.predict(tf.tensor(x, [4, SIZE, SIZE, 3])) as tf.Tensor).dataSync() as Float32Array);
    model.dispose();
    const ours = await mlctlPredictions(pkg, x, 4);
    expect(stock.length).toBe(4 * pkg.manifest.labels.length);
    expect(Array.from(stock)).toEqual(Array.from(ours));
  });

  it('--quantize uint8 writes converter-style entries that stock TF.js decodes as q * scale + min', async () => {
    const out = path.join(root, 'tfjs-q8');
    await exportModel(pkg, { format: 'tfjs', out, quantize: 'uint8' });
    const json = await readJson<ModelJson>(path.join(out, 'model.json'));
    const specs = json.weightsManifest.flatMap((g) => g.weights);
    const shard = await fs.readFile(path.join(out, json.weightsManifest[0]!.paths[0]!));
    const floats = specs.reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0);
    expect(shard.byteLength).toBe(floats); // one byte per weight
    for (const s of specs) expect(s.quantization).toMatchObject({ dtype: 'uint8', original_dtype: 'float32' });

    const original = tinyModel(SIZE, 3, 1); // same seeds as the fixture: the float weights before quantization
    const model = await loadStock(out);
    let offset = 0;
    specs.forEach((spec, i) => {
      const n = spec.shape.reduce((p, d) => p * d, 1);
      const q = shard.subarray(offset, offset + n);
      offset += n;
      const { scale, min } = spec.quantization as { scale: number; min: number };
      const decoded = model.getWeights()[i]!.dataSync();
      const before = original.getWeights()[i]!.dataSync();
      for (let j = 0; j < n; j++) {
        expect(decoded[j]).toBeCloseTo(q[j]! * scale + min, 5);
        expect(Math.abs(decoded[j]! - before[j]!)).toBeLessThanOrEqual(scale / 2 + 1e-6);
        if (before[j] === 0) expect(decoded[j]).toBe(0); // zero (the biases) stays exactly zero
      }
    });
    const x = inputs(2);
    const y = tf.tidy(() => (model.predict(tf.tensor(x, [2, SIZE, SIZE, 3])) as tf.Tensor).dataSync());
    for (let b = 0; b < 2; b++) expect(y[b * 3]! + y[b * 3 + 1]! + y[b * 3 + 2]!).toBeCloseTo(1, 5);
    model.dispose();
    original.dispose();
    expect((await readJson<ExportMetadata>(path.join(out, 'metadata.json'))).details).toMatchObject({ quantization: 'uint8', weightDtypes: { uint8: specs.length } });
  });
});

describe('export --format onnx', () => {
  it('converts the model, stores labels and preprocessing in metadata_props, and runs in onnxruntime like mlctl', async () => {
    const out = path.join(root, 'onnx');
    const res = await exportModel(pkg, { format: 'onnx', out });
    expect(res.details).toMatchObject({ origin: 'converted', precision: 'fp32' });
    const bytes = await fs.readFile(path.join(out, 'model.onnx'));
    const props = Object.fromEntries((decodeModel(bytes).metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(JSON.parse(props['mlctl.labels']!)).toEqual(pkg.manifest.labels);
    expect(JSON.parse(props['mlctl.preprocessing']!)).toEqual(imageInputSpec(SIZE, 'caffe').preprocessing);
    expect(JSON.parse(props['mlctl.input']!)).toEqual(pkg.manifest.input);
    expect(JSON.parse(props['mlctl.source']!)).toEqual({ name: 'tiny', version: 1, manifestSha256: pkg.manifestSha256, files: pkg.manifest.files });
    const sidecar = await readJson<ExportMetadata>(path.join(out, 'metadata.json'));
    expect(sidecar.exportedAt).toBe(props['mlctl.exported_at']);
    expect(sidecar.source.manifestSha256).toBe(pkg.manifestSha256);

    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual([pkg.manifest.input.name]);
    expect(session.outputNames).toEqual([pkg.manifest.output.name]);
    const x = inputs(3);
    const y = (await session.run({ input: new ort.Tensor('float32', x, [3, SIZE, SIZE, 3]) })).predictions!;
    expect(y.dims).toEqual([3, 3]);
    const ours = await mlctlPredictions(pkg, x, 3);
    (y.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(ours[i]!, 5));
    await session.release();
  });

  it.skipIf(!tools.pythonOnnx)('passes the reference checker (onnx.checker full_check)', () => {
    const file = path.join(root, 'onnx', 'model.onnx');
    const check = onnxCheck(file);
    expect(check).toMatchObject({ stderr: '', status: 0 });
    expect(check.metadataProps).toBeGreaterThanOrEqual(6);
  });

  it("exports a package's own ONNX model as it is, replacing only mlctl's metadata", async () => {
    const model = tinyModel(SIZE, 3, 5);
    const onnxBytes = convertLayersModel(model, { inputName: 'input', outputName: 'predictions', metadata: { 'mlctl.labels': '["stale"]', 'team.owner': 'vision' } });
    const withOnnx = await savePackage({
      root: path.join(root, 'artifacts'),
      name: 'tiny-onnx',
      draft: { ...pkg.manifest, formats: { tfjs: 'model.json', onnx: 'model.onnx' }, lineage: pkg.manifest.lineage },
      write: async (dir) => {
        await writeTfjsModel(dir, model);
        await fs.writeFile(path.join(dir, 'model.onnx'), onnxBytes);
      },
    });
    model.dispose();
    const out = path.join(root, 'onnx-from-package');
    const res = await exportModel(withOnnx, { format: 'onnx', out });
    expect(res.details).toMatchObject({ origin: 'package' });
    const proto = decodeModel(await fs.readFile(path.join(out, 'model.onnx')));
    const keys = (proto.metadataProps ?? []).map((p) => p.key);
    expect(new Set(keys).size).toBe(keys.length);
    const props = Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(props['team.owner']).toBe('vision');
    expect(JSON.parse(props['mlctl.labels']!)).toEqual(pkg.manifest.labels);
    expect(proto.graph.initializer.length).toBe(decodeModel(onnxBytes).graph.initializer.length);
  });
});

describe('export failures', () => {
  it('names the layer the ONNX converter cannot handle and leaves no output behind', async () => {
    const className = ['Conv2DTranspose', 'UpSampling2D'].find((c) => !SUPPORTED_LAYERS.includes(c));
    expect(className).toBeDefined();
    const model = tf.sequential();
    model.add(tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 2, kernelSize: 3, name: 'conv' }));
    model.add(className === 'Conv2DTranspose' ? tf.layers.conv2dTranspose({ filters: 2, kernelSize: 2, name: 'odd_layer' }) : tf.layers.upSampling2d({ name: 'odd_layer' }));
    model.add(tf.layers.flatten({ name: 'flatten' }));
    model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' }));
    const odd = await savePackage({ root: path.join(root, 'artifacts'), name: 'odd', draft: { ...pkg.manifest, lineage: [] }, write: (d) => writeTfjsModel(d, model) });
    model.dispose();
    const out = path.join(root, 'odd-onnx');
    const err = await exportModel(odd, { format: 'onnx', out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('UNSUPPORTED_LAYER');
    expect((err as MlctlError).message).toContain('odd_layer');
    expect(existsSync(out)).toBe(false);
    expect((await fs.readdir(root)).filter((f) => f.startsWith('.odd-onnx'))).toEqual([]);
  });

  it('refuses a non-empty --out without --force, replaces it with --force, and never an --out holding the package', async () => {
    const out = path.join(root, 'busy');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'keep.txt'), 'mine');
    const err = await exportModel(pkg, { format: 'tfjs', out }).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('PACKAGE_EXISTS');
    expect((err as Error).message).toMatch(/--force/);
    expect(await fs.readFile(path.join(out, 'keep.txt'), 'utf8')).toBe('mine');

    await exportModel(pkg, { format: 'tfjs', out, force: true });
    expect(existsSync(path.join(out, 'keep.txt'))).toBe(false);
    expect(existsSync(path.join(out, 'model.json'))).toBe(true);

    const holding = await exportModel(pkg, { format: 'tfjs', out: path.join(root, 'artifacts'), force: true }).catch((e: unknown) => e);
    expect((holding as MlctlError).code).toBe('OPTION_CONFLICT');
    expect(existsSync(pkg.dir)).toBe(true);
    const inside = await exportModel(pkg, { format: 'tfjs', out: path.join(pkg.dir, 'web') }).catch((e: unknown) => e);
    expect((inside as MlctlError).message).toMatch(/inside the package/);
    expect(existsSync(path.join(pkg.dir, 'web'))).toBe(false);
  });

  it('CLI: unknown format and missing flags are usage errors (exit 2); --json prints what was written', async () => {
    expect((await runCli(['export', pkg.dir, '--format', 'pdf', '--out', path.join(root, 'x')])).code).toBe(2);
    expect((await runCli(['export', pkg.dir, '--out', path.join(root, 'x'), '--backend', 'cpu'])).code).toBe(2);
    expect((await runCli(['export', pkg.dir, '--format', 'onnx', '--backend', 'cpu'])).code).toBe(2);
    expect((await runCli(['export', pkg.dir, '--format', 'onnx', '--quantize', 'uint8', '--out', path.join(root, 'x'), '--backend', 'cpu'])).code).toBe(2);
    expect(existsSync(path.join(root, 'x'))).toBe(false);
    const out = path.join(root, 'cli-tfjs');
    const written = await runCli(['export', pkg.dir, '--format', 'tfjs', '--out', out, '--json', '--backend', 'cpu']);
    expect(written.code).toBe(0);
    const doc = written.json as { ok: boolean; format: string; out: string; source: { manifestSha256: string }; files: Record<string, { sha256: string }> };
    expect(doc).toMatchObject({ ok: true, format: 'tfjs', out });
    expect(doc.source.manifestSha256).toBe(pkg.manifestSha256);
    for (const [f, e] of Object.entries(doc.files)) expect(await sha256File(path.join(out, f))).toBe(e.sha256);
    const again = await runCli(['export', pkg.dir, '--format', 'tfjs', '--out', out, '--json', '--backend', 'cpu']);
    expect(again.code).toBe(1);
    expect(again.json).toMatchObject({ ok: false, error: { code: 'PACKAGE_EXISTS' } });
  });
});

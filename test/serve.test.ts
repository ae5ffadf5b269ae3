// mlctl serve end to end over real tiny packages (two versions of one model plus a second model) and real synthetic
// images: every route and error path through app.inject(); batching, overload and shutdown on real sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { loadPackage, loadTfjsModel } from '../src/artifacts/package.js';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { imageToInput } from '../src/data/preprocess.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { buildServer } from '../src/serve/server.js';
import { startServer } from '../src/serve/start.js';
import type { FastifyInstance } from 'fastify';
import type { ModelRepository } from '../src/serve/types.js';
import { synthDataset, tempDir, tinyPackage } from './helpers/fixtures.js';
import * as tf from '@tensorflow/tfjs';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let images: string[];
let jpeg: Buffer;
let png: Buffer;
let repo: ModelRepository;
let app: FastifyInstance;

/** A PNG whose header claims width x height but carries a tiny payload: the decompression-bomb shape. */
function bombPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

/** Response headers as a fetch Headers object, so assertions read the same for inject and fetch. */
function headersOf(h: Record<string, string | string[] | number | undefined>): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : String(v));
  return out;
}

async function post(p: string, body: string | Buffer | FormData, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: p, payload: body, headers });
  const text = res.rawPayload;
  let json: any;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: headersOf(res.headers), json, raw: text };
}
const postJson = (p: string, body: unknown) => post(p, JSON.stringify(body), { 'content-type': 'application/json' });
async function get(p: string) {
  const res = await app.inject({ method: 'GET', url: p });
  const text = res.body;
  const headers = headersOf(res.headers);
  return { status: res.statusCode, headers, text, json: /json/.test(headers.get('content-type') ?? '') ? JSON.parse(text) : undefined };
}
function form(...files: Array<{ field?: string; data: Buffer; type?: string; name?: string }>) {
  const fd = new FormData();
  for (const f of files) fd.append(f.field ?? 'image', new Blob([f.data], { type: f.type ?? 'image/jpeg' }), f.name ?? 'x.jpg');
  return fd;
}

/** The model's own answer for an image file, computed without the server (package model + shared preprocessing). */
async function directPredict(version: number, file: string): Promise<number[]> {
  const pkg = await loadPackage(path.join(root, 'tiny', String(version)));
  const model = await loadTfjsModel(pkg);
  const spec = pkg.manifest.input as ImageInputSpec;
  const x = await imageToInput(file, spec);
  const y = tf.tidy(() => (model.predict(tf.tensor(x, [1, spec.height, spec.width, 3])) as tf.Tensor).dataSync());
  model.dispose();
  return Array.from(y);
}

/** The real engine plus a fixed cost per batch, standing in for a model that takes `ms` to run (VGG16 is too slow for tests). */
function slowEngine(ms: number) {
  return async (pkg: LoadedPackage, o?: Parameters<typeof openEngine>[1]): Promise<InferenceEngine> => {
    const e = await openEngine(pkg, o);
    return {
      name: e.name,
      description: `${e.description} + ${ms} ms`,
      inputs: e.inputs,
      outputs: e.outputs,
      batched: e.batched,
      platform: e.platform,
      provenance: e.provenance,
      run: async (feeds, fetches) => {
        await new Promise((r) => setTimeout(r, ms));
        return e.run(feeds, fetches);
      },
      dispose: () => e.dispose(),
    };
  };
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-');
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny', seed: 1 });
  await tinyPackage(root, { name: 'tiny', seed: 5 });
  await tinyPackage(root, { name: 'other', seed: 9, labels: ['a', 'b'] });
  const data = await synthDataset(path.join(tmp.dir, 'data'), { classes: 3, perClass: 2, size: 48 });
  const classDir = path.join(data.out, (await fs.readdir(data.out)).sort()[0]!);
  images = (await fs.readdir(classDir)).sort().map((f) => path.join(classDir, f));
  jpeg = await sharp(images[0]!).jpeg().toBuffer();
  png = await sharp(images[1]!).png().toBuffer();
  repo = createRepository({ engine: 'tfjs', maxBatch: 4, maxDelayMs: 2, maxQueue: 32 });
  await repo.load(root);
  app = buildServer(repo, { logger: false, bodyLimit: 200 * 1024 });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await tmp?.cleanup();
});

describe('POST /predict (the seed contract and its extensions)', () => {
  it('answers a multipart "image" upload with the model\'s own softmax, top-k labels, model and version', async () => {
    const file = path.join(tmp.dir, 'one.jpg');
    await fs.writeFile(file, jpeg);
    const r = await post('/predict?model=tiny', form({ data: jpeg }));
    expect(r.status).toBe(200);
    expect(r.json.model).toBe('tiny');
    expect(r.json.version).toBe(2);
    expect(r.json.predictions).toHaveLength(1);
    const want = await directPredict(2, file);
    r.json.predictions[0].forEach((p: number, i: number) => expect(p).toBeCloseTo(want[i]!, 5));
    const labels = r.json.labels[0];
    expect(labels).toHaveLength(3);
    expect(labels[0].score).toBeGreaterThanOrEqual(labels[1].score);
    expect(['checker', 'circle', 'square'][want.indexOf(Math.max(...want))]).toBe(labels[0].label);
    expect(r.headers.get('x-request-id')).toMatch(/[0-9a-f-]{36}/);
  });

  it('takes several images per request, raw image bodies and JSON b64 instances with the same answers', async () => {
    const multi = await post('/predict?model=tiny&top_k=1', form({ data: jpeg }, { data: png, type: 'image/png', name: 'y.png' }));
    expect(multi.status).toBe(200);
    expect(multi.json.predictions).toHaveLength(2);
    expect(multi.json.labels[1]).toHaveLength(1);
    const raw = await post('/predict?model=tiny', png, { 'content-type': 'image/png' });
    expect(raw.status).toBe(200);
    raw.json.predictions[0].forEach((p: number, i: number) => expect(p).toBeCloseTo(multi.json.predictions[1][i], 6));
    const js = await postJson('/predict', { model: 'tiny', version: 1, instances: [{ b64: jpeg.toString('base64') }, { image: { b64: png.toString('base64') } }] });
    expect(js.status).toBe(200);
    expect(js.json.version).toBe(1);
    expect(js.json.predictions).toHaveLength(2);
  });

  it('asks which model when several are loaded and none is named', async () => {
    const r = await post('/predict', form({ data: jpeg }));
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/several models.*model=NAME/);
  });

  it('refuses non-images, corrupt images, empty uploads and bombs with 400 JSON errors', async () => {
    const text = await post('/predict?model=tiny', form({ data: Buffer.from('hello, not an image'), type: 'text/plain', name: 'a.txt' }));
    expect(text.status).toBe(400);
    expect(text.json.error).toMatch(/not a readable image/);
    const corrupt = await post('/predict?model=tiny', jpeg.subarray(0, 200), { 'content-type': 'image/jpeg' });
    expect(corrupt.status).toBe(400);
    expect(typeof corrupt.json.error).toBe('string');
    const none = await post('/predict?model=tiny', (() => { const fd = new FormData(); fd.append('note', 'hi'); return fd; })());
    expect(none.status).toBe(400);
    const t0 = performance.now();
    const bomb = await post('/predict?model=tiny', bombPng(100_000, 100_000), { 'content-type': 'image/png' });
    expect(bomb.status).toBe(400);
    expect(bomb.json.error).toMatch(/100000x100000.*not decoded/);
    expect(performance.now() - t0).toBeLessThan(5000);
    const badJson = await post('/predict?model=tiny', '{"instances": [', { 'content-type': 'application/json' });
    expect(badJson.status).toBe(400);
    const badB64 = await postJson('/predict?model=tiny', { instances: [{ b64: '***' }] });
    expect(badB64.status).toBe(400);
    const text2 = await post('/predict?model=tiny', 'x', { 'content-type': 'text/plain' });
    expect(text2.status).toBe(400);
    expect(text2.json.error).toMatch(/multipart field "image"/);
    const unsupported = await post('/predict?model=tiny', '<x/>', { 'content-type': 'application/xml' });
    expect(unsupported.status).toBe(415);
  });

  it('answers 413 for bodies and files over the limit', async () => {
    const big = Buffer.alloc(300 * 1024, 7);
    const raw = await post('/predict?model=tiny', big, { 'content-type': 'image/jpeg' });
    expect(raw.status).toBe(413);
    expect(raw.json.error).toMatch(/larger than the 204800-byte limit/);
    const mp = await post('/predict?model=tiny', form({ data: big }));
    expect(mp.status).toBe(413);
    expect(mp.json.error).toMatch(/limit/);
  });

  it('answers 404 for unknown models and versions', async () => {
    expect((await post('/predict?model=nope', form({ data: jpeg }))).status).toBe(404);
    const v = await post('/predict?model=tiny&version=7', form({ data: jpeg }));
    expect(v.status).toBe(404);
    expect(v.json.error).toMatch(/no version 7 \(loaded: 1, 2\)/);
    expect((await get('/nowhere')).status).toBe(404);
  });
});

describe('KServe V2 REST', () => {
  it('serves health, server metadata, model metadata and readiness', async () => {
    expect((await get('/v2/health/live')).json).toEqual({ live: true });
    expect((await get('/v2/health/ready')).json).toEqual({ ready: true });
    const meta = await get('/v2');
    expect(meta.json.name).toBe('mlctl');
    expect(meta.json.extensions).toContain('binary_tensor_data');
    const m = await get('/v2/models/tiny');
    expect(m.json).toMatchObject({ name: 'tiny', versions: ['1', '2'], platform: 'tensorflowjs', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 32, 32, 3] }, { name: 'image', datatype: 'BYTES', shape: [-1] }], outputs: [{ name: 'predictions', datatype: 'FP32', shape: [-1, 3] }] });
    expect((await get('/v2/models/tiny/versions/1')).status).toBe(200);
    expect((await get('/v2/models/tiny/versions/3')).status).toBe(404);
    expect((await get('/v2/models/tiny/ready')).json).toEqual({ name: 'tiny', ready: true });
    expect((await get('/v2/models/tiny/versions/1/ready')).status).toBe(200);
    expect((await get('/v2/models/ghost/ready')).status).toBe(404);
  });

  it('infers from FP32 (flat and nested) and BYTES tensors, echoing the id', async () => {
    const spec = repo.get('tiny', 1)!.manifest.input as ImageInputSpec;
    const x = await imageToInput(jpeg, spec);
    const flat = await postJson('/v2/models/tiny/versions/1/infer', { id: 'req-1', inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: Array.from(x) }] });
    expect(flat.status).toBe(200);
    expect(flat.json).toMatchObject({ model_name: 'tiny', model_version: '1', id: 'req-1', outputs: [{ name: 'predictions', datatype: 'FP32', shape: [1, 3] }] });
    const nested: number[][][][] = [[]];
    for (let h = 0; h < 32; h++) {
      nested[0]!.push([]);
      for (let w = 0; w < 32; w++) nested[0]![h]!.push(Array.from(x.subarray((h * 32 + w) * 3, (h * 32 + w) * 3 + 3)));
    }
    const nest = await postJson('/v2/models/tiny/versions/1/infer', { inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: nested }] });
    expect(nest.json.outputs[0].data).toEqual(flat.json.outputs[0].data);
    const bytes = await postJson('/v2/models/tiny/versions/1/infer', { inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: [jpeg.toString('base64'), png.toString('base64')] }] });
    expect(bytes.status).toBe(200);
    expect(bytes.json.outputs[0].shape).toEqual([2, 3]);
    bytes.json.outputs[0].data.slice(0, 3).forEach((p: number, i: number) => expect(p).toBeCloseTo(flat.json.outputs[0].data[i], 5));
  });

  it('speaks the binary tensor extension both ways', async () => {
    const spec = repo.get('tiny')!.manifest.input as ImageInputSpec;
    const x = await imageToInput(png, spec);
    const bin = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    const img = Buffer.concat([Buffer.from(Uint32Array.of(jpeg.length).buffer), jpeg]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', parameters: { binary_data_size: bin.length } }], outputs: [{ name: 'predictions', parameters: { binary_data: true } }] }));
    const r = await post('/v2/models/tiny/infer', Buffer.concat([header, bin]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
    expect(r.status).toBe(200);
    const hl = Number(r.headers.get('inference-header-content-length'));
    const head = JSON.parse(r.raw.subarray(0, hl).toString());
    expect(head.outputs[0]).toMatchObject({ name: 'predictions', shape: [1, 3], parameters: { binary_data_size: 12 } });
    const probs = new Float32Array(r.raw.subarray(hl).buffer.slice(r.raw.byteOffset + hl, r.raw.byteOffset + hl + 12));
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const h2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: img.length } }] }));
    const r2 = await post('/v2/models/tiny/infer', Buffer.concat([h2, img]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(h2.length) });
    expect(r2.status).toBe(200);
    expect(r2.json.outputs[0].shape).toEqual([1, 3]);
  });

  it('refuses wrong shapes, datatypes, names and malformed requests with 400', async () => {
    const cases: unknown[] = [
      { inputs: [{ name: 'input', shape: [1, 16, 16, 3], datatype: 'FP32', data: new Array(768).fill(0) }] },
      { inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: [1, 2, 3] }] },
      { inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'INT32', data: new Array(3072).fill(0) }] },
      { inputs: [{ name: 'wrong', shape: [1, 32, 32, 3], datatype: 'FP32', data: new Array(3072).fill(0) }] },
      { inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: new Array(3072).fill('x') }] },
      { inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: [jpeg.toString('base64')] }] },
      { inputs: [] },
      { inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: new Array(3072).fill(0) }], outputs: [{ name: 'logits' }] },
    ];
    for (const c of cases) {
      const r = await postJson('/v2/models/tiny/infer', c);
      expect(r.status, JSON.stringify(c).slice(0, 120)).toBe(400);
      expect(typeof r.json.error).toBe('string');
    }
    const h3 = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 4 + jpeg.length } }] }));
    const vendorType = await post('/v2/models/tiny/infer', Buffer.concat([h3, Buffer.from(Uint32Array.of(jpeg.length).buffer), jpeg]), { 'content-type': 'application/vnd.example+json', 'inference-header-content-length': String(h3.length) });
    expect(vendorType.status).toBe(200);
    const noHeader = await post('/v2/models/tiny/infer', Buffer.alloc(10), { 'content-type': 'application/octet-stream' });
    expect(noHeader.status).toBe(400);
    expect((await postJson('/v2/models/ghost/infer', cases[0])).status).toBe(404);
  });
});

describe('TensorFlow Serving REST compatibility', () => {
  it('reports model status and predicts/classifies with b64 instances', async () => {
    const s = await get('/v1/models/tiny');
    expect(s.json.model_version_status.map((v: any) => v.version)).toEqual(['2', '1']);
    expect(s.json.model_version_status[0]).toEqual({ version: '2', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } });
    expect((await get('/v1/models/tiny/versions/1')).json.model_version_status).toHaveLength(1);
    expect((await get('/v1/models/ghost')).status).toBe(404);
    const p = await postJson('/v1/models/tiny:predict', { instances: [{ b64: jpeg.toString('base64') }] });
    expect(p.status).toBe(200);
    expect(p.json.predictions[0]).toHaveLength(3);
    const v1 = await postJson('/v1/models/tiny/versions/1:predict', { inputs: { input: [{ b64: jpeg.toString('base64') }] } });
    expect(v1.status).toBe(200);
    expect(v1.json.outputs[0]).toHaveLength(3);
    const c = await postJson('/v1/models/other:classify', { instances: [{ b64: png.toString('base64') }] });
    expect(c.json.result[0]).toHaveLength(2);
    expect(['a', 'b']).toContain(c.json.result[0][0][0]);
    expect((await postJson('/v1/models/tiny:predict', { instances: [], inputs: [] })).status).toBe(400);
    expect((await postJson('/v1/models/tiny:explode', { instances: [] })).status).toBe(404);
  });
});

describe('metrics, batching and overload', () => {
  it('exports request, latency, batch, queue and model metrics', async () => {
    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/mlctl_requests_total\{protocol="rest",route="\/predict",status="200"\} \d+/);
    expect(m.text).toMatch(/mlctl_requests_total\{protocol="rest",route="\/v2\/models\/:name\/infer",status="400"\}/);
    expect(m.text).toMatch(/mlctl_request_duration_seconds_bucket/);
    expect(m.text).toMatch(/mlctl_inference_duration_seconds_count\{model="tiny",version="2"\} \d+/);
    expect(m.text).toMatch(/mlctl_batch_size_bucket/);
    expect(m.text).toMatch(/mlctl_queue_depth/);
    expect(m.text).toMatch(/mlctl_models_loaded 3/);
  });

  it('gathers concurrent requests into shared batches', async () => {
    const metrics = createServeMetrics({ defaultMetrics: false });
    const r2 = createRepository({ engine: 'tfjs', maxBatch: 8, maxDelayMs: 200, maxQueue: 64, metrics, openEngine: slowEngine(100) });
    await r2.load(path.join(root, 'tiny', '1'));
    const s2 = await startServer(r2, { port: 0, logger: false, metrics });
    try {
      const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: new Array(3072).fill(0.5) }] });
      const res = await Promise.all(Array.from({ length: 8 }, () => fetch(`${s2.url}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })));
      expect(res.every((r) => r.status === 200)).toBe(true);
      const text = await (await fetch(`${s2.url}/metrics`)).text();
      const count = Number(/mlctl_batch_size_count\{model="tiny",version="1"\} (\d+)/.exec(text)![1]);
      const sum = Number(/mlctl_batch_size_sum\{model="tiny",version="1"\} (\d+)/.exec(text)![1]);
      expect(sum).toBe(8);
      expect(count).toBeLessThan(8);
      const single = Number(/mlctl_batch_size_bucket\{le="1",model="tiny",version="1"\} (\d+)/.exec(text)![1]);
      expect(single).toBeLessThan(8);
      // A lone request with nothing else on its way runs at once instead of waiting out --max-delay-ms: with a
      // delay of an hour, the answer arriving at all shows it did not wait for company.
      const r6 = createRepository({ engine: 'tfjs', maxBatch: 8, maxDelayMs: 3_600_000, engineThread: false });
      await r6.load(path.join(root, 'tiny', '1'));
      const batches: number[] = [];
      r6.onBatch((e) => batches.push(e.size));
      const lone = await r6.infer('tiny', undefined, [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: new Float32Array(3072) }], { requestId: 'lone' });
      expect(lone.outputs[0]!.shape).toEqual([1, 3]);
      expect(batches).toEqual([1]);
      await r6.close();
    } finally {
      await s2.shutdown();
    }
  });

  it('answers 503 with Retry-After when the queue is full, without failing the accepted requests', async () => {
    // While a 300 ms batch runs, at most 2 examples may wait; the rest overflow.
    const r3 = createRepository({ engine: 'tfjs', maxBatch: 4, maxDelayMs: 5, maxQueue: 2, openEngine: slowEngine(300) });
    await r3.load(path.join(root, 'tiny', '1'));
    const s3 = await startServer(r3, { port: 0, logger: false });
    try {
      const good = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: new Array(3072).fill(0.1) }] });
      const bad = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: [1] }] });
      const send = (b: string) => fetch(`${s3.url}/v2/models/tiny/infer`, { method: 'POST', body: b, headers: { 'content-type': 'application/json' } });
      const res = await Promise.all(Array.from({ length: 12 }, (_, i) => send(i % 4 === 3 ? bad : good)));
      const codes = res.map((r) => r.status);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0);
      expect(codes.every((c) => c === 200 || c === 503 || c === 400)).toBe(true);
      for (const [i, r] of res.entries()) if (i % 4 === 3) expect(r.status).not.toBe(200);
      const full = res.find((r) => r.status === 503)!;
      expect(full.headers.get('retry-after')).toBe('1');
      expect(((await full.json()) as { error: string }).error).toMatch(/queue is full/);
      // The server keeps serving afterwards.
      expect((await send(good)).status).toBe(200);
    } finally {
      await s3.shutdown();
    }
  });
});

describe('repository and shutdown', () => {
  it('switches the latest version on unload and load', async () => {
    const r4 = createRepository({ engine: 'tfjs', maxBatch: 2, maxDelayMs: 1, engineThread: false });
    await r4.load(path.join(root, 'tiny'));
    expect(r4.list().map((m) => m.version)).toEqual([1, 2]);
    expect(r4.get('tiny')!.version).toBe(2);
    await r4.unload('tiny', 2);
    expect(r4.get('tiny')!.version).toBe(1);
    await r4.load(path.join(root, 'tiny', '2'));
    expect(r4.get('tiny')!.version).toBe(2);
    await expect(r4.load(path.join(root, 'tiny', '2'))).rejects.toThrow(/already loaded/);
    await expect(r4.load(path.join(tmp.dir, 'data'))).rejects.toThrow(/no model package/);
    await r4.close();
    expect(r4.ready()).toBe(false);
  });

  it('finishes in-flight requests on shutdown and refuses new ones', async () => {
    const r5 = createRepository({ engine: 'tfjs', maxBatch: 8, maxDelayMs: 5, openEngine: slowEngine(500) });
    await r5.load(path.join(root, 'tiny', '1'));
    let seen = 0;
    const s5 = await startServer(r5, { port: 0, logger: false, drainTimeoutMs: 5000, onRequest: [async () => void seen++] });
    const inflight = Array.from({ length: 3 }, () => fetch(`${s5.url}/predict`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } }));
    while (seen < 3) await new Promise((r) => setTimeout(r, 10));
    const done = s5.shutdown('test');
    const res = await Promise.all(inflight);
    expect(res.map((r) => r.status)).toEqual([200, 200, 200]);
    const { drained } = await done;
    expect(drained).toBe(true);
    await expect(fetch(`${s5.url}/v2/health/live`)).rejects.toThrow();
  });

  it('gives up on requests that outlast --drain-timeout and still shuts down', async () => {
    const r7 = createRepository({ engine: 'tfjs', maxBatch: 8, maxDelayMs: 5, openEngine: slowEngine(4000) });
    await r7.load(path.join(root, 'tiny', '1'));
    let seen = 0;
    const s7 = await startServer(r7, { port: 0, logger: false, drainTimeoutMs: 300, onRequest: [async () => void seen++] });
    const slow = fetch(`${s7.url}/predict`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } }).then((r) => r.status, () => 'dropped');
    while (seen < 1) await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    const { drained } = await s7.shutdown('test');
    expect(drained).toBe(false);
    expect(performance.now() - t0).toBeLessThan(3500);
    expect(await slow).toBe('dropped');
  });

  it('runs TF.js batches in a worker thread so the event loop keeps turning during inference', async () => {
    const big = await tinyPackage(path.join(tmp.dir, 'big'), { name: 'big', size: 128 });
    const r8 = createRepository({ engine: 'tfjs', maxBatch: 64, maxQueue: 64 });
    await r8.load(big.dir);
    try {
      let done = false;
      let timerSawDone: boolean | undefined;
      const run = r8.infer('big', undefined, [{ name: 'input', datatype: 'FP32', shape: [48, 128, 128, 3], data: new Float32Array(48 * 128 * 128 * 3) }], { requestId: 'thread' });
      setTimeout(() => (timerSawDone = done), 1);
      const res = await run.then((r) => ((done = true), r));
      expect(res.outputs[0]!.shape).toEqual([48, 3]);
      expect(timerSawDone).toBe(false);
    } finally {
      await r8.close();
    }
  });
});

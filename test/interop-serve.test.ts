// mlctl serve as TF Serving and Triton REST clients see it, in their owners' JSON: TF Serving's Classify/Regress
// with tf.Example {"examples"} bodies and GetModelMetadata's SignatureDefs (tensorflow/serving g3doc/api_rest.md,
// util/json_tensor.cc, testdata/*_metadata.json); Triton's model configuration (the config export writes),
// statistics, repository index, classification output and binary tensor extension (server docs/protocol/*.md).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../src/export/index.js';
import { parseTextFormat } from '../src/triton/pbtxt.js';
import { tritonModelConfigType } from '../src/triton/model-config-proto.js';
import { loadPackage } from '../src/artifacts/package.js';
import { trainClassic } from '../src/classic/train.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { serveConfigFromOptions } from '../src/cli/run/serve.js';
import { assembleServe } from '../src/serve/assemble.js';
import { startServer, type RunningServer } from '../src/serve/start.js';
import { createMemoryLogger } from '../src/util/log.js';
import { CLI_DEFAULTS, pngOf } from './serve-security-helpers.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let server: RunningServer;
let url: string;

type Json = any; // responses are checked field by field

async function post(p: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; json: Json }> {
  const res = await fetch(url + p, { method: 'POST', body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: body === undefined ? {} : headers });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
async function get(p: string): Promise<{ status: number; json: Json }> {
  const res = await fetch(url + p);
  return { status: res.status, json: await res.json() };
}
const b64 = (b: Buffer) => b.toString('base64');

/** Rows of a tabular CSV with a numeric target (regression) or a class (classification). */
async function csv(file: string, kind: 'regression' | 'classification'): Promise<void> {
  const rows = ['x1,x2,y'];
  for (let i = 0; i < 60; i++) {
    const a = ((i * 37) % 17) / 17;
    const b = ((i * 11) % 13) / 13;
    rows.push(`${a},${b},${kind === 'regression' ? (2 * a - b + 0.5).toFixed(4) : a + b > 1 ? 'high' : 'low'}`);
  }
  await fs.writeFile(file, rows.join('\n') + '\n');
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-interop-serve-');
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny', seed: 1, labels: ['cat', 'dog', 'bird'] });
  await tinyPackage(root, { name: 'tiny', seed: 3, labels: ['cat', 'dog', 'bird'] });
  await tinyPackage(root, { name: 'spare', seed: 4 });
  for (const kind of ['regression', 'classification'] as const) {
    await csv(path.join(tmp.dir, `${kind}.csv`), kind);
    await trainClassic({ model: kind === 'regression' ? 'linear' : 'logistic', name: kind === 'regression' ? 'reg' : 'cls', data: path.join(tmp.dir, `${kind}.csv`), target: 'y', root, logger: createMemoryLogger() });
  }
  const logger = createMemoryLogger();
  const repo = createRepository({ engine: 'auto', maxBatch: 4, maxDelayMs: 20, maxQueue: 64, logger, metrics: createServeMetrics({ defaultMetrics: false }) });
  // Everything but "spare", which stays on disk for the repository index.
  for (const m of ['tiny', 'reg', 'cls']) await repo.load(path.join(root, m));
  const security = await assembleServe(serveConfigFromOptions(root, { ...CLI_DEFAULTS, ui: false, docs: false } as Parameters<typeof serveConfigFromOptions>[1]), { repo, logger });
  server = await startServer(repo, { port: 0, host: '127.0.0.1', logger: false, topK: 2, plugins: security.plugins });
  url = server.url;
}, 180_000);
afterAll(async () => {
  await server?.shutdown('test done');
  await tmp?.cleanup();
});

/** The shape of TensorFlow Serving's TensorInfo JSON (testdata/half_plus_two_model_metadata.json). */
function expectTensorInfo(t: Json, dtype: string, dims: number[] | undefined): void {
  expect(Object.keys(t).sort()).toEqual(['dtype', 'name', 'tensor_shape']);
  expect(t.dtype).toBe(dtype);
  expect(t.name).toMatch(/:0$/);
  expect(Object.keys(t.tensor_shape).sort()).toEqual(['dim', 'unknown_rank']);
  expect(t.tensor_shape.unknown_rank).toBe(dims === undefined);
  expect(t.tensor_shape.dim).toEqual((dims ?? []).map((d) => ({ size: String(d), name: '' })));
}

describe('TensorFlow Serving REST', () => {
  it('GET …/metadata answers GetModelMetadataResponse with the SignatureDefs, image bytes input included', async () => {
    const { status, json } = await get('/v1/models/tiny/metadata');
    expect(status).toBe(200);
    expect(json.model_spec).toEqual({ name: 'tiny', signature_name: '', version: '2' });
    const sigs = json.metadata.signature_def.signature_def;
    expect(Object.keys(sigs).sort()).toEqual(['serving_default', 'serving_image_bytes', 'tensorflow/serving/classify']);
    for (const s of Object.values(sigs) as Json[]) {
      expect(Object.keys(s).sort()).toEqual(['defaults', 'inputs', 'method_name', 'outputs']);
      expect(s.defaults).toEqual({});
    }
    expect(sigs.serving_default.method_name).toBe('tensorflow/serving/predict');
    expectTensorInfo(sigs.serving_default.inputs.input, 'DT_FLOAT', [-1, 32, 32, 3]);
    expectTensorInfo(sigs.serving_default.outputs.predictions, 'DT_FLOAT', [-1, 3]);
    expectTensorInfo(sigs.serving_image_bytes.inputs.image_bytes, 'DT_STRING', [-1]);
    expect(sigs['tensorflow/serving/classify'].method_name).toBe('tensorflow/serving/classify');
    expectTensorInfo(sigs['tensorflow/serving/classify'].inputs.inputs, 'DT_STRING', undefined);
    expectTensorInfo(sigs['tensorflow/serving/classify'].outputs.classes, 'DT_STRING', [-1, 2]);
    expectTensorInfo(sigs['tensorflow/serving/classify'].outputs.scores, 'DT_FLOAT', [-1, 2]);

    const v1 = await get('/v1/models/tiny/versions/1/metadata');
    expect(v1.json.model_spec.version).toBe('1');
    const reg = await get('/v1/models/reg/metadata');
    const regress = reg.json.metadata.signature_def.signature_def['tensorflow/serving/regress'];
    expect(regress.method_name).toBe('tensorflow/serving/regress');
    expectTensorInfo(regress.outputs.outputs, 'DT_FLOAT', [-1, 1]);
    // Classic models call their input "features" (their manifest's name), in every protocol alike.
    expectTensorInfo(reg.json.metadata.signature_def.signature_def.serving_default.inputs.features, 'DT_FLOAT', [-1, 2]);
    expect((await get('/v1/models/tiny/labels/stable/metadata')).status).toBe(404);
    expect((await get('/v1/models/nope/metadata')).json.error).toMatch(/nope/);
  });

  it(':classify takes tf.Example {"examples"} with the image as {"b64"}, and answers like :predict', async () => {
    const imgs = [await pngOf(200, 30, 90), await pngOf(20, 200, 40)];
    const predicted = await post('/v1/models/tiny:predict', { instances: imgs.map((b) => ({ b64: b64(b) })) });
    expect(predicted.status).toBe(200);
    const classified = await post('/v1/models/tiny:classify', { signature_name: 'tensorflow/serving/classify', examples: imgs.map((b) => ({ image: { b64: b64(b) }, caption: 'ignored' })) });
    expect(classified.status, JSON.stringify(classified.json)).toBe(200);
    const labels = ['cat', 'dog', 'bird'];
    const expected = predicted.json.predictions.map((row: number[]) =>
      row
        .map((score, i) => [labels[i], score])
        .sort((a, b) => (b[1] as number) - (a[1] as number))
        .slice(0, 2),
    );
    // "results" as tensorflow_model_server writes it (json_tensor.cc); "result" as api_rest.md's format section has it.
    expect(classified.json.results).toEqual(expected);
    expect(classified.json.result).toEqual(expected);
    // Context features are shared by every example; the feature named as the model input works too.
    const ctx = await post('/v1/models/tiny/versions/2:classify', { context: { input: { b64: b64(imgs[0]!) } }, examples: [{ note: 'a' }, { note: 'b' }] });
    expect(ctx.json.results).toEqual([expected[0], expected[0]]);
  });

  it(':predict follows the metadata: serving_image_bytes takes the image_bytes tensor; unknown signatures are refused', async () => {
    const { json: meta } = await get('/v1/models/tiny/metadata');
    const sig = 'serving_image_bytes';
    const [inputName] = Object.keys(meta.metadata.signature_def.signature_def[sig].inputs);
    const img = await pngOf(40, 160, 220);
    const plain = await post('/v1/models/tiny:predict', { instances: [{ b64: b64(img) }] });
    const rows = await post('/v1/models/tiny:predict', { signature_name: sig, instances: [{ [inputName!]: { b64: b64(img) } }] });
    expect(rows.status, JSON.stringify(rows.json)).toBe(200);
    expect(rows.json.predictions).toEqual(plain.json.predictions);
    const columns = await post('/v1/models/tiny:predict', { signature_name: sig, inputs: { [inputName!]: [{ b64: b64(img) }] } });
    expect(columns.json.outputs).toEqual(plain.json.predictions);
    const bogus = await post('/v1/models/tiny:predict', { signature_name: 'serving_bogus', instances: [{ b64: b64(img) }] });
    expect(bogus.status).toBe(400);
    expect(bogus.json.error).toMatch(/Serving signature name: "serving_bogus" not found in signature def.*serving_default or serving_image_bytes/);
    // Tabular models have no image signature.
    const tab = await post('/v1/models/reg:predict', { signature_name: sig, instances: [{ x1: 1, x2: 2 }] });
    expect(tab.status).toBe(400);
    expect(tab.json.error).toMatch(/:predict takes serving_default \(/);
  });

  it(':classify and :regress on tabular models read tf.Example features by column name', async () => {
    const rows = [{ x1: 0.2, x2: 0.7 }, { x1: 0.9, x2: 0.1 }];
    const reg = await post('/v1/models/reg:regress', { examples: rows.map((r) => ({ x1: [r.x1], x2: r.x2 })) });
    expect(reg.status, JSON.stringify(reg.json)).toBe(200);
    const direct = await post('/predict?model=reg', { instances: rows });
    expect(reg.json.results).toEqual(direct.json.predictions.map((p: number[]) => p[0]));
    for (let i = 0; i < 2; i++) expect(reg.json.results[i]).toBeCloseTo(2 * rows[i]!.x1 - rows[i]!.x2 + 0.5, 1);
    const cls = await post('/v1/models/cls:classify', { context: { x2: 0.9 }, examples: [{ x1: 0.9 }, { x1: 0.05 }] });
    expect(cls.status, JSON.stringify(cls.json)).toBe(200);
    expect(cls.json.results.map((r: Array<[string, number]>) => r[0]![0])).toEqual(['high', 'low']);
  });

  it('refuses what TF Serving refuses, with a message saying what to send', async () => {
    const img = { b64: b64(await pngOf(1, 2, 3)) };
    const cases: Array<[string, unknown, RegExp]> = [
      ['/v1/models/tiny:classify', { examples: [] }, /"examples" must be a non-empty list/],
      ['/v1/models/tiny:classify', { context: { image: img }, examples: [{ image: img }] }, /also in "context"/],
      ['/v1/models/tiny:classify', { examples: [{ a: img, b: img }] }, /2 binary features/],
      ['/v1/models/tiny:classify', { signature_name: 'bogus', examples: [{ image: img }] }, /no classify signature "bogus"; its signatures are serving_default, serving_image_bytes, tensorflow\/serving\/classify/],
      ['/v1/models/tiny:classify', { examples: [{ image: img }], instances: [img] }, /exclusive/],
      ['/v1/models/tiny:regress', { examples: [{ image: img }] }, /is a classifier: use :classify/],
      ['/v1/models/reg:classify', { examples: [{ x1: 1, x2: 2 }] }, /regression model: use :regress/],
      ['/v1/models/reg:regress', { examples: [{ x1: [1, 2], x2: 2 }] }, /has 2 values; a column takes one/],
      ['/v1/models/reg:regress', { examples: [{ x1: 1 }] }, /x2/],
      ['/v1/models/tiny:explain', { examples: [{ image: img }] }, /use :predict, :classify or :regress/],
    ];
    for (const [route, body, message] of cases) {
      const r = await post(route, body);
      expect(r.status, route).toBeGreaterThanOrEqual(400);
      expect(r.status, route).toBeLessThan(500);
      expect(r.json.error, JSON.stringify(body)).toMatch(message);
    }
  });
});

describe('Triton REST extensions', () => {
  it('GET /v2 names the extensions; model metadata lists the BYTES image input beside the FP32 tensor', async () => {
    const meta = await get('/v2');
    for (const e of ['binary_tensor_data', 'classification', 'model_configuration', 'model_repository', 'statistics']) expect(meta.json.extensions).toContain(e);
    const m = await get('/v2/models/tiny');
    expect(m.json.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [-1, 32, 32, 3] },
      { name: 'image', datatype: 'BYTES', shape: [-1] },
    ]);
    // and the BYTES input it lists is one the server takes
    const img = await pngOf(100, 100, 100);
    const r = await post('/v2/models/tiny/infer', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [b64(img)] }] });
    expect(r.status).toBe(200);
    expect((await get('/v2/models/reg')).json.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 2] }]);
  });

  it('GET …/config is the ModelConfig export --format triton writes for the same package and batching', async () => {
    const repo = path.join(tmp.dir, 'triton');
    const pkg = await loadPackage(path.join(root, 'tiny', '2'));
    await exportModel(pkg, { format: 'triton', out: repo, maxBatch: 4, queueDelayUs: 20_000 });
    const written = parseTextFormat(tritonModelConfigType(), await fs.readFile(path.join(repo, 'tiny', 'config.pbtxt'), 'utf8'));
    const served = await get('/v2/models/tiny/config');
    expect(served.status).toBe(200);
    // The platform is what serves it here (the repository runs TF.js in this test); everything else is the file's.
    const { platform, ...rest } = served.json;
    const { platform: exportedPlatform, ...expected } = written;
    expect(rest).toEqual(expected);
    expect(exportedPlatform).toBe('onnxruntime_onnx');
    expect(typeof platform).toBe('string');
    expect(served.json).toMatchObject({ name: 'tiny', max_batch_size: 4, input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NHWC', dims: [32, 32, 3] }], dynamic_batching: { max_queue_delay_microseconds: 20000 } });
    expect((await get('/v2/models/tiny/versions/1/config')).json.name).toBe('tiny');
    expect((await get('/v2/models/tiny/versions/9/config')).status).toBe(404);
  });

  it('classification: BYTES [batch, k] of "score:index:label", JSON and binary', async () => {
    const x = Array.from({ length: 2 * 32 * 32 * 3 }, (_, i) => ((i * 7919) % 255) - 120);
    const plain = await post('/v2/models/tiny/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 32, 32, 3], data: x }] });
    const probs: number[][] = [plain.json.outputs[0].data.slice(0, 3), plain.json.outputs[0].data.slice(3, 6)];
    const labels = ['cat', 'dog', 'bird'];
    const want = probs.flatMap((row) =>
      row
        .map((p, i) => ({ p, i }))
        .sort((a, b) => b.p - a.p || a.i - b.i)
        .slice(0, 2)
        .map(({ p, i }) => `${Math.fround(p).toFixed(6)}:${i}:${labels[i]}`),
    );
    const r = await post('/v2/models/tiny/infer', { id: 'c1', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 32, 32, 3], data: x }], outputs: [{ name: 'predictions', parameters: { classification: 2 } }] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ id: 'c1', outputs: [{ name: 'predictions', datatype: 'BYTES', shape: [2, 2], data: want }] });
    for (const s of r.json.outputs[0].data as string[]) expect(s).toMatch(/^\d\.\d{6}:[0-2]:(cat|dog|bird)$/);

    // Binary output: each element a 4-byte little-endian length, then the string.
    const bin = await fetch(`${url}/v2/models/tiny/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 32, 32, 3], data: x }], outputs: [{ name: 'predictions', parameters: { classification: 2, binary_data: true } }] }),
    });
    const buf = Buffer.from(await bin.arrayBuffer());
    const headerLength = Number(bin.headers.get('inference-header-content-length'));
    const head = JSON.parse(buf.subarray(0, headerLength).toString('utf8'));
    expect(head.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: [2, 2], parameters: { binary_data_size: buf.length - headerLength } });
    const strings: string[] = [];
    for (let off = headerLength; off < buf.length; ) {
      const n = buf.readUInt32LE(off);
      strings.push(buf.subarray(off + 4, off + 4 + n).toString('utf8'));
      off += 4 + n;
    }
    expect(strings).toEqual(want);
    const bad = await post('/v2/models/tiny/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: x.slice(0, 3072) }], outputs: [{ name: 'predictions', parameters: { classification: -1 } }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/classification must be a whole number/);
  });

  it('a binary-extension body is read by Inference-Header-Content-Length whatever its Content-Type says', async () => {
    const x = Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (i % 255) - 100);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], parameters: { binary_data_size: x.byteLength } }] }));
    const body = Buffer.concat([header, Buffer.from(x.buffer)]);
    const ref = await post('/v2/models/tiny/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: Array.from(x) }] });
    for (const type of ['application/json', 'application/octet-stream', 'text/plain']) {
      const r = await post('/v2/models/tiny/infer', body, { 'content-type': type, 'inference-header-content-length': String(header.length) });
      expect(r.status, `${type}: ${JSON.stringify(r.json)}`).toBe(200);
      expect(r.json.outputs[0].data).toEqual(ref.json.outputs[0].data);
    }
    // Plain JSON without the header is still plain JSON.
    expect((await post('/v2/models/tiny/infer', { inputs: [] })).json.error).toMatch(/inputs/);
  });

  it('GET …/stats: requests, examples, executions by batch size and their durations in ns', async () => {
    const before = (await get('/v2/models/tiny/versions/2/stats')).json.model_stats[0];
    const x = (n: number) => Array.from({ length: n * 32 * 32 * 3 }, (_, i) => (i % 200) - 100);
    // Four concurrent requests of 1 example (batched together within --max-delay-ms), one of 2, one that fails.
    const ok = await Promise.all([1, 1, 1, 1, 2].map((n) => post('/v2/models/tiny/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 32, 32, 3], data: x(n) }] })));
    for (const r of ok) expect(r.status).toBe(200);
    expect((await post('/v2/models/tiny/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 2], data: x(1).slice(0, 2048) }] })).status).toBe(400);
    const { json } = await get('/v2/models/tiny/versions/2/stats');
    expect(json.model_stats).toHaveLength(1);
    const s = json.model_stats[0];
    expect(s).toMatchObject({ name: 'tiny', version: '2' });
    // The fields of $model_stat (extension_statistics.md), no more, no fewer.
    expect(Object.keys(s).sort()).toEqual(['batch_stats', 'execution_count', 'inference_count', 'inference_stats', 'last_inference', 'memory_usage', 'name', 'response_stats', 'version']);
    expect(Object.keys(s.inference_stats).sort()).toEqual(['cache_hit', 'cache_miss', 'compute_infer', 'compute_input', 'compute_output', 'fail', 'queue', 'success']);
    const d = (k: string) => s.inference_stats[k].count - (before?.inference_stats[k].count ?? 0);
    expect(d('success')).toBe(5);
    expect(d('fail')).toBe(1);
    expect(d('queue')).toBe(5);
    expect(d('compute_infer')).toBe(5);
    expect(s.inference_count - (before?.inference_count ?? 0)).toBe(6);
    const executions = s.execution_count - (before?.execution_count ?? 0);
    expect(executions).toBeGreaterThanOrEqual(2); // 6 examples, batches of at most 4
    expect(executions).toBeLessThanOrEqual(5);
    // Every example ran in exactly one execution: Σ batch_size × executions at that size = examples.
    const examples = (stats: Json) => (stats?.batch_stats ?? []).reduce((a: number, b: Json) => a + b.batch_size * b.compute_infer.count, 0);
    expect(examples(s) - examples(before)).toBe(6);
    expect(s.inference_stats.success.ns).toBeGreaterThan(s.inference_stats.compute_infer.ns - 1);
    expect(s.inference_stats.compute_infer.ns).toBeGreaterThan(0);
    expect(s.last_inference).toBeGreaterThan(Date.now() - 60_000);
    // All models; one model's versions; a model that is not loaded.
    const all = (await get('/v2/models/stats')).json.model_stats.map((m: Json) => `${m.name}@${m.version}`);
    expect(all).toEqual(['cls@1', 'reg@1', 'tiny@1', 'tiny@2']);
    expect((await get('/v2/models/tiny/stats')).json.model_stats.map((m: Json) => m.version)).toEqual(['1', '2']);
    expect((await get('/v2/models/spare/stats')).status).toBe(404);
  });

  it('POST /v2/repository/index lists loaded and on-disk versions (no model control needed); load/unload need it', async () => {
    const index = await post('/v2/repository/index', undefined);
    expect(index.status).toBe(200);
    expect(index.json).toContainEqual({ name: 'tiny', version: '2', state: 'READY' });
    expect(index.json).toContainEqual({ name: 'spare', version: '1', state: 'UNAVAILABLE', reason: 'not loaded' });
    const ready = await post('/v2/repository/index', { ready: true });
    expect(ready.json.every((e: Json) => e.state === 'READY')).toBe(true);
    expect(ready.json.map((e: Json) => e.name)).not.toContain('spare');
    const bad = await post('/v2/repository/index', { ready: 'yes' });
    expect(bad.status).toBe(400);
    const load = await post('/v2/repository/models/spare/load', {});
    expect(load.status).toBe(403);
    expect(load.json.code).toBe('MODEL_CONTROL_DISABLED');
  });
});

// A generic tensor model served by its tensors: a real two-input, two-output ONNX model with mixed datatypes
// (FP32 + INT64 in, FP32 + BOOL out), built with mlctl's own ONNX builders and packaged around the bare file, served
// over V2 REST (JSON and the binary extension), V2 gRPC (typed contents and raw contents), TF Serving and Triton's
// config — every answer checked against onnxruntime-node run directly on the same inputs. A second model without a
// batch dimension runs unbatched.
import * as ort from 'onnxruntime-node';
import * as grpc from '@grpc/grpc-js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { saveTensorModelPackage } from '../src/artifacts/tensor-model.js';
import { onnxTensors } from '../src/engines/onnx.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { startGrpcServer, type GrpcServerHandle } from '../src/serve/grpc/server.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { buildServer } from '../src/serve/server.js';
import type { ModelRepository } from '../src/serve/types.js';
import { tempDir } from './helpers/fixtures.js';
import { fixedModel, mixedModel } from './helpers/tensor-models.js';
import { onnxCheck, tools } from './helpers/tools.js';

type Any = Record<string, any>;

let tmp: { dir: string; cleanup: () => Promise<void> };
let modelFile: string;
let direct: ort.InferenceSession;
let repo: ModelRepository;
let app: FastifyInstance;
let grpcServer: GrpcServerHandle;
let client: grpc.Client;

const x = Float32Array.from([1, -2, 0.25, 3, -1, 0.5, 4, -0.75, 2, 2, -2, 1]);
const k = BigInt64Array.from([2n, -1n, 3n]);
const N = 3;

/** What onnxruntime-node answers for x[rows], k[rows] on the model file itself. */
async function reference(rows = N, xs = x, ks = k): Promise<{ y: Float32Array; flag: Uint8Array }> {
  const out = await direct.run({ x: new ort.Tensor('float32', xs.subarray(0, rows * 4), [rows, 4]), k: new ort.Tensor('int64', ks.subarray(0, rows), [rows, 1]) });
  return { y: out.y!.data as Float32Array, flag: out.flag!.data as Uint8Array };
}

function call(method: string, req: Any): Promise<Any> {
  return new Promise((resolve, reject) => {
    (client as any)[method](req, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: Any) => (err ? reject(err) : resolve(res)));
  });
}

async function postJson(url: string, body: unknown) {
  const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.statusCode, json: res.json() as Any };
}

const jsonInputs = (rows = N) => [
  { name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from(x.subarray(0, rows * 4)) },
  { name: 'k', datatype: 'INT64', shape: [rows, 1], data: Array.from(k.subarray(0, rows), Number) },
];

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-tensors-');
  const bytes = mixedModel();
  modelFile = path.join(tmp.dir, 'mixed.onnx');
  await fs.writeFile(modelFile, bytes);
  direct = await ort.InferenceSession.create(bytes);
  const root = path.join(tmp.dir, 'models');
  await saveTensorModelPackage({ name: 'mixed', root, onnx: bytes, tensors: await onnxTensors(bytes), origin: modelFile });
  const fixed = fixedModel();
  await saveTensorModelPackage({ name: 'fixed', root, onnx: fixed, tensors: await onnxTensors(fixed) });
  repo = createRepository({ engine: 'onnx', maxBatch: 8, maxDelayMs: 20, metrics: createServeMetrics({ defaultMetrics: false }) });
  await repo.load(root);
  app = buildServer(repo, { logger: false });
  await app.ready();
  grpcServer = await startGrpcServer({ repo, port: 0 });
  const Client = predictV2Service();
  client = new Client(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await grpcServer?.close(1000);
  await app?.close();
  await direct?.release();
  await tmp?.cleanup();
});

describe('a generic tensor model package', () => {
  it.skipIf(!tools.pythonOnnx)('is built from a real ONNX file that onnx.checker accepts', () => {
    expect(onnxCheck(modelFile).stderr).toBe('');
  });

  it('records the tensors the model declares, with no task, labels or preprocessing', async () => {
    const pkg = await loadPackage(path.join(tmp.dir, 'models', 'mixed'));
    expect(pkg.manifest.task).toBeUndefined();
    expect(pkg.manifest.labels).toEqual([]);
    expect(pkg.manifest.formats).toEqual({ onnx: 'model.onnx' });
    expect(pkg.manifest.input).toEqual({ kind: 'tensors', tensors: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }, { name: 'k', datatype: 'INT64', shape: [-1, 1] }] });
    expect(pkg.manifest.output).toEqual({ kind: 'tensors', tensors: [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }, { name: 'flag', datatype: 'BOOL', shape: [-1, 4] }] });
    expect(pkg.manifest.lineage[0]).toMatchObject({ op: 'import', params: { origin: modelFile } });
  });
});

describe('V2 metadata lists every input and output as the model declares them', () => {
  const inputs = [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }, { name: 'k', datatype: 'INT64', shape: [-1, 1] }];
  const outputs = [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }, { name: 'flag', datatype: 'BOOL', shape: [-1, 4] }];

  it('over REST', async () => {
    const res = await app.inject({ method: 'GET', url: '/v2/models/mixed' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'mixed', versions: ['1'], platform: 'onnxruntime_onnx', inputs, outputs });
  });

  it('over gRPC (ModelMetadata)', async () => {
    const res = await call('ModelMetadata', { name: 'mixed', version: '' });
    expect(res).toMatchObject({ name: 'mixed', platform: 'onnxruntime_onnx', inputs, outputs });
  });

  it("in Triton's model configuration (REST and gRPC), with max_batch_size 0 for a model without a batch dimension", async () => {
    const cfg = (await app.inject({ method: 'GET', url: '/v2/models/mixed/config' })).json() as Any;
    expect(cfg.max_batch_size).toBe(8);
    expect(cfg.input).toEqual([{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }, { name: 'k', data_type: 'TYPE_INT64', dims: [1] }]);
    expect(cfg.output).toEqual([{ name: 'y', data_type: 'TYPE_FP32', dims: [4] }, { name: 'flag', data_type: 'TYPE_BOOL', dims: [4] }]);
    const viaGrpc = await call('ModelConfig', { name: 'mixed', version: '' });
    expect(viaGrpc.config.input.map((t: Any) => [t.name, t.data_type, t.dims])).toEqual([['x', 'TYPE_FP32', [4]], ['k', 'TYPE_INT64', [1]]]);
    const fixed = (await app.inject({ method: 'GET', url: '/v2/models/fixed/config' })).json() as Any;
    expect(fixed.max_batch_size).toBe(0);
    expect(fixed.dynamic_batching).toBeUndefined();
    expect(fixed.input).toEqual([{ name: 'w', data_type: 'TYPE_FP32', dims: [2, 3] }]);
  });

  it("in TF Serving's SignatureDefs", async () => {
    const res = (await app.inject({ method: 'GET', url: '/v1/models/mixed/metadata' })).json() as Any;
    const sig = res.metadata.signature_def.signature_def;
    expect(Object.keys(sig)).toEqual(['serving_default']);
    const info = (t: Any) => [t.dtype, t.tensor_shape.dim.map((d: Any) => Number(d.size))];
    expect(Object.fromEntries(Object.entries(sig.serving_default.inputs as Record<string, Any>).map(([n, t]) => [n, info(t)]))).toEqual({ x: ['DT_FLOAT', [-1, 4]], k: ['DT_INT64', [-1, 1]] });
    expect(Object.fromEntries(Object.entries(sig.serving_default.outputs as Record<string, Any>).map(([n, t]) => [n, info(t)]))).toEqual({ y: ['DT_FLOAT', [-1, 4]], flag: ['DT_BOOL', [-1, 4]] });
  });
});

describe('inference equals onnxruntime-node run directly', () => {
  it('V2 REST with JSON data (INT64 as numbers, BOOL as true/false)', async () => {
    const want = await reference();
    const r = await postJson('/v2/models/mixed/infer', { id: 'mixed-1', inputs: jsonInputs() });
    expect(r.status).toBe(200);
    expect(r.json.id).toBe('mixed-1');
    expect(r.json.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [N, 4], data: Array.from(want.y) },
      { name: 'flag', datatype: 'BOOL', shape: [N, 4], data: Array.from(want.flag, (v) => v === 1) },
    ]);
    // Both values of the BOOL output occur, so the comparison above could fail either way.
    expect(new Set(want.flag).size).toBe(2);
  });

  it('V2 REST with the binary tensor extension, in and out', async () => {
    const want = await reference();
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [N, 4], parameters: { binary_data_size: x.byteLength } },
          { name: 'k', datatype: 'INT64', shape: [N, 1], parameters: { binary_data_size: k.byteLength } },
        ],
        parameters: { binary_data_output: true },
      }),
    );
    const body = Buffer.concat([header, Buffer.from(x.buffer), Buffer.from(k.buffer)]);
    const res = await app.inject({ method: 'POST', url: '/v2/models/mixed/infer', payload: body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
    expect(res.statusCode).toBe(200);
    const raw = res.rawPayload;
    const len = Number(res.headers['inference-header-content-length']);
    const head = JSON.parse(raw.subarray(0, len).toString('utf8')) as Any;
    expect(head.outputs.map((o: Any) => [o.name, o.datatype, o.shape, o.parameters.binary_data_size])).toEqual([['y', 'FP32', [N, 4], 4 * N * 4], ['flag', 'BOOL', [N, 4], N * 4]]);
    const yBytes = raw.subarray(len, len + 4 * N * 4);
    const flagBytes = raw.subarray(len + 4 * N * 4);
    expect(Array.from(new Float32Array(Uint8Array.from(yBytes).buffer))).toEqual(Array.from(want.y));
    expect(Array.from(flagBytes)).toEqual(Array.from(want.flag));
  });

  it('V2 gRPC ModelInfer with typed contents (fp32_contents, int64_contents → bool_contents)', async () => {
    const want = await reference();
    const res = await call('ModelInfer', {
      model_name: 'mixed',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [N, 4], contents: { fp32_contents: Array.from(x) } },
        { name: 'k', datatype: 'INT64', shape: [N, 1], contents: { int64_contents: Array.from(k, Number) } },
      ],
    });
    expect(res.raw_output_contents).toEqual([]);
    expect(res.outputs.map((o: Any) => [o.name, o.datatype, o.shape])).toEqual([['y', 'FP32', [N, 4]], ['flag', 'BOOL', [N, 4]]]);
    expect(res.outputs[0].contents.fp32_contents).toEqual(Array.from(want.y));
    expect(res.outputs[1].contents.bool_contents).toEqual(Array.from(want.flag, (v) => v === 1));
  });

  it('V2 gRPC ModelInfer with raw_input_contents → raw_output_contents', async () => {
    const want = await reference();
    const res = await call('ModelInfer', {
      model_name: 'mixed',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [N, 4] },
        { name: 'k', datatype: 'INT64', shape: [N, 1] },
      ],
      raw_input_contents: [Buffer.from(x.buffer), Buffer.from(k.buffer)],
    });
    expect(res.raw_output_contents).toHaveLength(2);
    expect(Array.from(new Float32Array(Uint8Array.from(res.raw_output_contents[0]).buffer))).toEqual(Array.from(want.y));
    expect(Array.from(res.raw_output_contents[1] as Buffer)).toEqual(Array.from(want.flag));
  });

  it('TF Serving :predict in row and columnar form', async () => {
    const want = await reference(2);
    const rows = await postJson('/v1/models/mixed:predict', { instances: [0, 1].map((i) => ({ x: Array.from(x.subarray(i * 4, i * 4 + 4)), k: [Number(k[i])] })) });
    expect(rows.status).toBe(200);
    expect(rows.json.predictions).toEqual([0, 1].map((i) => ({ y: Array.from(want.y.subarray(i * 4, i * 4 + 4)), flag: Array.from(want.flag.subarray(i * 4, i * 4 + 4), (v) => v === 1) })));
    const cols = await postJson('/v1/models/mixed:predict', { inputs: { x: [0, 1].map((i) => Array.from(x.subarray(i * 4, i * 4 + 4))), k: [[Number(k[0])], [Number(k[1])]] } });
    expect(cols.status).toBe(200);
    expect(cols.json.outputs.y).toEqual([0, 1].map((i) => Array.from(want.y.subarray(i * 4, i * 4 + 4))));
    expect(cols.json.outputs.flag).toEqual([0, 1].map((i) => Array.from(want.flag.subarray(i * 4, i * 4 + 4), (v) => v === 1)));
  });

  it('concurrent requests of different sizes are batched and each gets its own rows back', async () => {
    const sizes = [1, 3, 2, 1];
    const seen: number[] = [];
    const stop = repo.onBatch((e) => e.name === 'mixed' && seen.push(e.size));
    const answers = await Promise.all(sizes.map((n) => postJson('/v2/models/mixed/infer', { inputs: jsonInputs(n) })));
    stop();
    for (const [i, n] of sizes.entries()) {
      const want = await reference(n);
      expect(answers[i]!.status).toBe(200);
      expect(answers[i]!.json.outputs[0].data).toEqual(Array.from(want.y));
      expect(answers[i]!.json.outputs[1].data).toEqual(Array.from(want.flag, (v) => v === 1));
    }
    expect(seen.reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('a model without a batch dimension runs each request on its own', async () => {
    const w = [1, 2, 3, -4, 5, -6];
    const rs = await Promise.all([w, w.map((v) => -v)].map((data) => postJson('/v2/models/fixed/infer', { inputs: [{ name: 'w', datatype: 'FP32', shape: [2, 3], data }] })));
    expect(rs.map((r) => r.json.outputs[0].data)).toEqual([w.map((v) => 2 * v), w.map((v) => -2 * v)]);
    expect((await app.inject({ method: 'GET', url: '/v2/models/fixed' })).json()).toMatchObject({ inputs: [{ name: 'w', datatype: 'FP32', shape: [2, 3] }] });
  });
});

describe('requests are checked against the declared tensors', () => {
  it('refuses a wrong datatype, a missing or unknown input, a wrong shape and mismatched batches with 400 naming the tensors', async () => {
    const [xIn, kIn] = jsonInputs(2);
    const cases: Array<[unknown[], RegExp]> = [
      [[xIn, { ...kIn, datatype: 'FP32' }], /input k has datatype FP32; model mixed takes k INT64 \[-1, 1\]/],
      [[xIn], /model mixed needs input k INT64 \[-1, 1\]/],
      [[xIn, kIn, { name: 'z', datatype: 'FP32', shape: [1], data: [1] }], /has no input "z"; its inputs are x FP32 \[-1, 4\], k INT64 \[-1, 1\]/],
      [[{ ...xIn, shape: [4, 2] }, kIn], /input x has shape \[4, 2\]; model mixed takes x FP32 \[-1, 4\]/],
      [[xIn, { name: 'k', datatype: 'INT64', shape: [1, 1], data: [1] }], /every input carries the same examples/],
      [[xIn, { ...kIn, data: [1.5, 2] }], /not an integer/],
    ];
    for (const [inputs, msg] of cases) {
      const r = await postJson('/v2/models/mixed/infer', { inputs });
      expect(r.status, JSON.stringify(inputs).slice(0, 100)).toBe(400);
      expect(r.json.error).toMatch(msg);
    }
    const grpcErr = await call('ModelInfer', { model_name: 'mixed', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }).catch((e: grpc.ServiceError) => e);
    expect((grpcErr as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((grpcErr as grpc.ServiceError).details).toMatch(/needs input k INT64/);
  });

  it('answers /predict and :classify for a generic model with 400 pointing at the tensor routes', async () => {
    const p = await postJson('/predict?model=mixed', { instances: [[1, 2, 3, 4]] });
    expect([p.status, p.json.code]).toEqual([400, 'TASK_REQUIRED']);
    expect(p.json.error).toMatch(/mixed v1 has none: it is a generic tensor model, served with its own named tensors over KServe V2/);
    const c = await postJson('/v1/models/mixed:classify', { instances: [{ x: [1, 2, 3, 4], k: [1] }] });
    expect(c.status).toBe(400);
  });
});

// The V2 gRPC service (inference.GRPCInferenceService) through a client generated from the same proto, against a
// real server on an ephemeral loopback port: health, metadata, FP32/BYTES inference (raw and typed), errors, auth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import sharp from 'sharp';
import { loadPackage } from '../src/artifacts/package.js';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { sha256 } from '../src/artifacts/hash.js';
import { imageToInput } from '../src/data/preprocess.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { joinRawBytes, floatsFromRaw, floatsToRaw } from '../src/serve/grpc/convert.js';
import { healthService, predictV2Service } from '../src/serve/grpc/proto.js';
import { toGrpcError } from '../src/serve/grpc/server.js';
import { MlctlError } from '../src/errors.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';
import { runFloat } from '../src/runtime/float.js';

const KEY = 'grpc-test-key-0123456789';
const KEY_OTHER = 'grpc-other-key-0123456789';

let tmp: { dir: string; cleanup: () => Promise<void> };
let srv: SecureServer;
let client: grpc.Client;
let engine: InferenceEngine;
let spec: ImageInputSpec;
let auditFile: string;

type Any = Record<string, any>;

/** `key` null sends no key. */
function call(method: string, req: Any, key: string | null = KEY, c: grpc.Client = client): Promise<Any> {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return new Promise((resolve, reject) => {
    (c as any)[method](req, md, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: Any) => (err ? reject(err) : resolve(res)));
  });
}

/** Without `key` the call carries no key. */
async function callError(method: string, req: Any, key?: string): Promise<grpc.ServiceError> {
  try {
    await call(method, req, key ?? null);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`${method} unexpectedly succeeded`);
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-grpc-');
  const root = path.join(tmp.dir, 'models');
  const pkg = await tinyPackage(root, { name: 'tiny' });
  await tinyPackage(root, { name: 'other', seed: 9 });
  auditFile = path.join(tmp.dir, 'audit.jsonl');
  srv = await startSecureServer(root, { grpcPort: 0, apiKey: `ci:${KEY},o:${KEY_OTHER}@other`, auditLog: auditFile });
  const Client = predictV2Service();
  client = new Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  engine = await openEngine(await loadPackage(pkg.dir), { engine: 'tfjs' });
  spec = pkg.manifest.input as ImageInputSpec;
});

afterAll(async () => {
  client?.close();
  await engine?.dispose();
  await srv?.close();
  await tmp?.cleanup();
});

function randomInput(n: number, seed: number): Float32Array {
  const x = new Float32Array(n * spec.height * spec.width * 3);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = (s / 2 ** 32) * 255 - 120;
  }
  return x;
}

describe('gRPC health and metadata', () => {
  it('answers ServerLive and ServerReady without a key; ModelReady needs one (model names are not listed to anyone)', async () => {
    expect(await call('ServerLive', {}, null)).toEqual({ live: true });
    expect(await call('ServerReady', {}, null)).toEqual({ ready: true });
    expect((await callError('ModelReady', { name: 'tiny', version: '' })).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await call('ModelReady', { name: 'tiny', version: '' })).toEqual({ ready: true });
    expect((await callError('ModelReady', { name: 'nope', version: '' }, KEY)).code).toBe(grpc.status.NOT_FOUND);
  });

  it('implements grpc.health.v1 Check (Kubernetes gRPC probes) without a key', async () => {
    const Health = healthService();
    const h = new Health(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<Any>((resolve, reject) => (h as any).Check({ service }, (e: Error | null, r: Any) => (e ? reject(e) : resolve(r))));
    try {
      expect(await check('')).toEqual({ status: 'SERVING' });
      expect(await check('inference.GRPCInferenceService')).toEqual({ status: 'SERVING' });
      await expect(check('nope.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      h.close();
    }
  });

  it('ServerMetadata and ModelMetadata need a key and describe the model as REST does', async () => {
    expect((await callError('ServerMetadata', {}, undefined)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await callError('ServerMetadata', {}, 'wrong-key-0123456789abc')).code).toBe(grpc.status.UNAUTHENTICATED);
    const meta = await call('ServerMetadata', {});
    expect(meta.name).toBe('mlctl');
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+/);
    const md = await call('ModelMetadata', { name: 'tiny', version: '' });
    expect(md.name).toBe('tiny');
    expect(md.versions).toEqual(['1']);
    expect(md.inputs).toEqual([{ name: spec.name, datatype: 'FP32', shape: [-1, spec.height, spec.width, 3] }, { name: 'image', datatype: 'BYTES', shape: [-1] }]);
    expect(md.outputs[0].shape).toEqual([-1, 3]);
    const rest = await json(await fetch(`${srv.url}/v2/models/tiny`, { headers: { 'x-api-key': KEY } }));
    expect(md.platform).toBe(rest.platform);
    expect(md.inputs).toEqual(rest.inputs);
  });

  it('refuses a scoped key on another model with PERMISSION_DENIED', async () => {
    const err = await callError('ModelMetadata', { name: 'tiny', version: '' }, KEY_OTHER);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call('ModelMetadata', { name: 'other', version: '' }, KEY_OTHER)).name).toBe('other');
  });
});

describe('gRPC ModelInfer', () => {
  it('FP32 raw_input_contents → raw_output_contents equal to the engine on the same tensor', async () => {
    const x = randomInput(2, 3);
    const res = await call('ModelInfer', {
      model_name: 'tiny',
      id: 'req-fp32-raw',
      inputs: [{ name: spec.name, datatype: 'FP32', shape: [2, spec.height, spec.width, 3] }],
      raw_input_contents: [floatsToRaw(x)],
    });
    expect(res.model_name).toBe('tiny');
    expect(res.model_version).toBe('1');
    expect(res.id).toBe('req-fp32-raw');
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]).toMatchObject({ name: 'predictions', datatype: 'FP32', shape: [2, 3] });
    expect(res.raw_output_contents).toHaveLength(1);
    const got = floatsFromRaw(res.raw_output_contents[0]);
    const want = await runFloat(engine, x, 2);
    expect(got.length).toBe(6);
    for (let i = 0; i < 6; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
  });

  it('FP32 typed contents → fp32_contents', async () => {
    const x = randomInput(1, 11);
    const res = await call('ModelInfer', {
      model_name: 'tiny',
      model_version: '1',
      inputs: [{ name: spec.name, datatype: 'FP32', shape: [1, spec.height, spec.width, 3], contents: { fp32_contents: Array.from(x) } }],
    });
    expect(res.raw_output_contents).toEqual([]);
    const got: number[] = res.outputs[0].contents.fp32_contents;
    const want = await runFloat(engine, x, 1);
    expect(got).toHaveLength(3);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });

  it('BYTES images, raw (Triton length-prefixed) and as bytes_contents, match preprocessing + engine', async () => {
    const imgs = [await pngOf(220, 40, 40), await pngOf(40, 200, 60)];
    const x = new Float32Array(2 * spec.height * spec.width * 3);
    for (let i = 0; i < 2; i++) await imageToInput(imgs[i]!, spec, x, i * spec.height * spec.width * 3);
    const want = await runFloat(engine, x, 2);
    const raw = await call('ModelInfer', { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [2] }], raw_input_contents: [joinRawBytes(imgs)] });
    const gotRaw = floatsFromRaw(raw.raw_output_contents[0]);
    const typed = await call('ModelInfer', { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], contents: { bytes_contents: imgs } }] });
    const gotTyped: number[] = typed.outputs[0].contents.fp32_contents;
    for (let i = 0; i < 6; i++) {
      expect(gotRaw[i]).toBeCloseTo(want[i]!, 4);
      expect(gotTyped[i]).toBeCloseTo(want[i]!, 4);
    }
  });

  it('takes a message far over the 4 MB gRPC default (one large encoded image)', async () => {
    const side = 1300;
    const noise = Buffer.alloc(side * side * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const big = await sharp(noise, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
    expect(big.length).toBeGreaterThan(4.5 * 1024 * 1024);
    const res = await call('ModelInfer', { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([big])] });
    expect(res.outputs[0].shape).toEqual([1, 3]);
  });

  it('maps bad requests to INVALID_ARGUMENT / NOT_FOUND with a useful message', async () => {
    const fp = (shape: number[], bytes: number, extra: Any = {}) => ({ model_name: 'tiny', inputs: [{ name: spec.name, datatype: 'FP32', shape }], raw_input_contents: [Buffer.alloc(bytes)], ...extra });
    const cases: Array<[Any, grpc.status, RegExp]> = [
      [fp([1, spec.height, spec.width, 3], 100), grpc.status.INVALID_ARGUMENT, /needs 12288 bytes/],
      [fp([1, 8, 8, 3], 8 * 8 * 3 * 4), grpc.status.INVALID_ARGUMENT, /expects \[N, 32, 32, 3\]/],
      [fp([1, spec.height, spec.width, 3], spec.height * spec.width * 12, { model_name: 'missing' }), grpc.status.NOT_FOUND, /not loaded/],
      [fp([1, spec.height, spec.width, 3], spec.height * spec.width * 12, { model_name: '../tiny' }), grpc.status.INVALID_ARGUMENT, /invalid model name/],
      [fp([1, spec.height, spec.width, 3], spec.height * spec.width * 12, { model_version: 'x' }), grpc.status.INVALID_ARGUMENT, /invalid model version/],
      [{ model_name: 'tiny', inputs: [{ name: 'x', datatype: 'INT32', shape: [1] }], raw_input_contents: [Buffer.alloc(4)] }, grpc.status.INVALID_ARGUMENT, /datatype "INT32"/],
      [{ model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 1])] }, grpc.status.INVALID_ARGUMENT, /truncated/],
      [{ model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('nope')] } }] }, grpc.status.INVALID_ARGUMENT, /not a readable image/],
      [fp([1, spec.height, spec.width, 3], spec.height * spec.width * 12, { outputs: [{ name: 'logits' }] }), grpc.status.INVALID_ARGUMENT, /has no output "logits"/],
    ];
    for (const [req, code, msg] of cases) {
      const err = await callError('ModelInfer', req, KEY);
      expect(err.code, JSON.stringify(req.inputs[0])).toBe(code);
      expect(err.details).toMatch(msg);
      expect(err.details).not.toMatch(/\n\s+at\s/);
    }
    expect((await callError('ModelInfer', fp([1, spec.height, spec.width, 3], spec.height * spec.width * 12), undefined)).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('audits gRPC predictions and counts them in the shared metrics', async () => {
    const img = await pngOf(10, 10, 250);
    const md = new grpc.Metadata();
    md.set('x-api-key', KEY);
    md.set('x-request-id', 'grpc-audit-1');
    await new Promise<void>((resolve, reject) =>
      (client as any).ModelInfer({ model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([img])] }, md, (err: Error | null) => (err ? reject(err) : resolve())),
    );
    const lines = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const line = lines.find((l) => l.requestId === 'grpc-audit-1');
    expect(line).toMatchObject({ event: 'predict', keyId: 'ci', model: 'tiny', version: 1, client: '127.0.0.1', inputSha256: sha256(img) });
    const text = await srv.metrics.registry.metrics();
    expect(text).toMatch(/mlctl_requests_total\{protocol="grpc",route="ModelInfer",status="OK"\} \d+/);
    expect(text).toMatch(/mlctl_requests_total\{protocol="grpc",route="ModelInfer",status="INVALID_ARGUMENT"\} \d+/);
    expect(text).toMatch(/mlctl_batch_size_count\{model="tiny",version="1"\} \d+/);
  });
});

describe('wire format', () => {
  it('uses the open_inference_grpc.proto field numbers (hand-encoded bytes decode, responses encode as specified)', () => {
    const svc = predictV2Service().service as unknown as Record<string, grpc.MethodDefinition<Any, Any>>;
    // ModelInferRequest: model_name=1, model_version=2, id=3, inputs=5 {name=1, datatype=2, shape=3}, raw_input_contents=7.
    const tensor = protobuf.Writer.create().uint32((1 << 3) | 2).string('input').uint32((2 << 3) | 2).string('FP32').uint32((3 << 3) | 2).fork().int64(1).int64(32).ldelim().finish();
    const req = protobuf.Writer.create()
      .uint32((1 << 3) | 2).string('tiny')
      .uint32((2 << 3) | 2).string('7')
      .uint32((3 << 3) | 2).string('abc')
      .uint32((5 << 3) | 2).bytes(tensor)
      .uint32((7 << 3) | 2).bytes(Uint8Array.from([1, 2, 3, 4]))
      .finish();
    const decoded = svc.ModelInfer!.requestDeserialize(Buffer.from(req));
    expect(decoded).toMatchObject({ model_name: 'tiny', model_version: '7', id: 'abc', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32] }] });
    expect([...decoded.raw_input_contents[0]]).toEqual([1, 2, 3, 4]);
    // ModelInferResponse: model_name=1, model_version=2, id=3, outputs=5, raw_output_contents=6.
    const out = svc.ModelInfer!.responseSerialize({ model_name: 'm', model_version: '2', id: 'q', outputs: [{ name: 'o', datatype: 'FP32', shape: [1, 3] }], raw_output_contents: [Buffer.from([9, 9])] });
    const r = protobuf.Reader.create(out);
    const fields: Record<number, unknown[]> = {};
    while (r.pos < r.len) {
      const tag = r.uint32();
      (fields[tag >>> 3] ??= []).push(tag >>> 3 === 5 || tag >>> 3 === 6 ? [...r.bytes()] : r.string());
    }
    expect(fields[1]).toEqual(['m']);
    expect(fields[2]).toEqual(['2']);
    expect(fields[3]).toEqual(['q']);
    expect(fields[6]).toEqual([[9, 9]]);
    expect(fields[5]).toHaveLength(1);
    // ModelMetadataResponse.TensorMetadata.shape is int64 (field 3): -1 must survive as a variable dimension.
    const md = svc.ModelMetadata!.responseSerialize({ name: 'm', versions: ['1'], platform: 'p', inputs: [{ name: 'i', datatype: 'FP32', shape: [-1, 4] }], outputs: [] });
    expect(svc.ModelMetadata!.responseDeserialize(md).inputs[0].shape).toEqual([-1, 4]);
  });
});

describe('error mapping', () => {
  it('maps repository errors to gRPC codes: overload keeps Retry-After, internals stay in the log', () => {
    const logger = createMemoryLogger();
    const full = toGrpcError(new MlctlError('QUEUE_FULL', ['queue full'], { retryAfter: 2 }), 'r1', logger);
    expect(full.code).toBe(grpc.status.UNAVAILABLE);
    expect(full.details).toBe('queue full');
    expect(full.metadata!.get('retry-after')).toEqual(['2']);
    expect(toGrpcError(new MlctlError('RATE_LIMITED', ['slow down'], { retryAfter: 5 }), 'r2').code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(toGrpcError(new MlctlError('MODEL_NOT_FOUND', ['no such model']), 'r3').code).toBe(grpc.status.NOT_FOUND);
    expect(toGrpcError(new MlctlError('PAYLOAD_TOO_LARGE', ['too big']), 'r4').code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(toGrpcError(new MlctlError('IMAGE_DECODE', ['x', 'bad']), 'r5').code).toBe(grpc.status.INVALID_ARGUMENT);
    const internal = toGrpcError(new Error('ENOENT: /secret/path/weights.bin'), 'r6', logger);
    expect(internal.code).toBe(grpc.status.INTERNAL);
    expect(internal.details).toBe('internal server error (request id r6); the details are in the server log');
    expect(logger.lines.some((l) => l.level === 'error' && l.msg.includes('/secret/path/weights.bin'))).toBe(true);
  });
});

// Hostile and malformed requests (issue #14) against a real repository over tiny packages: deep nesting, SVG,
// non-finite tensors, wrong input names, multipart limits — the same answer over REST (app.inject) and gRPC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../src/serve/server.js';
import { startServer, type RunningServer } from '../src/serve/start.js';
import { createRepository } from '../src/serve/repository.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { joinRawBytes } from '../src/serve/grpc/convert.js';
import type { ModelRepository } from '../src/serve/types.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let repo: ModelRepository;
let app: FastifyInstance;
let srv: SecureServer;
let client: grpc.Client;
let png: Buffer;

const SIZE = 32;
const PER = SIZE * SIZE * 3;
const SVG = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="red"/></svg>');

const inject = async (method: 'GET' | 'POST', url: string, payload?: string | Buffer | FormData, headers: Record<string, string> = {}) => {
  const res = await app.inject({ method, url, payload, headers });
  let json: any;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, headers: res.headers };
};
const postJson = (url: string, body: string) => inject('POST', url, body, { 'content-type': 'application/json' });

function grpcCall(req: Record<string, unknown>): Promise<{ code: number; details: string; res?: any }> {
  return new Promise((resolve) => {
    (client as any).ModelInfer(req, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: any) =>
      resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '', res }),
    );
  });
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-hardening-');
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny', size: SIZE });
  png = await pngOf(200, 30, 30);
  repo = createRepository({ engine: 'tfjs', maxBatch: 4, maxDelayMs: 1, engineThread: false });
  await repo.load(root);
  app = buildServer(repo, { logger: false, bodyLimit: 256 * 1024, maxFiles: 4 });
  await app.ready();
  srv = await startSecureServer(root, { grpcPort: 0 });
  client = new (predictV2Service())(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await app?.close();
  await srv?.close();
  await tmp?.cleanup();
});

describe('deeply nested JSON (10,000 levels)', () => {
  const deep = '['.repeat(10_000) + '1' + ']'.repeat(10_000);
  it('is a 400 naming the nesting limit on V2 data, /predict instances and TF Serving :predict — never a 500', async () => {
    const v2 = await postJson('/v2/models/tiny/infer', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":${deep}}]}`);
    const bytes = await postJson('/v2/models/tiny/infer', `{"inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":${deep}}]}`);
    const predict = await postJson('/predict', `{"instances":${deep}}`);
    const tfs = await postJson('/v1/models/tiny:predict', `{"instances":${deep}}`);
    const columnar = await postJson('/v1/models/tiny:predict', `{"inputs":${deep}}`);
    for (const r of [v2, bytes, predict, tfs, columnar]) {
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('INPUT_INVALID');
      expect(r.json.error).toMatch(/nested more than 32 levels/);
    }
  });
});

describe('image formats', () => {
  it('refuses SVG by its bytes over every REST route, naming the formats accepted', async () => {
    const raw = await inject('POST', '/predict', SVG, { 'content-type': 'image/svg+xml' });
    const fd = new FormData();
    fd.append('image', new Blob([SVG], { type: 'image/png' }), 'x.png');
    const multi = await inject('POST', '/predict', fd);
    const b64 = await postJson('/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [SVG.toString('base64')] }] }));
    const tfs = await postJson('/v1/models/tiny:predict', JSON.stringify({ instances: [{ b64: SVG.toString('base64') }] }));
    for (const r of [raw, multi, b64, tfs]) {
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/JPEG, PNG, WebP, GIF or TIFF/);
      expect(r.json.error).toMatch(/SVG/);
    }
    // The same request with a PNG is fine.
    expect((await inject('POST', '/predict', png, { 'content-type': 'image/png' })).status).toBe(200);
  });

  it('refuses SVG over gRPC (typed and raw contents) with INVALID_ARGUMENT', async () => {
    const typed = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [SVG] } }] });
    const raw = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([SVG])] });
    for (const r of [typed, raw]) {
      expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.details).toMatch(/SVG/);
    }
  });
});

describe('non-finite inputs and outputs', () => {
  const binaryBody = (values: Float32Array) => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], parameters: { binary_data_size: values.byteLength } }] }));
    return { body: Buffer.concat([header, Buffer.from(values.buffer)]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
  };
  const withValue = (v: number) => {
    const x = new Float32Array(PER).fill(0.5);
    x[7] = v;
    return x;
  };

  it('refuses NaN and Infinity in V2 binary FP32 and values that overflow float32 in JSON, with 400', async () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const { body, headers } = binaryBody(withValue(v));
      const r = await inject('POST', '/v2/models/tiny/infer', body, headers);
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/element 7 .*finite/);
    }
    const data = new Array(PER).fill(0.5);
    data[3] = 3.5e38;
    const big = await postJson('/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], data }] }));
    expect(big.status).toBe(400);
    expect(big.json.error).toMatch(/float32 range/);
    const tfs = await postJson('/v1/models/tiny:predict', JSON.stringify({ instances: [[[[3.5e38, 0, 0]]]] }));
    expect(tfs.status).toBe(400);
  });

  it('refuses NaN and Infinity over gRPC in fp32_contents and raw contents with INVALID_ARGUMENT', async () => {
    const x = withValue(NaN);
    const typed = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], contents: { fp32_contents: Array.from(withValue(Infinity)) } }] });
    const raw = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3] }], raw_input_contents: [Buffer.from(x.buffer)] });
    for (const r of [typed, raw]) {
      expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.details).toMatch(/finite/);
    }
  });

  it('never answers 200 with non-finite outputs: a finite input the model overflows on is a 422', async () => {
    const data = new Array(PER).fill(3e38);
    const r = await postJson('/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], data }] }));
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('OUTPUT_NOT_FINITE');
    const g = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], contents: { fp32_contents: data } }] });
    expect(g.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(g.details).toMatch(/produced/);
  });
});

describe('one validation for both transports', () => {
  it('refuses an FP32 input with the wrong name over REST and gRPC alike', async () => {
    const data = new Array(PER).fill(0.1);
    const rest = await postJson('/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'wrong', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], data }] }));
    const g = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'wrong', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], contents: { fp32_contents: data } }] });
    expect(rest.status).toBe(400);
    expect(g.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(rest.json.error).toBe(g.details);
    expect(g.details).toMatch(/no input "wrong"; its input is "input"/);
    // Wrong shape: the same words over both transports too.
    const rs = await postJson('/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data }] }));
    const gs = await grpcCall({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], contents: { fp32_contents: data } }] });
    expect(rs.json.error).toBe(gs.details);
  });
});

describe('multipart limits', () => {
  const files = (n: number) => {
    const fd = new FormData();
    for (let i = 0; i < n; i++) fd.append('image', new Blob([png], { type: 'image/png' }), `${i}.png`);
    return fd;
  };

  it('says which limit was hit: file count, text fields, file size', async () => {
    const many = await inject('POST', '/predict', files(7));
    expect(many.status).toBe(413);
    expect(many.json.code).toBe('UPLOAD_LIMIT');
    expect(many.json.error).toMatch(/more than 4 files/);
    expect(many.json.error).not.toMatch(/larger than/);

    const fields = files(1);
    for (let i = 0; i < 40; i++) fields.append('model', 'tiny');
    const f = await inject('POST', '/predict', fields);
    expect(f.status).toBe(413);
    expect(f.json.error).toMatch(/more than 8 text fields/);
    expect(f.json.error).not.toMatch(/Premature close/);

    const big = new FormData();
    big.append('image', new Blob([Buffer.alloc(300 * 1024, 1)], { type: 'image/png' }), 'big.png');
    const b = await inject('POST', '/predict', big);
    expect(b.status).toBe(413);
    expect(b.json.error).toMatch(/larger than the 262144-byte limit/);
  });

  it('names the fields /predict reads when given another one', async () => {
    const fd = files(1);
    fd.append('colour', 'red');
    const r = await inject('POST', '/predict', fd);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/unknown text field "colour".*"image".*model, version, top_k/);
    // Any file field is an image (the classic contract says "image"; clients sending "file" or "data" work too).
    const other = new FormData();
    other.append('picture', new Blob([png], { type: 'image/png' }), 'p.png');
    expect((await inject('POST', '/predict', other)).status).toBe(200);
    // The documented fields work, top_k included.
    const ok = files(2);
    ok.append('top_k', '1');
    const good = await inject('POST', '/predict', ok);
    expect(good.status).toBe(200);
    expect(good.json.labels[0]).toHaveLength(1);
  });
});

describe('slow clients', () => {
  let slow: RunningServer;
  const port = () => slow.port;
  /** A raw connection and everything the server sends on it until it closes. */
  const connect = () => {
    const socket = net.connect(port(), '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.on('error', () => {});
    const closed = new Promise<string>((r) => socket.on('close', () => r(got)));
    const connected = new Promise<void>((r) => socket.on('connect', () => r()));
    return { socket, closed, connected, got: () => got };
  };

  beforeAll(async () => {
    const r = createRepository({ engine: 'tfjs', maxBatch: 2, maxDelayMs: 1, engineThread: false });
    await r.load(root);
    slow = await startServer(r, { port: 0, logger: false, requestTimeoutMs: 600, maxConnectionsPerClient: 3 });
  });
  afterAll(() => slow?.shutdown());

  it('answers 408 to a body that never completes and to a body dripping one byte at a time', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n';
    const short = connect();
    await short.connected;
    short.socket.write(head + 'x'.repeat(10));
    const drip = connect();
    await drip.connected;
    drip.socket.write(head);
    // One byte every 100 ms: the 1000-byte body would take 100 s, so only a timeout on the whole request (not on
    // idleness, which the drip keeps resetting) can answer 408 before the body is complete.
    let dripped = 0;
    const timer = setInterval(() => drip.socket.writable && drip.socket.write('x') && dripped++, 100);
    const [a, b] = await Promise.all([short.closed, drip.closed]);
    clearInterval(timer);
    expect(a).toMatch(/^HTTP\/1\.1 408/);
    expect(b).toMatch(/^HTTP\/1\.1 408/);
    expect(a).toMatch(/"code":"REQUEST_TIMEOUT"/);
    expect(dripped).toBeLessThan(1000);
    // The server is fine afterwards.
    expect((await fetch(`${slow.url}/v2/health/ready`)).status).toBe(200);
  });

  it('caps open connections per client: one more gets 429 and closes, the others are unaffected', async () => {
    const held = [connect(), connect(), connect()];
    await Promise.all(held.map((h) => h.connected));
    const extra = connect();
    const answer = await extra.closed;
    expect(answer).toMatch(/^HTTP\/1\.1 429/);
    expect(answer).toMatch(/too many open connections.*limit 3/);
    held[0]!.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((r) => (held[0]!.got() ? r() : held[0]!.socket.once('data', () => r())));
    expect(held[0]!.got()).toMatch(/^HTTP\/1\.1 200/);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    expect((await fetch(`${slow.url}/v2/health/live`)).status).toBe(200);
  });
});

/** Flip a byte in a package's first weight shard: the package no longer verifies. */
export async function tamper(dir: string): Promise<void> {
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'mlctl.json'), 'utf8')) as { files: Record<string, unknown> };
  const shard = Object.keys(manifest.files).find((f) => f.endsWith('.bin'))!;
  const bytes = await fs.readFile(path.join(dir, shard));
  bytes[0] = bytes[0]! ^ 0xff;
  await fs.writeFile(path.join(dir, shard), bytes);
}

describe('one bad version', () => {
  it('serves the versions that verify and reports the tampered one as unavailable', async () => {
    const dir = path.join(tmp.dir, 'versions');
    await tinyPackage(dir, { name: 'multi', size: SIZE, seed: 1 });
    const v2 = await tinyPackage(dir, { name: 'multi', size: SIZE, seed: 2 });
    await tinyPackage(dir, { name: 'multi', size: SIZE, seed: 3 });
    await tamper(v2.dir);
    const r = createRepository({ engine: 'tfjs', maxBatch: 2, maxDelayMs: 1, engineThread: false });
    const { loaded, failed } = await r.loadEach(path.join(dir, 'multi'));
    expect(loaded.map((m) => m.version)).toEqual([1, 3]);
    expect(failed).toMatchObject([{ name: 'multi', version: 2 }]);
    expect(failed[0]!.reason).toMatch(/integrity check/);
    const a = buildServer(r, { logger: false });
    try {
      const ready = await a.inject({ method: 'GET', url: '/v2/models/multi/versions/2/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ ready: false, version: '2' });
      expect(ready.json().reason).toMatch(/integrity check/);
      expect((await a.inject({ method: 'GET', url: '/v2/models/multi/versions/1/ready' })).statusCode).toBe(200);
      const meta = (await a.inject({ method: 'GET', url: '/v2/models/multi' })).json();
      expect(meta.versions).toEqual(['1', '3']);
      expect(meta.unavailable_versions).toMatchObject([{ version: '2' }]);
      const status = (await a.inject({ method: 'GET', url: '/v1/models/multi' })).json();
      expect(status.model_version_status.map((s: any) => [s.version, s.state])).toEqual([['3', 'AVAILABLE'], ['2', 'END'], ['1', 'AVAILABLE']]);
      const infer = await a.inject({ method: 'POST', url: '/predict?model=multi&version=2', payload: png, headers: { 'content-type': 'image/png' } });
      expect(infer.statusCode).toBe(503);
      expect(infer.json().code).toBe('MODEL_UNAVAILABLE');
      expect((await a.inject({ method: 'POST', url: '/predict?model=multi', payload: png, headers: { 'content-type': 'image/png' } })).json().version).toBe(3);
    } finally {
      await a.close();
    }
    // Nothing verifies: loading fails with the first version's reason.
    const only = path.join(tmp.dir, 'only-bad');
    await tamper((await tinyPackage(only, { name: 'bad', size: SIZE })).dir);
    await expect(createRepository({ engine: 'tfjs', engineThread: false }).loadEach(path.join(only, 'bad'))).rejects.toThrow(/integrity check/);
  });
});

/** The real engine plus a fixed cost per batch (a model that takes `ms` to run). */
function slowEngine(ms: number) {
  return async (pkg: LoadedPackage, o?: Parameters<typeof openEngine>[1]): Promise<InferenceEngine> => {
    const e = await openEngine(pkg, o);
    return { ...e, description: `${e.description} + ${ms} ms`, run: async (x, n) => (await new Promise((r) => setTimeout(r, ms)), e.run(x, n)), dispose: () => e.dispose() };
  };
}

describe('fair queueing', () => {
  it('one connection pipelining requests cannot fill the queue for others: they are served, the flood gets 503s', async () => {
    const r = createRepository({ engine: 'tfjs', maxBatch: 2, maxDelayMs: 1, maxQueue: 6, engineThread: false, openEngine: slowEngine(120) });
    await r.load(root);
    const s = await startServer(r, { port: 0, logger: false });
    try {
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, SIZE, SIZE, 3], data: new Array(PER).fill(0.2) }] });
      const one = `POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const flood = net.connect(s.port, '127.0.0.1');
      let got = '';
      const answers = () => (got.match(/HTTP\/1\.1 (\d+)/g) ?? []).map((l) => Number(l.slice(9)));
      // All 24 answers in: some 200s, the rest 503 + Retry-After (its own newest requests were displaced).
      const allAnswered = new Promise<void>((res) => flood.on('data', (d) => ((got += d), answers().length >= 24 && res())));
      // The queue is full of the flood's requests once the first of them is refused.
      const queueFull = new Promise<void>((res) => {
        const off = r.onInfer((e) => (e.error as { code?: string } | undefined)?.code === 'QUEUE_FULL' && (off(), res()));
      });
      await new Promise((res) => flood.on('connect', res));
      flood.write(one.repeat(24));
      await queueFull;
      // Three other clients arrive while the flood holds the queue.
      const others = await Promise.all([0, 1, 2].map(() => fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then((x) => ({ status: x.status }))));
      expect(others.map((o) => o.status)).toEqual([200, 200, 200]);
      await allAnswered;
      const codes = answers();
      expect(codes).toHaveLength(24);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(codes.every((c) => c === 200 || c === 503)).toBe(true);
      expect(got).toMatch(/retry-after: 1/i);
      flood.destroy();
    } finally {
      await s.shutdown();
    }
  });
});

// Serve hardening soak: `mlctl serve` as the CLI assembles it (API keys, audit log, gRPC) on a VGG16-shaped package,
// under good requests mixed with the hostile ones of issue #14 (deep nesting, SVG, NaN/Inf, float32 overflow, wrong
// input names, multipart floods, wrong keys, bombs, slow bodies, pipelining) at concurrency 16 over REST and gRPC.
// Prints status counts per kind, 5xx and failed good requests (target 0 and 0), and RSS at start/middle/end (flat).
// `npm run bench -- serve --soak [SECONDS=60] [--size 64] [--concurrency 16] [--engine auto|onnx|tfjs]`
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { selectBackend, type BackendChoice } from '../src/runtime/backend.js';
import type { EngineChoice } from '../src/runtime/engine.js';
import { joinRawBytes } from '../src/serve/grpc/convert.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { assembleServe } from '../src/serve/assemble.js';
import { serveConfig } from '../src/serve/config.js';
import { startServer } from '../src/serve/start.js';
import { createLogger } from '../src/util/log.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';
import { vgg16BenchPackage } from './_vgg16.js';

const KEY = 'soak-valid-key-0123456789abcdef';

type Rest = { kind: string; good: boolean; path: string; body: Buffer | string | FormData; type?: string; key?: string; headers?: Record<string, string> };
type Rpc = { kind: string; good: boolean; grpc: Record<string, unknown> };
type Req = Rest | Rpc;

function bombPng(side: number, small: Buffer): Buffer {
  const b = Buffer.from(small);
  b.writeUInt32BE(side, 16);
  b.writeUInt32BE(side, 20);
  b.writeUInt32BE(zlib.crc32(b.subarray(12, 29)) >>> 0, 29);
  return b;
}

function form(files: number, textFields: number, png: Buffer): FormData {
  const fd = new FormData();
  for (let i = 0; i < files; i++) fd.append('image', new Blob([png], { type: 'image/png' }), `${i}.png`);
  for (let i = 0; i < textFields; i++) fd.append('model', 'x');
  return fd;
}

/** The requests of the mix: good ones over every route and transport, and one of each hostile kind. */
async function requestMix(name: string, spec: ImageInputSpec, jpeg: Buffer) {
  const png = await sharp({ create: { width: 24, height: 24, channels: 3, background: '#3a6' } }).png().toBuffer();
  const per = spec.height * spec.width * spec.channels;
  const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
  const deep = '['.repeat(10_000) + '1' + ']'.repeat(10_000);
  const fp32 = (values: number[] | string, inputName = spec.name) => `{"inputs":[{"name":"${inputName}","datatype":"FP32","shape":[1,${spec.height},${spec.width},${spec.channels}],"data":${typeof values === 'string' ? values : JSON.stringify(values)}}]}`;
  const nan = new Float32Array(per).fill(0.5);
  nan[5] = NaN;
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: spec.name, datatype: 'FP32', shape: [1, spec.height, spec.width, spec.channels], parameters: { binary_data_size: per * 4 } }] }));
  const binaryNaN = Buffer.concat([header, Buffer.from(nan.buffer)]);
  const overflow = new Array(per).fill(0.1);
  overflow[9] = 3.5e38;
  const v2 = `/v2/models/${name}/infer`;
  const bytesBody = JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [jpeg.toString('base64')] }] });
  const good: Req[] = [
    { kind: 'predict jpeg', good: true, path: '/predict', body: jpeg, type: 'image/jpeg' },
    { kind: 'v2 BYTES', good: true, path: v2, body: bytesBody, type: 'application/json' },
    { kind: 'tfserving b64', good: true, path: `/v1/models/${name}:predict`, body: JSON.stringify({ instances: [{ b64: jpeg.toString('base64') }] }), type: 'application/json' },
    { kind: 'predict multipart', good: true, path: '/predict', body: form(2, 0, png) },
    { kind: 'grpc raw BYTES', good: true, grpc: { model_name: name, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([jpeg])] } },
  ];
  const bad: Req[] = [
    { kind: 'deep V2 data', good: false, path: v2, body: fp32(deep), type: 'application/json' },
    { kind: 'deep /predict instances', good: false, path: '/predict', body: `{"instances":${deep}}`, type: 'application/json' },
    { kind: 'deep TF Serving', good: false, path: `/v1/models/${name}:predict`, body: `{"instances":${deep}}`, type: 'application/json' },
    { kind: 'SVG', good: false, path: '/predict', body: svg, type: 'image/svg+xml' },
    { kind: 'binary NaN', good: false, path: v2, body: binaryNaN, type: 'application/octet-stream', headers: { 'inference-header-content-length': String(header.length) } },
    { kind: 'FP32 3.5e38', good: false, path: v2, body: fp32(overflow), type: 'application/json' },
    { kind: 'wrong input name', good: false, path: v2, body: fp32(overflow.map(() => 0.1), 'nope'), type: 'application/json' },
    { kind: '70 files', good: false, path: '/predict', body: form(70, 0, png) },
    { kind: '40 text fields', good: false, path: '/predict', body: form(1, 40, png) },
    { kind: 'wrong key', good: false, path: '/predict', body: jpeg, type: 'image/jpeg', key: 'soak-wrong-key-0123456789abcdef' },
    { kind: 'truncated jpeg', good: false, path: '/predict', body: jpeg.subarray(0, jpeg.length >> 3), type: 'image/jpeg' },
    { kind: 'bomb png', good: false, path: '/predict', body: bombPng(60_000, png), type: 'image/png' },
    { kind: 'unknown model', good: false, path: '/v2/models/ghost/infer', body: bytesBody, type: 'application/json' },
    { kind: 'grpc NaN raw', good: false, grpc: { model_name: name, inputs: [{ name: spec.name, datatype: 'FP32', shape: [1, spec.height, spec.width, spec.channels] }], raw_input_contents: [Buffer.from(nan.buffer)] } },
    { kind: 'grpc wrong name', good: false, grpc: { model_name: name, inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, spec.height, spec.width, spec.channels] }], raw_input_contents: [Buffer.from(new Float32Array(per).buffer)] } },
    { kind: 'grpc SVG', good: false, grpc: { model_name: name, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([svg])] } },
  ];
  return { good, bad };
}

/** A client whose body never completes: the server must answer 408 within --request-timeout and free the socket. */
function slowBody(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 'closed'));
    s.on('connect', () => s.write(`POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nxyz`));
    setTimeout(() => s.destroy(), 30_000).unref();
  });
}

export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--soak');
  const seconds = i >= 0 && /^\d+$/.test(args[i + 1] ?? '') ? Number(args[i + 1]) : 60;
  const size = Number(arg(args, '--size', '64'));
  const concurrency = Number(arg(args, '--concurrency', '16'));
  const engine = arg(args, '--engine', 'auto') as EngineChoice;
  await selectBackend(arg(args, '--backend', 'auto') as BackendChoice);
  const tmp = await tempDir('mlctl-bench-soak-');
  try {
    const pkg = await vgg16BenchPackage(path.join(tmp.dir, 'artifacts'), { size, name: 'vgg16-bench', labels: ['cat', 'dog', 'horse', 'ship', 'truck'], tfjs: true, tool: 'bench/serve-soak.ts' });
    const spec = pkg.manifest.input as ImageInputSpec;
    const jpeg = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 120, g: 80, b: 200 } } }).jpeg().toBuffer();
    const logger = createLogger({ level: 'warn' });
    const repo = createRepository({ engine, maxBatch: 8, maxDelayMs: 5, maxQueue: 64, logger, metrics: createServeMetrics() });
    await repo.loadEach(pkg.dir);
    const config = serveConfig(pkg.dir, {
      grpc: { port: 0, maxMessageBytes: 64 * 1024 * 1024 },
      security: { apiKeys: { keys: `soak:${KEY}` }, audit: { file: path.join(tmp.dir, 'audit.jsonl'), maxBytes: 20 * 1024 * 1024, keep: 2 } },
    });
    const assembled = await assembleServe(config, { repo, logger });
    const server = await startServer(repo, { port: 0, logger: { level: 'error', stream: process.stderr }, requestTimeoutMs: 3000, ...assembled });
    const grpcPort = Number(String(server.app.mlctl.info.grpc).split(':').pop());
    const client = new (predictV2Service())(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    const { good, bad } = await requestMix(pkg.manifest.name, spec, jpeg);
    console.log(`soak ${seconds}s at c=${concurrency}: VGG16-shaped package at ${size}px (${repo.list()[0]!.engine}), ${good.length} good kinds, ${bad.length} hostile kinds + slow bodies; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const counts = new Map<string, number>();
    const count = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
    let fiveXX = 0;
    let goodFailed = 0;
    let goodOk = 0;
    const send = async (req: Req): Promise<string> => {
      if ('grpc' in req) {
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${KEY}`);
        return new Promise((resolve) => (client as any).ModelInfer(req.grpc, md, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null) => resolve(err ? grpc.status[err.code]! : 'OK')));
      }
      try {
        const res = await fetch(server.url + req.path, {
          method: 'POST',
          body: req.body,
          headers: { authorization: `Bearer ${req.key ?? KEY}`, ...(req.type ? { 'content-type': req.type } : {}), ...req.headers },
        });
        await res.arrayBuffer();
        return String(res.status);
      } catch (err) {
        return `dropped (${(err as Error).message})`;
      }
    };
    const rss: Array<{ s: number; mb: number; heapMb: number }> = [];
    const t0 = performance.now();
    // The JS heap beside RSS: a heap that stays flat while RSS grows points at native memory (image decoding, ORT).
    const sample = () => {
      const m = process.memoryUsage();
      rss.push({ s: Math.round((performance.now() - t0) / 1000), mb: Math.round(m.rss / 1048576), heapMb: Math.round(m.heapUsed / 1048576) });
    };
    sample();
    const sampler = setInterval(sample, Math.max(1000, (seconds * 1000) / 30));
    const end = t0 + seconds * 1000;
    let n = 0;
    const worker = async () => {
      while (performance.now() < end) {
        const k = n++;
        const req = k % 4 === 3 ? bad[(k >> 2) % bad.length]! : good[k % good.length]!;
        const status = await send(req);
        count(`${req.good ? 'good' : 'bad'} ${req.kind}: ${status}`);
        const failed = status.startsWith('5') || status.startsWith('dropped') || ['INTERNAL', 'UNKNOWN', 'UNAVAILABLE', 'DATA_LOSS'].includes(status);
        if (failed) fiveXX++;
        if (req.good) (status === '200' || status === 'OK' ? goodOk++ : goodFailed++);
      }
    };
    const slow = async () => {
      while (performance.now() < end - 3500) count(`bad slow body: ${await slowBody(server.port)}`);
    };
    await Promise.all([...Array.from({ length: concurrency }, worker), slow(), slow()]);
    clearInterval(sampler);
    sample();
    const mid = rss[Math.floor(rss.length / 2)]!;
    const half = rss.filter((p) => p.s >= seconds / 2);
    const slope = half.length > 1 ? ((half.at(-1)!.mb - half[0]!.mb) / Math.max(1, half.at(-1)!.s - half[0]!.s)) * 60 : 0;
    client.close();
    await server.shutdown('soak done');

    console.log('');
    for (const [k, v] of [...counts].sort()) console.log(`  ${k.padEnd(44)} ${v}`);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    console.log(`\nrequests ${total} (${goodOk} good answered, ${(goodOk / seconds).toFixed(1)}/s)`);
    console.log(`5xx or dropped: ${fiveXX} (target 0)   failed good requests: ${goodFailed} (target 0)`);
    console.log(`RSS MiB: start ${rss[0]!.mb}, middle ${mid.mb} (${mid.s}s), end ${rss.at(-1)!.mb} (${rss.at(-1)!.s}s); slope over the second half ${slope.toFixed(1)} MiB/min (target ~0)`);
    console.log(`JS heap MiB: start ${rss[0]!.heapMb}, middle ${mid.heapMb}, end ${rss.at(-1)!.heapMb}; RSS samples ${rss.map((p) => `${p.s}s=${p.mb}`).join(' ')}`);
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    await writeBenchResult('serve-soak', { seconds, size, concurrency, counts: Object.fromEntries(counts), fiveXX, goodFailed, goodOk, rss, rssSlopeMiBPerMin: slope, loadavg: os.loadavg() });
    await fs.rm(path.join(tmp.dir, 'audit.jsonl'), { force: true });
  } finally {
    await tmp.cleanup();
  }
}

// What serve's security layer costs: REST and gRPC throughput and latency with and without API keys + rate
// limiting + audit log, and over TLS, side by side against plain REST in one run (same model, same image).
// `npm run bench -- serve-security [--size 64] [--requests 80] [--rounds 3] [--concurrency 1,8]`
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import https from 'node:https';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openAuditLog } from '../src/serve/audit.js';
import { joinRawBytes } from '../src/serve/grpc/convert.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { tempDir, tinyPackage } from '../test/helpers/fixtures.js';
import { hasOpenssl, makePki, pngOf, startSecureServer, type SecureServer } from '../test/serve-security-helpers.js';
import { arg, writeBenchResult } from './_util.js';

const KEY = 'bench-key-0123456789abcdef';

interface Stats {
  config: string;
  concurrency: number;
  /** Median over the rounds (configurations are interleaved, so machine noise hits all of them alike). */
  imgPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  failed: number;
}

type Send = () => Promise<boolean>;

interface Run {
  imgPerSec: number;
  latencies: number[];
  failed: number;
}

async function measure(concurrency: number, total: number, send: Send): Promise<Run> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        const s = performance.now();
        if (!(await send())) failed++;
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { imgPerSec: total / ((performance.now() - t0) / 1000), latencies, failed };
}

function summarize(config: string, concurrency: number, runs: Run[]): Stats {
  const rates = runs.map((r) => r.imgPerSec).sort((a, b) => a - b);
  const lat = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const q = (p: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! * 100) / 100;
  return { config, concurrency, imgPerSec: Math.round(rates[Math.floor(rates.length / 2)]! * 10) / 10, p50: q(0.5), p95: q(0.95), p99: q(0.99), failed: runs.reduce((a, r) => a + r.failed, 0) };
}

function restSender(url: string, png: Buffer, headers: Record<string, string>, ca?: Buffer): Send {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const agent = secure ? new https.Agent({ keepAlive: true, ca }) : new http.Agent({ keepAlive: true });
  const lib = secure ? https : http;
  return () =>
    new Promise((resolve) => {
      const req = lib.request({ host: u.hostname, port: u.port, path: '/predict', method: 'POST', agent, headers: { 'content-type': 'image/png', 'content-length': String(png.length), ...headers } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.end(png);
    });
}

function grpcSender(port: number, png: Buffer, key: string | undefined, creds: grpc.ChannelCredentials): Send {
  const Client = predictV2Service();
  const client = new Client(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  const req = { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([png])] };
  return () =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      if (key) md.set('authorization', `Bearer ${key}`);
      (client as any).ModelInfer(req, md, (err: Error | null) => resolve(!err));
    });
}

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '64'));
  const perRound = Number(arg(args, '--requests', '80'));
  const rounds = Number(arg(args, '--rounds', '3'));
  const rows: Stats[] = [];
  const levels = arg(args, '--concurrency', '1,8').split(',').map(Number);
  const tmp = await tempDir('mlctl-bench-sec-');
  try {
    const root = path.join(tmp.dir, 'models');
    await tinyPackage(root, { name: 'tiny', size });
    const png = await pngOf(120, 80, 200, 256);
    const secured = { apiKey: `bench:${KEY}`, rateLimit: '1000000/s', auditLog: path.join(tmp.dir, 'audit.jsonl') };
    const pki = hasOpenssl() ? await makePki(path.join(tmp.dir, 'pki')) : undefined;
    const configs: Array<{ name: string; opts: Record<string, unknown>; tls: boolean }> = [
      { name: 'plain', opts: { grpcPort: 0 }, tls: false },
      { name: 'key+rate+audit', opts: { grpcPort: 0, ...secured }, tls: false },
      ...(pki ? [{ name: 'TLS+key+rate+audit', opts: { grpcPort: 0, ...secured, tlsCert: pki.serverCert, tlsKey: pki.serverKey }, tls: true }] : []),
    ];
    // All servers up at once; rounds interleave every configuration so load from other processes is shared fairly.
    const servers: SecureServer[] = [];
    const senders: Array<{ name: string; rest: Send; grpc: Send }> = [];
    try {
      for (const c of configs) {
        const srv = await startSecureServer(root, c.opts, { maxBatch: 8, maxDelayMs: 2 });
        servers.push(srv);
        const ca = c.tls && pki ? await fs.readFile(pki.ca) : undefined;
        const headers: Record<string, string> = c.opts.apiKey ? { authorization: `Bearer ${KEY}` } : {};
        const creds = ca ? grpc.credentials.createSsl(ca) : grpc.credentials.createInsecure();
        const s = { name: c.name, rest: restSender(srv.url, png, headers, ca), grpc: grpcSender(srv.grpcPort!, png, c.opts.apiKey ? KEY : undefined, creds) };
        for (let i = 0; i < 10; i++) await Promise.all([s.rest(), s.grpc()]); // connections and engines warm
        senders.push(s);
      }
      const runs = new Map<string, Run[]>();
      for (let round = 0; round < rounds; round++) {
        for (const conc of levels) {
          for (const s of senders) {
            for (const proto of ['REST', 'gRPC'] as const) {
              const k = `${proto} ${s.name}|${conc}`;
              runs.set(k, [...(runs.get(k) ?? []), await measure(conc, perRound, proto === 'REST' ? s.rest : s.grpc)]);
            }
          }
        }
      }
      for (const conc of levels) for (const s of senders) for (const proto of ['REST', 'gRPC']) rows.push(summarize(`${proto} ${s.name}`, conc, runs.get(`${proto} ${s.name}|${conc}`)!));
    } finally {
      for (const srv of servers) await srv.close();
    }
    // Audit line cost on its own: synchronous append of a typical prediction line.
    const log = openAuditLog({ file: path.join(tmp.dir, 'micro.jsonl') });
    const line = { time: new Date().toISOString(), event: 'predict', requestId: 'x'.repeat(36), keyId: 'bench', client: '127.0.0.1', index: 0, model: 'tiny', version: 1, manifestSha256: 'a'.repeat(64), inputSha256: 'b'.repeat(64), label: 'circle', score: 0.5, latencyMs: 3.2 };
    const n = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) log.write(line);
    const usPerLine = ((performance.now() - t0) * 1000) / n;
    log.close();

    console.log(`\nserve security overhead — tiny ${size}x${size} model (tfjs cpu), 256x256 PNG, ${rounds} interleaved rounds x ${perRound} requests per row, loopback\n`);
    console.log('config                       conc   img/s   p50 ms  p95 ms  p99 ms  failed  vs REST plain (median img/s)');
    for (const r of rows) {
      const base = rows.find((b) => b.config === 'REST plain' && b.concurrency === r.concurrency)!;
      console.log(
        `${r.config.padEnd(28)} ${String(r.concurrency).padStart(4)} ${r.imgPerSec.toFixed(1).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p95.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${String(r.failed).padStart(7)}   ${(r.imgPerSec / base.imgPerSec).toFixed(2)}x`,
      );
    }
    console.log(`\naudit log append: ${usPerLine.toFixed(1)} µs per line (${n} lines, write(2) per line, no fsync)`);
    console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} (shared: absolute figures vary; compare rows)`);
    if (!pki) console.log('openssl not found: TLS rows skipped');
    await writeBenchResult('serve-security', { size, perRound, rounds, rows, auditMicrosPerLine: usPerLine, loadavg: os.loadavg() });
  } finally {
    await tmp.cleanup();
  }
}

// Access hardening (issue #14 items 8-10) on a real server with keys, audit log, gRPC and a trusted proxy header:
// failed-key throttling never locks out a valid key, refusals are audited, and nothing leaks to callers without a key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

const KEY = 'hardening-valid-key-0123456789';
const KEY_PROM = 'hardening-prom-key-0123456789';
const KEY_TINY = 'hardening-tiny-key-0123456789';
const WRONG = 'hardening-wrong-key-0123456789';

let tmp: { dir: string; cleanup: () => Promise<void> };
let srv: SecureServer;
let client: grpc.Client;
let auditFile: string;
let png: Buffer;

const req = (p: string, init: { method?: string; key?: string; ip?: string; body?: Buffer } = {}) =>
  fetch(srv.url + p, {
    method: init.method ?? 'GET',
    headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.ip ? { 'x-forwarded-for': `203.0.113.250, ${init.ip}` } : {}), ...(init.body ? { 'content-type': 'image/png' } : {}) },
    ...(init.body ? { body: init.body } : {}),
  });
const predict = (key: string, ip: string) => req('/predict?model=tiny', { method: 'POST', key, ip, body: png });

function grpcReady(key: string, ip: string): Promise<number> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  md.set('x-forwarded-for', ip);
  return new Promise((resolve) => {
    (client as any).ModelMetadata({ name: 'tiny', version: '' }, md, (err: grpc.ServiceError | null) => resolve(err ? err.code : 0));
  });
}

const auditLines = async () => (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));

beforeAll(async () => {
  tmp = await tempDir('mlctl-hardening-auth-');
  const root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny' });
  await tinyPackage(root, { name: 'secret-model', seed: 3 });
  auditFile = path.join(tmp.dir, 'audit.jsonl');
  png = await pngOf(10, 200, 10);
  srv = await startSecureServer(root, {
    apiKey: `ci:${KEY},prom:${KEY_PROM}@/metrics,t:${KEY_TINY}@tiny`,
    auditLog: auditFile,
    grpcPort: 0,
    metricsPort: 0,
    trustProxyHeader: 'x-forwarded-for',
  });
  client = new (predictV2Service())(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await srv?.close();
  await tmp?.cleanup();
});

describe('failed-key throttling', () => {
  it('REST: after 30 wrong keys an address gets 429 for wrong keys, while a valid key from it still answers 200', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 31; i++) codes.push((await predict(WRONG, '198.51.100.7')).status);
    expect(codes.slice(0, 30).every((c) => c === 401)).toBe(true);
    expect(codes[30]).toBe(429);
    expect((await predict(WRONG, '198.51.100.7')).headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await predict(KEY, '198.51.100.7')).status).toBe(200);
    // The trusted header's last entry is the client: another address behind the same proxy is not throttled.
    expect((await predict(WRONG, '198.51.100.8')).status).toBe(401);
  });

  it('gRPC: the same — wrong keys throttled per forwarded address, a valid key never locked out', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 31; i++) codes.push(await grpcReady(WRONG, '198.51.100.9'));
    expect(codes.slice(0, 30).every((c) => c === grpc.status.UNAUTHENTICATED)).toBe(true);
    expect(codes[30]).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await grpcReady(KEY, '198.51.100.9')).toBe(0);
  });
});

describe('audit of refused calls', () => {
  it('writes one line per 401/403 with key id when known, client, route and reason — never the key', async () => {
    await predict(KEY_TINY, '192.0.2.44').then((r) => expect(r.status).toBe(200));
    expect((await req('/v2/models/secret-model', { key: KEY_TINY, ip: '192.0.2.44' })).status).toBe(403);
    expect((await req('/v2/models/tiny', { ip: '192.0.2.45' })).status).toBe(401);
    expect(await grpcReady('grpc-wrong-key-0123456789', '192.0.2.46')).toBe(grpc.status.UNAUTHENTICATED);
    const text = await fs.readFile(auditFile, 'utf8');
    for (const k of [KEY, KEY_TINY, WRONG, 'grpc-wrong-key-0123456789']) expect(text).not.toContain(k);
    const denied = (await auditLines()).filter((l) => l.event === 'auth-denied');
    const forbidden = denied.find((l) => l.client === '192.0.2.44');
    expect(forbidden).toMatchObject({ status: 403, code: 'PERMISSION_DENIED', keyId: 't', route: 'GET /v2/models/:name' });
    expect(forbidden.reason).toMatch(/not allowed to use model "secret-model"/);
    expect(denied.find((l) => l.client === '192.0.2.45')).toMatchObject({ status: 401, keyId: null, code: 'UNAUTHENTICATED' });
    expect(denied.find((l) => l.client === '192.0.2.46')).toMatchObject({ status: 401, route: 'grpc ModelMetadata' });
    // 30 wrong REST keys from 198.51.100.7 above: 30 lines for it (the 429s are throttling, not refusals of a key).
    expect(denied.filter((l) => l.client === '198.51.100.7').length).toBe(30);
  });
});

describe('nothing leaks without a key', () => {
  it('per-model readiness needs a key (issue #28), and its 404s name no other model', async () => {
    for (const p of ['/v2/models/nope/ready', '/v2/models/nope/versions/3/ready', '/v2/models/tiny/versions/7/ready']) {
      expect((await req(p)).status).toBe(401);
      const r = await req(p, { key: KEY });
      expect(r.status).toBe(404);
      const body = (await r.json()) as { error: string };
      expect(body.error).not.toMatch(/secret-model|loaded models|loaded:/);
    }
    const keyed = await req('/v1/models/nope', { key: KEY });
    expect(((await keyed.json()) as { error: string }).error).not.toMatch(/secret-model/);
  });

  it('/metrics needs a key with the /metrics scope; --metrics-port serves it without one', async () => {
    expect((await req('/metrics')).status).toBe(401);
    const scoped = await req('/metrics', { key: KEY_TINY });
    expect(scoped.status).toBe(403);
    expect(((await scoped.json()) as { error: string }).error).toMatch(/\/metrics scope/);
    const prom = await req('/metrics', { key: KEY_PROM });
    expect(prom.status).toBe(200);
    expect(await prom.text()).toMatch(/mlctl_requests_total/);
    expect((await req('/metrics', { key: KEY })).status).toBe(200);
    // The metrics key is no inference key.
    expect((await predict(KEY_PROM, '192.0.2.80')).status).toBe(403);
    const port = String(srv.server.app.mlctl.info.metrics).split(':').pop();
    const open = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(open.status).toBe(200);
    expect(await open.text()).toMatch(/mlctl_requests_total\{protocol="rest"/);
    expect((await fetch(`http://127.0.0.1:${port}/predict`)).status).toBe(404);
  });
});

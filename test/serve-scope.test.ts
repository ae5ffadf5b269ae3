// Per-model API-key scopes (issue #28 items 1 and 13) on a real server with two models, an audit log and gRPC: a key
// is checked on the model that actually runs, whatever carried its name (query, multipart field, JSON body, URL,
// gRPC message), a /metrics-only key runs nothing, and per-model readiness needs a key when keys are on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

const KEY_M = 'scope-m-only-key-0123456789';
const KEY_PROM = 'scope-prom-key-0123456789';
const KEY_ALL = 'scope-all-key-0123456789';

let tmp: { dir: string; cleanup: () => Promise<void> };
let srv: SecureServer;
let client: grpc.Client;
let auditFile: string;
let png: Buffer;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const auditLines = async (): Promise<any[]> => (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));

/** multipart/form-data with the image first and a `model` field after it (as `curl -F image=@x -F model=p` sends it). */
function upload(model: string | undefined, key: string, modelFirst = false): Promise<Response> {
  const form = new FormData();
  if (modelFirst && model) form.append('model', model);
  form.append('image', new Blob([png], { type: 'image/png' }), 'x.png');
  if (!modelFirst && model) form.append('model', model);
  return fetch(`${srv.url}/predict`, { method: 'POST', headers: auth(key), body: form });
}

function jsonPredict(body: Record<string, unknown>, key: string): Promise<Response> {
  return fetch(`${srv.url}/predict`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ b64: png.toString('base64') }], ...body }) });
}

function grpcCall(method: string, req: Record<string, unknown>, key: string): Promise<{ code: number; res?: any }> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) => {
    (client as any)[method](req, md, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: any) => resolve(err ? { code: err.code } : { code: 0, res }));
  });
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-scope-');
  const root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'm', seed: 1 });
  await tinyPackage(root, { name: 'p', seed: 5 });
  auditFile = path.join(tmp.dir, 'audit.jsonl');
  png = await pngOf(200, 40, 40);
  srv = await startSecureServer(root, { apiKey: `monly:${KEY_M}@m,prom:${KEY_PROM}@/metrics,all:${KEY_ALL}`, auditLog: auditFile, grpcPort: 0 });
  client = new (predictV2Service())(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await srv?.close();
  await tmp?.cleanup();
});

describe('a key scoped to model m', () => {
  it('may not run model p named in a multipart field (before or after the image)', async () => {
    for (const first of [false, true]) {
      const res = await upload('p', KEY_M, first);
      const body = await json(res);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(body).toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(body.error).toMatch(/not allowed to use model "p"/);
    }
    const ok = await upload('m', KEY_M);
    expect(ok.status).toBe(200);
    expect((await json(ok)).model).toBe('m');
  });

  it('may not run model p named in a JSON body', async () => {
    const res = await jsonPredict({ model: 'p' }, KEY_M);
    expect(res.status).toBe(403);
    expect((await json(res)).code).toBe('PERMISSION_DENIED');
    expect((await jsonPredict({ model: 'm' }, KEY_M)).status).toBe(200);
  });

  it('gets the same 403 for a model that does not exist (no enumeration through body-carried names)', async () => {
    expect((await upload('nope', KEY_M)).status).toBe(403);
    expect((await jsonPredict({ model: 'nope' }, KEY_M)).status).toBe(403);
  });

  it('is held on V2, TF Serving and gRPC too', async () => {
    const v2 = await fetch(`${srv.url}/v2/models/p/infer`, {
      method: 'POST',
      headers: { ...auth(KEY_M), 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }] }),
    });
    expect(v2.status).toBe(403);
    const v1 = await fetch(`${srv.url}/v1/models/p:predict`, { method: 'POST', headers: { ...auth(KEY_M), 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ b64: png.toString('base64') }] }) });
    expect(v1.status).toBe(403);
    const g = await grpcCall('ModelInfer', { model_name: 'p', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [png] } }] }, KEY_M);
    expect(g.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('the audit log names the model that was refused, and the model that ran', async () => {
    const before = (await auditLines()).length;
    expect((await upload('p', KEY_M)).status).toBe(403);
    expect((await upload('m', KEY_M)).status).toBe(200);
    const lines = (await auditLines()).slice(before);
    const denied = lines.filter((l) => l.event === 'auth-denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ status: 403, code: 'PERMISSION_DENIED', keyId: 'monly', model: 'p' });
    const ran = lines.filter((l) => l.event === 'predict');
    expect(ran).toHaveLength(1);
    expect(ran[0]).toMatchObject({ model: 'm', keyId: 'monly' });
    // No prediction line for p: nothing ran.
    expect(lines.some((l) => l.model === 'p' && l.event !== 'auth-denied')).toBe(false);
  });
});

describe('the repository, where every transport runs a model', () => {
  it('refuses a model outside the caller\'s key scope before looking it up, whatever front end called it', async () => {
    const input = { name: 'image', datatype: 'BYTES' as const, shape: [1], data: [png] };
    const ctx = { requestId: 'scope-test', keyId: 'monly', keyModels: ['m'] };
    for (const name of ['p', 'nope']) {
      const err = await srv.repo.infer(name, undefined, [input], ctx).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ code: 'PERMISSION_DENIED', httpStatus: 403, model: name });
    }
    expect((await srv.repo.infer('m', undefined, [input], ctx)).model.name).toBe('m');
    // A /metrics-only scope holds no model.
    await expect(srv.repo.infer('m', undefined, [input], { requestId: 'x', keyId: 'prom', keyModels: ['/metrics'] })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});

describe('a key scoped to /metrics only', () => {
  it('runs no inference on any route or transport', async () => {
    for (const res of [await upload('m', KEY_PROM), await upload(undefined, KEY_PROM), await jsonPredict({ model: 'm' }, KEY_PROM), await jsonPredict({}, KEY_PROM)]) {
      const body = await json(res);
      expect(res.status, JSON.stringify(body)).toBe(403);
    }
    const v2 = await fetch(`${srv.url}/v2/models/m/infer`, {
      method: 'POST',
      headers: { ...auth(KEY_PROM), 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }] }),
    });
    expect(v2.status).toBe(403);
    expect((await grpcCall('ModelInfer', { model_name: 'm', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [png] } }] }, KEY_PROM)).code).toBe(grpc.status.PERMISSION_DENIED);
    // Model-less routes are refused too: the key reads /metrics and nothing else.
    expect((await fetch(`${srv.url}/v2`, { headers: auth(KEY_PROM) })).status).toBe(403);
    expect((await fetch(`${srv.url}/metrics`, { headers: auth(KEY_PROM) })).status).toBe(200);
  });
});

describe('per-model readiness with keys on', () => {
  it('needs a key, and a scoped key learns nothing about models outside its scope', async () => {
    for (const p of ['/v2/models/m/ready', '/v2/models/nope/ready', '/v2/models/m/versions/1/ready']) {
      expect((await fetch(srv.url + p)).status, p).toBe(401);
    }
    expect((await fetch(`${srv.url}/v2/models/m/ready`, { headers: auth(KEY_M) })).status).toBe(200);
    // Existing and missing models outside the scope answer alike.
    expect((await fetch(`${srv.url}/v2/models/p/ready`, { headers: auth(KEY_M) })).status).toBe(403);
    expect((await fetch(`${srv.url}/v2/models/nope/ready`, { headers: auth(KEY_M) })).status).toBe(403);
    expect((await fetch(`${srv.url}/v2/models/p/ready`, { headers: auth(KEY_ALL) })).status).toBe(200);
    // Server health stays open for probes.
    expect((await fetch(`${srv.url}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${srv.url}/v2/health/live`)).status).toBe(200);
  });

  it('gRPC ModelReady needs a key as well', async () => {
    const md = new grpc.Metadata();
    const noKey = await new Promise<number>((resolve) => (client as any).ModelReady({ name: 'm', version: '' }, md, (err: grpc.ServiceError | null) => resolve(err ? err.code : 0)));
    expect(noKey).toBe(grpc.status.UNAUTHENTICATED);
    expect((await grpcCall('ModelReady', { name: 'p', version: '' }, KEY_M)).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await grpcCall('ModelReady', { name: 'nope', version: '' }, KEY_M)).code).toBe(grpc.status.PERMISSION_DENIED);
    const ok = await grpcCall('ModelReady', { name: 'm', version: '' }, KEY_M);
    expect(ok).toMatchObject({ code: 0, res: { ready: true } });
  });
});

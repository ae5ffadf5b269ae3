// mlctl serve access control, audit log and HTTP hygiene against a real server on an ephemeral loopback port:
// 401/403/429 + Retry-After, open health routes, audit lines per prediction, CORS, headers and path traversal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { sha256 } from '../src/artifacts/hash.js';
import { MlctlError } from '../src/errors.js';
import { checkAccess, createRateLimiter, findKey, loadApiKeys, parseKeyEntry, parseRateLimit } from '../src/serve/auth.js';
import { openAuditLog } from '../src/serve/audit.js';
import { resolveInside, sanitizeErrorBody } from '../src/serve/hygiene.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

const KEY_CI = 'ci-key-0123456789abcdef';
const KEY_TINY = 'tiny-only-key-0123456789';
const KEY_OTHER = 'other-only-key-0123456789';

let tmp: { dir: string; cleanup: () => Promise<void> };
let srv: SecureServer;
let png: Buffer;
let auditFile: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-sec-');
  const root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny' });
  await tinyPackage(root, { name: 'other', seed: 5 });
  const keysFile = path.join(tmp.dir, 'keys.txt');
  await fs.writeFile(keysFile, `# scoped keys\ntiny:${KEY_TINY}@tiny\nother:${KEY_OTHER}@other\n`);
  auditFile = path.join(tmp.dir, 'audit', 'audit.jsonl');
  srv = await startSecureServer(root, { apiKey: `ci:${KEY_CI}`, apiKeysFile: keysFile, rateLimit: '4/s', auditLog: auditFile, cors: 'https://app.example.com' });
  png = await pngOf(200, 30, 30);
});

afterAll(async () => {
  await srv?.close();
  await tmp?.cleanup();
});

function request(method: string, p: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  return fetch(srv.url + p, { method, headers, ...(body !== undefined ? { body } : {}) });
}

/** For tests about something other than rate limits: wait out the shared 4/s per-key window instead of flaking. */
async function requestUnthrottled(method: string, p: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  for (let attempt = 0; ; attempt++) {
    const res = await request(method, p, headers, body);
    if (res.status !== 429 || attempt >= 4) return res;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 1000 * Math.min(2, Number(res.headers.get('retry-after') ?? 1))));
  }
}

const predict = (key?: string, model = 'tiny', extra: Record<string, string> = {}) =>
  request('POST', `/predict?model=${model}`, { 'content-type': 'image/png', ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra }, png);

describe('access control', () => {
  it('leaves health probes open but refuses inference, metadata, model readiness and metrics without a key (401)', async () => {
    expect((await request('GET', '/v2/health/live')).status).toBe(200);
    expect((await request('GET', '/v2/health/ready')).status).toBe(200);
    expect((await request('GET', '/v2/models/tiny/ready')).status).toBe(401);
    expect((await request('GET', '/metrics')).status).toBe(401);
    const res = await predict();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect((await json(res)).error).toMatch(/API key is required/);
    expect((await request('GET', '/v2/models/tiny')).status).toBe(401);
    expect((await request('GET', '/v2')).status).toBe(401);
  });

  it('refuses a wrong key with 401, also one differing from a real key in its last character only', async () => {
    expect((await predict('not-a-real-key-at-all-xyz')).status).toBe(401);
    expect((await predict(KEY_CI.slice(0, -1) + 'X')).status).toBe(401);
    expect((await predict(KEY_CI.slice(0, -1))).status).toBe(401);
  });

  it('accepts Bearer and x-api-key, and a scoped key only on its model (403 elsewhere)', async () => {
    const ok = await predict(KEY_CI);
    expect(ok.status).toBe(200);
    const body = await json(ok);
    expect(body.model).toBe('tiny');
    expect(body.predictions[0]).toHaveLength(3);
    const viaHeader = await request('GET', '/v2/models/tiny', { 'x-api-key': KEY_TINY });
    expect(viaHeader.status).toBe(200);
    const denied = await request('GET', '/v2/models/other', { 'x-api-key': KEY_TINY });
    expect(denied.status).toBe(403);
    expect((await json(denied)).error).toMatch(/tiny is not allowed to use model "other"/);
    expect((await predict(KEY_TINY, 'other')).status).toBe(403);
    expect((await predict(KEY_OTHER, 'other')).status).toBe(200);
    // TF Serving route: the model rides in ":model" with the verb attached.
    const tfs = await request('POST', '/v1/models/other:predict', { 'x-api-key': KEY_TINY, 'content-type': 'application/json' }, JSON.stringify({ instances: [{ b64: png.toString('base64') }] }));
    expect(tfs.status).toBe(403);
  });

  it('rate-limits per key with 429 and Retry-After while other keys keep working', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const res = await request('GET', '/v2/models/other', { 'x-api-key': KEY_OTHER });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses[0]).toBe(200);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // A different key has its own bucket.
    expect((await request('GET', '/v2/models/tiny', { 'x-api-key': KEY_TINY })).status).toBe(200);
  });
});

describe('audit log', () => {
  it('writes one line per prediction with key id, input hash, top label and model hash — never the key', async () => {
    const before = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').length;
    const blue = await pngOf(20, 30, 220);
    const res = await request('POST', '/predict?model=tiny', { 'x-api-key': KEY_CI, 'x-request-id': 'audit-req-1', 'content-type': 'application/json' }, JSON.stringify({ instances: [{ b64: png.toString('base64') }, { b64: blue.toString('base64') }] }));
    expect(res.status).toBe(200);
    const body = await json(res);
    const text = await fs.readFile(auditFile, 'utf8');
    expect(text).not.toContain(KEY_CI);
    expect(text).not.toContain(KEY_TINY);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(before + 2);
    const mine = lines.filter((l) => l.requestId === 'audit-req-1');
    expect(mine.map((l) => l.index)).toEqual([0, 1]);
    const tiny = srv.repo.get('tiny')!;
    for (const [i, line] of mine.entries()) {
      expect(line).toMatchObject({ event: 'predict', keyId: 'ci', model: 'tiny', version: tiny.version, manifestSha256: tiny.manifestSha256, client: '127.0.0.1' });
      expect(line.inputSha256).toBe(sha256(i === 0 ? png : blue));
      const probs: number[] = body.predictions[i];
      const best = probs.indexOf(Math.max(...probs));
      expect(line.label).toBe(tiny.manifest.labels[best]);
      expect(line.score).toBeCloseTo(probs[best]!, 5);
      expect(line.latencyMs).toBeGreaterThan(0);
      expect(Date.parse(line.time)).not.toBeNaN();
    }
  });

  it('logged every model at load with its verified package hash', async () => {
    const lines = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const loads = lines.filter((l) => l.event === 'model-load');
    expect(loads.map((l) => l.model).sort()).toEqual(['other', 'tiny']);
    for (const l of loads) {
      expect(l.verified).toBe(true);
      expect(l.manifestSha256).toBe(sha256(await fs.readFile(path.join(l.dir, 'mlctl.json'))));
    }
  });

  it('records failed predictions too', async () => {
    const res = await request('POST', '/predict?model=tiny', { 'x-api-key': KEY_CI, 'content-type': 'image/png', 'x-request-id': 'audit-bad-1' }, Buffer.from('not an image at all'));
    expect(res.status).toBe(400);
    const lines = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const bad = lines.find((l) => l.requestId === 'audit-bad-1');
    expect(bad).toMatchObject({ event: 'predict-error', model: 'tiny', keyId: 'ci' });
    expect(bad.error).toMatch(/not a readable image/);
  });

  it('rotates by size, keeping every line across the files', async () => {
    const dir = path.join(tmp.dir, 'rot');
    const log = openAuditLog({ file: path.join(dir, 'a.jsonl'), maxBytes: 400, keep: 3 });
    for (let i = 0; i < 12; i++) log.write({ i, pad: 'x'.repeat(60) });
    log.close();
    const files = (await fs.readdir(dir)).sort();
    expect(files).toEqual(['a.jsonl', 'a.jsonl.1', 'a.jsonl.2']);
    const all: number[] = [];
    for (const f of ['a.jsonl.2', 'a.jsonl.1', 'a.jsonl']) {
      const text = await fs.readFile(path.join(dir, f), 'utf8');
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(400);
      all.push(...text.trim().split('\n').map((l) => JSON.parse(l).i));
    }
    // Oldest generation beyond keep=3 files is dropped; what remains is contiguous and ends with the last line.
    expect(all[all.length - 1]).toBe(11);
    expect(all).toEqual(Array.from({ length: all.length }, (_, k) => 12 - all.length + k));
  });
});

describe('hygiene', () => {
  it('sends security headers and no CORS headers to an origin not allowed', async () => {
    const res = await request('GET', '/v2/health/live', { origin: 'https://evil.example.com' });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a CORS preflight for an allowed origin without a key', async () => {
    const res = await request('OPTIONS', '/v2/models/tiny/infer', { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/i);
  });

  it('refuses model names that try to leave the model directory', async () => {
    const attempts = ['/v2/models/..%2F..%2Fetc%2Fpasswd', '/v2/models/..%2Fother/ready', '/v2/models/.%2E%2Ftiny/infer', '/predict?model=../tiny', '/v1/models/..%2Ftiny:predict'];
    for (const p of attempts) {
      const method = p.includes('infer') || p.includes('predict') ? 'POST' : 'GET';
      const res = await requestUnthrottled(method, p, { 'x-api-key': KEY_CI, 'content-type': 'image/png' }, method === 'POST' ? png : undefined);
      expect(res.status, p).toBe(400);
      expect((await json(res)).error, p).toMatch(/invalid model name/);
    }
    // Raw, unnormalised traversal in the path never reaches a file either.
    const raw = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const u = new URL(srv.url);
      const req = http.request({ host: u.hostname, port: u.port, path: '/v2/models/../../../../etc/passwd', method: 'GET', headers: { 'x-api-key': KEY_CI } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect([400, 404]).toContain(raw.status);
    expect(raw.body).not.toMatch(/root:/);
    await expect(resolveInside(tmp.dir, '..', 'etc')).rejects.toThrow(/outside the model directory/);
    await expect(resolveInside(tmp.dir, 'models')).resolves.toBe(await fs.realpath(path.join(tmp.dir, 'models')));
  });

  it('symlinks planted in the model directory cannot lead outside it', async () => {
    const link = path.join(tmp.dir, 'models', 'escape');
    await fs.symlink('/etc', link);
    try {
      await expect(resolveInside(path.join(tmp.dir, 'models'), 'escape')).rejects.toThrow(/outside/);
    } finally {
      await fs.unlink(link);
    }
  });

  it('never puts stack traces in error bodies', async () => {
    const res = await requestUnthrottled('POST', '/v2/models/tiny/infer', { 'x-api-key': KEY_CI, 'content-type': 'application/json' }, '{"inputs": [');
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).not.toMatch(/\n\s+at\s|node_modules|\.ts:\d+/);
    const cleaned = sanitizeErrorBody({ error: 'boom\n    at thing (/x/y.ts:1:2)', stack: 'Error\n    at z' }, 500, 'r1') as Record<string, string>;
    expect(cleaned.stack).toBeUndefined();
    expect(cleaned.error).toMatch(/internal server error \(request id r1\)/);
  });
});

describe('key and limit parsing', () => {
  it('parses entries, derives ids from the digest and rejects bad ones with MlctlError', async () => {
    const k = parseKeyEntry(`${KEY_CI}@tiny+other`, 'test');
    expect(k.id).toMatch(/^key-[0-9a-f]{8}$/);
    expect(k.id).not.toContain(KEY_CI.slice(0, 8));
    expect(k.models).toEqual(['tiny', 'other']);
    expect(() => parseKeyEntry('short', 'test')).toThrow(MlctlError);
    expect(() => parseKeyEntry('bad id!:0123456789abcdefgh', 'test')).toThrow(/key id/);
    await expect(loadApiKeys({ keys: `a:${KEY_CI},b:${KEY_CI}` })).rejects.toThrow(/same key is configured twice/);
    const store = await loadApiKeys({ keys: `a:${KEY_CI} b:${KEY_TINY}` });
    expect(findKey(store, KEY_TINY)?.id).toBe('b');
    expect(findKey(store, KEY_TINY + 'x')).toBeUndefined();
    expect(parseRateLimit('10/s')).toEqual({ limit: 10, windowMs: 1000 });
    expect(parseRateLimit('600')).toEqual({ limit: 600, windowMs: 60_000 });
    expect(() => parseRateLimit('0/s')).toThrow(/rate-limit/);
  });

  it('token bucket refills over the window and says how long to wait', () => {
    let t = 0;
    const rl = createRateLimiter({ limit: 2, windowMs: 10_000 }, () => t);
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('a').ok).toBe(true);
    const no = rl.take('a');
    expect(no.ok).toBe(false);
    expect(no.ok ? 0 : no.retryAfterSec).toBe(5);
    t = 5_000;
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('b').ok).toBe(true);
  });
});

describe('key guessing', () => {
  it('an address sending wrong keys is throttled (429 + wait) for its wrong keys only — a valid key still works — then recovers', async () => {
    let t = 0;
    const store = await loadApiKeys({ keys: `ci:${KEY_CI}` });
    const ac = { store, failures: createRateLimiter({ limit: 3, windowMs: 30_000 }, () => t) };
    for (let i = 0; i < 3; i++) expect(checkAccess(ac, `wrong-key-guess-${i}-0123456789`, 'tiny', '10.0.0.9')).toMatchObject({ ok: false, status: 401 });
    // Out of tries: further wrong keys from this address wait; a user with the valid key behind the same address does not.
    const blocked = checkAccess(ac, 'wrong-key-guess-9-0123456789', 'tiny', '10.0.0.9');
    expect(blocked).toMatchObject({ ok: false, status: 429 });
    expect(blocked.ok ? 0 : blocked.retryAfterSec).toBe(10);
    expect(checkAccess(ac, KEY_CI, 'tiny', '10.0.0.9')).toEqual({ ok: true, keyId: 'ci' });
    // Other addresses, and requests without a key, are not counted against anyone.
    expect(checkAccess(ac, KEY_CI, 'tiny', '10.0.0.10')).toEqual({ ok: true, keyId: 'ci' });
    for (let i = 0; i < 5; i++) expect(checkAccess(ac, undefined, 'tiny', '10.0.0.11')).toMatchObject({ status: 401 });
    expect(checkAccess(ac, KEY_CI, 'tiny', '10.0.0.11')).toEqual({ ok: true, keyId: 'ci' });
    t = 10_000;
    expect(checkAccess(ac, KEY_CI, 'tiny', '10.0.0.9')).toEqual({ ok: true, keyId: 'ci' });
  });
});

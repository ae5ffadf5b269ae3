// Hot reload and model control on a real server: a new version appearing in the watched directory is switched to
// under continuous load with zero failed requests; a corrupted version is refused while the old one keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createReloader } from '../src/serve/reload.js';
import { createRepository } from '../src/serve/repository.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let srv: SecureServer;
let png: Buffer;
let auditFile: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-reload-');
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny', seed: 1 });
  auditFile = path.join(tmp.dir, 'audit.jsonl');
  srv = await startSecureServer(root, { watch: true, watchInterval: '200ms', allowModelControl: true, auditLog: auditFile });
  png = await pngOf(90, 160, 30);
});

afterAll(async () => {
  await srv?.close();
  await tmp?.cleanup();
});

interface LoadResult {
  statuses: number[];
  versions: number[];
  errors: string[];
}

/** Keep `workers` clients posting images until stop() resolves; every response is recorded in order. */
function loadLoop(workers: number): { stop: () => Promise<LoadResult>; versions: number[] } {
  const out: LoadResult = { statuses: [], versions: [], errors: [] };
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const res = await fetch(`${srv.url}/predict?model=tiny`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
        out.statuses.push(res.status);
        const body = await json(res);
        if (res.status === 200) out.versions.push(Number(body.version));
        else out.errors.push(body.error);
      } catch (err) {
        out.statuses.push(0);
        out.errors.push((err as Error).message);
      }
    }
  };
  const all = Promise.all(Array.from({ length: workers }, worker));
  return {
    versions: out.versions,
    stop: async () => {
      running = false;
      await all;
      return out;
    },
  };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `n` whole watcher scans, each begun after the previous one ended (the watcher's own, serialised with its poll). */
async function scans(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await srv.server.app.mlctl.modelControl!.scan();
}

/** A package version that fails its integrity check: built elsewhere, a weight file altered, then moved in. */
async function brokenVersion(version: number): Promise<string> {
  const staging = path.join(tmp.dir, `staging-${version}`);
  const pkg = await tinyPackage(staging, { name: 'tiny', seed: version });
  const shard = Object.keys(pkg.manifest.files).find((f) => f.endsWith('.bin'))!;
  const file = path.join(pkg.dir, shard);
  const bytes = await fs.readFile(file);
  bytes[0] = bytes[0]! ^ 0xff;
  await fs.writeFile(file, bytes);
  const target = path.join(root, 'tiny', String(version));
  await fs.rename(pkg.dir, target);
  return target;
}

describe('hot reload', () => {
  it('switches to a new version under load without a single failed request', async () => {
    const load = loadLoop(3);
    await until('traffic on v1', () => load.versions.length >= 5);
    await tinyPackage(root, { name: 'tiny', seed: 2 }); // atomic write of tiny/2
    await until('a response from v2', () => load.versions.includes(2));
    const switchedAt = load.versions.length;
    await until('more traffic on v2', () => load.versions.length >= switchedAt + 10);
    const res = await load.stop();
    expect(res.errors).toEqual([]);
    expect(res.statuses.every((s) => s === 200)).toBe(true);
    expect(res.versions[0]).toBe(1);
    expect(res.versions.slice(-5)).toEqual([2, 2, 2, 2, 2]);
    expect(srv.logger.lines.some((l) => /hot reload: loaded tiny v2 .*switched from v1 to v2/.test(l.msg))).toBe(true);
    const audit = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const reload = audit.find((l) => l.event === 'model-reload' && l.version === 2);
    expect(reload).toMatchObject({ model: 'tiny', verified: true });
    expect(reload.manifestSha256).toBe(srv.repo.get('tiny', 2)!.manifestSha256);
    expect(audit.filter((l) => l.event === 'predict').length).toBe(res.versions.length);
  });

  it('refuses a corrupted new version with a log line while the old version keeps serving', async () => {
    const load = loadLoop(2);
    const dir = await brokenVersion(3);
    await until('the refusal', () => srv.logger.lines.some((l) => l.level === 'error' && l.msg.includes(`refused ${dir}`)));
    const n = load.versions.length;
    await until('traffic after the refusal', () => load.versions.length >= n + 5);
    const res = await load.stop();
    expect(res.errors).toEqual([]);
    expect(new Set(res.versions)).toEqual(new Set([2]));
    const line = srv.logger.lines.find((l) => l.msg.includes(`refused ${dir}`))!.msg;
    expect(line).toMatch(/integrity check/);
    expect(line).toMatch(/tiny keeps serving v2/);
    expect(srv.repo.get('tiny', 3)).toBeUndefined();
    const audit = (await fs.readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.some((l) => l.event === 'model-refused' && l.dir === dir)).toBe(true);
    // Not retried on every scan while its files stay the same: two whole scans later, still one refusal.
    const refusals = () => srv.logger.lines.filter((l) => l.msg.includes(`refused ${dir}`)).length;
    const before = refusals();
    await scans(2);
    expect(refusals()).toBe(before);
  });

  it('a version refused at hot reload answers /ready 503 (ready: false), is listed unavailable and its infer is 503 (issue #28)', async () => {
    const ready = await fetch(`${srv.url}/v2/models/tiny/versions/3/ready`);
    expect(ready.status).toBe(503);
    expect(await json(ready)).toMatchObject({ name: 'tiny', version: '3', ready: false, reason: expect.stringMatching(/integrity check/) });
    const meta = await json(await fetch(`${srv.url}/v2/models/tiny`));
    expect(meta.unavailable_versions).toContainEqual(expect.objectContaining({ version: '3', reason: expect.stringMatching(/integrity check/) }));
    const infer = await fetch(`${srv.url}/predict?model=tiny&version=3`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    expect(infer.status).toBe(503);
    expect((await json(infer)).code).toBe('MODEL_UNAVAILABLE');
    const tf = await json(await fetch(`${srv.url}/v1/models/tiny`));
    expect(tf.model_version_status).toContainEqual(expect.objectContaining({ version: '3', state: 'END' }));
    // A version never seen stays a 404.
    expect((await fetch(`${srv.url}/v2/models/tiny/versions/9/ready`)).status).toBe(404);
  });
});

describe('model control', () => {
  const post = (p: string, body?: unknown) =>
    fetch(srv.url + p, { method: 'POST', ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });

  it('unloads a model (and the watcher leaves it unloaded), refuses a broken load and loads a given version', async () => {
    const un = await post('/v2/repository/models/tiny/unload');
    expect(un.status).toBe(200);
    expect((await json(un)).unloaded.sort()).toEqual(['1', '2']);
    expect((await fetch(`${srv.url}/predict?model=tiny`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(404);
    await scans(2);
    expect(srv.repo.get('tiny')).toBeUndefined();

    const broken = await post('/v2/repository/models/tiny/load');
    expect(broken.status).toBe(400);
    expect((await json(broken)).error).toMatch(/failed to load model "tiny" v3: .*integrity check/);

    const ok = await post('/v2/repository/models/tiny/load', { parameters: { version: 2 } });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toEqual({ name: 'tiny', version: '2', ready: true });
    const pred = await fetch(`${srv.url}/predict?model=tiny`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    expect(pred.status).toBe(200);
    expect((await json(pred)).version).toBe(2);

    const index = await json(await post('/v2/repository/index'));
    expect(index).toContainEqual({ name: 'tiny', version: '2', state: 'READY' });
    expect(index.some((m: { version: string; state: string }) => m.version === '3' && m.state === 'UNAVAILABLE')).toBe(true);
  });

  it('refuses unknown models and names that leave the model directory', async () => {
    expect((await post('/v2/repository/models/nothing/load')).status).toBe(404);
    for (const name of ['..%2F..%2Fetc', '..', '.%2E%2Fmodels']) {
      const res = await post(`/v2/repository/models/${name}/load`);
      expect([400, 404], name).toContain(res.status);
      expect(JSON.stringify(await json(res))).not.toMatch(/\n\s+at\s/);
    }
    expect((await post('/v2/repository/models/..%2F..%2Fetc/load')).status).toBe(400);
    expect((await post('/v2/repository/models/tiny/load', { parameters: { version: 'x' } })).status).toBe(400);
  });
});

describe('reloader policies', () => {
  it('--keep-versions unloads older versions after a switch, and a new model directory is picked up', async () => {
    const dir = path.join(tmp.dir, 'policies');
    await tinyPackage(dir, { name: 'alpha', seed: 1 });
    const logger = createMemoryLogger();
    const repo = createRepository({ engine: 'tfjs', maxBatch: 1, logger });
    await repo.load(dir);
    const reloader = createReloader({ root: dir, repo, logger, keepVersions: 1, settleMs: 0 });
    try {
      await tinyPackage(dir, { name: 'alpha', seed: 2 });
      await tinyPackage(dir, { name: 'beta', seed: 3 });
      await reloader.scan();
      expect(repo.list().map((m) => `${m.name}@${m.version}`)).toEqual(['alpha@2', 'beta@1']);
      expect(logger.lines.some((l) => l.msg.includes('unloaded alpha v1 (--keep-versions 1)'))).toBe(true);
      await reloader.scan(); // nothing new: nothing changes
      expect(repo.list()).toHaveLength(2);
    } finally {
      reloader.close();
      await repo.close();
    }
  });
});

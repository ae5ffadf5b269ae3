// A poisoned ONNX cache against `mlctl serve --require-signature` (issue #28 item 2), as real processes: whoever can
// write $MLCTL_CACHE replaces the cached conversion of a signed package and rewrites the sha256 beside it. What runs
// must stay anchored to the signature — the entry does not authenticate with the cache key (kept outside the cache),
// so it is rebuilt from the signed TF.js model — and the audit log's `verified` says true only for such bytes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/artifacts/hash.js';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { signPackageVersion } from '../src/artifacts/package-security.js';
import { generateSigningKeyPair, loadSigningKey } from '../src/artifacts/signing.js';
import { CONVERTER_VERSION, convertLayersModel } from '../src/onnx/index.js';
import { openEngine } from '../src/runtime/engine.js';
import { runFloat } from '../src/runtime/float.js';
import { imageToInput } from '../src/data/preprocess.js';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { loadTrustedKeys } from '../src/artifacts/signing.js';
import { serveConfig } from '../src/serve/config.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { startServe } from '../src/serve/serve.js';
import { createMemoryLogger } from '../src/util/log.js';
import { spawnCli } from './helpers/cli.js';
import { tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let signed: LoadedPackage;
let unsigned: LoadedPackage;
let trustDir: string;
let png: Buffer;
let reference: number[];
let poisoned: number[];
let poison: Uint8Array;
const saved = { cache: process.env.MLCTL_CACHE, key: process.env.MLCTL_CACHE_KEY_FILE };
const cacheDir = () => path.join(tmp.dir, 'cache');
const conversionOf = (p: LoadedPackage) => path.join(cacheDir(), 'onnx', `pkg-${p.manifestSha256}-c${CONVERTER_VERSION}.onnx`);

interface Served {
  predictions: number[];
  load: Record<string, any>;
  log: string;
}

/**
 * `mlctl serve PKG --engine onnx [--require-signature --trusted-keys DIR] --audit-log F`, then one prediction and
 * the audit's model-load line. In this process (what serve's CLI assembles), or with `cli` as a real mlctl process.
 */
async function serveOnce(pkg: LoadedPackage, requireSignature = true, env: Record<string, string> = {}, cli = false): Promise<Served> {
  const audit = path.join(tmp.dir, `audit-${Math.random().toString(36).slice(2)}.jsonl`);
  const before = { ...process.env };
  Object.assign(process.env, env);
  const restore = () => {
    for (const k of Object.keys(env)) {
      if (before[k] === undefined) delete process.env[k];
      else process.env[k] = before[k];
    }
  };
  const predictAndRead = async (url: string, log: () => string): Promise<Served> => {
    const res = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    const lines = (await fs.readFile(audit, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    return { predictions: body.predictions[0], load: lines.find((l) => l.event === 'model-load'), log: log() };
  };
  if (cli) {
    const proc = spawnCli(['serve', pkg.dir, '--port', '0', '--engine', 'onnx', '--audit-log', audit, ...(requireSignature ? ['--require-signature', '--trusted-keys', trustDir] : [])]);
    restore();
    try {
      // A generous start-up wait: tsx compiles the CLI, then the conversion runs (slow on a loaded machine).
      const url = (await proc.waitFor(/"msg":"serving on (http:\/\/[^"]+)"/, 150_000))[1]!;
      return await predictAndRead(url, proc.err);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  }
  const logger = createMemoryLogger();
  const access = requireSignature ? { trust: await loadTrustedKeys(trustDir), requireSignature: true } : {};
  const config = serveConfig(pkg.dir, { port: 0, host: '127.0.0.1', engine: 'onnx', batching: { maxBatch: 1 }, access, security: { audit: { file: audit, maxBytes: 10_000_000, keep: 1 } } });
  let serving: Awaited<ReturnType<typeof startServe>>;
  try {
    serving = await startServe(config, { logger, httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }) });
  } finally {
    restore();
  }
  try {
    return await predictAndRead(serving.server.url, () => logger.lines.map((l) => l.msg).join('\n'));
  } finally {
    await serving.server.shutdown('test done');
  }
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

/** The attack: the cached conversion replaced by other weights and the recorded sha256 rewritten to match. */
async function poisonCache(pkg: LoadedPackage, dropCode = false): Promise<void> {
  const file = conversionOf(pkg);
  await fs.writeFile(file, poison);
  const record = JSON.parse(await fs.readFile(`${file}.entry.json`, 'utf8'));
  record.sha256 = sha256(poison);
  if (dropCode) delete record.hmac;
  await fs.writeFile(`${file}.entry.json`, JSON.stringify(record));
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-cache-sig-');
  process.env.MLCTL_CACHE = cacheDir();
  process.env.MLCTL_CACHE_KEY_FILE = path.join(tmp.dir, 'config', 'mlctl', 'cache.key');
  await generateSigningKeyPair(path.join(tmp.dir, 'keys'), { name: 'release' });
  trustDir = path.join(tmp.dir, 'trusted');
  await fs.mkdir(trustDir);
  await fs.copyFile(path.join(tmp.dir, 'keys', 'release.pub.pem'), path.join(trustDir, 'release.pub.pem'));
  const models = path.join(tmp.dir, 'models');
  signed = await tinyPackage(models, { name: 'signed', seed: 3 });
  await signPackageVersion(signed, await loadSigningKey(path.join(tmp.dir, 'keys', 'release.key.pem')));
  signed = await loadPackage(signed.dir);
  unsigned = await tinyPackage(models, { name: 'unsigned', seed: 3 });
  png = await pngOf(220, 30, 90, 48);

  // What the signed package computes (TF.js, from its verified files) and what the poisoned conversion would.
  const spec = signed.manifest.input as ImageInputSpec;
  const x = await imageToInput(png, spec);
  const tfjs = await openEngine(signed, { engine: 'tfjs' });
  reference = Array.from(await runFloat(tfjs, x, 1));
  await tfjs.dispose();
  const other = tinyModel(32, 3, 99);
  poison = convertLayersModel(other, { inputName: 'input', outputName: 'predictions' });
  const poisonEngine = await openEngine({ kind: 'model', model: other, owned: true }, { engine: 'tfjs' });
  poisoned = Array.from(await runFloat(poisonEngine, x, 1));
  await poisonEngine.dispose();
  expect(maxDiff(reference, poisoned)).toBeGreaterThan(0.05);
});

afterAll(async () => {
  for (const [k, v] of [['MLCTL_CACHE', saved.cache], ['MLCTL_CACHE_KEY_FILE', saved.key]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await tmp?.cleanup();
});

describe('serve --require-signature over a poisoned ONNX cache', () => {
  it('converts once and caches the conversion with an authentication code; the key file is outside the cache, 0600', async () => {
    const first = await serveOnce(signed);
    expect(maxDiff(first.predictions, reference)).toBeLessThan(1e-4);
    expect(first.load).toMatchObject({ verified: true, runs: expect.stringMatching(/^converted from .* cached at /) });
    const record = JSON.parse(await fs.readFile(`${conversionOf(signed)}.entry.json`, 'utf8'));
    expect(record.hmac).toMatch(/^[0-9a-f]{64}$/);
    const st = await fs.stat(process.env.MLCTL_CACHE_KEY_FILE!);
    expect(st.mode & 0o777).toBe(0o600);
    const again = await serveOnce(signed);
    expect(again.load).toMatchObject({ verified: true, runs: expect.stringMatching(/^cache .* \(authenticated with the cache key\)$/) });
  });

  it('never runs replaced bytes whose sha256 was rewritten: rebuilt from the signed model, audited verified', async () => {
    for (const dropCode of [false, true]) {
      await poisonCache(signed, dropCode);
      // The run, as a real `mlctl serve` process; the second variant in this process.
      const served = await serveOnce(signed, true, {}, !dropCode);
      expect(maxDiff(served.predictions, poisoned), `dropCode ${dropCode}`).toBeGreaterThan(0.05);
      expect(maxDiff(served.predictions, reference)).toBeLessThan(1e-4);
      expect(served.load).toMatchObject({ verified: true, runs: expect.stringMatching(/^converted from /) });
      expect(served.log).toMatch(dropCode ? /carries no authentication code/ : /does not authenticate with the cache key/);
      // The rebuilt entry is authentic again.
      expect(sha256(await fs.readFile(conversionOf(signed)))).not.toBe(sha256(poison));
    }
  }, 300_000);

  it('without a usable cache key a signed package is converted in memory; an unsigned one may use the entry but is not verified', async () => {
    await poisonCache(signed, true);
    // A key file inside the cache is refused: whoever writes the cache could replace it.
    const inside = { MLCTL_CACHE_KEY_FILE: path.join(cacheDir(), 'cache.key') };
    const s = await serveOnce(signed, true, inside);
    expect(maxDiff(s.predictions, reference)).toBeLessThan(1e-4);
    expect(s.load).toMatchObject({ verified: true, runs: expect.stringMatching(/in memory \(signed, and no cache key/) });
    expect(s.log).toMatch(/is inside the cache/);

    await serveOnce(unsigned, false);
    await poisonCache(unsigned, true);
    const u = await serveOnce(unsigned, false, inside);
    expect(u.load).toMatchObject({ verified: false, runs: expect.stringMatching(/recorded sha256 only: no cache key/) });
    // With the key back, the same unauthenticated entry is rebuilt before it runs.
    const back = await serveOnce(unsigned, false);
    expect(maxDiff(back.predictions, reference)).toBeLessThan(1e-4);
    expect(back.load).toMatchObject({ verified: true });
  });

  it('refuses a key file others may read or write, or that is a link', async () => {
    const dir = path.join(tmp.dir, 'loose');
    await fs.mkdir(dir, { recursive: true });
    const loose = path.join(dir, 'cache.key');
    await fs.writeFile(loose, 'k'.repeat(64), { mode: 0o644 });
    await fs.chmod(loose, 0o644);
    const s = await serveOnce(signed, true, { MLCTL_CACHE_KEY_FILE: loose });
    expect(s.log).toMatch(/everyone may read it/);
    expect(s.load.runs).toMatch(/in memory/);
    const link = path.join(dir, 'link.key');
    await fs.symlink(process.env.MLCTL_CACHE_KEY_FILE!, link);
    expect((await serveOnce(signed, true, { MLCTL_CACHE_KEY_FILE: link })).log).toMatch(/not a regular file/);
  });
});

// serve with --require-signature / --trusted-keys / --key-file: the gate every load passes (start-up, --watch hot
// reload), refusing unsigned, untrusted, tampered and wrongly keyed versions while the old version keeps serving,
// and loading a signed encrypted version with its key. Plus the CLI's start-up refusals.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModelKey, loadModelKey, type ModelKey } from '../src/artifacts/encryption.js';
import { MANIFEST_FILE } from '../src/artifacts/manifest.js';
import { loadPackage, savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { encryptPackage, signPackageVersion } from '../src/artifacts/package-security.js';
import { sha256 } from '../src/artifacts/hash.js';
import { generateSigningKeyPair, loadSigningKey, loadTrustedKeys, type SigningKey } from '../src/artifacts/signing.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { serveConfigFromOptions } from '../src/cli/run/serve.js';
import { assembleServe } from '../src/serve/assemble.js';
import { startServer } from '../src/serve/start.js';
import type { ModelRepository } from '../src/serve/types.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyModel } from './helpers/fixtures.js';
import { runCli } from './helpers/cli.js';
import { flipByte } from './security-helpers.js';
import { CLI_DEFAULTS, json, pngOf } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let models: string;
let trusted: SigningKey;
let intruder: SigningKey;
let key: ModelKey;
let otherKey: ModelKey;
let trustDir: string;
let png: Buffer;
let logger: ReturnType<typeof createMemoryLogger>;
let repo: ModelRepository;
let url: string;
let stop: () => Promise<void>;

/** Version `v` of model "tiny", made in a staging registry and moved into the served directory in one rename. */
async function addVersion(v: number, o: { sign?: SigningKey; encrypt?: ModelKey; tamper?: boolean } = {}): Promise<string> {
  const staging = path.join(tmp.dir, `staging-${v}`);
  const model = tinyModel(16, 3, v);
  let pkg: LoadedPackage;
  try {
    pkg = await savePackage({
      root: staging,
      name: 'tiny',
      version: o.encrypt ? v - 1 : v,
      draft: { task: 'image-classification', labels: ['a', 'b', 'c'], input: imageInputSpec(16, 'caffe'), output: { name: 'predictions', kind: 'probabilities', size: 3 }, architecture: { type: 'test' }, formats: { tfjs: 'model.json' }, lineage: [] },
      write: (dir) => writeTfjsModel(dir, model),
    });
  } finally {
    model.dispose();
  }
  if (o.encrypt) pkg = await encryptPackage(pkg, o.encrypt, { root: staging });
  if (o.sign) await signPackageVersion(pkg, o.sign);
  if (o.tamper) {
    // Change a weight file and put its new hash into mlctl.json: only the signature can tell.
    const shard = Object.keys(pkg.manifest.files).find((f) => f.endsWith('.bin'))!;
    await flipByte(path.join(pkg.dir, shard), 0);
    const m = JSON.parse(await fs.readFile(path.join(pkg.dir, MANIFEST_FILE), 'utf8'));
    m.files[shard].sha256 = sha256(await fs.readFile(path.join(pkg.dir, shard)));
    await fs.writeFile(path.join(pkg.dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
  }
  const target = path.join(models, 'tiny', String(v));
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(pkg.dir, target);
  return target;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function servedVersion(): Promise<number> {
  const res = await fetch(`${url}/predict?model=tiny`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
  expect(res.status).toBe(200);
  return Number((await json(res)).version);
}

const refusal = (dir: string) => logger.lines.find((l) => l.level === 'error' && l.msg.includes(`refused ${dir}`))?.msg;

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-sec-serve-');
  models = path.join(tmp.dir, 'models');
  await generateSigningKeyPair(path.join(tmp.dir, 'keys'), { name: 'release' });
  await generateSigningKeyPair(path.join(tmp.dir, 'keys'), { name: 'intruder' });
  trusted = await loadSigningKey(path.join(tmp.dir, 'keys', 'release.key.pem'));
  intruder = await loadSigningKey(path.join(tmp.dir, 'keys', 'intruder.key.pem'));
  trustDir = path.join(tmp.dir, 'trusted');
  await fs.mkdir(trustDir);
  await fs.copyFile(path.join(tmp.dir, 'keys', 'release.pub.pem'), path.join(trustDir, 'release.pub.pem'));
  key = (await loadModelKey({ file: (await generateModelKey(path.join(tmp.dir, 'keys', 'prod.key'))).file }))!;
  otherKey = (await loadModelKey({ file: (await generateModelKey(path.join(tmp.dir, 'keys', 'other.key'))).file }))!;
  png = await pngOf(90, 160, 30);
  await addVersion(1, { sign: trusted });

  // What `mlctl serve models/tiny --watch --require-signature --trusted-keys DIR --key-file K` sets up.
  const access = { trust: await loadTrustedKeys(trustDir), requireSignature: true, key };
  logger = createMemoryLogger();
  const metrics = createServeMetrics({ defaultMetrics: false });
  repo = createRepository({ engine: 'tfjs', engineThread: false, maxBatch: 2, maxDelayMs: 1, logger, metrics, loadPackage: (dir) => loadPackage(dir, access) });
  await repo.load(path.join(models, 'tiny'));
  const options = { ...CLI_DEFAULTS, watch: true, watchInterval: '200ms', ui: false, docs: false } as Parameters<typeof serveConfigFromOptions>[1];
  const security = await assembleServe(serveConfigFromOptions(path.join(models, 'tiny'), options), { repo, logger });
  const server = await startServer(repo, { port: 0, host: '127.0.0.1', metrics, logger: false, ...security });
  url = server.url;
  stop = async () => {
    await server.shutdown('test done');
  };
});

afterAll(async () => {
  await stop?.();
  await tmp?.cleanup();
});

describe('serve --require-signature with --watch', () => {
  it('serves the signed v1', async () => {
    expect(await servedVersion()).toBe(1);
    expect(repo.get('tiny')!.package.signature).toMatchObject({ keyId: trusted.keyId, trusted: true });
  });

  it('refuses an unsigned, an untrusted and a tampered signed version; v1 keeps serving throughout', async () => {
    const cases: Array<[number, Parameters<typeof addVersion>[1], RegExp]> = [
      [2, {}, /is not signed \(no mlctl\.sig\)/],
      [3, { sign: intruder }, /is signed by key sha256:[0-9a-f]{64}, which is not among the trusted keys/],
      [4, { sign: trusted, tamper: true }, /invalid signature: it covers mlctl\.json with sha256 .* \(the manifest was changed after signing\)/],
      [5, { sign: trusted, encrypt: otherKey }, /is encrypted with key aes256:[0-9a-f]{32}, but the key given is aes256:/],
    ];
    for (const [v, o, why] of cases) {
      const dir = await addVersion(v, o);
      await until(`the refusal of v${v}`, () => refusal(dir) !== undefined);
      expect(refusal(dir)).toMatch(why);
      expect(refusal(dir)).toMatch(/tiny keeps serving v1/);
      expect(await servedVersion()).toBe(1);
      expect(repo.get('tiny', v)).toBeUndefined();
    }
  });

  it('switches to a signed, encrypted version decrypted with --key-file', async () => {
    await addVersion(6, { sign: trusted, encrypt: key });
    await until('v6 served', async () => (await servedVersion()) === 6);
    const m = repo.get('tiny', 6)!;
    expect(m.manifest.encryption?.keyId).toBe(key.keyId);
    expect(m.package.signature?.trusted).toBe(true);
  });
});

describe('mlctl serve start-up refusals', () => {
  const serve = (args: string[], env: Record<string, string | undefined> = {}, version = 2) =>
    runCli(['serve', path.join(models, 'tiny', String(version)), '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', ...args], { env: { MLCTL_TRUSTED_KEYS: undefined, MLCTL_MODEL_KEY: undefined, MLCTL_MODEL_KEY_FILE: undefined, ...env } });

  it('--require-signature without trusted keys exits 2', async () => {
    const r = await serve(['--require-signature']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--require-signature needs --trusted-keys/);
  });

  it('an unsigned package under --require-signature exits 1 naming what failed', async () => {
    const r = await serve(['--require-signature', '--trusted-keys', trustDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model package .*tiny\/2 is not signed/);
  });

  it('an unreadable or malformed key file exits 2 before loading', async () => {
    const r = await serve(['--key-file', path.join(tmp.dir, 'nope.key')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model key .*nope\.key cannot be used: cannot read it \(ENOENT\)/);
  });

  it('an encrypted package without a key exits 1 saying which key it needs', async () => {
    const r = await serve(['--json'], {}, 6);
    expect(r.code).toBe(1);
    expect(r.json.error).toMatchObject({ code: 'MODEL_KEY_REQUIRED', message: expect.stringContaining(`(key ${key.keyId}): pass --key-file FILE or set MLCTL_MODEL_KEY`) });
  });
});

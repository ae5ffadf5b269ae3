// Weights encrypted at rest: encrypt/decrypt round trip, the manifest's record (never the key), engines reading
// through the one decrypting reader, wrong/missing keys and flipped or swapped ciphertext refused, and — scanning the
// cache, temp and package trees for a known plaintext weight pattern — no plaintext written by evaluate or serve.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptBytes, decryptFileBytes, encryptBytes, generateModelKey, loadModelKey, parseModelKey, type ModelKey } from '../src/artifacts/encryption.js';
import { MANIFEST_FILE } from '../src/artifacts/manifest.js';
import { listVersions, loadPackage, loadTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { decryptPackage, encryptPackage } from '../src/artifacts/package-security.js';
import { sha256 } from '../src/artifacts/hash.js';
import { MlctlError } from '../src/errors.js';
import { convertLayersModel } from '../src/onnx/index.js';
import { openEngine } from '../src/runtime/engine.js';
import { createRepository } from '../src/serve/repository.js';
import { createMemoryLogger } from '../src/util/log.js';
import { synthDataset, tempDir } from './helpers/fixtures.js';
import { runCli } from './helpers/cli.js';
import { codeOf, filesContaining, flipByte, markedPackage, MARKER } from './security-helpers.js';
import { runFloat } from '../src/runtime/float.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let staging: string;
let root: string;
let plain: LoadedPackage;
let enc: LoadedPackage;
let key: ModelKey;
let keyFile: string;
let otherKeyFile: string;
let data: string;

/** A copy of the encrypted version under its own model name, for tampering. */
async function copyEncrypted(name: string): Promise<string> {
  const dst = path.join(root, name, '1');
  await fs.cp(enc.dir, dst, { recursive: true });
  const m = JSON.parse(await fs.readFile(path.join(dst, MANIFEST_FILE), 'utf8'));
  m.name = name;
  m.version = 1;
  await fs.writeFile(path.join(dst, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
  return dst;
}

/** Rewrite a package's manifest hashes to match its files (what an attacker with write access would do). */
async function rehash(dir: string): Promise<void> {
  const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
  for (const f of Object.keys(m.files)) {
    const b = await fs.readFile(path.join(dir, f));
    m.files[f] = { sha256: sha256(b), bytes: b.length };
  }
  await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
}

async function outputs(pkg: LoadedPackage, engine: 'onnx' | 'tfjs', cacheRoot: string): Promise<Float32Array> {
  const e = await openEngine(pkg, { engine, cacheRoot });
  try {
    const x = new Float32Array(2 * 16 * 16 * 3).map((_, i) => ((i * 37) % 255) - 120);
    return await runFloat(e, x, 2);
  } finally {
    await e.dispose();
  }
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-enc-');
  staging = path.join(tmp.dir, 'staging');
  root = path.join(tmp.dir, 'artifacts');
  keyFile = (await generateModelKey(path.join(tmp.dir, 'keys', 'prod.model.key'))).file;
  otherKeyFile = (await generateModelKey(path.join(tmp.dir, 'keys', 'other.model.key'))).file;
  key = (await loadModelKey({ file: keyFile }))!;
  plain = await markedPackage(staging, { extraFiles: async (model) => ({ 'model.onnx': convertLayersModel(model, { inputName: 'input', outputName: 'predictions' }) }) });
  // The encrypted version goes into a registry that never held the plaintext one.
  enc = await encryptPackage(plain, key, { root });
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 4, size: 16 });
});

afterAll(() => tmp?.cleanup());

describe('encrypt', () => {
  it('encrypts the weight shards and model.onnx; the manifest hashes ciphertext and records the key id, never the key', async () => {
    const e = enc.manifest.encryption!;
    expect(e).toMatchObject({ algorithm: 'AES-256-GCM', format: 'mlctl-aes-256-gcm-v1', keyId: key.keyId, files: ['group1-shard1of1.bin', 'model.onnx'] });
    for (const f of e.files) {
      const bytes = await fs.readFile(path.join(enc.dir, f));
      expect(bytes.subarray(0, 8).toString()).toBe('MLCTLENC');
      expect(bytes.length).toBe(plain.manifest.files[f]!.bytes + 37);
      expect(enc.manifest.files[f]!.sha256).toBe(sha256(bytes));
      expect(bytes.includes(MARKER)).toBe(false);
    }
    expect(await fs.readFile(path.join(enc.dir, 'model.json'))).toEqual(await fs.readFile(path.join(plain.dir, 'model.json')));
    const text = await fs.readFile(path.join(enc.dir, MANIFEST_FILE), 'utf8');
    for (const form of [key.bytes.toString('hex'), key.bytes.toString('base64'), key.bytes.toString('base64url')]) expect(text).not.toContain(form);
    expect(enc.manifest.lineage.at(-1)).toMatchObject({ op: 'encrypt', from: { name: 'marked', version: 1, manifestSha256: plain.manifestSha256 } });
    expect((await filesContaining([staging], MARKER)).length).toBeGreaterThan(0); // the scanner sees plaintext where it is
  });

  it('a random nonce per file: encrypting twice gives different ciphertext', () => {
    const a = encryptBytes(key, 'w.bin', MARKER);
    const b = encryptBytes(key, 'w.bin', MARKER);
    expect(a.equals(b)).toBe(false);
    expect(decryptBytes(key, 'w.bin', a, 'test')).toEqual(MARKER);
  });

  it('engines read the encrypted package with its key: same outputs as the plaintext one', async () => {
    const withKey = await loadPackage(enc.dir, { key });
    // The key rides along in memory but never into JSON results or logs.
    for (const text of [JSON.stringify(withKey), JSON.stringify({ ...withKey }), (await import('node:util')).inspect(withKey, { depth: 5 })]) {
      expect(text).not.toContain(key.bytes.toString('hex').slice(0, 16));
      expect(text).not.toContain(String(key.bytes[0]) + ',' + String(key.bytes[1]) + ',' + String(key.bytes[2]));
      expect(text).not.toContain([...key.bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' '));
      expect(text).toContain(key.keyId);
    }
    const cache = path.join(tmp.dir, 'cache-eq');
    for (const engine of ['tfjs', 'onnx'] as const) expect(await outputs(withKey, engine, cache)).toEqual(await outputs(plain, engine, cache));
  });

  it('decrypt gives back the plaintext files byte for byte', async () => {
    const back = await decryptPackage(await loadPackage(enc.dir), key, { root: path.join(tmp.dir, 'decrypted') });
    expect(back.manifest.encryption).toBeUndefined();
    for (const [f, e] of Object.entries(plain.manifest.files)) expect(back.manifest.files[f]).toEqual(e);
    expect(back.manifest.lineage.at(-1)).toMatchObject({ op: 'decrypt', from: { version: enc.manifest.version } });
  });

  it('parses hex, base64 and raw keys, and refuses anything else', () => {
    const raw = Buffer.alloc(32, 7);
    const id = parseModelKey(raw, 'raw').keyId;
    expect(parseModelKey(raw.toString('hex') + '\n', 'hex').keyId).toBe(id);
    expect(parseModelKey(raw.toString('base64'), 'b64').keyId).toBe(id);
    expect(() => parseModelKey('too-short', 'MLCTL_MODEL_KEY')).toThrow(/model key MLCTL_MODEL_KEY cannot be used: it must be 32 bytes/);
  });
});

describe('wrong keys and changed ciphertext are refused before any weights are used', () => {
  it('no key → MODEL_KEY_REQUIRED; another key → MODEL_KEY_MISMATCH (both engines)', async () => {
    const noKey = await loadPackage(enc.dir);
    expect(await codeOf(loadTfjsModel(noKey))).toBe('MODEL_KEY_REQUIRED');
    expect(await codeOf(openEngine(noKey, { engine: 'auto' }))).toBe('MODEL_KEY_REQUIRED');
    const other = (await loadModelKey({ file: otherKeyFile }))!;
    const err = await loadPackage(enc.dir, { key: other }).catch((e: MlctlError) => e);
    expect((err as MlctlError).code).toBe('MODEL_KEY_MISMATCH');
    expect((err as MlctlError).message).toContain(key.keyId);
    expect((err as MlctlError).message).toContain(other.keyId);
    // Bypassing the key id check, AES-GCM itself refuses the wrong key.
    const forged = parseModelKey(other.bytes, 'forged');
    forged.keyId = key.keyId;
    expect(() => decryptBytes(forged, 'model.onnx', encryptBytes(key, 'model.onnx', MARKER), 'x')).toThrow(/authentication tag does not match/);
  });

  it('a flipped ciphertext byte (manifest re-hashed to match) → DECRYPTION_FAILED in every reader', async () => {
    const dir = await copyEncrypted('flipped');
    await flipByte(path.join(dir, 'group1-shard1of1.bin'), 40);
    await flipByte(path.join(dir, 'model.onnx'), 100);
    await rehash(dir);
    const pkg = await loadPackage(dir, { key });
    const e1 = await loadTfjsModel(pkg).catch((e: MlctlError) => e);
    expect((e1 as MlctlError).code).toBe('DECRYPTION_FAILED');
    expect((e1 as MlctlError).message).toMatch(/group1-shard1of1\.bin could not be decrypted \(the AES-GCM authentication tag does not match\)/);
    expect(await codeOf(openEngine(pkg, { engine: 'onnx' }))).toBe('DECRYPTION_FAILED');
    expect(await codeOf(openEngine(pkg, { engine: 'auto' }))).toBe('DECRYPTION_FAILED');
  });

  it('files larger than one read block: decrypted block by block, a flipped byte or a cut tail in any block refused', async () => {
    const plainBytes = Buffer.from(Array.from({ length: 2_621_447 }, (_, i) => (i * 131 + (i >> 9)) & 255));
    const file = path.join(tmp.dir, 'big.bin');
    await fs.writeFile(file, encryptBytes(key, 'big.bin', plainBytes));
    expect((await decryptFileBytes(key, 'big.bin', file, 'test')).equals(plainBytes)).toBe(true);
    // The stored bytes are seen whole and in order, and their check runs before the tag's.
    const seen = createHash('sha256');
    const stored = await decryptFileBytes(key, 'big.bin', file, 'test', { onStored: (b) => seen.update(b) });
    expect(stored.equals(plainBytes)).toBe(true);
    expect(seen.digest('hex')).toBe(sha256(await fs.readFile(file)));
    await expect(decryptFileBytes(key, 'big.bin', file, 'test', { checkStored: () => { throw new Error('hash differs'); } })).rejects.toThrow('hash differs');
    for (const at of [30, 1_500_000, 2_621_447 + 20]) {
      const bad = path.join(tmp.dir, `big-${at}.bin`);
      await fs.copyFile(file, bad);
      await flipByte(bad, at);
      expect(await codeOf(decryptFileBytes(key, 'big.bin', bad, 'test'))).toBe('DECRYPTION_FAILED');
    }
    const cut = path.join(tmp.dir, 'big-cut.bin');
    await fs.writeFile(cut, (await fs.readFile(file)).subarray(0, 1_200_000));
    expect(await codeOf(decryptFileBytes(key, 'big.bin', cut, 'test'))).toBe('DECRYPTION_FAILED');
    expect(await codeOf(decryptFileBytes(key, 'other.bin', file, 'test'))).toBe('DECRYPTION_FAILED');
  });

  it('a changed encrypted file whose manifest hash was not updated → PACKAGE_HASH_MISMATCH where readers check hashes', async () => {
    const dir = await copyEncrypted('unhashed');
    await flipByte(path.join(dir, 'model.onnx'), 100);
    expect(await codeOf(openEngine(await loadPackage(dir, { key, verify: false }), { engine: 'onnx' }))).toBe('PACKAGE_HASH_MISMATCH');
  });

  it('ciphertext moved to another file name (manifest re-hashed) → DECRYPTION_FAILED (the path is authenticated)', async () => {
    const dir = await copyEncrypted('swapped');
    const enc2 = encryptBytes(key, 'other.bin', await fs.readFile(path.join(plain.dir, 'group1-shard1of1.bin')));
    await fs.writeFile(path.join(dir, 'group1-shard1of1.bin'), enc2);
    await rehash(dir);
    expect(await codeOf(loadTfjsModel(await loadPackage(dir, { key })))).toBe('DECRYPTION_FAILED');
  });

  it('CLI: decrypt with the wrong key exits 1 and writes nothing; a malformed key exits 2', async () => {
    const modelDir = path.dirname(enc.dir);
    const before = await fs.readdir(modelDir);
    const wrong = await runCli(['decrypt', enc.dir, '--key-file', otherKeyFile, '--json']);
    expect(wrong.code).toBe(1);
    expect(wrong.json.error.code).toBe('MODEL_KEY_MISMATCH');
    const bad = path.join(tmp.dir, 'bad.key');
    await fs.writeFile(bad, 'hunter2');
    const malformed = await runCli(['encrypt', plain.dir, '--key-file', bad]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).not.toContain('hunter2');
    // A tampered file is found by GCM while streaming: the half-written version is removed.
    const dir = await copyEncrypted('cli-flipped');
    await flipByte(path.join(dir, 'model.onnx'), 200);
    await rehash(dir);
    const broken = await runCli(['decrypt', dir, '--key-file', keyFile, '--json']);
    expect(broken.code).toBe(1);
    expect(broken.json.error.code).toBe('DECRYPTION_FAILED');
    expect(await fs.readdir(path.dirname(dir))).toEqual(['1']);
    expect(await fs.readdir(modelDir)).toEqual(before);
  });

  it('CLI: encrypt refuses an already encrypted package; optimize and plain exports refuse encrypted ones', async () => {
    const again = await runCli(['encrypt', enc.dir, '--key-file', keyFile, '--json']);
    expect(again.json.error.code).toBe('PACKAGE_ENCRYPTED');
    const q = await runCli(['quantize', enc.dir, '--dtype', 'float16', '--latency-runs', '0', '--backend', 'cpu', '--json'], { env: { MLCTL_ARTIFACTS: root } });
    expect(q.code).toBe(1);
    expect(q.json.error.message).toMatch(/optimize the plaintext version it was encrypted from \(marked@1\)/);
    const x = await runCli(['export', enc.dir, '--format', 'onnx', '--out', path.join(tmp.dir, 'onnx-out'), '--backend', 'cpu', '--json']);
    expect(x.json.error.code).toBe('PACKAGE_ENCRYPTED');
    expect(await fs.stat(path.join(tmp.dir, 'onnx-out')).catch(() => undefined)).toBeUndefined();
    expect(await listVersions(path.dirname(enc.dir))).toEqual([enc.manifest.version]);
  });
});

describe('plaintext never reaches disk', () => {
  it('evaluate (ONNX conversion and TF.js) and serve (worker thread) leave no plaintext in cache, temp or registry', async () => {
    const cache = path.join(tmp.dir, 'scan-cache');
    const tmpdir = path.join(tmp.dir, 'scan-tmp');
    await fs.mkdir(tmpdir, { recursive: true });
    const env = { MLCTL_CACHE: cache, TMPDIR: tmpdir, MLCTL_ARTIFACTS: root };
    const missing = await runCli(['evaluate', enc.dir, '--data', data, '--latency-runs', '0', '--backend', 'cpu', '--json'], { env: { ...env, MLCTL_MODEL_KEY: undefined, MLCTL_MODEL_KEY_FILE: undefined } });
    expect(missing.code).toBe(1);
    expect(missing.json.error.code).toBe('MODEL_KEY_REQUIRED');
    // The tfjs-only path converts to ONNX: strip model.onnx so the engine has to convert in memory.
    const tfjsOnly = path.join(root, 'tfjs-only', '1');
    await fs.cp(enc.dir, tfjsOnly, { recursive: true });
    const m = JSON.parse(await fs.readFile(path.join(tfjsOnly, MANIFEST_FILE), 'utf8'));
    Object.assign(m, { name: 'tfjs-only', version: 1, formats: { tfjs: 'model.json' } });
    delete m.files['model.onnx'];
    m.encryption.files = ['group1-shard1of1.bin'];
    await fs.rm(path.join(tfjsOnly, 'model.onnx'));
    await fs.writeFile(path.join(tfjsOnly, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
    for (const [target, engine] of [[tfjsOnly, 'onnx'], [enc.dir, 'onnx'], [enc.dir, 'tfjs']] as const) {
      const r = await runCli(['evaluate', target, '--data', data, '--engine', engine, '--latency-runs', '0', '--backend', 'cpu', '--json'], { env: { ...env, MLCTL_MODEL_KEY: key.bytes.toString('hex') } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.results?.[0]?.metrics ?? r.json.metrics).toBeDefined();
    }
    const repo = createRepository({ engine: 'tfjs', engineThread: true, maxBatch: 2, logger: createMemoryLogger(), loadPackage: (dir) => loadPackage(dir, { key }) });
    try {
      const [served] = await repo.load(enc.dir);
      expect(served!.engine).toBe('tfjs-thread');
      const x = new Float32Array(16 * 16 * 3).fill(3);
      const r = await repo.infer('marked', undefined, [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: x }], { requestId: 'test' });
      const reference = await openEngine(plain, { engine: 'tfjs' });
      try {
        expect(Array.from(r.outputs[0]!.data as Float32Array)).toEqual(Array.from(await runFloat(reference, x, 1)));
      } finally {
        await reference.dispose();
      }
    } finally {
      await repo.close();
    }
    expect(await filesContaining([cache, tmpdir, root], MARKER)).toEqual([]);
    // Control: the same evaluate of the plaintext package does leave its conversion (plaintext) in the cache.
    const control = path.join(tmp.dir, 'control-cache');
    const plainTfjsOnly = path.join(tmp.dir, 'control', 'plain', '1');
    await fs.cp(plain.dir, plainTfjsOnly, { recursive: true });
    const pm = JSON.parse(await fs.readFile(path.join(plainTfjsOnly, MANIFEST_FILE), 'utf8'));
    pm.formats = { tfjs: 'model.json' };
    delete pm.files['model.onnx'];
    await fs.rm(path.join(plainTfjsOnly, 'model.onnx'));
    await fs.writeFile(path.join(plainTfjsOnly, MANIFEST_FILE), JSON.stringify(pm, null, 2) + '\n');
    const c = await runCli(['evaluate', plainTfjsOnly, '--data', data, '--engine', 'onnx', '--latency-runs', '0', '--backend', 'cpu'], { env: { MLCTL_CACHE: control, TMPDIR: tmpdir } });
    expect(c.code, c.stderr).toBe(0);
    expect((await filesContaining([control], MARKER)).some((f) => f.includes(`${path.sep}onnx${path.sep}`))).toBe(true);
  });

  it('export --format bundle carries the ciphertext and mounts the key from a Secret, never the key itself', async () => {
    const out = path.join(tmp.dir, 'bundle');
    const r = await runCli(['export', enc.dir, '--format', 'bundle', '--out', out, '--backend', 'cpu', '--json'], { env: { MLCTL_MODEL_KEY: key.bytes.toString('hex') } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.details.modelKey).toEqual({ secretName: 'marked-model-key', keyId: key.keyId });
    const deployment = await fs.readFile(path.join(out, 'k8s', 'deployment.yaml'), 'utf8');
    expect(deployment).toMatch(/secretName: marked-model-key/);
    expect(deployment).toMatch(/name: MLCTL_MODEL_KEY_FILE\n\s+value: \/var\/run\/secrets\/mlctl\/model.key/);
    expect(deployment).toMatch(/mountPath: \/var\/run\/secrets\/mlctl\n\s+readOnly: true/);
    expect(await fs.readFile(path.join(out, 'kserve', 'inferenceservice.yaml'), 'utf8')).toMatch(/secretName: marked-model-key/);
    // The batch Indexed Job's pods read the same Secret.
    expect(await fs.readFile(path.join(out, 'k8s', 'batch', 'predict-job.yaml'), 'utf8')).toMatch(/secretName: marked-model-key[\s\S]*name: MLCTL_MODEL_KEY_FILE|name: MLCTL_MODEL_KEY_FILE[\s\S]*secretName: marked-model-key/);
    expect(await fs.readFile(path.join(out, 'README.md'), 'utf8')).toContain('kubectl create secret generic marked-model-key --from-file=model.key=');
    expect(await fs.readFile(path.join(out, '.dockerignore'), 'utf8')).toContain('**/*.key');
    expect(await filesContaining([out], MARKER)).toEqual([]);
    for (const form of [key.bytes, Buffer.from(key.bytes.toString('hex')), Buffer.from(key.bytes.toString('base64'))]) expect(await filesContaining([out], form)).toEqual([]);
    // The bundled package still loads with the key and verifies.
    expect(await codeOf(loadTfjsModel(await loadPackage(path.join(out, 'models', 'marked', String(enc.manifest.version)), { key })))).toBe('OK');
  });
});

describe('classic (tabular) packages', () => {
  it('classic-model.json is encrypted too, and evaluate with the key gives the plaintext package\'s figures', async () => {
    const lines = ['x1,x2,y'];
    for (let i = 0; i < 60; i++) lines.push(`${(i % 7) - 3},${(i % 5) * 0.5},${(2 * ((i % 7) - 3) - (i % 5) * 0.5 + 0.01 * (i % 3)).toFixed(4)}`);
    const csv = path.join(tmp.dir, 'prices.csv');
    await fs.writeFile(csv, lines.join('\n') + '\n');
    const env = { MLCTL_ARTIFACTS: path.join(tmp.dir, 'classic') };
    expect((await runCli(['train', '--model', 'linear', '--data', csv, '--target', 'y', '--name', 'prices'], { env })).code).toBe(0);
    const e = await runCli(['encrypt', 'prices', '--key-file', keyFile, '--json'], { env });
    expect(e.code, e.stderr).toBe(0);
    expect(e.json.files).toContain('classic-model.json');
    const encDir = e.json.package.dir as string;
    expect((await fs.readFile(path.join(encDir, 'classic-model.json'))).subarray(0, 8).toString()).toBe('MLCTLENC');
    const plainEval = await runCli(['evaluate', 'prices@1', '--data', csv, '--json'], { env });
    const encEval = await runCli(['evaluate', `prices@${e.json.package.version}`, '--data', csv, '--key-file', keyFile, '--json'], { env });
    expect(encEval.code, encEval.stderr).toBe(0);
    expect(JSON.stringify(encEval.json.results ?? encEval.json.metrics)).toContain('r2');
    const figures = (r: typeof plainEval) => JSON.stringify(r.json.results?.map((x: { metrics: unknown }) => x.metrics) ?? r.json.metrics);
    expect(figures(encEval)).toBe(figures(plainEval));
    const noKey = await runCli(['evaluate', `prices@${e.json.package.version}`, '--data', csv, '--json'], { env: { ...env, MLCTL_MODEL_KEY: undefined, MLCTL_MODEL_KEY_FILE: undefined } });
    expect(noKey.json.error.code).toBe('MODEL_KEY_REQUIRED');
  });
});

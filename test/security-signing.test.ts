// Package signing: keys, sign/verify, the documented signed bytes checked by stock openssl, every kind of tampering
// (manifest, shard, ONNX file, signature file) refused with its own error code, and new versions never signed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE } from '../src/artifacts/manifest.js';
import { loadPackage, savePackage, verifyPackageSignature, type LoadedPackage } from '../src/artifacts/package.js';
import { canonicalJson, generateSigningKeyPair, loadSigningKey, loadTrustedKeys, SIGNATURE_FILE, STATEMENT_TYPE, type TrustedKeys } from '../src/artifacts/signing.js';
import { signPackageVersion } from '../src/artifacts/package-security.js';
import { MlctlError } from '../src/errors.js';
import { convertLayersModel } from '../src/onnx/index.js';
import { quantizePackage } from '../src/optimize/quantize.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { runCli } from './helpers/cli.js';
import { codeOf, flipByte, markedPackage } from './security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let keys: string;
let trustedDir: string;
let trust: TrustedKeys;
let root: string;

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A copy of a package version in a registry of its own (same <name>/<version>), so each tampering test has its own. */
async function copyVersion(pkg: LoadedPackage, name: string): Promise<string> {
  const dst = path.join(tmp.dir, 'copies', name, pkg.manifest.name, String(pkg.manifest.version));
  await fs.cp(pkg.dir, dst, { recursive: true });
  return dst;
}

let signed: LoadedPackage;

beforeAll(async () => {
  tmp = await tempDir('mlctl-sign-');
  keys = path.join(tmp.dir, 'keys');
  root = path.join(tmp.dir, 'artifacts');
  await generateSigningKeyPair(keys, { name: 'release' });
  await generateSigningKeyPair(path.join(tmp.dir, 'other-keys'), { name: 'intruder' });
  trustedDir = path.join(tmp.dir, 'trusted');
  await fs.mkdir(trustedDir);
  await fs.copyFile(path.join(keys, 'release.pub.pem'), path.join(trustedDir, 'release.pub.pem'));
  trust = await loadTrustedKeys(trustedDir);
  // A package with every file kind: model.json, a weight shard and a model.onnx.
  const pkg = await markedPackage(root, { name: 'net', extraFiles: async (model) => ({ 'model.onnx': convertLayersModel(model, { inputName: 'input', outputName: 'predictions' }) }) });
  await signPackageVersion(pkg, await loadSigningKey(path.join(keys, 'release.key.pem')));
  signed = await loadPackage(pkg.dir);
});

afterAll(() => tmp?.cleanup());

describe('signing keys', () => {
  it('writes the private key 0600 and the public key, and refuses to overwrite them', async () => {
    const st = await fs.stat(path.join(keys, 'release.key.pem'));
    expect(st.mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path.join(keys, 'release.pub.pem'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await expect(generateSigningKeyPair(keys, { name: 'release' })).rejects.toThrow(/already exists/);
  });

  it.skipIf(!tools.openssl)('key id is the sha256 of the DER public key, as openssl computes it', async () => {
    const der = execFileSync('openssl', ['pkey', '-pubin', '-in', path.join(keys, 'release.pub.pem'), '-outform', 'DER']);
    expect(signed.signature!.keyId).toBe(`sha256:${sha(der)}`);
  });

  it('reads a passphrase-protected key only with its passphrase', async () => {
    const dir = path.join(tmp.dir, 'locked');
    await generateSigningKeyPair(dir, { passphrase: 'correct horse' });
    expect(await fs.readFile(path.join(dir, 'mlctl.key.pem'), 'utf8')).toMatch(/ENCRYPTED PRIVATE KEY/);
    await expect(loadSigningKey(path.join(dir, 'mlctl.key.pem'), undefined)).rejects.toThrow(/encrypted and no passphrase was given/);
    await expect(loadSigningKey(path.join(dir, 'mlctl.key.pem'), 'wrong')).rejects.toThrow(/passphrase is wrong/);
    expect((await loadSigningKey(path.join(dir, 'mlctl.key.pem'), 'correct horse')).keyId).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('refuses a private key in the trusted keys and a public key as the signing key', async () => {
    const bad = path.join(tmp.dir, 'bad-trust');
    await fs.mkdir(bad);
    await fs.copyFile(path.join(keys, 'release.key.pem'), path.join(bad, 'release.key.pem'));
    await expect(loadTrustedKeys(bad)).rejects.toThrow(/it is a private key: trusted keys are public keys only/);
    await expect(loadSigningKey(path.join(keys, 'release.pub.pem'))).rejects.toThrow(/not a PEM private key/);
  });
});

describe('sign and verify', () => {
  it('signs the documented statement over mlctl.json, outside the manifest\'s files', async () => {
    expect(signed.signature).toMatchObject({ keyId: expect.stringMatching(/^sha256:/), trusted: false });
    expect(Object.keys(signed.manifest.files)).not.toContain(SIGNATURE_FILE);
    const env = JSON.parse(await fs.readFile(path.join(signed.dir, SIGNATURE_FILE), 'utf8'));
    const manifestBytes = await fs.readFile(path.join(signed.dir, MANIFEST_FILE));
    // The signed bytes, rebuilt from the documentation: canonical JSON (sorted keys, no spaces) of the statement.
    const rebuilt = canonicalJson({ _type: STATEMENT_TYPE, manifestSha256: sha(manifestBytes), name: 'net', version: 1, keyId: env.keyId, signedAt: signed.signature!.signedAt });
    expect(Buffer.from(env.payload, 'base64').toString('utf8')).toBe(rebuilt);
    expect(rebuilt).toMatch(/^\{"_type":"https:\/\/mlctl\.dev\/signature\/v1","keyId":"sha256:[0-9a-f]{64}","manifestSha256":"[0-9a-f]{64}","name":"net","signedAt":"[^"]+","version":1\}$/);
    expect(Buffer.from(env.signature, 'base64')).toHaveLength(64);
    const sig = await verifyPackageSignature(await loadPackage(signed.dir), trust);
    expect(sig).toMatchObject({ trusted: true, keyFile: path.join(trustedDir, 'release.pub.pem') });
  });

  it.skipIf(!tools.openssl)('stock openssl verifies the signature over the documented bytes, and rejects altered bytes', async () => {
    const env = JSON.parse(await fs.readFile(path.join(signed.dir, SIGNATURE_FILE), 'utf8'));
    const data = path.join(tmp.dir, 'statement.json');
    const sigFile = path.join(tmp.dir, 'statement.sig');
    await fs.writeFile(data, Buffer.from(env.payload, 'base64'));
    await fs.writeFile(sigFile, Buffer.from(env.signature, 'base64'));
    const pub = path.join(keys, 'release.pub.pem');
    const ok = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', data, '-sigfile', sigFile], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/Signature Verified Successfully/);
    await fs.writeFile(data, (await fs.readFile(data, 'utf8')).replace('"version":1', '"version":2'));
    const bad = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', data, '-sigfile', sigFile], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
  });

  it('mlctl sign / verify through the CLI, with JSON results and error codes', async () => {
    const fresh = await tinyPackage(root, { name: 'cli', size: 16 });
    const unsigned = await runCli(['verify', fresh.dir, '--trusted', trustedDir, '--json']);
    expect(unsigned.code).toBe(1);
    expect(unsigned.json.error.code).toBe('SIGNATURE_MISSING');
    const s = await runCli(['sign', fresh.dir, '--key', path.join(keys, 'release.key.pem'), '--json']);
    expect(s.code).toBe(0);
    expect(s.json).toMatchObject({ ok: true, package: { name: 'cli', version: 1 }, keyId: signed.signature!.keyId });
    const v = await runCli(['verify', `${fresh.dir}`, '--trusted', trustedDir]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^OK cli v1: \d+ files match mlctl.json; signed .* by sha256:/);
    const untrusted = await runCli(['verify', fresh.dir, '--trusted', path.join(tmp.dir, 'other-keys', 'intruder.pub.pem'), '--json']);
    expect(untrusted.json.error.code).toBe('SIGNER_UNTRUSTED');
    expect(untrusted.json.error.message).toContain(signed.signature!.keyId);
    const noTrust = await runCli(['verify', fresh.dir]);
    expect(noTrust.code).toBe(2);
  });
});

describe('tampering is refused with what failed', () => {
  it('a changed manifest (labels edited) → SIGNATURE_INVALID naming the manifest', async () => {
    const dir = await copyVersion(signed, 't-manifest');
    const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    m.labels = ['x', 'y', 'z'];
    await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
    const pkg = await loadPackage(dir); // its files still match: only the signature can tell
    await expect(verifyPackageSignature(pkg, trust)).rejects.toThrow(/the manifest was changed after signing/);
    expect(await codeOf(verifyPackageSignature(pkg, trust))).toBe('SIGNATURE_INVALID');
  });

  it('a changed weight shard → PACKAGE_HASH_MISMATCH; re-hashed into the manifest → SIGNATURE_INVALID', async () => {
    const dir = await copyVersion(signed, 't-shard');
    const shard = Object.keys(signed.manifest.files).find((f) => f.endsWith('.bin'))!;
    await flipByte(path.join(dir, shard));
    expect(await codeOf(loadPackage(dir, { trust, requireSignature: true }))).toBe('PACKAGE_HASH_MISMATCH');
    // The attacker also updates the shard's hash in mlctl.json: the files match again, the signature does not.
    const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    m.files[shard].sha256 = sha(await fs.readFile(path.join(dir, shard)));
    await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
    expect(await codeOf(loadPackage(dir, { trust, requireSignature: true }))).toBe('SIGNATURE_INVALID');
  });

  it('a changed model.onnx → PACKAGE_HASH_MISMATCH', async () => {
    const dir = await copyVersion(signed, 't-onnx');
    await flipByte(path.join(dir, 'model.onnx'));
    await expect(loadPackage(dir, { trust, requireSignature: true })).rejects.toThrow(/model\.onnx has sha256 .* the manifest says/);
  });

  it('a changed signature file → SIGNATURE_INVALID; a removed one → SIGNATURE_MISSING', async () => {
    const dir = await copyVersion(signed, 't-sig');
    const file = path.join(dir, SIGNATURE_FILE);
    const env = JSON.parse(await fs.readFile(file, 'utf8'));
    // Backdate the signing time inside the signed statement.
    const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
    await fs.writeFile(file, JSON.stringify({ ...env, payload: Buffer.from(canonicalJson({ ...statement, signedAt: '2000-01-01T00:00:00.000Z' })).toString('base64') }));
    await expect(loadPackage(dir, { trust, requireSignature: true })).rejects.toThrow(/signature in mlctl.sig does not verify/);
    // Flip one signature byte.
    const sig = Buffer.from(env.signature, 'base64');
    sig[10] ^= 1;
    await fs.writeFile(file, JSON.stringify({ ...env, signature: sig.toString('base64') }));
    expect(await codeOf(loadPackage(dir, { trust, requireSignature: true }))).toBe('SIGNATURE_INVALID');
    await fs.writeFile(file, 'not json');
    expect(await codeOf(loadPackage(dir, { trust, requireSignature: true }))).toBe('SIGNATURE_INVALID');
    await fs.rm(file);
    expect(await codeOf(loadPackage(dir, { trust, requireSignature: true }))).toBe('SIGNATURE_MISSING');
    expect(await codeOf(loadPackage(dir, { trust }))).toBe('OK'); // without --require-signature unsigned is accepted
  });

  it('a signature copied from another package → SIGNATURE_INVALID; another signer → SIGNER_UNTRUSTED', async () => {
    const other = await tinyPackage(root, { name: 'other', size: 16 });
    await fs.copyFile(path.join(signed.dir, SIGNATURE_FILE), path.join(other.dir, SIGNATURE_FILE));
    await expect(loadPackage(other.dir, { trust, requireSignature: true })).rejects.toThrow(/it covers mlctl.json with sha256/);
    await signPackageVersion(other, await loadSigningKey(path.join(tmp.dir, 'other-keys', 'intruder.key.pem')));
    const err = await loadPackage(other.dir, { trust, requireSignature: true }).catch((e: MlctlError) => e);
    expect((err as MlctlError).code).toBe('SIGNER_UNTRUSTED');
    expect((err as MlctlError).message).toMatch(/not among the trusted keys \(1 key\(s\) in .*trusted\)/);
  });
});

describe('a signed version replayed over another (#28)', () => {
  it('cp -a m/1/. m/2/ → SIGNATURE_MISMATCH from verify, serve --require-signature and sign; m@1 still verifies', async () => {
    const registry = path.join(tmp.dir, 'replay');
    await tinyPackage(registry, { name: 'm', size: 16 });
    const key = path.join(keys, 'release.key.pem');
    const env = { MLCTL_ARTIFACTS: registry };
    expect((await runCli(['sign', 'm@1', '--key', key], { env })).code).toBe(0);
    // Version 2 is a fresh, different model; the attacker copies the older signed version over it.
    await tinyPackage(registry, { name: 'm', size: 16, seed: 7 });
    await fs.rm(path.join(registry, 'm', '2'), { recursive: true });
    execFileSync('cp', ['-a', `${path.join(registry, 'm', '1')}/.`, path.join(registry, 'm', '2')]);

    const verified = await runCli(['verify', 'm@2', '--trusted', trustedDir, '--json'], { env });
    expect(verified.code).toBe(1);
    expect(verified.json.error.code).toBe('SIGNATURE_MISMATCH');
    expect(verified.json.error.message).toMatch(/is signed as m v1, but it is stored as m\/2: .*use m@1/);
    const served = await runCli(['serve', 'm@2', '--require-signature', '--trusted-keys', trustedDir, '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', '--json'], { env });
    expect(served.code).toBe(1);
    expect(served.json.error.code).toBe('SIGNATURE_MISMATCH');
    // Re-signing the copy in place would only make it look like v2: refused too.
    const resigned = await runCli(['sign', 'm@2', '--key', key, '--json'], { env });
    expect(resigned.json.error.code).toBe('SIGNATURE_MISMATCH');
    // Under another model's name, the same.
    await fs.cp(path.join(registry, 'm', '1'), path.join(registry, 'n', '1'), { recursive: true });
    expect((await runCli(['verify', 'n@1', '--trusted', trustedDir, '--json'], { env })).json.error.code).toBe('SIGNATURE_MISMATCH');
    // The original is untouched and valid.
    const ok = await runCli(['verify', 'm@1', '--trusted', trustedDir], { env });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK m v1/);
  });
});

describe('new versions and lineage', () => {
  it('quantize makes an unsigned version whose lineage names the parent\'s signer', async () => {
    const r = await quantizePackage(signed, 'float16', { logger: createMemoryLogger(), latencyRuns: 0, root });
    const child = await loadPackage(r.package.dir);
    expect(await fs.stat(path.join(child.dir, SIGNATURE_FILE)).catch(() => undefined)).toBeUndefined();
    expect(child.signature).toBeUndefined();
    const from = child.manifest.lineage[child.manifest.lineage.length - 1]!.from!;
    expect(from).toMatchObject({ name: 'net', version: 1, manifestSha256: signed.manifestSha256, signer: { keyId: signed.signature!.keyId, signedAt: signed.signature!.signedAt } });
    expect(await codeOf(verifyPackageSignature(child, trust))).toBe('SIGNATURE_MISSING');
    // savePackage logged it: the command is the lineage op, `before` the signed parent.
    const last = JSON.parse((await fs.readFile(path.join(root, 'audit.jsonl'), 'utf8')).trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ command: 'quantize', package: { name: 'net', version: child.manifest.version, manifestSha256: child.manifestSha256 }, before: { name: 'net', version: 1, manifestSha256: signed.manifestSha256 } });
  });

  it('savePackage never lists or copies mlctl.sig', async () => {
    const pkg = await savePackage({
      root,
      name: 'copy',
      draft: { ...signed.manifest, lineage: [] },
      write: async (dir) => {
        for (const f of [...Object.keys(signed.manifest.files), SIGNATURE_FILE]) await fs.copyFile(path.join(signed.dir, f), path.join(dir, f));
      },
    });
    expect(Object.keys(pkg.manifest.files)).not.toContain(SIGNATURE_FILE);
  });

  it('export --require-signature refuses an unsigned package and carries a signed one\'s signature into the bundle', async () => {
    const unsignedPkg = await tinyPackage(root, { name: 'plain', size: 16 });
    const refused = await runCli(['export', unsignedPkg.dir, '--format', 'onnx', '--out', path.join(tmp.dir, 'x1'), '--require-signature', '--trusted-keys', trustedDir, '--backend', 'cpu', '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json.error.code).toBe('SIGNATURE_MISSING');
    expect(await fs.stat(path.join(tmp.dir, 'x1')).catch(() => undefined)).toBeUndefined();
    const missingTrust = await runCli(['export', signed.dir, '--format', 'onnx', '--out', path.join(tmp.dir, 'x2'), '--require-signature', '--backend', 'cpu']);
    expect(missingTrust.code).toBe(2);
    const bundle = await runCli(['export', signed.dir, '--format', 'bundle', '--out', path.join(tmp.dir, 'bundle'), '--require-signature', '--trusted-keys', trustedDir, '--backend', 'cpu', '--json']);
    expect(bundle.code).toBe(0);
    const copied = path.join(tmp.dir, 'bundle', 'models', 'net', '1');
    expect(await fs.readFile(path.join(copied, SIGNATURE_FILE))).toEqual(await fs.readFile(path.join(signed.dir, SIGNATURE_FILE)));
    expect(await codeOf(loadPackage(copied, { trust, requireSignature: true }))).toBe('OK');
    expect(await fs.readFile(path.join(tmp.dir, 'bundle', 'SHA256SUMS'), 'utf8')).toContain(`models/net/1/${SIGNATURE_FILE}`);
    expect(bundle.json.details.signature.keyId).toBe(signed.signature!.keyId);
  });
});

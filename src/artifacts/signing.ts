// Ed25519 signatures over model packages (the OpenSSF model-signing idea: sign a manifest of file hashes). mlctl.json
// already hashes every file, so the signature covers a small statement naming mlctl.json's sha256, kept in mlctl.sig.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { sha256 } from './hash.js';

/** The detached signature file inside a package directory (never listed in mlctl.json's files: it signs mlctl.json). */
export const SIGNATURE_FILE = 'mlctl.sig';
export const STATEMENT_TYPE = 'https://mlctl.dev/signature/v1';
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.mlctl.signature.v1+json';
/** Environment variable holding the passphrase of an encrypted PKCS#8 signing key. */
export const PASSPHRASE_ENV = 'MLCTL_SIGNING_KEY_PASSPHRASE';

/**
 * What is signed. The signed bytes are this object as canonical JSON: keys sorted, no whitespace, UTF-8
 * (canonicalJson below), e.g. {"_type":"…","keyId":"sha256:…","manifestSha256":"…","name":"x","signedAt":"…","version":3}.
 */
export interface SignatureStatement {
  _type: typeof STATEMENT_TYPE;
  /** sha256 of the exact bytes of the package's mlctl.json. */
  manifestSha256: string;
  name: string;
  version: number;
  /** "sha256:" + hex sha256 of the signer's public key in DER SubjectPublicKeyInfo form. */
  keyId: string;
  signedAt: string;
}

/** The mlctl.sig file: the statement's exact bytes (base64), the raw 64-byte Ed25519 signature (base64), the key. */
export interface SignatureEnvelope {
  mediaType: typeof ENVELOPE_MEDIA_TYPE;
  payload: string;
  signature: string;
  keyId: string;
  /** The signer's public key (SPKI PEM), for display and lineage; trust comes only from the verifier's key set. */
  publicKey: string;
}

/** What a checked signature tells: who signed, when, and whether the key is one the caller trusts. */
export interface SignatureInfo {
  keyId: string;
  signedAt: string;
  /** True when checked against a trusted key set and the key is in it. */
  trusted: boolean;
  /** The trusted key file that matched. */
  keyFile?: string;
}

/** The package as the signature sees it: its directory, identity and mlctl.json hash. */
export interface SignatureSubject {
  dir: string;
  manifestSha256: string;
  manifest: { name: string; version: number };
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  file: string;
}

export interface TrustedKeys {
  /** What the keys were read from (a directory or one file). */
  source: string;
  keys: Map<string, { key: KeyObject; file: string }>;
}

/** JSON with sorted keys and no whitespace, so the signed bytes can be rebuilt from the statement's fields. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

export function keyIdOf(publicKey: KeyObject): string {
  return `sha256:${sha256(publicKey.export({ type: 'spki', format: 'der' }))}`;
}

export const shortKeyId = (keyId: string) => keyId.replace(/^(sha256:)?(.{16}).*$/, '$1$2…');

export function statementBytes(s: SignatureStatement): Buffer {
  return Buffer.from(canonicalJson(s), 'utf8');
}

// ---- keys ----------------------------------------------------------------------------------------------------------

export interface GeneratedKeyPair {
  privateKeyFile: string;
  publicKeyFile: string;
  keyId: string;
}

async function refuseExisting(files: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const f of files) {
    if (await fs.stat(f).then(() => true, () => false)) throw new MlctlError('PACKAGE_EXISTS', [f]);
  }
}

/** Write NAME.key.pem (PKCS#8, mode 0600; encrypted when a passphrase is given) and NAME.pub.pem (SPKI) into `dir`. */
export async function generateSigningKeyPair(dir: string, opts: { name?: string; force?: boolean; passphrase?: string } = {}): Promise<GeneratedKeyPair> {
  const name = opts.name ?? 'mlctl';
  const privateKeyFile = path.resolve(dir, `${name}.key.pem`);
  const publicKeyFile = path.resolve(dir, `${name}.pub.pem`);
  await refuseExisting([privateKeyFile, publicKeyFile], Boolean(opts.force));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = opts.passphrase
    ? privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: opts.passphrase })
    : privateKey.export({ type: 'pkcs8', format: 'pem' });
  await writeFileAtomic(privateKeyFile, pem as string, 0o600);
  await fs.chmod(privateKeyFile, 0o600);
  await writeFileAtomic(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  return { privateKeyFile, publicKeyFile, keyId: keyIdOf(publicKey) };
}

/** Read an Ed25519 private key (PEM; passphrase from MLCTL_SIGNING_KEY_PASSPHRASE when it is encrypted). */
export async function loadSigningKey(file: string, passphrase = process.env[PASSPHRASE_ENV]): Promise<SigningKey> {
  const fail = (why: string): never => {
    throw new MlctlError('SIGNING_KEY_INVALID', [file, why]);
  };
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => fail(`cannot read it (${err.code ?? err.message})`));
  if (!/PRIVATE KEY-----/.test(text)) fail('it is not a PEM private key (use the NAME.key.pem written by `mlctl keys generate`, not the .pub.pem)');
  const encrypted = /BEGIN ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(text);
  if (encrypted && !passphrase) fail(`it is encrypted and no passphrase was given (set ${PASSPHRASE_ENV})`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(encrypted ? { key: text, format: 'pem', passphrase } : { key: text, format: 'pem' });
  } catch (err) {
    return fail(encrypted ? 'it is encrypted and the passphrase is wrong' : `it cannot be parsed (${(err as Error).message})`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') fail(`it is a ${privateKey.asymmetricKeyType} key; mlctl signs with Ed25519 (mlctl keys generate)`);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), file: path.resolve(file) };
}

function parsePublicKey(text: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new MlctlError('TRUSTED_KEYS_INVALID', [file, `it is not a PEM public key (${(err as Error).message})`]);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new MlctlError('TRUSTED_KEYS_INVALID', [file, `it is a ${key.asymmetricKeyType} key; mlctl signatures are Ed25519`]);
  return key;
}

/**
 * The public keys a verifier trusts: one PEM file, or every *.pem file in a directory (private keys there are
 * refused: a trust directory is meant to be shared, and holding the signing key in it defeats the point).
 */
export async function loadTrustedKeys(source: string): Promise<TrustedKeys> {
  const abs = path.resolve(source);
  const stat = await fs.stat(abs).catch(() => undefined);
  if (!stat) throw new MlctlError('TRUSTED_KEYS_INVALID', [source, 'it does not exist (pass a directory of *.pub.pem files or one public key file)']);
  const files = stat.isDirectory()
    ? (await fs.readdir(abs)).filter((f) => f.endsWith('.pem')).sort().map((f) => path.join(abs, f))
    : [abs];
  const keys = new Map<string, { key: KeyObject; file: string }>();
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new MlctlError('TRUSTED_KEYS_INVALID', [file, `cannot read it (${err.code ?? err.message})`]);
    });
    if (/PRIVATE KEY-----/.test(text)) throw new MlctlError('TRUSTED_KEYS_INVALID', [file, 'it is a private key: trusted keys are public keys only (NAME.pub.pem); keep the signing key out of this directory']);
    const key = parsePublicKey(text, file);
    keys.set(keyIdOf(key), { key, file });
  }
  if (!keys.size) throw new MlctlError('TRUSTED_KEYS_INVALID', [source, 'it holds no *.pem public keys']);
  return { source: abs, keys };
}

// ---- signing and checking -----------------------------------------------------------------------------------------

const replayAdvice = (name: string, version: number) =>
  `a signed version is only valid in its own ${name}/${version} folder (a copy under another version or name is a replay); use ${name}@${version}, or save the copy as a new version and sign that`;

/** Sign a package (its mlctl.json was verified by the caller); writes mlctl.sig atomically, replacing an older one. */
export async function signPackage(subject: SignatureSubject, key: SigningKey, now = new Date()): Promise<{ statement: SignatureStatement; file: string }> {
  const stored = slotMismatch(subject.dir, subject.manifest.name, subject.manifest.version);
  if (stored) throw new MlctlError('SIGNATURE_MISMATCH', [subject.dir, `${subject.manifest.name} v${subject.manifest.version} by its mlctl.json`, stored, replayAdvice(subject.manifest.name, subject.manifest.version)]);
  const statement: SignatureStatement = {
    _type: STATEMENT_TYPE,
    manifestSha256: subject.manifestSha256,
    name: subject.manifest.name,
    version: subject.manifest.version,
    keyId: key.keyId,
    signedAt: now.toISOString(),
  };
  const payload = statementBytes(statement);
  const envelope: SignatureEnvelope = {
    mediaType: ENVELOPE_MEDIA_TYPE,
    payload: payload.toString('base64'),
    signature: sign(null, payload, key.privateKey).toString('base64'),
    keyId: key.keyId,
    publicKey: key.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
  const file = path.join(subject.dir, SIGNATURE_FILE);
  await writeFileAtomic(file, JSON.stringify(envelope, null, 2) + '\n', 0o644);
  return { statement, file };
}

/** The package's mlctl.sig, parsed (undefined when there is none). Throws SIGNATURE_INVALID when it is malformed. */
export async function readSignature(dir: string): Promise<SignatureEnvelope | undefined> {
  const text = await fs.readFile(path.join(dir, SIGNATURE_FILE), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new MlctlError('SIGNATURE_INVALID', [dir, `${SIGNATURE_FILE} cannot be read (${err.code ?? err.message})`]);
  });
  if (text === undefined) return undefined;
  let env: Partial<SignatureEnvelope>;
  try {
    env = JSON.parse(text) as Partial<SignatureEnvelope>;
  } catch {
    throw new MlctlError('SIGNATURE_INVALID', [dir, `${SIGNATURE_FILE} is not valid JSON`]);
  }
  const ok = env && env.mediaType === ENVELOPE_MEDIA_TYPE && ['payload', 'signature', 'keyId', 'publicKey'].every((k) => typeof (env as Record<string, unknown>)[k] === 'string');
  if (!ok) throw new MlctlError('SIGNATURE_INVALID', [dir, `${SIGNATURE_FILE} is not an mlctl signature envelope (${ENVELOPE_MEDIA_TYPE} with payload, signature, keyId, publicKey)`]);
  return env as SignatureEnvelope;
}

function parseStatement(dir: string, payload: Buffer): SignatureStatement {
  let s: Partial<SignatureStatement>;
  try {
    s = JSON.parse(payload.toString('utf8')) as Partial<SignatureStatement>;
  } catch {
    throw new MlctlError('SIGNATURE_INVALID', [dir, 'the signed statement is not JSON']);
  }
  if (s._type !== STATEMENT_TYPE || typeof s.manifestSha256 !== 'string' || typeof s.keyId !== 'string' || typeof s.signedAt !== 'string' || typeof s.name !== 'string' || !Number.isInteger(s.version)) {
    throw new MlctlError('SIGNATURE_INVALID', [dir, `the signed statement is not a ${STATEMENT_TYPE} statement`]);
  }
  return s as SignatureStatement;
}

/**
 * Where a package directory sits in a registry: `<root>/<name>/<version>` (a version folder is all digits, as in
 * the artifacts root, a serve model repository and a bundle's models/). Undefined for a package outside that layout.
 */
export function registrySlot(dir: string): { name: string; version: number } | undefined {
  const abs = path.resolve(dir);
  const version = path.basename(abs);
  const name = path.basename(path.dirname(abs));
  return /^\d+$/.test(version) && name ? { name, version: Number(version) } : undefined;
}

/**
 * Why a package signed (or about to be signed) as `name` v`version` must not be used from `dir`: a signed version
 * copied over another version or model (`cp -a m/1/. m/2/`) would otherwise pass as that version. Undefined when
 * the directory is that version's, or is not a registry slot at all.
 */
export function slotMismatch(dir: string, name: string, version: number): string | undefined {
  const slot = registrySlot(dir);
  if (!slot || (slot.name === name && slot.version === version)) return undefined;
  return `${slot.name}/${slot.version}`;
}

/**
 * Check a package's signature: the Ed25519 signature over the statement, the statement against this mlctl.json
 * (its sha256, name and version) and against the folder it is used from (<name>/<version>: a replayed older
 * version is refused with SIGNATURE_MISMATCH), and, with `trust`, the signer against the trusted keys. Without
 * `trust` the key embedded in mlctl.sig is used, which proves integrity but not who signed (trusted: false). The
 * package's file hashes are the caller's to check (loadPackage does): the statement covers them through mlctl.json.
 */
export async function checkSignature(subject: SignatureSubject, trust?: TrustedKeys): Promise<SignatureInfo> {
  const { dir } = subject;
  const env = await readSignature(dir);
  if (!env) throw new MlctlError('SIGNATURE_MISSING', [dir, SIGNATURE_FILE]);
  const payload = Buffer.from(env.payload, 'base64');
  const statement = parseStatement(dir, payload);
  if (statement.keyId !== env.keyId) throw new MlctlError('SIGNATURE_INVALID', [dir, `the statement names key ${shortKeyId(statement.keyId)} but the envelope says ${shortKeyId(env.keyId)}`]);
  let key: KeyObject;
  let keyFile: string | undefined;
  if (trust) {
    const t = trust.keys.get(env.keyId);
    if (!t) throw new MlctlError('SIGNER_UNTRUSTED', [dir, env.keyId, `${trust.keys.size} key(s) in ${trust.source}`]);
    key = t.key;
    keyFile = t.file;
  } else {
    key = parsePublicKey(env.publicKey, path.join(dir, SIGNATURE_FILE));
    if (keyIdOf(key) !== env.keyId) throw new MlctlError('SIGNATURE_INVALID', [dir, `the embedded public key is ${shortKeyId(keyIdOf(key))}, not the signer ${shortKeyId(env.keyId)}`]);
  }
  const signature = Buffer.from(env.signature, 'base64');
  if (signature.length !== 64 || !verify(null, payload, key, signature)) {
    throw new MlctlError('SIGNATURE_INVALID', [dir, `the Ed25519 signature in ${SIGNATURE_FILE} does not verify with key ${shortKeyId(env.keyId)} (the signature file was altered)`]);
  }
  if (statement.manifestSha256 !== subject.manifestSha256) {
    throw new MlctlError('SIGNATURE_INVALID', [dir, `it covers mlctl.json with sha256 ${statement.manifestSha256.slice(0, 12)}…, but mlctl.json has ${subject.manifestSha256.slice(0, 12)}… (the manifest was changed after signing)`]);
  }
  if (statement.name !== subject.manifest.name || statement.version !== subject.manifest.version) {
    throw new MlctlError('SIGNATURE_INVALID', [dir, `it was made for ${statement.name} v${statement.version}, not ${subject.manifest.name} v${subject.manifest.version}`]);
  }
  const stored = slotMismatch(dir, statement.name, statement.version);
  if (stored) throw new MlctlError('SIGNATURE_MISMATCH', [dir, `signed as ${statement.name} v${statement.version}`, stored, replayAdvice(statement.name, statement.version)]);
  return { keyId: env.keyId, signedAt: statement.signedAt, trusted: Boolean(trust), ...(keyFile ? { keyFile } : {}) };
}

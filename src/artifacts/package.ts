// Model packages on disk: artifacts/<name>/<version>/ with mlctl.json + model files (+ mlctl.sig when signed).
// Saving is atomic with auto-incremented versions and logged to the registry audit log; loading verifies every
// file's sha256 against the manifest (and, when asked, the signature); model files are read (and decrypted) here only.
import type * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { writeDirAtomic } from './atomic.js';
import { appendRegistryAudit, type PackageRef } from './audit-log.js';
import { checkKeyFor, decryptFileBytes, isEncryptedFile, type ModelKey } from './encryption.js';
import { sha256, sha256File } from './hash.js';
import { readRegistry } from './registry-file.js';
import { MANIFEST_FILE, SCHEMA_VERSION, validateManifest, type FileEntry, type LineageEntry, type Manifest, type ManifestDraft } from './manifest.js';
import { checkSignature, SIGNATURE_FILE, type SignatureInfo, type TrustedKeys } from './signing.js';
import { alignModelInputName, readLayersModel, tfjs, writeLayersModel } from './tfjs-io.js';

export interface LoadedPackage {
  dir: string;
  manifest: Manifest;
  /** sha256 of mlctl.json as stored: identifies this exact package in lineage and audit logs. */
  manifestSha256: string;
  /** True when every file was checked against the manifest's sha256 (loadPackage's default, or just written). */
  verified: boolean;
  /** The signature, when the package carries a valid one (trusted: checked against the caller's trusted keys). */
  signature?: SignatureInfo;
  /** Why the package's mlctl.sig does not verify, when it carries one that does not (and no trust was required). */
  signatureProblem?: string;
  /** Decryption key of an encrypted package (memory only): readModelFile decrypts with it. */
  key?: ModelKey;
}

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function artifactsRoot(): string {
  return path.resolve(process.env.MLCTL_ARTIFACTS ?? 'artifacts');
}

export function assertValidName(name: string): void {
  if (!NAME_PATTERN.test(name) || name.includes('..')) {
    throw new MlctlError('MODEL_NAME_INVALID', [`invalid model name "${name}": use letters, digits, '.', '_' or '-' (up to 128 characters, not starting with a symbol)`]);
  }
}

async function isFile(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isFile(), () => false);
}

/** Numeric version folders under a model directory, ascending. */
export async function listVersions(modelDir: string): Promise<number[]> {
  const entries = await fs.readdir(modelDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

/** NAME, NAME@VERSION or NAME:TAG as typed for a model in the artifacts root (undefined: not that form). */
export type ModelRef = { name: string; version?: number; tag?: string };

export function parseModelRef(ref: string): ModelRef | undefined {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@(\d+)|:([A-Za-z][A-Za-z0-9._-]{0,63}))?$/.exec(ref);
  if (!m || m[1]!.includes('..')) return undefined;
  return { name: m[1]!, ...(m[2] !== undefined ? { version: Number(m[2]) } : {}), ...(m[3] !== undefined ? { tag: m[3] } : {}) };
}

/** Model names under the artifacts root (folders with at least one numeric version). */
export async function listModelNames(root = artifactsRoot()): Promise<string[]> {
  const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const e of entries) if (e.isDirectory() && NAME_PATTERN.test(e.name) && (await listVersions(path.join(root, e.name))).length) names.push(e.name);
  return names.sort();
}

/** The error for a model reference that names nothing, with the close matches. */
export async function modelNotFound(name: string, root = artifactsRoot()): Promise<MlctlError> {
  return new MlctlError('MODEL_NOT_FOUND', [`no model named ${name} in ${root}${didYouMean(name, await listModelNames(root))}`]);
}

/** NAME:TAG → the version the tag points at (MODEL_NOT_FOUND / TAG_NOT_FOUND with close matches otherwise). */
export async function resolveTag(name: string, tag: string, root = artifactsRoot()): Promise<number> {
  const modelDir = path.join(root, name);
  if (!(await listVersions(modelDir)).length) throw await modelNotFound(name, root);
  const { tags } = await readRegistry(modelDir);
  const record = tags[tag];
  if (!record) {
    const known = Object.keys(tags).sort();
    throw new MlctlError('TAG_NOT_FOUND', [name, tag, `${known.length ? `tags: ${known.join(', ')}` : 'it has no tags: set one with mlctl models tag NAME@VERSION TAG'}${didYouMean(tag, known)}`]);
  }
  return record.version;
}

/** A version's quality-gate verdict as its mlctl.json says, read without checking anything (undefined: unreadable). */
export async function gateStatus(dir: string): Promise<{ rejected: boolean; reason?: string } | undefined> {
  try {
    const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as Partial<Manifest>;
    return { rejected: m.status === 'rejected', ...(typeof m.statusReason === 'string' ? { reason: m.statusReason } : {}) };
  } catch {
    return undefined;
  }
}

/** `name vN is marked rejected (why)` for messages. */
const rejectedWhat = (name: string, version: number | string, reason?: string) => `${name} v${version} is marked rejected${reason ? ` (${reason})` : ''}`;

/**
 * The version a model directory means when none is named: the newest one a quality gate did not reject
 * (`prune`/`quantize`/`optimize --max-accuracy-drop` keep a refused result, marked rejected, which must not become what
 * `serve NAME` or `predict NAME` run). With `allowRejected`, simply the newest. Undefined when the folder holds no
 * package; VERSION_REJECTED when every version is rejected.
 */
export async function latestVersionDir(modelDir: string, opts: { allowRejected?: boolean } = {}): Promise<string | undefined> {
  const rejected: string[] = [];
  for (const v of (await listVersions(modelDir)).reverse()) {
    const vdir = path.join(modelDir, String(v));
    if (!(await isFile(path.join(vdir, MANIFEST_FILE)))) continue;
    const gate = opts.allowRejected ? undefined : await gateStatus(vdir);
    if (!gate?.rejected) return vdir;
    rejected.push(`v${v}${gate.reason ? `: ${gate.reason}` : ''}`);
  }
  if (!rejected.length) return undefined;
  const name = path.basename(modelDir);
  throw new MlctlError('VERSION_REJECTED', [`every version of ${name} is marked rejected by a quality gate (${rejected.join('; ')})`, `name one explicitly (${name}@VERSION) with --allow-rejected if it must run anyway`]);
}

/**
 * The lifecycle gate for commands that put a model to use (serve, predict): a version a quality gate rejected runs
 * only when the user allowed it explicitly (--allow-rejected).
 */
export function assertNotRejected(pkg: Pick<LoadedPackage, 'manifest'>, allowRejected: boolean): void {
  const m = pkg.manifest;
  if (m.status === 'rejected' && !allowRejected) {
    throw new MlctlError('VERSION_REJECTED', [rejectedWhat(m.name, m.version, m.statusReason), `pass --allow-rejected to use it anyway; ${m.name} alone means its newest version that is not rejected, ${m.name}:TAG the version a tag (mlctl models tag) points at`]);
  }
}

/**
 * Resolve what a user typed to a package directory: a package dir (has mlctl.json), a model dir (its newest version
 * not marked rejected), or a model under the artifacts root as NAME (the same), NAME@VERSION, NAME/VERSION or
 * NAME:TAG (exactly that version, rejected or not: commands that run models gate it with assertNotRejected).
 */
export async function resolvePackageDir(ref: string): Promise<string> {
  const candidates = [path.resolve(ref)];
  const model = parseModelRef(ref);
  const isPath = await fs.stat(ref).then(() => true, () => false);
  if (model?.tag !== undefined && !isPath) {
    const version = await resolveTag(model.name, model.tag);
    const dir = path.join(artifactsRoot(), model.name, String(version));
    if (!(await isFile(path.join(dir, MANIFEST_FILE)))) throw new MlctlError('PACKAGE_NOT_FOUND', [`${dir} (tag ${model.tag} of ${model.name} points at version ${version})`]);
    return dir;
  }
  if (model?.version !== undefined) candidates.push(path.join(artifactsRoot(), model.name, String(model.version)));
  else if (!path.isAbsolute(ref) && !ref.startsWith('.')) candidates.push(path.join(artifactsRoot(), ref));
  for (const dir of candidates) {
    if (await isFile(path.join(dir, MANIFEST_FILE))) return dir;
    const latest = await latestVersionDir(dir);
    if (latest) return latest;
  }
  if (model && !isPath) {
    const versions = await listVersions(path.join(artifactsRoot(), model.name));
    if (!versions.length) throw await modelNotFound(model.name);
    if (model.version !== undefined) throw new MlctlError('VERSION_NOT_FOUND', [model.name, model.version, versions.join(', ')]);
  }
  throw new MlctlError('PACKAGE_NOT_FOUND', [ref]);
}

async function listFilesRecursive(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFilesRecursive(path.join(dir, e.name), rel)));
    else if (e.isFile() && rel !== MANIFEST_FILE && rel !== SIGNATURE_FILE) out.push(rel);
  }
  return out.sort();
}

export async function hashFiles(dir: string): Promise<Record<string, FileEntry>> {
  const files: Record<string, FileEntry> = {};
  for (const rel of await listFilesRecursive(dir)) {
    const full = path.join(dir, rel);
    files[rel] = { sha256: await sha256File(full), bytes: (await fs.stat(full)).size };
  }
  return files;
}

export interface SaveOptions {
  name: string;
  draft: ManifestDraft;
  /** Writes the package's model files into the (temporary) package directory. */
  write: (dir: string) => Promise<void>;
  root?: string;
  /** Fixed version instead of the next free one (fails if it exists). */
  version?: number;
  /** Registry audit entry (default: the command is the last lineage op, `before` its source package). */
  audit?: { command?: string; details?: Record<string, unknown> };
}

export function packageRef(pkg: LoadedPackage): PackageRef {
  return { name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 };
}

/** Record a new package in the registry audit log of `root`: which command made it, from what. */
async function auditSaved(root: string, pkg: LoadedPackage, lineage: LineageEntry[], audit: SaveOptions['audit']): Promise<void> {
  const last = lineage[lineage.length - 1];
  const from = last?.from;
  try {
    await appendRegistryAudit(root, {
      command: audit?.command ?? last?.op ?? 'save',
      package: packageRef(pkg),
      ...(from ? { before: { name: from.name, version: from.version, manifestSha256: from.manifestSha256 } } : {}),
      ...(audit?.details ? { details: audit.details } : {}),
    });
  } catch (err) {
    throw new MlctlError('REGISTRY_AUDIT', [path.join(root, 'audit.jsonl'), `${pkg.manifest.name} v${pkg.manifest.version} was written to ${pkg.dir} but could not be logged: ${(err as Error).message}`], { cause: err });
  }
}

/** Write a new package version atomically; returns it loaded (manifest with hashes). */
export async function savePackage(opts: SaveOptions): Promise<LoadedPackage> {
  assertValidName(opts.name);
  const root = opts.root ?? artifactsRoot();
  const modelDir = path.join(root, opts.name);
  for (let attempt = 0; ; attempt++) {
    const versions = await listVersions(modelDir);
    const version = opts.version ?? (versions.length ? versions[versions.length - 1]! + 1 : 1);
    const target = path.join(modelDir, String(version));
    let saved: LoadedPackage;
    try {
      saved = await writeDirAtomic(target, async (tmp) => {
        await opts.write(tmp);
        // One input name everywhere: the TF.js model's input carries the manifest's name, as ONNX, V2 and TF Serving do.
        if (opts.draft.formats.tfjs && opts.draft.input.name) await alignModelInputName(path.join(tmp, opts.draft.formats.tfjs), opts.draft.input.name);
        const manifest: Manifest = {
          schemaVersion: SCHEMA_VERSION,
          name: opts.name,
          version,
          createdAt: new Date().toISOString(),
          ...opts.draft,
          files: await hashFiles(tmp),
        };
        const text = JSON.stringify(manifest, null, 2) + '\n';
        await fs.writeFile(path.join(tmp, MANIFEST_FILE), text);
        return { dir: target, manifest, manifestSha256: sha256(text), verified: true };
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another process took this version between listing and rename: try the next one.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && opts.version === undefined && attempt < 5) continue;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new MlctlError('PACKAGE_EXISTS', [target], { cause: err });
      throw err;
    }
    await auditSaved(root, saved, opts.draft.lineage, opts.audit);
    return saved;
  }
}

export interface LoadOptions {
  /** Verify every file's sha256 (default true). */
  verify?: boolean;
  /** Check a signature the package carries against these keys; a bad or untrusted one is refused. */
  trust?: TrustedKeys;
  /** Refuse packages without a valid signature by one of `trust`'s keys. */
  requireSignature?: boolean;
  /** Decryption key for encrypted packages (unused by plain ones); a key other than the package's is refused now. */
  key?: ModelKey;
  /** Refuse a version a quality gate marked rejected (VERSION_REJECTED): serve and predict without --allow-rejected. */
  refuseRejected?: boolean;
}

export async function loadPackage(ref: string, opts: LoadOptions = {}): Promise<LoadedPackage> {
  const dir = await resolvePackageDir(ref);
  const text = await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MlctlError('PACKAGE_INVALID', [dir, `mlctl.json is not valid JSON (${(err as Error).message})`]);
  }
  const manifest = validateManifest(parsed, dir);
  if (opts.refuseRejected) assertNotRejected({ manifest }, false);
  if (opts.verify !== false) await verifyPackage(dir, manifest);
  const pkg: LoadedPackage = { dir, manifest, manifestSha256: sha256(text), verified: opts.verify !== false };
  if (opts.requireSignature || opts.trust) await verifyPackageSignature(pkg, opts.trust, { required: Boolean(opts.requireSignature) });
  else await noteSignature(pkg);
  if (manifest.encryption && opts.key) pkg.key = checkKeyFor(dir, manifest.encryption, opts.key);
  return pkg;
}

/** Record who signed a package (checked against the key its signature carries) for lineage; never throws. */
async function noteSignature(pkg: LoadedPackage): Promise<void> {
  try {
    pkg.signature = await checkSignature(pkg);
  } catch (err) {
    if (!(err instanceof MlctlError && err.code === 'SIGNATURE_MISSING')) pkg.signatureProblem = (err as Error).message;
  }
}

/**
 * The signature gate for serve, export, predict and watch: the package's files match mlctl.json (checked now if
 * they were not), mlctl.json is what the signature covers, and the signer is one of `trust`'s keys. An unsigned
 * package is refused (SIGNATURE_MISSING) unless `required` is false. Sets pkg.signature on success.
 */
export async function verifyPackageSignature(pkg: LoadedPackage, trust: TrustedKeys | undefined, opts: { required?: boolean } = {}): Promise<SignatureInfo | undefined> {
  if (!trust) throw new MlctlError('OPTION_REQUIRED', ['--require-signature needs --trusted-keys PATH (or MLCTL_TRUSTED_KEYS): the public keys whose signatures are accepted']);
  if (!pkg.verified) {
    await verifyPackage(pkg.dir, pkg.manifest);
    pkg.verified = true;
  }
  try {
    pkg.signature = await checkSignature(pkg, trust);
  } catch (err) {
    if (err instanceof MlctlError && err.code === 'SIGNATURE_MISSING' && opts.required === false) return undefined;
    throw err;
  }
  return pkg.signature;
}

/**
 * A model file's bytes, decrypted when the manifest says it is encrypted (the one place package model files are
 * read). With `checkSha256`, the stored bytes must hash to the manifest's sha256 first.
 */
export async function readModelFile(pkg: LoadedPackage, rel: string, opts: { checkSha256?: boolean } = {}): Promise<Uint8Array> {
  const want = pkg.manifest.files[rel]?.sha256;
  const checkHash = (actual: string) => {
    if (!want || actual !== want) throw new MlctlError('PACKAGE_HASH_MISMATCH', [pkg.dir, want ? `${rel} has sha256 ${actual.slice(0, 12)}…, the manifest says ${want.slice(0, 12)}…` : `${rel} is not listed in the manifest's files`]);
  };
  if (!isEncryptedFile(pkg.manifest, rel)) {
    const bytes = await fs.readFile(path.join(pkg.dir, rel));
    if (opts.checkSha256) checkHash(sha256(bytes));
    return bytes;
  }
  const key = checkKeyFor(pkg.dir, pkg.manifest.encryption!, pkg.key);
  // Read, hashed and decrypted block by block: the ciphertext is never held whole.
  const hash = opts.checkSha256 ? createHash('sha256') : undefined;
  return decryptFileBytes(key, rel, path.join(pkg.dir, rel), pkg.dir, hash ? { onStored: (b) => hash.update(b), checkStored: () => checkHash(hash.digest('hex')) } : {});
}

export async function verifyPackage(dir: string, manifest: Manifest): Promise<void> {
  for (const [rel, entry] of Object.entries(manifest.files)) {
    const full = path.join(dir, rel);
    const stat = await fs.stat(full).catch(() => undefined);
    if (!stat) throw new MlctlError('PACKAGE_HASH_MISMATCH', [dir, `${rel} is missing`]);
    if (stat.size !== entry.bytes) throw new MlctlError('PACKAGE_HASH_MISMATCH', [dir, `${rel} has ${stat.size} bytes, the manifest says ${entry.bytes}`]);
    const actual = await sha256File(full);
    if (actual !== entry.sha256) throw new MlctlError('PACKAGE_HASH_MISMATCH', [dir, `${rel} has sha256 ${actual.slice(0, 12)}…, the manifest says ${entry.sha256.slice(0, 12)}…`]);
  }
}

/** Load one of the package's TF.js layers models (model.json + shards; default formats.tfjs), decrypting shards. */
export async function loadTfjsModel(pkg: LoadedPackage, rel = pkg.manifest.formats.tfjs): Promise<tf.LayersModel> {
  if (!rel) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has no TF.js model (formats.tfjs)']);
  const base = path.posix.dirname(rel);
  const read = (file: string) => readModelFile(pkg, base === '.' ? file : `${base}/${file}`);
  const artifacts = await readLayersModel(path.join(pkg.dir, rel), read);
  const tf = await tfjs();
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

/** Save a TF.js model into a package directory being written (used inside SaveOptions.write). */
export async function writeTfjsModel(dir: string, model: tf.LayersModel, specsOverride?: tf.io.WeightsManifestEntry[]): Promise<void> {
  const tf = await tfjs();
  await model.save(
    tf.io.withSaveHandler(async (artifacts: tf.io.ModelArtifacts) => {
      await writeLayersModel(dir, artifacts, specsOverride);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/** Lineage entry pointing at the package a new one was derived from. */
export function lineageFrom(pkg: LoadedPackage, op: string, params?: Record<string, unknown>): Manifest['lineage'][number] {
  return {
    op,
    at: new Date().toISOString(),
    tool: `mlctl`,
    from: {
      name: pkg.manifest.name,
      version: pkg.manifest.version,
      manifestSha256: pkg.manifestSha256,
      ...(pkg.signature ? { signer: { keyId: pkg.signature.keyId, signedAt: pkg.signature.signedAt, trusted: pkg.signature.trusted } } : {}),
    },
    ...(params ? { params } : {}),
  };
}

// Package-level security operations: sign a version in place, and encrypt / decrypt into a new version. Each is
// logged to the registry audit log; new versions never inherit a signature (they are unsigned until signed).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { appendRegistryAudit, type RegistryAuditRecord } from './audit-log.js';
import { checkKeyFor, decryptFile, encryptFile, weightFiles, type ModelKey } from './encryption.js';
import { ENCRYPTION_ALGORITHM, ENCRYPTION_FORMAT, type Manifest, type ManifestDraft } from './manifest.js';
import { artifactsRoot, lineageFrom, packageRef, savePackage, type LoadedPackage } from './package.js';
import { readSignature, signPackage, type SignatureStatement, type SigningKey } from './signing.js';

/** The registry a package lives in: <root>/<name>/<version> → <root> (where its audit log is). */
export function registryRootOf(pkg: LoadedPackage): string {
  const modelDir = path.dirname(pkg.dir);
  return path.basename(modelDir) === pkg.manifest.name ? path.dirname(modelDir) : artifactsRoot();
}

/** Refuse work that would need (or write) a package's weights in the clear. */
export function assertNotEncrypted(pkg: LoadedPackage, why: string): void {
  if (pkg.manifest.encryption) throw new MlctlError('PACKAGE_ENCRYPTED', [`${pkg.manifest.name} v${pkg.manifest.version} (${pkg.dir})`, why]);
}

export interface SignResult {
  statement: SignatureStatement;
  file: string;
  /** Key id of the signature this one replaced, if the package was signed before. */
  replaced?: string;
  audit: RegistryAuditRecord;
}

/** Sign a loaded (hash-verified) package version in place and log it. */
export async function signPackageVersion(pkg: LoadedPackage, key: SigningKey): Promise<SignResult> {
  if (!pkg.verified) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'its files were not verified against mlctl.json; load it with verification before signing']);
  const previous = await readSignature(pkg.dir).catch(() => undefined);
  const { statement, file } = await signPackage(pkg, key);
  const audit = await appendRegistryAudit(registryRootOf(pkg), {
    command: 'sign',
    package: packageRef(pkg),
    details: { keyId: key.keyId, signedAt: statement.signedAt, ...(previous ? { replaced: previous.keyId } : {}) },
  });
  return { statement, file, ...(previous ? { replaced: previous.keyId } : {}), audit };
}

export interface TransformOptions {
  /** Artifacts root for the new version (default: the source's own registry). */
  root?: string;
  /** Bytes processed so far, for progress. */
  onBytes?: (n: number) => void;
}

/** The source manifest as a draft for a new version of the same model (same weights, other storage). */
function sameModelDraft(source: LoadedPackage, op: 'encrypt' | 'decrypt', params: Record<string, unknown>, encryption?: Manifest['encryption']): ManifestDraft {
  const { schemaVersion: _s, name: _n, version: _v, createdAt: _c, files: _f, encryption: _e, ...rest } = source.manifest;
  return { ...rest, ...(encryption ? { encryption } : {}), lineage: [...source.manifest.lineage, lineageFrom(source, op, params)] };
}

/** Total bytes of the files `encryptPackage` / `decryptPackage` will stream (for a progress bar). */
export function packageBytes(pkg: LoadedPackage): number {
  return Object.values(pkg.manifest.files).reduce((a, f) => a + f.bytes, 0);
}

/**
 * Write a new version of `source` whose weight files (TF.js shards, model.onnx, classic-model.json) are
 * AES-256-GCM ciphertext; everything else is copied byte for byte. Plaintext is only ever in memory.
 */
export async function encryptPackage(source: LoadedPackage, key: ModelKey, opts: TransformOptions = {}): Promise<LoadedPackage> {
  if (source.manifest.encryption) throw new MlctlError('PACKAGE_ENCRYPTED', [source.dir, `it is already encrypted (key ${source.manifest.encryption.keyId})`]);
  const files = await weightFiles(source.dir, source.manifest);
  const encryption = { algorithm: ENCRYPTION_ALGORITHM, format: ENCRYPTION_FORMAT, keyId: key.keyId, files } as const;
  const draft = sameModelDraft(source, 'encrypt', { algorithm: ENCRYPTION_ALGORITHM, keyId: key.keyId, files: files.length }, encryption);
  return savePackage({
    name: source.manifest.name,
    root: opts.root ?? registryRootOf(source),
    draft,
    audit: { details: { keyId: key.keyId, files: files.length } },
    write: (dir) => copyTransformed(source, dir, files, (rel, src, dst) => encryptFile(key, rel, src, dst, opts.onBytes), opts.onBytes),
  });
}

/** Write a new plaintext version of an encrypted package (the GCM tag of every file is checked). */
export async function decryptPackage(source: LoadedPackage, key: ModelKey | undefined, opts: TransformOptions = {}): Promise<LoadedPackage> {
  const record = source.manifest.encryption;
  if (!record) throw new MlctlError('PACKAGE_NOT_ENCRYPTED', [source.dir]);
  const k = checkKeyFor(source.dir, record, key);
  const draft = sameModelDraft(source, 'decrypt', { algorithm: record.algorithm, keyId: record.keyId });
  return savePackage({
    name: source.manifest.name,
    root: opts.root ?? registryRootOf(source),
    draft,
    audit: { details: { keyId: record.keyId, files: record.files.length } },
    write: (dir) => copyTransformed(source, dir, record.files, (rel, src, dst) => decryptFile(k, rel, src, dst, source.dir, opts.onBytes), opts.onBytes),
  });
}

/** Copy every manifest file of `source` into `dir`, passing the `transformed` ones through `transform`. */
async function copyTransformed(
  source: LoadedPackage,
  dir: string,
  transformed: string[],
  transform: (rel: string, src: string, dst: string) => Promise<void>,
  onBytes?: (n: number) => void,
): Promise<void> {
  const set = new Set(transformed);
  for (const [rel, entry] of Object.entries(source.manifest.files)) {
    const src = path.join(source.dir, rel);
    const dst = path.join(dir, rel);
    await fs.mkdir(path.dirname(dst), { recursive: true });
    if (set.has(rel)) await transform(rel, src, dst);
    else {
      await fs.copyFile(src, dst, fs.constants.COPYFILE_EXCL);
      onBytes?.(entry.bytes);
    }
  }
}

// Model packages on disk: artifacts/<name>/<version>/ with mlctl.json + model files.
// Saving is atomic with auto-incremented versions; loading verifies every file's sha256 against the manifest.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { writeDirAtomic } from './atomic.js';
import { sha256, sha256File } from './hash.js';
import { MANIFEST_FILE, SCHEMA_VERSION, validateManifest, type FileEntry, type Manifest, type ManifestDraft } from './manifest.js';
import { loadLayersModelFromDir, writeLayersModel } from './tfjs-io.js';

export interface LoadedPackage {
  dir: string;
  manifest: Manifest;
  /** sha256 of mlctl.json as stored: identifies this exact package in lineage and audit logs. */
  manifestSha256: string;
  /** True when every file was checked against the manifest's sha256 (loadPackage's default, or just written). */
  verified: boolean;
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

/**
 * Resolve what a user typed to a package directory: a package dir (has mlctl.json), a model dir
 * (latest numeric version), or a bare model name under the artifacts root (optionally name@version / name/version).
 */
export async function resolvePackageDir(ref: string): Promise<string> {
  const candidates = [path.resolve(ref)];
  const at = /^([^@/\\]+)@(\d+)$/.exec(ref);
  if (at) candidates.push(path.join(artifactsRoot(), at[1]!, at[2]!));
  else if (!path.isAbsolute(ref) && !ref.startsWith('.')) candidates.push(path.join(artifactsRoot(), ref));
  for (const dir of candidates) {
    if (await isFile(path.join(dir, MANIFEST_FILE))) return dir;
    const versions = await listVersions(dir);
    for (const v of versions.reverse()) {
      const vdir = path.join(dir, String(v));
      if (await isFile(path.join(vdir, MANIFEST_FILE))) return vdir;
    }
  }
  throw new MlctlError('PACKAGE_NOT_FOUND', [ref]);
}

async function listFilesRecursive(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFilesRecursive(path.join(dir, e.name), rel)));
    else if (e.isFile() && rel !== MANIFEST_FILE) out.push(rel);
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
}

/** Write a new package version atomically; returns it loaded (manifest with hashes). */
export async function savePackage(opts: SaveOptions): Promise<LoadedPackage> {
  assertValidName(opts.name);
  const modelDir = path.join(opts.root ?? artifactsRoot(), opts.name);
  for (let attempt = 0; ; attempt++) {
    const versions = await listVersions(modelDir);
    const version = opts.version ?? (versions.length ? versions[versions.length - 1]! + 1 : 1);
    const target = path.join(modelDir, String(version));
    try {
      return await writeDirAtomic(target, async (tmp) => {
        await opts.write(tmp);
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
  }
}

export interface LoadOptions {
  /** Verify every file's sha256 (default true). */
  verify?: boolean;
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
  if (opts.verify !== false) await verifyPackage(dir, manifest);
  return { dir, manifest, manifestSha256: sha256(text), verified: opts.verify !== false };
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

/** Load the package's TF.js layers model (model.json + shards). */
export async function loadTfjsModel(pkg: LoadedPackage): Promise<tf.LayersModel> {
  const rel = pkg.manifest.formats.tfjs;
  if (!rel) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has no TF.js model (formats.tfjs)']);
  return loadLayersModelFromDir(path.dirname(path.join(pkg.dir, rel)));
}

/** Save a TF.js model into a package directory being written (used inside SaveOptions.write). */
export async function writeTfjsModel(dir: string, model: tf.LayersModel, specsOverride?: tf.io.WeightsManifestEntry[]): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
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
    from: { name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 },
    ...(params ? { params } : {}),
  };
}

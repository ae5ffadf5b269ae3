// Which package directories `mlctl serve MODEL_OR_DIR` means: a package dir, a model dir with numeric versions,
// a root of model dirs (every model, every version), or a name/name@version under the artifacts root.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { listVersions, parseModelRef, resolvePackageDir } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';

export type VersionPolicy = 'all' | 'latest';

const isFile = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);
const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);

/** Package directories under a model directory (artifacts/NAME), ascending by version. */
async function versionDirs(modelDir: string, policy: VersionPolicy): Promise<string[]> {
  const dirs: string[] = [];
  for (const v of await listVersions(modelDir)) {
    const d = path.join(modelDir, String(v));
    if (await isFile(path.join(d, MANIFEST_FILE))) dirs.push(d);
  }
  return policy === 'latest' ? dirs.slice(-1) : dirs;
}

export async function findPackageDirs(ref: string, policy: VersionPolicy = 'all'): Promise<string[]> {
  const abs = path.resolve(ref);
  if (await isDir(abs)) {
    if (await isFile(path.join(abs, MANIFEST_FILE))) return [abs];
    const own = await versionDirs(abs, policy);
    if (own.length) return own;
    const found: string[] = [];
    const entries = await fs.readdir(abs, { withFileTypes: true });
    for (const e of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      found.push(...(await versionDirs(path.join(abs, e.name), policy)));
    }
    if (found.length) return found;
    throw new MlctlError('PACKAGE_NOT_FOUND', [ref]);
  }
  // A bare name (or name@version, name:tag: exactly that version) under the artifacts root.
  const dir = await resolvePackageDir(ref);
  const model = parseModelRef(ref);
  if (model?.version !== undefined || model?.tag !== undefined) return [dir];
  const modelDir = path.dirname(dir);
  const all = await versionDirs(modelDir, policy);
  return all.length ? all : [dir];
}

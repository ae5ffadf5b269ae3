// Which package directories `mlctl serve MODEL_OR_DIR` means: a package dir, a model dir with numeric versions,
// a root of model dirs (every model, every version), or a name/name@version under the artifacts root.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { latestVersionDir, listVersions, parseModelRef, resolvePackageDir } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';

export type VersionPolicy = 'all' | 'latest';

const isFile = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);
const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);

/**
 * Package directories under a model directory (artifacts/NAME), ascending by version. 'latest' is the newest version
 * a quality gate did not reject (unless `allowRejected`); 'all' lists every version, and the loader refuses rejected
 * ones without --allow-rejected (they are reported unavailable, with the reason).
 */
async function versionDirs(modelDir: string, policy: VersionPolicy, allowRejected: boolean): Promise<string[]> {
  if (policy === 'latest') {
    const latest = await latestVersionDir(modelDir, { allowRejected });
    return latest ? [latest] : [];
  }
  const dirs: string[] = [];
  for (const v of await listVersions(modelDir)) {
    const d = path.join(modelDir, String(v));
    if (await isFile(path.join(d, MANIFEST_FILE))) dirs.push(d);
  }
  return dirs;
}

export async function findPackageDirs(ref: string, policy: VersionPolicy = 'all', opts: { allowRejected?: boolean } = {}): Promise<string[]> {
  const allowRejected = Boolean(opts.allowRejected);
  const abs = path.resolve(ref);
  if (await isDir(abs)) {
    if (await isFile(path.join(abs, MANIFEST_FILE))) return [abs];
    const own = await versionDirs(abs, policy, allowRejected);
    if (own.length) return own;
    const found: string[] = [];
    const entries = await fs.readdir(abs, { withFileTypes: true });
    for (const e of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      found.push(...(await versionDirs(path.join(abs, e.name), policy, allowRejected)));
    }
    if (found.length) return found;
    throw new MlctlError('PACKAGE_NOT_FOUND', [ref]);
  }
  // A bare name (or name@version, name:tag: exactly that version) under the artifacts root.
  const dir = await resolvePackageDir(ref);
  const model = parseModelRef(ref);
  if (model?.version !== undefined || model?.tag !== undefined) return [dir];
  const modelDir = path.dirname(dir);
  const all = await versionDirs(modelDir, policy, allowRejected);
  return all.length ? all : [dir];
}

// The export output directory: refuse to clobber a non-empty --out unless --force, build everything in a temporary
// sibling and rename it into place, so a failed export never leaves a half-written directory behind.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { replaceDirAtomic, writeDirAtomic } from '../artifacts/atomic.js';
import { hashFiles } from '../artifacts/package.js';
import type { FileEntry } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';

export interface WrittenDir<T> {
  dir: string;
  /** sha256 and size of every file written, relative to `dir`. */
  files: Record<string, FileEntry>;
  value: T;
}

/** Why `out` cannot be written without --force, or undefined when it is free (missing or an empty directory). */
async function occupied(out: string): Promise<string | undefined> {
  const stat = await fs.stat(out).catch(() => undefined);
  if (!stat) return undefined;
  if (!stat.isDirectory()) return 'file';
  return (await fs.readdir(out)).length > 0 ? 'dir' : undefined;
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * `protect`: paths that must survive (the source package): --force replaces the whole --out directory, so an --out
 * that contains one of them, or the working directory, is refused outright.
 */
export async function writeOutputDir<T>(out: string, force: boolean, fill: (tmp: string) => Promise<T>, protect: string[] = []): Promise<WrittenDir<T>> {
  const dir = path.resolve(out);
  for (const p of [...protect, process.cwd()]) {
    if (inside(path.resolve(p), dir)) throw new MlctlError('OPTION_CONFLICT', [`--out ${out} contains ${p}, which an export must not replace: choose a separate output directory`]);
  }
  for (const p of protect) {
    if (inside(dir, path.resolve(p))) throw new MlctlError('OPTION_CONFLICT', [`--out ${out} is inside the package ${p}: choose a directory outside it`]);
  }
  const state = await occupied(dir);
  if (state === 'file') throw new MlctlError('OUTPUT_DIR_INVALID', [`--out ${out} is a file, not a directory: choose a directory path`]);
  if (state === 'dir' && !force) throw new MlctlError('PACKAGE_EXISTS', [out]);
  const write = state === 'dir' ? replaceDirAtomic : writeDirAtomic;
  return write(dir, async (tmp) => {
    const value = await fill(tmp);
    return { dir, files: await hashFiles(tmp), value };
  });
}

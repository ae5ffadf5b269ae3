// Atomic writes: everything is written under a temporary sibling path and renamed into place, so a crash,
// a full disk or a Ctrl-C never leaves a half-written file or package where a reader could find it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { processAlive } from '../util/process.js';

function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** `.NAME.tmp-PID-HEX` (and `….old`): what tempSibling names; group 1 is the target name, group 2 the writer's pid. */
const TEMP_PATTERN = /^\.(.+)\.tmp-(\d+)-[0-9a-f]{8}(?:\.old)?$/;

/** A temporary sibling left behind by a writer that no longer runs (killed with SIGKILL, power loss). */
export interface StaleTemp {
  path: string;
  /** The file or directory it was going to become. */
  target: string;
  pid: number;
  modified: Date;
}

/** Temporary siblings in `dir` whose writing process is gone (the live ones are still being written). */
export async function listStaleTemps(dir: string): Promise<StaleTemp[]> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  const out: StaleTemp[] = [];
  for (const name of entries) {
    const m = TEMP_PATTERN.exec(name);
    if (!m || processAlive(Number(m[2]))) continue;
    const st = await fs.lstat(path.join(dir, name)).catch(() => undefined);
    if (st) out.push({ path: path.join(dir, name), target: path.join(dir, m[1]!), pid: Number(m[2]), modified: st.mtime });
  }
  return out;
}

/** Remove the stale temporary siblings in `dir`; returns what was removed. */
export async function removeStaleTemps(dir: string): Promise<StaleTemp[]> {
  const stale = await listStaleTemps(dir);
  for (const t of stale) await fs.rm(t.path, { recursive: true, force: true });
  return stale;
}

export interface AtomicWriteOptions {
  /** Applies from creation on (a private key is never readable by others, not even for a moment). */
  mode?: number;
  /**
   * Temporary path to write first (default: a random sibling, created exclusively). A single writer may use a fixed
   * name: a temporary file a crash left there is overwritten.
   */
  tmp?: string;
  /** Also fsync the directory after the rename, so the new name itself survives a power loss (journals, spools). */
  syncDir?: boolean;
}

/** Write `data` under a temporary name, fsync, rename over `file`. A number is the `mode` (the common case). */
export async function writeFileAtomic(file: string, data: string | Uint8Array, modeOrOpts?: number | AtomicWriteOptions): Promise<void> {
  const opts: AtomicWriteOptions = typeof modeOrOpts === 'number' ? { mode: modeOrOpts } : (modeOrOpts ?? {});
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = opts.tmp ?? tempSibling(file);
  try {
    const handle = await fs.open(tmp, opts.tmp ? 'w' : 'wx', opts.mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  if (opts.syncDir) {
    const dir = await fs.open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Build a directory by filling a temporary sibling, then rename it to `target`. `target` must not exist
 * (or must be an empty directory); on any failure the temporary directory is removed and `target` is untouched.
 */
export async function writeDirAtomic<T>(target: string, fill: (tmpDir: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  // Directories left by writers that were killed mid-way would otherwise stay forever.
  await removeStaleTemps(path.dirname(target));
  const tmp = tempSibling(target);
  await fs.mkdir(tmp);
  try {
    const result = await fill(tmp);
    await fs.rmdir(target).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // ENOTEMPTY: never overwrite an existing package
    });
    await fs.rename(tmp, target);
    return result;
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Replace an existing directory atomically enough for our needs: build the new one, swap, drop the old one. */
export async function replaceDirAtomic<T>(target: string, fill: (tmpDir: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  await removeStaleTemps(path.dirname(target));
  const old = tempSibling(target) + '.old';
  const tmp = tempSibling(target);
  await fs.mkdir(tmp, { recursive: true });
  try {
    const result = await fill(tmp);
    const existed = await fs.rename(target, old).then(() => true, () => false);
    await fs.rename(tmp, target);
    if (existed) await fs.rm(old, { recursive: true, force: true });
    return result;
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

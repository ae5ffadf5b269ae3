// One way to hold a lock on a file across processes (and hosts sharing a volume): proper-lockfile's lock directory,
// created atomically, its mtime refreshed while held and taken over only once stale (the holder crashed).
import lockfile from 'proper-lockfile';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface LockOptions {
  /** Longest wait for a live holder (default 15 s). */
  waitMs?: number;
  /** A lock not refreshed for this long was left by a crash (default 10 s; refreshed every stale/5 while held). */
  staleMs?: number;
  /** The error to throw when the wait runs out (default: proper-lockfile's ELOCKED error). */
  busy?: (lockPath: string, cause: unknown) => Error;
}

/** Take `<file>.lock` (waiting up to waitMs for a live holder) and hold it until the returned release is called. */
export async function holdFileLock(file: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const waitMs = opts.waitMs ?? 15_000;
  const stale = opts.staleMs ?? 10_000;
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    return await lockfile.lock(file, {
      realpath: false,
      stale,
      update: Math.max(1000, Math.floor(stale / 5)),
      retries: { retries: Math.ceil(waitMs / 100), factor: 1.2, minTimeout: 10, maxTimeout: 250, randomize: true },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED' && opts.busy) throw opts.busy(`${file}.lock`, err);
    throw err;
  }
}

/** Run `fn` while holding `<file>.lock`; the lock is released however `fn` ends. */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await holdFileLock(file, opts);
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}

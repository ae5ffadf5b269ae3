// One watcher per state directory: two processes appending to the same spool would hand out the same sequence
// numbers. The state directory is held with mlctl's one cross-process lock (util/lock.ts) for the watcher's whole
// life; a lock a crashed watcher left behind goes stale and is taken over.
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { holdFileLock } from '../util/lock.js';
import type { Logger } from '../util/log.js';

/** A crashed holder stops refreshing the lock; after this long it is stale. */
const STALE_MS = 10_000;

/** Take the state directory; resolves with the release function once held, or fails with WATCH_LOCKED. */
export async function lockStateDir(dir: string, logger?: Logger, opts: { waitMs?: number } = {}): Promise<() => Promise<void>> {
  // Waiting a little longer than the stale time lets a restart right after a crash (SIGKILL) take over.
  const waitMs = opts.waitMs ?? STALE_MS + 5000;
  const timer = setTimeout(() => logger?.info(`state directory ${dir} is locked (a watcher is running, or one crashed moments ago): waiting up to ${Math.round(waitMs / 1000)} s`), 1000);
  try {
    return await holdFileLock(path.join(dir, 'watch'), { waitMs, staleMs: STALE_MS, busy: (lockPath) => new MlctlError('WATCH_LOCKED', [dir, lockPath]) });
  } finally {
    clearTimeout(timer);
  }
}

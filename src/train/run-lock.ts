// The run-folder lock of `mlctl train`: one process per run name, with owner.json saying who holds it, so a second
// run with the same --name fails fast instead of writing checkpoints over the first one's.
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import { holdFileLock } from '../util/lock.js';
import { processAlive } from '../util/process.js';

/** One `mlctl train` process working in a run folder. */
export interface RunIdentity {
  id: string;
  pid: number;
  startedAt: string;
}

export interface RunLock extends RunIdentity {
  release(): Promise<void>;
}

const OWNER_FILE = 'owner.json';

/**
 * Hold the run folder for this process (util/lock.ts, `run.lock` in it, plus `owner.json` saying who): a second run
 * with the same --name fails with RUN_LOCKED naming the holder's pid, instead of both writing checkpoints over each
 * other. A lock left by a killed run is taken over: at once when its pid is gone on this host, else once stale.
 */
export async function lockRun(dir: string, name: string): Promise<RunLock> {
  const me: RunIdentity & { host: string } = { id: `${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${process.pid}`, pid: process.pid, startedAt: new Date().toISOString(), host: os.hostname() };
  const owner = path.join(dir, OWNER_FILE);
  const holder = (): (RunIdentity & { host?: string }) | undefined => {
    try {
      return JSON.parse(readFileSync(owner, 'utf8')) as RunIdentity & { host?: string };
    } catch {
      return undefined;
    }
  };
  const busy = () => {
    const h = holder();
    return new MlctlError('RUN_LOCKED', [name, h ? String(h.pid) : 'unknown', h?.startedAt ?? 'an unknown time']);
  };
  let release: () => Promise<void>;
  try {
    release = await holdFileLock(path.join(dir, 'run'), { waitMs: 0, busy });
  } catch (err) {
    const h = holder();
    if (!(err instanceof MlctlError) || !h || (h.host ?? os.hostname()) !== os.hostname() || processAlive(h.pid)) throw err;
    // The holder was killed on this host: its lock need not go stale first.
    await fs.rm(path.join(dir, 'run.lock'), { recursive: true, force: true });
    release = await holdFileLock(path.join(dir, 'run'), { waitMs: 0, busy });
  }
  await writeJsonAtomic(owner, me);
  return {
    id: me.id,
    pid: me.pid,
    startedAt: me.startedAt,
    release: async () => {
      await fs.rm(owner, { force: true });
      await release();
    },
  };
}

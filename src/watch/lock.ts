// One watcher per state directory: two processes appending to the same spool would hand out the same sequence
// numbers. The lock is a file holding the owner's pid, created exclusively; a lock left by a dead process is taken over.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { processAlive } from '../util/process.js';

/** Is `pid` a running mlctl (node) process? A pid reused by something else after a crash does not hold the lock. */
async function alive(pid: number): Promise<boolean> {
  if (!processAlive(pid)) return false;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return cmdline === undefined || /node|mlctl/.test(cmdline);
}

export async function lockStateDir(dir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'watch.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return async () => {
        const owner = await fs.readFile(file, 'utf8').catch(() => '');
        if (owner.trim() === String(process.pid)) await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new MlctlError('WATCH_SPOOL', [dir, `cannot create ${file} (${(err as NodeJS.ErrnoException).code})`], { cause: err });
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && (await alive(pid))) throw new MlctlError('WATCH_LOCKED', [dir, pid]);
      await fs.rm(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new MlctlError('WATCH_LOCKED', [dir, 'unknown']);
}

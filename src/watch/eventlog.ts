// The events log: every accepted event as one JSON line in <state>/events.jsonl, rotated by size to
// events.jsonl.1 … .N (the oldest dropped). A record for people and scripts; delivery relies on the spool.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { WatchEvent } from './events.js';

export interface EventLog {
  append(event: WatchEvent): Promise<void>;
  readonly file: string;
}

export function createEventLog(dir: string, opts: { maxBytes: number; keep: number }): EventLog {
  const file = path.join(dir, 'events.jsonl');
  let size: number | undefined;
  let chain: Promise<void> = Promise.resolve();

  const rotate = async () => {
    for (let i = opts.keep - 1; i >= 1; i--) await fs.rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
    if (opts.keep > 0) await fs.rename(file, `${file}.1`).catch(() => {});
    else await fs.rm(file, { force: true });
    size = 0;
  };

  return {
    file,
    append(event) {
      const line = JSON.stringify(event) + '\n';
      const job = chain.then(async () => {
        size ??= await fs.stat(file).then((s) => s.size, () => 0);
        if (size > 0 && size + line.length > opts.maxBytes) await rotate();
        await fs.appendFile(file, line);
        size += Buffer.byteLength(line);
      });
      chain = job.catch(() => {});
      return job;
    },
  };
}

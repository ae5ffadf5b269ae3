// A folder as a camera: image files are taken as they arrive (fs.watch wakes the scan, a periodic scan covers
// file systems where watching does not work), oldest first, once their size has stopped changing. A journal of
// handled files (name, size, mtime) makes a restart skip what was already seen; a file is journalled only after
// its frame was handled, so a crash processes it again rather than losing it.
import { watch as fsWatch, promises as fs, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../artifacts/atomic.js';
import type { Logger } from '../../util/log.js';
import { sleep, SourceFailure, type OpenedSource } from './types.js';

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

interface Seen {
  size: number;
  mtimeMs: number;
}

const keyOf = (name: string, s: Seen) => `${name}\t${s.size}\t${Math.round(s.mtimeMs)}`;

/** The journal file: one JSON line per handled file; compacted on open to files that still exist. */
async function openJournal(file: string, dir: string, existing: 'skip' | 'process') {
  const seen = new Set<string>();
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  const entries = await listImages(dir);
  if (text === undefined) {
    if (existing === 'skip') for (const e of entries) seen.add(keyOf(e.name, e));
  } else {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const j = JSON.parse(line) as { f: string; s: number; m: number };
        seen.add(keyOf(j.f, { size: j.s, mtimeMs: j.m }));
      } catch {
        /* a line cut short by a crash: the file it named is processed again */
      }
    }
  }
  // Compact: forget files that are gone, so the journal stays as small as the folder.
  const kept = entries.filter((e) => seen.has(keyOf(e.name, e)));
  await writeFileAtomic(file, kept.map((e) => JSON.stringify({ f: e.name, s: e.size, m: Math.round(e.mtimeMs) }) + '\n').join(''));
  const handle = await fs.open(file, 'a');
  return {
    has: (name: string, s: Seen) => seen.has(keyOf(name, s)),
    async add(name: string, s: Seen) {
      seen.add(keyOf(name, s));
      await handle.appendFile(JSON.stringify({ f: name, s: s.size, m: Math.round(s.mtimeMs) }) + '\n');
    },
    close: () => handle.close(),
  };
}

async function listImages(dir: string): Promise<Array<{ name: string } & Seen>> {
  const names = await fs.readdir(dir);
  const out: Array<{ name: string } & Seen> = [];
  for (const name of names) {
    if (!IMAGE_EXT.test(name) || name.startsWith('.')) continue;
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (st?.isFile()) out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
}

export interface FolderOptions {
  dir: string;
  existing: 'skip' | 'process';
  pollMs: number;
  journalFile: string;
  maxFrameBytes: number;
  logger: Logger;
}

export function folderSource(opts: FolderOptions): OpenedSource {
  return {
    describe: opts.dir,
    endIsFinal: false,
    quietIsNormal: true,
    paced: true,
    async run(signal, sink) {
      const st = await fs.stat(opts.dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new SourceFailure(`folder ${opts.dir} does not exist (any more)`);
      await fs.mkdir(path.dirname(opts.journalFile), { recursive: true });
      const journal = await openJournal(opts.journalFile, opts.dir, opts.existing);
      let wake: (() => void) | undefined;
      let watcher: FSWatcher | undefined;
      try {
        watcher = fsWatch(opts.dir, { persistent: false }, () => wake?.());
        watcher.on('error', () => {
          watcher?.close();
          watcher = undefined;
        });
      } catch (err) {
        opts.logger.debug(`folder ${opts.dir}: fs.watch unavailable (${(err as Error).message}); polling every ${opts.pollMs} ms`);
      }
      /** Size per file on the previous scan: a file is taken once it has stopped growing. */
      let sizes = new Map<string, number>();
      try {
        while (!signal.aborted) {
          const entries = await listImages(opts.dir).catch((err: Error) => {
            throw new SourceFailure(`cannot read folder ${opts.dir} (${(err as NodeJS.ErrnoException).code ?? err.message})`);
          });
          const next = new Map<string, number>();
          let waiting = false;
          for (const e of entries) {
            if (signal.aborted) break;
            if (journal.has(e.name, e)) continue;
            next.set(e.name, e.size);
            const settled = sizes.get(e.name) === e.size && Date.now() - e.mtimeMs > 200;
            if (!settled) {
              waiting = true;
              continue;
            }
            if (e.size > opts.maxFrameBytes) {
              opts.logger.warn(`folder ${opts.dir}: ${e.name} is ${e.size} bytes, over the frame limit; skipped`);
            } else {
              const image = await fs.readFile(path.join(opts.dir, e.name)).catch(() => undefined);
              if (image) await sink.frame({ image, file: e.name });
            }
            await journal.add(e.name, e);
          }
          sizes = next;
          await new Promise<void>((resolve) => {
            wake = resolve;
            void sleep(waiting ? 250 : opts.pollMs, signal).then(resolve);
          });
          wake = undefined;
        }
      } finally {
        watcher?.close();
        await journal.close();
      }
      throw signal.reason;
    },
  };
}

// The on-disk event spool: nothing accepted is lost. Each event is one file (written to a temporary name,
// fsync'd, renamed, directory fsync'd) before any delivery starts; each notifier keeps its own cursor (the last
// sequence number it delivered), and a file is removed once every notifier is past it. Delivery per notifier is
// in sequence order, so a receiver that was down gets the backlog in order; a crash between a delivery and its
// cursor write means that one event is delivered again with the same id (at-least-once). A cursor the disk refuses
// (full) stays in memory and is written again later: the running watcher never sends a delivered event again.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { WatchEvent } from './events.js';

export interface SpooledEvent {
  seq: number;
  event: WatchEvent;
}

export interface Spool {
  readonly dir: string;
  /** Persist an event; resolves once it is on disk. Throws WATCH_SPOOL when it cannot be written. */
  append(event: WatchEvent): Promise<SpooledEvent>;
  /** The next event `sink` has not delivered, waiting for one if needed; undefined once the spool is closed. */
  next(sink: string): Promise<SpooledEvent | undefined>;
  /**
   * `sink` delivered (or skipped) everything up to `seq`. Never fails for a cursor the disk refuses: it is kept in
   * memory (delivery goes on from it) and written on the next ack or retry; only a restart before that repeats events.
   */
  ack(sink: string, seq: number): Promise<void>;
  /** Give up on an event for `sink`: keep it under dead/<sink>/ with the reason, then move on. */
  deadLetter(sink: string, item: SpooledEvent, reason: string, attempts: number): Promise<void>;
  /** Events `sink` has still to deliver. */
  backlog(sink: string): number;
  /** Ids of events some notifier still has to deliver (their snapshots must be kept). */
  pendingIds(): Promise<Set<string>>;
  /** Wake every next() with undefined. */
  close(): void;
}

const FILE_RE = /^(\d{12})\.json$/;
/** How soon a cursor the disk refused is written again (also on the notifier's next delivery). */
const CURSOR_RETRY_MS = 2000;
const fileOf = (seq: number) => `${String(seq).padStart(12, '0')}.json`;

/** A clear message for a failed write; ENOSPC and EDQUOT say what to do. */
export function spoolWriteError(dir: string, err: unknown): MlctlError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk is full (no space left on device): free space or point --state-dir at a larger disk; the event is kept in memory and written as soon as there is room'
      : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
        ? `cannot write there (${code}): make the state directory writable`
        : `cannot write an event (${code ?? (err as Error).message})`;
  return new MlctlError('WATCH_SPOOL', [dir, why], { cause: err });
}

/** Write `data` to `file` so it is complete on disk, under its name, before anyone can see it. */
const durableWrite = (file: string, tmp: string, data: string) => writeFileAtomic(file, data, { tmp, syncDir: true });

async function readCursor(file: string): Promise<number | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  const seq = text === undefined ? NaN : Number(JSON.parse(text).seq);
  return Number.isInteger(seq) ? seq : undefined;
}

export async function openSpool(dir: string, sinks: string[], logger: Logger): Promise<Spool> {
  const eventsDir = path.join(dir, 'events');
  const cursorsDir = path.join(dir, 'cursors');
  await fs.mkdir(eventsDir, { recursive: true });
  await fs.mkdir(cursorsDir, { recursive: true });
  const seqs: number[] = [];
  for (const name of await fs.readdir(eventsDir)) {
    const m = FILE_RE.exec(name);
    if (m) seqs.push(Number(m[1]));
    else if (name.startsWith('.')) await fs.rm(path.join(eventsDir, name), { force: true }); // a write cut short
  }
  seqs.sort((a, b) => a - b);
  const cursors = new Map<string, number>();
  let last = seqs.length ? seqs[seqs.length - 1]! : 0;
  for (const name of await fs.readdir(cursorsDir)) {
    const seq = name.endsWith('.json') ? await readCursor(path.join(cursorsDir, name)) : undefined;
    if (seq !== undefined) last = Math.max(last, seq);
    if (seq !== undefined && sinks.includes(name.slice(0, -5))) cursors.set(name.slice(0, -5), seq);
  }
  // A notifier new to this spool starts with whatever is still waiting for the others.
  for (const s of sinks) {
    if (!cursors.has(s)) {
      cursors.set(s, seqs.length ? seqs[0]! - 1 : last);
      await durableWrite(path.join(cursorsDir, `${s}.json`), path.join(cursorsDir, `.${s}.tmp`), JSON.stringify({ seq: cursors.get(s) }));
    }
  }
  let nextSeq = last + 1;
  let closed = false;
  let writing: Promise<unknown> = Promise.resolve();
  const waiters = new Map<string, Array<() => void>>();
  const wake = () => {
    for (const [, list] of waiters) list.splice(0).forEach((w) => w());
  };
  const ids = new Map<number, string>();
  if (seqs.length) logger.info(`event spool ${dir}: ${seqs.length} event(s) waiting for delivery from an earlier run`);

  const read = async (seq: number): Promise<SpooledEvent | undefined> => {
    const file = path.join(eventsDir, fileOf(seq));
    try {
      const event = JSON.parse(await fs.readFile(file, 'utf8')) as WatchEvent;
      ids.set(seq, event.id);
      return { seq, event };
    } catch (err) {
      // Files are renamed into place complete, so this is damage from outside: keep it aside and go on.
      logger.error(`event spool ${dir}: ${fileOf(seq)} is unreadable (${(err as Error).message}); moved to corrupt/`);
      await fs.mkdir(path.join(dir, 'corrupt'), { recursive: true });
      await fs.rename(file, path.join(dir, 'corrupt', fileOf(seq))).catch(() => {});
      const i = seqs.indexOf(seq);
      if (i >= 0) seqs.splice(i, 1);
      return undefined;
    }
  };

  // Cursor writes, one at a time per notifier (they share a temporary file); `unsaved` holds the notifiers whose
  // cursor on disk is behind the one in memory because the disk refused it.
  const saving = new Map<string, Promise<void>>();
  const unsaved = new Set<string>();
  let resave: NodeJS.Timeout | undefined;
  const writeCursor = async (sink: string) => {
    const seq = cursors.get(sink)!;
    try {
      await durableWrite(path.join(cursorsDir, `${sink}.json`), path.join(cursorsDir, `.${sink}.tmp`), JSON.stringify({ seq }));
      if (unsaved.delete(sink)) logger.info(`event spool ${dir}: the cursor of ${sink} is saved again (at event ${seq})`);
    } catch (err) {
      if (!unsaved.has(sink))
        logger.error(`${spoolWriteError(dir, err).message} (the cursor of ${sink}, at event ${seq}: delivery goes on and delivered events are not sent again; only a restart before it is saved would repeat them)`);
      unsaved.add(sink);
      resave ??= setTimeout(() => {
        resave = undefined;
        for (const s of unsaved) void saveCursor(s);
      }, CURSOR_RETRY_MS);
      resave.unref();
    }
  };
  const saveCursor = (sink: string): Promise<void> => {
    const job = (saving.get(sink) ?? Promise.resolve()).then(() => writeCursor(sink));
    saving.set(sink, job);
    return job;
  };

  const collect = async () => {
    const low = Math.min(...sinks.map((s) => cursors.get(s)!), sinks.length ? Infinity : nextSeq);
    while (seqs.length && seqs[0]! <= low) {
      const seq = seqs.shift()!;
      ids.delete(seq);
      await fs.rm(path.join(eventsDir, fileOf(seq)), { force: true });
    }
  };

  const spool: Spool = {
    dir,
    append(event) {
      const job = writing.then(async () => {
        const seq = nextSeq;
        try {
          await durableWrite(path.join(eventsDir, fileOf(seq)), path.join(eventsDir, '.incoming.tmp'), JSON.stringify(event));
        } catch (err) {
          throw spoolWriteError(dir, err);
        }
        nextSeq++;
        seqs.push(seq);
        ids.set(seq, event.id);
        if (!sinks.length) await collect();
        wake();
        return { seq, event };
      });
      writing = job.catch(() => {});
      return job;
    },
    async next(sink) {
      for (;;) {
        if (closed) return undefined;
        const cursor = cursors.get(sink)!;
        const seq = seqs.find((s) => s > cursor);
        if (seq !== undefined) {
          const item = await read(seq);
          if (item) return item;
          continue;
        }
        await new Promise<void>((resolve) => {
          const list = waiters.get(sink) ?? [];
          list.push(resolve);
          waiters.set(sink, list);
        });
      }
    },
    async ack(sink, seq) {
      cursors.set(sink, seq);
      await saveCursor(sink);
      await collect();
    },
    async deadLetter(sink, item, reason, attempts) {
      const deadDir = path.join(dir, 'dead', sink);
      await fs.mkdir(deadDir, { recursive: true });
      await durableWrite(path.join(deadDir, fileOf(item.seq)), path.join(deadDir, '.incoming.tmp'), JSON.stringify({ reason, attempts, at: new Date().toISOString(), event: item.event }, null, 2));
      await spool.ack(sink, item.seq);
    },
    backlog(sink) {
      const cursor = cursors.get(sink) ?? 0;
      let n = 0;
      for (let i = seqs.length - 1; i >= 0 && seqs[i]! > cursor; i--) n++;
      return n;
    },
    async pendingIds() {
      for (const seq of [...seqs]) if (!ids.has(seq)) await read(seq);
      return new Set(ids.values());
    },
    close() {
      closed = true;
      if (resave) clearTimeout(resave);
      wake();
    },
  };
  await collect();
  return spool;
}

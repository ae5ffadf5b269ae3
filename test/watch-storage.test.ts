// watch's files: snapshots (label drawn, retention that spares undelivered events), the rotated events log, the
// state-directory lock, and the clear error when a camera needs ffmpeg and there is none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { MlctlError } from '../src/errors.js';
import { createMemoryLogger } from '../src/util/log.js';
import { createEventLog } from '../src/watch/eventlog.js';
import { uuidv7, type WatchEvent } from '../src/watch/events.js';
import { lockStateDir } from '../src/watch/lock.js';
import { createSnapshotStore } from '../src/watch/snapshots.js';
import { checkFfmpeg } from '../src/watch/sources/ffmpeg.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let frame: Buffer;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-storage-');
  frame = await sharp({ create: { width: 160, height: 120, channels: 3, background: '#ffffff' } }).jpeg().toBuffer();
});
afterAll(() => tmp?.cleanup());

describe('snapshots', () => {
  it('stores the frame as is, or with the caption bar and the region of interest drawn', async () => {
    const store = createSnapshotStore({ dir: path.join(tmp.dir, 'snaps-a'), drawLabel: true, keep: 10, maxAgeMs: 86_400_000, quality: 90, logger: createMemoryLogger() });
    const plain = createSnapshotStore({ dir: path.join(tmp.dir, 'snaps-a'), drawLabel: false, keep: 10, maxAgeMs: 86_400_000, quality: 90, logger: createMemoryLogger() });
    const id = uuidv7();
    expect(await plain.save('door', id, frame, 'cat 93%')).toBe(`door/${id}.jpg`);
    expect((await plain.read(`door/${id}.jpg`))!.equals(frame)).toBe(true);
    const file = await store.save('door', uuidv7(), frame, 'cat 93% · night', { left: 80, top: 40, width: 60, height: 60 });
    const { data, info } = await sharp((await store.read(file))!).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([160, 120]);
    const px = (x: number, y: number) => data[(y * info.width + x) * 3]!;
    expect(px(150, 3)).toBeLessThan(140); // the dark caption bar
    expect(px(150, 60)).toBeGreaterThan(240); // untouched frame
    expect(data[(60 * info.width + 81) * 3 + 2]!).toBeLessThan(100); // the yellow ROI outline (little blue)
    await expect(store.read('../../etc/passwd')).rejects.toThrow(/leaves the snapshots folder/);
  });

  it('keeps the newest per camera and nothing too old, but never a snapshot an undelivered event needs', async () => {
    const store = createSnapshotStore({ dir: path.join(tmp.dir, 'snaps-b'), drawLabel: false, keep: 2, maxAgeMs: 60_000, quality: 90, logger: createMemoryLogger() });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(uuidv7(Date.now() + i));
      await store.save('door', ids[i]!, frame);
    }
    const old = uuidv7(Date.now() - 1000);
    await store.save('yard', old, frame);
    const t = new Date(Date.now() - 120_000);
    await fs.utimes(path.join(tmp.dir, 'snaps-b', 'yard', `${old}.jpg`), t, t);
    const removed = await store.sweep(new Set([ids[0]!]));
    expect(removed).toBe(3);
    expect((await fs.readdir(path.join(tmp.dir, 'snaps-b', 'door'))).sort()).toEqual([ids[0], ids[3], ids[4]].map((x) => `${x}.jpg`).sort());
    expect(await fs.readdir(path.join(tmp.dir, 'snaps-b', 'yard'))).toEqual([]);
  });
});

describe('event ids', () => {
  it('are UUIDv7 (RFC 9562): version 7, variant 10, the creation time in front, strictly increasing', () => {
    const t0 = Date.now();
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    for (const id of ids.slice(0, 50)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids).toEqual([...ids].sort()); // many share a millisecond: the counter keeps them in order
    expect(new Set(ids).size).toBe(ids.length);
    const ms = parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16);
    expect(Math.abs(ms - t0)).toBeLessThan(5000);
  });
});

describe('events log', () => {
  it('appends one JSON line per event and rotates by size, keeping the newest files', async () => {
    const dir = path.join(tmp.dir, 'log');
    await fs.mkdir(dir);
    const log = createEventLog(dir, { maxBytes: 600, keep: 2 });
    const events: WatchEvent[] = Array.from({ length: 12 }, (_, i) => ({ id: uuidv7(), type: 'detection', time: new Date().toISOString(), camera: 'door', severity: 'info', message: `event number ${i}` }));
    for (const e of events) await log.append(e);
    const files = (await fs.readdir(dir)).sort();
    expect(files).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    const read = async (f: string) => (await fs.readFile(path.join(dir, f), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as WatchEvent).message);
    const kept = [...(await read('events.jsonl.2')), ...(await read('events.jsonl.1')), ...(await read('events.jsonl'))];
    expect(kept).toEqual(events.slice(events.length - kept.length).map((e) => e.message)); // the newest, in order
    for (const f of files) expect((await fs.stat(path.join(dir, f))).size).toBeLessThanOrEqual(600);
  });
});

describe('state directory and ffmpeg', () => {
  it('lets one watcher use a state directory at a time, and takes over the lock a crashed one left', async () => {
    const dir = path.join(tmp.dir, 'state');
    const release = await lockStateDir(dir);
    const err = await lockStateDir(dir, undefined, { waitMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('WATCH_LOCKED');
    expect((err as MlctlError).message).toBe(`state directory ${dir} is in use by another mlctl watch (its lock ${path.join(dir, 'watch.lock')} is held); give each watcher its own --state-dir`);
    await release();
    await expect(fs.stat(path.join(dir, 'watch.lock'))).rejects.toThrow();
    // A crashed watcher's lock is no longer refreshed: once stale it is taken over.
    await fs.mkdir(path.join(dir, 'watch.lock'));
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(path.join(dir, 'watch.lock'), old, old);
    const again = await lockStateDir(dir, undefined, { waitMs: 2000 });
    await again();
  });

  it('says which package to install when a camera needs ffmpeg and there is none', () => {
    const before = process.env.MLCTL_FFMPEG;
    process.env.MLCTL_FFMPEG = path.join(tmp.dir, 'no-ffmpeg-here');
    try {
      expect(() => checkFfmpeg('yard')).toThrow(/camera yard needs ffmpeg .* but ".*no-ffmpeg-here" was not found; install the Debian\/Ubuntu package ffmpeg \(apt-get install ffmpeg\)/);
    } finally {
      if (before === undefined) delete process.env.MLCTL_FFMPEG;
      else process.env.MLCTL_FFMPEG = before;
    }
  });
});

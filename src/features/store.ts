// The on-disk feature store of one backbone identity: rows of float32 features keyed by the sha256 of the image file
// they came from, in shard files. Any number of writers (runs, Kubernetes pods on a shared volume) append shards of
// their own; a shard becomes visible only when its index is written, so a killed writer never leaves a short row.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { FeatureRows } from './rows.js';
import { processAlive } from '../util/process.js';

export const STORE_VERSION = 1;
/** Target shard size: big enough that a store of 100,000 images is a few hundred files, small enough to finish often. */
const SHARD_BYTES = 64 * 1024 * 1024;
const SHARD_DIR = 'shards';
/** Shards of a writer on another host cannot be checked for liveness: unindexed ones older than this are debris. */
const STALE_MS = 24 * 3600_000;

interface StoreInfo {
  version: number;
  dim: number;
  meta?: Record<string, unknown>;
}

/** Where one row lives. */
interface Location {
  shard: number;
  row: number;
}

export interface StoreReader {
  /** Rows in the store. */
  readonly size: number;
  has(sha: string): boolean;
  /** The rows of these entries, in this order (each must be present: check has() first). */
  rows(entries: ReadonlyArray<{ sha: string; label: number; path: string }>): FeatureRows;
  close(): Promise<void>;
}

export interface StoreWriter {
  /** Queue one row; it becomes readable once its shard is indexed (every SHARD_BYTES, and on close). */
  append(sha: string, row: Float32Array): Promise<void>;
  /** Index the last shard. Rows appended before a crash without close are simply not there. */
  close(): Promise<void>;
  /** Rows indexed so far. */
  readonly written: number;
}

export interface FeatureStore {
  readonly dir: string;
  readonly dim: number;
  reader(): Promise<StoreReader>;
  writer(): Promise<StoreWriter>;
}

const writerId = () => `${os.hostname().replace(/[^A-Za-z0-9.-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Remove shard files no index will ever name: their writer died (same host: its pid is gone) or is long stale. */
async function sweepOrphans(shards: string): Promise<void> {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const names = await fs.readdir(shards).catch(() => [] as string[]);
  const indexed = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  for (const n of names) {
    if (!n.endsWith('.f32') || indexed.has(n.slice(0, -4))) continue;
    const m = /^(.*)-(\d+)-[0-9a-f]{8}-\d+\.f32$/.exec(n);
    const st = await fs.stat(path.join(shards, n)).catch(() => undefined);
    if (!st) continue;
    const dead = m && m[1] === host ? !processAlive(Number(m[2])) : Date.now() - st.mtimeMs > STALE_MS;
    if (dead) await fs.rm(path.join(shards, n), { force: true });
  }
}

/** Open (creating if needed) the store in `dir` for rows of `dim` values. A store of another width is an error. */
export async function openFeatureStore(dir: string, dim: number, meta?: Record<string, unknown>): Promise<FeatureStore> {
  const shards = path.join(dir, SHARD_DIR);
  await fs.mkdir(shards, { recursive: true });
  const infoFile = path.join(dir, 'store.json');
  const existing = await fs.readFile(infoFile, 'utf8').then((t) => JSON.parse(t) as StoreInfo, () => undefined);
  if (!existing) await writeJsonAtomic(infoFile, { version: STORE_VERSION, dim, ...(meta ? { meta } : {}) } satisfies StoreInfo);
  else if (existing.version !== STORE_VERSION || existing.dim !== dim) {
    throw new MlctlError('FEATURE_STORE_INVALID', [dir, `it holds version ${existing.version} rows of ${existing.dim} values; this run needs version ${STORE_VERSION} rows of ${dim} (remove the folder or run mlctl cache prune)`]);
  }
  await sweepOrphans(shards);
  const rowBytes = dim * 4;
  return {
    dir,
    dim,
    reader: () => openReader(shards, dim),
    async writer() {
      const id = writerId();
      const rowsPerShard = Math.max(1, Math.floor(SHARD_BYTES / rowBytes));
      let seq = 0;
      let fh: FileHandle | undefined;
      let shas: string[] = [];
      let written = 0;
      const base = () => path.join(shards, `${id}-${seq}`);
      const finish = async () => {
        if (!fh) return;
        await fh.sync();
        await fh.close();
        fh = undefined;
        // The index is the commit point: written atomically, after the rows are on disk.
        await writeJsonAtomic(`${base()}.json`, { version: STORE_VERSION, dim, rows: shas });
        written += shas.length;
        shas = [];
        seq++;
      };
      return {
        get written() {
          return written;
        },
        async append(sha, row) {
          if (row.length !== dim) throw new Error(`feature store ${dir}: a row of ${row.length} values, expected ${dim}`);
          fh ??= await fs.open(`${base()}.f32`, 'w');
          await fh.write(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), 0, rowBytes, shas.length * rowBytes);
          shas.push(sha);
          if (shas.length >= rowsPerShard) await finish();
        },
        close: finish,
      };
    },
  };
}

async function openReader(shards: string, dim: number): Promise<StoreReader> {
  const files: string[] = [];
  const where = new Map<string, Location>();
  const names = (await fs.readdir(shards).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  for (const n of names) {
    const idx = await fs.readFile(path.join(shards, n), 'utf8').then((t) => JSON.parse(t) as { dim: number; rows: string[] }, () => undefined);
    if (!idx || idx.dim !== dim || !Array.isArray(idx.rows)) continue;
    const shard = files.push(path.join(shards, n.replace(/\.json$/, '.f32'))) - 1;
    idx.rows.forEach((sha, row) => {
      if (!where.has(sha)) where.set(sha, { shard, row });
    });
  }
  // A few shard files stay open while rows are read; more are reopened as needed.
  const open = new Map<number, Promise<FileHandle>>();
  const handle = (shard: number): Promise<FileHandle> => {
    let h = open.get(shard);
    if (!h) {
      if (open.size >= 32) {
        const [oldest, p] = open.entries().next().value!;
        open.delete(oldest);
        void p.then((f) => f.close()).catch(() => {});
      }
      h = fs.open(files[shard]!, 'r');
      open.set(shard, h);
    } else {
      open.delete(shard);
      open.set(shard, h); // most recently used last
    }
    return h;
  };
  const rowBytes = dim * 4;
  return {
    size: where.size,
    has: (sha) => where.has(sha),
    rows(entries) {
      const locs = entries.map((e) => {
        const l = where.get(e.sha);
        if (!l) throw new Error(`feature store: no row for ${e.path}`);
        return l;
      });
      return {
        count: entries.length,
        dim,
        labels: Int32Array.from(entries, (e) => e.label),
        paths: entries.map((e) => e.path),
        async read(order, from, to, out) {
          const bytes = new Uint8Array(out.buffer, out.byteOffset, (to - from) * rowBytes);
          await Promise.all(
            Array.from({ length: to - from }, async (_, i) => {
              const l = locs[order[from + i]!]!;
              const fh = await handle(l.shard);
              const { bytesRead } = await fh.read(bytes, i * rowBytes, rowBytes, l.row * rowBytes);
              if (bytesRead !== rowBytes) throw new MlctlError('FEATURE_STORE_INVALID', [path.dirname(shards), `${files[l.shard]} is shorter than its index says (remove the folder or run mlctl cache prune)`]);
            }),
          );
          return out.subarray(0, (to - from) * dim);
        },
      };
    },
    async close() {
      const all = [...open.values()];
      open.clear();
      await Promise.all(all.map((p) => p.then((f) => f.close()).catch(() => {})));
    },
  };
}

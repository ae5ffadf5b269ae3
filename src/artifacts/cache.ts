// mlctl's one cache (downloaded weights, converted ONNX models, backbone feature stores): one root, one entry
// record per item with the sha256 of the bytes that will run — authenticated (HMAC) with a key kept outside the
// cache, so whoever can write the cache cannot rewrite both — and last-use times for LRU eviction under a size cap.
// A cache that cannot be written (read-only root filesystem in a pod) is reported once and callers carry on without it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { parseSize } from '../util/units.js';
import { writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { sha256 } from './hash.js';

/** mlctl's cache root: $MLCTL_CACHE, else $XDG_CACHE_HOME/mlctl, else ~/.cache/mlctl. */
export function cacheRoot(): string {
  if (process.env.MLCTL_CACHE) return path.resolve(process.env.MLCTL_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mlctl');
}

/**
 * The cache key (authenticates cache entries): $MLCTL_CACHE_KEY_FILE, else $XDG_CONFIG_HOME/mlctl/cache.key, else
 * ~/.config/mlctl/cache.key — outside the cache, so writing the cache is not enough to forge an entry.
 */
export function cacheKeyFile(): string {
  if (process.env.MLCTL_CACHE_KEY_FILE) return path.resolve(process.env.MLCTL_CACHE_KEY_FILE);
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'mlctl', 'cache.key');
}

const isInside = (dir: string, p: string) => {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/**
 * Why a key file cannot be trusted, or undefined: it must be a regular file of at least 32 bytes, owned by this
 * user (or root: a mounted secret), writable by nobody else and unreadable by others (a group may read it, as
 * Kubernetes fsGroup mounts give). POSIX only; elsewhere the file's location is all that is checked.
 */
function keyFileProblem(st: import('node:fs').Stats): string | undefined {
  if (!st.isFile()) return 'it is not a regular file';
  if (st.size < 32) return 'it holds fewer than 32 bytes';
  if (typeof process.getuid === 'function' && process.platform !== 'win32') {
    if (st.uid !== process.getuid() && st.uid !== 0) return `it is owned by uid ${st.uid}, not by this user`;
    if (st.mode & 0o022) return 'others may write it (chmod 600 it)';
    if (st.mode & 0o004) return 'everyone may read it (chmod 600 it)';
  }
  return undefined;
}

const keys = new Map<string, Promise<Buffer | string>>();

/** The cache key at `file` (created on first use: 32 random bytes, hex, mode 0600), or why there is none. */
async function readOrCreateKey(file: string, root: string): Promise<Buffer | string> {
  const real = async (p: string) => fs.realpath(p).catch(() => p);
  if (isInside(root, file) || isInside(await real(root), await real(path.dirname(file)))) return `${file} is inside the cache (${root}): whoever writes the cache could replace it`;
  let st = await fs.lstat(file).catch(() => undefined);
  if (!st) {
    try {
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await fs.writeFile(file, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
    } catch (err) {
      // Another process may have created it meanwhile: read that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return `${file} cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
    st = await fs.lstat(file).catch(() => undefined);
    if (!st) return `${file} cannot be read`;
  }
  const problem = keyFileProblem(st);
  if (problem) return `${file} is not used: ${problem}`;
  const bytes = await fs.readFile(file).catch(() => undefined);
  return bytes ?? `${file} cannot be read`;
}

export const DEFAULT_CACHE_MAX_BYTES = 20 * 1024 ** 3;

/** The size cap: MLCTL_CACHE_MAX_SIZE (e.g. "5gb"), else 20 GiB. */
export function cacheMaxBytes(): number {
  const env = process.env.MLCTL_CACHE_MAX_SIZE;
  return env ? parseSize(env, 'MLCTL_CACHE_MAX_SIZE') : DEFAULT_CACHE_MAX_BYTES;
}

/** What lives in the cache, one folder each. */
export type CacheKind = 'models' | 'onnx' | 'features';
export const CACHE_KINDS: readonly CacheKind[] = ['models', 'onnx', 'features'];

/** The record kept beside every entry (<root>/<kind>/<name>.entry.json); its mtime is the entry's last use. */
export interface EntryRecord {
  /** sha256 of a file entry's bytes at the time it was written (what a reader checks before using them). */
  sha256?: string;
  /** HMAC-SHA256 under the cache key of the entry's kind/name and sha256: only holders of the key can write one. */
  hmac?: string;
  createdAt: string;
  /** Free-form description: what made it, from what (converter version, source model, backbone …). */
  meta?: Record<string, unknown>;
}

export interface CacheEntry extends EntryRecord {
  kind: CacheKind;
  name: string;
  path: string;
  bytes: number;
  lastUsed: Date;
  directory: boolean;
}

/**
 * A file entry read back. A hit's bytes hash to the recorded sha256; `authenticated` says the record also carries a
 * valid code under the cache key (false when there is no usable key, or the entry was written without one).
 */
export type VerifiedRead = { status: 'hit'; bytes: Uint8Array; record: EntryRecord; authenticated: boolean } | { status: 'miss' } | { status: 'mismatch'; reason: string };

export interface Cache {
  readonly root: string;
  readonly maxBytes: number;
  /** Path of an entry (file or directory). */
  pathOf(kind: CacheKind, name: string): string;
  /** True when the cache can be written; false after the first refusal (read-only filesystem, permissions). */
  writable(): Promise<boolean>;
  /** Why entries cannot be authenticated (no usable cache key at cacheKeyFile()), or undefined when they can. */
  keyProblem(): Promise<string | undefined>;
  /** A file entry's bytes, only when they hash to the sha256 its record holds (a mismatch is never returned). */
  readVerified(kind: CacheKind, name: string): Promise<VerifiedRead>;
  /** Write a file entry atomically with its record, then evict LRU entries over the cap. False when unwritable. */
  putFile(kind: CacheKind, name: string, bytes: Uint8Array, meta?: Record<string, unknown>): Promise<boolean>;
  /** Create or refresh the record of an entry written in place (a download, a feature store) and evict over the cap. */
  recordEntry(kind: CacheKind, name: string, meta?: Record<string, unknown>): Promise<void>;
  /** Mark an entry used now (LRU). */
  touch(kind: CacheKind, name: string): Promise<void>;
  remove(kind: CacheKind, name: string): Promise<void>;
  list(): Promise<CacheEntry[]>;
  /** Evict least-recently-used entries until the cache fits `maxBytes`; `keep` names entries never to evict. */
  evict(maxBytes?: number, keep?: ReadonlyArray<{ kind: CacheKind; name: string }>): Promise<CacheEntry[]>;
}

export interface CacheOptions {
  root?: string;
  maxBytes?: number;
  logger?: Logger;
  /** The cache key file (default cacheKeyFile()). */
  keyFile?: string;
}

const RECORD_SUFFIX = '.entry.json';

async function sizeOf(p: string): Promise<{ bytes: number; directory: boolean } | undefined> {
  const st = await fs.stat(p).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isDirectory()) return { bytes: st.size, directory: false };
  let bytes = 0;
  for (const e of await fs.readdir(p, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) bytes += (await fs.stat(path.join(e.parentPath, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return { bytes, directory: true };
}

const isRefusal = (err: unknown) => ['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException)?.code ?? '');

export function openCache(opts: CacheOptions = {}): Cache {
  const root = path.resolve(opts.root ?? cacheRoot());
  const maxBytes = opts.maxBytes ?? cacheMaxBytes();
  let canWrite: boolean | undefined;
  let warned = false;
  const pathOf = (kind: CacheKind, name: string) => path.join(root, kind, name);
  const keyFile = path.resolve(opts.keyFile ?? cacheKeyFile());
  /** The cache key (loaded once per process, file and root), or why there is none. */
  const loadKey = (): Promise<Buffer | string> => {
    const id = `${keyFile}\0${root}`;
    if (!keys.has(id)) keys.set(id, readOrCreateKey(keyFile, root));
    return keys.get(id)!;
  };
  const key = async (): Promise<Buffer | undefined> => {
    const k = await loadKey();
    return typeof k === 'string' ? undefined : k;
  };
  const codeOf = (k: Buffer, kind: CacheKind, name: string, sha: string) => createHmac('sha256', k).update(`mlctl-cache-v1\n${kind}/${name}\n${sha}`).digest('hex');
  const recordOf = (kind: CacheKind, name: string) => pathOf(kind, name) + RECORD_SUFFIX;

  const refuse = (err: unknown) => {
    canWrite = false;
    if (!warned) {
      warned = true;
      opts.logger?.warn(`the mlctl cache at ${root} cannot be written (${(err as Error).message.split('\n')[0]}); working without it (set MLCTL_CACHE to a writable folder, e.g. an emptyDir volume)`);
    }
  };

  async function writable(): Promise<boolean> {
    if (canWrite !== undefined) return canWrite;
    try {
      await fs.mkdir(root, { recursive: true });
      const probe = path.join(root, `.probe-${process.pid}`);
      await fs.writeFile(probe, '');
      await fs.rm(probe, { force: true });
      canWrite = true;
    } catch (err) {
      refuse(err);
    }
    return canWrite!;
  }

  async function readRecord(kind: CacheKind, name: string): Promise<EntryRecord | undefined> {
    const text = await fs.readFile(recordOf(kind, name), 'utf8').catch(() => undefined);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as EntryRecord;
    } catch {
      return undefined;
    }
  }

  async function touch(kind: CacheKind, name: string): Promise<void> {
    const now = new Date();
    await fs.utimes(recordOf(kind, name), now, now).catch(() => {});
  }

  async function remove(kind: CacheKind, name: string): Promise<void> {
    await fs.rm(recordOf(kind, name), { force: true });
    await fs.rm(pathOf(kind, name), { recursive: true, force: true });
  }

  async function list(): Promise<CacheEntry[]> {
    const out: CacheEntry[] = [];
    for (const kind of CACHE_KINDS) {
      const names = await fs.readdir(path.join(root, kind)).catch(() => [] as string[]);
      for (const f of names) {
        if (!f.endsWith(RECORD_SUFFIX)) continue;
        const name = f.slice(0, -RECORD_SUFFIX.length);
        const record = await readRecord(kind, name);
        const st = await fs.stat(recordOf(kind, name)).catch(() => undefined);
        const size = await sizeOf(pathOf(kind, name));
        if (!record || !st || !size) continue;
        out.push({ ...record, kind, name, path: pathOf(kind, name), bytes: size.bytes, directory: size.directory, lastUsed: st.mtime });
      }
    }
    return out.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
  }

  async function evict(limit = maxBytes, keep: ReadonlyArray<{ kind: CacheKind; name: string }> = []): Promise<CacheEntry[]> {
    const entries = await list();
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const removed: CacheEntry[] = [];
    for (const e of entries) {
      if (total <= limit) break;
      if (keep.some((k) => k.kind === e.kind && k.name === e.name)) continue;
      await remove(e.kind, e.name);
      total -= e.bytes;
      removed.push(e);
    }
    if (removed.length) opts.logger?.info(`cache over ${limit} bytes: evicted ${removed.length} least recently used entr${removed.length === 1 ? 'y' : 'ies'} (${removed.map((e) => `${e.kind}/${e.name}`).join(', ')})`);
    return removed;
  }

  return {
    root,
    maxBytes,
    pathOf,
    writable,
    async keyProblem() {
      const k = await loadKey();
      return typeof k === 'string' ? `the cache key ${k}` : undefined;
    },
    async readVerified(kind, name) {
      const record = await readRecord(kind, name);
      const bytes = await fs.readFile(pathOf(kind, name)).catch(() => undefined);
      if (!bytes) return { status: 'miss' };
      if (!record?.sha256) return { status: 'mismatch', reason: `${pathOf(kind, name)} has no recorded sha256` };
      const actual = sha256(bytes);
      if (actual !== record.sha256) return { status: 'mismatch', reason: `${pathOf(kind, name)} has sha256 ${actual.slice(0, 12)}…, the cache recorded ${record.sha256.slice(0, 12)}…` };
      const k = await key();
      let authenticated = false;
      if (k && record.hmac !== undefined) {
        const want = Buffer.from(codeOf(k, kind, name, actual), 'hex');
        const got = Buffer.from(String(record.hmac), 'hex');
        if (got.length !== want.length || !timingSafeEqual(got, want)) return { status: 'mismatch', reason: `${pathOf(kind, name)} does not authenticate with the cache key (written without it, or altered)` };
        authenticated = true;
      }
      await touch(kind, name);
      return { status: 'hit', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), record, authenticated };
    },
    async putFile(kind, name, bytes, meta) {
      if (!(await writable())) return false;
      try {
        const sha = sha256(bytes);
        const k = await key();
        // The record goes last: a crash in between leaves bytes without a record, which readers treat as a mismatch.
        await fs.rm(recordOf(kind, name), { force: true });
        await writeFileAtomic(pathOf(kind, name), bytes);
        await writeJsonAtomic(recordOf(kind, name), { sha256: sha, ...(k ? { hmac: codeOf(k, kind, name, sha) } : {}), createdAt: new Date().toISOString(), ...(meta ? { meta } : {}) } satisfies EntryRecord);
      } catch (err) {
        if (!isRefusal(err)) throw err;
        refuse(err);
        await fs.rm(pathOf(kind, name), { force: true }).catch(() => {});
        return false;
      }
      await evict(maxBytes, [{ kind, name }]);
      return true;
    },
    async recordEntry(kind, name, meta) {
      if (!(await writable())) return;
      const existing = await readRecord(kind, name);
      try {
        await writeJsonAtomic(recordOf(kind, name), { createdAt: existing?.createdAt ?? new Date().toISOString(), ...(meta ?? existing?.meta ? { meta: { ...existing?.meta, ...meta } } : {}) } satisfies EntryRecord);
      } catch (err) {
        if (!isRefusal(err)) throw err;
        refuse(err);
        return;
      }
      await evict(maxBytes, [{ kind, name }]);
    },
    touch,
    remove,
    list,
    evict,
  };
}

// The one size definition of a package, used by quantize's report, evaluate, `models ls|show|diff`: the files of the
// format serving loads (classic, else the package's ONNX model, else TF.js — openEngine's `auto` order), raw and gzip -9,
// plus every file on disk. A package can carry more than it serves (int8 keeps its float TF.js model beside model.onnx).
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { writeFileAtomic } from './atomic.js';
import type { Manifest } from './manifest.js';
import type { LoadedPackage } from './package.js';
import { cacheRoot } from './cache.js';

export interface FormatSize {
  files: string[];
  rawBytes: number;
  /** Only computed for the headline format (gzip -9 of a large model takes seconds); null for the others. */
  gzipBytes: number | null;
}

export interface ModelSize {
  /** The format whose files make up the headline figures (the one the engine ran). */
  format: string;
  rawBytes: number;
  gzipBytes: number;
  byFormat: Record<string, FormatSize>;
}

/**
 * gzip -9 size of a package file, cached under $MLCTL_CACHE/gzip-size/<sha256>: package files are immutable and
 * hash-verified, and compressing a VGG16 (~60 MB) costs 10-15 s on a busy machine every time otherwise.
 */
async function cachedGzipSize(file: string, sha256: string): Promise<number> {
  const cacheFile = path.join(cacheRoot(), 'gzip-size', sha256);
  const cached = Number((await fs.readFile(cacheFile, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(cached) && cached > 0) return cached;
  const bytes = await gzipSize(file);
  // A cache that cannot be written only costs time.
  await writeFileAtomic(cacheFile, `${bytes}\n`).catch(() => undefined);
  return bytes;
}

async function gzipSize(file: string): Promise<number> {
  let bytes = 0;
  const counter = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  await pipeline(createReadStream(file), createGzip({ level: 9 }), counter);
  return bytes;
}

/** Formats in the order serving picks them (engines/index.ts: classic, then ONNX Runtime on model.onnx, then TF.js). */
const SERVED_ORDER = ['classic', 'onnx', 'tfjs'] as const;

/** The format `mlctl serve` (and evaluate's default engine) loads from this package. */
export function servedFormat(m: Pick<Manifest, 'formats'>): string | undefined {
  return SERVED_ORDER.find((f) => m.formats[f]) ?? Object.keys(m.formats).find((f) => m.formats[f]);
}

/** The manifest files that belong to one format: TF.js = model.json + its weight shards; others = the file and its sidecars. */
async function filesOf(dir: string, manifest: Manifest, format: string, rel: string): Promise<string[]> {
  const listed = Object.keys(manifest.files);
  if (format === 'tfjs') {
    const base = path.posix.dirname(rel);
    try {
      const json = JSON.parse(await fs.readFile(path.join(dir, rel), 'utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
      const shards = (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => path.posix.join(base, p)));
      return [rel, ...shards].filter((f) => listed.includes(f));
    } catch {
      // An encrypted model.json cannot be read: its shards are the .bin files beside it.
      return listed.filter((f) => f === rel || (path.posix.dirname(f) === base && f.endsWith('.bin')));
    }
  }
  // e.g. model.onnx plus model.onnx.data (external weights).
  return listed.filter((f) => f === rel || f.startsWith(`${rel}.`) || f.startsWith(`${rel}_`));
}

export async function modelSize(pkg: LoadedPackage, format?: string): Promise<ModelSize> {
  const byFormat: Record<string, FormatSize> = {};
  for (const [fmt, rel] of Object.entries(pkg.manifest.formats)) {
    if (!rel) continue;
    const files = await filesOf(pkg.dir, pkg.manifest, fmt, rel);
    byFormat[fmt] = { files, rawBytes: files.reduce((a, f) => a + pkg.manifest.files[f]!.bytes, 0), gzipBytes: null };
  }
  const chosen = format && byFormat[format] ? format : (servedFormat(pkg.manifest) ?? 'none');
  const head = byFormat[chosen];
  if (!head) return { format: chosen, rawBytes: 0, gzipBytes: 0, byFormat };
  let gzipBytes = 0;
  for (const f of head.files) gzipBytes += await cachedGzipSize(path.join(pkg.dir, f), pkg.manifest.files[f]!.sha256);
  head.gzipBytes = gzipBytes;
  return { format: chosen, rawBytes: head.rawBytes, gzipBytes, byFormat };
}

/** Every file of the package on disk (the manifest's files table; mlctl.json itself aside). */
export const totalBytes = (m: Pick<Manifest, 'files'>) => Object.values(m.files).reduce((a, f) => a + f.bytes, 0);

export interface PackageSize {
  /** What serving loads: the served format's files. */
  served: { format: string; files: string[]; bytes: number };
  /** Everything the package holds on disk. */
  total: number;
}

/** The package's size by the one definition (no gzip: cheap enough for listings of every version). */
export async function packageSize(dir: string, m: Manifest): Promise<PackageSize> {
  const format = servedFormat(m);
  const rel = format ? m.formats[format] : undefined;
  const files = format && rel ? await filesOf(dir, m, format, rel) : [];
  return { served: { format: format ?? 'none', files, bytes: files.reduce((a, f) => a + m.files[f]!.bytes, 0) }, total: totalBytes(m) };
}

// Model size on disk per format, from the files the manifest lists: raw bytes and gzip -9 bytes (as optimize reports them
// so the figures match) — what a deploy bundle or a CDN transfer actually costs.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { LoadedPackage } from '../artifacts/package.js';

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

/** The manifest files that belong to one format: TF.js = model.json + its weight shards; others = the file and its sidecars. */
async function filesOf(pkg: LoadedPackage, format: string, rel: string): Promise<string[]> {
  const listed = Object.keys(pkg.manifest.files);
  if (format === 'tfjs') {
    const dir = path.posix.dirname(rel);
    try {
      const json = JSON.parse(await fs.readFile(path.join(pkg.dir, rel), 'utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
      const shards = (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => path.posix.join(dir, p)));
      return [rel, ...shards].filter((f) => listed.includes(f));
    } catch {
      return listed.includes(rel) ? [rel] : [];
    }
  }
  // e.g. model.onnx plus model.onnx.data (external weights).
  return listed.filter((f) => f === rel || f.startsWith(`${rel}.`) || f.startsWith(`${rel}_`));
}

export async function modelSize(pkg: LoadedPackage, format?: string): Promise<ModelSize> {
  const byFormat: Record<string, FormatSize> = {};
  for (const [fmt, rel] of Object.entries(pkg.manifest.formats)) {
    if (!rel) continue;
    const files = await filesOf(pkg, fmt, rel);
    byFormat[fmt] = { files, rawBytes: files.reduce((a, f) => a + pkg.manifest.files[f]!.bytes, 0), gzipBytes: null };
  }
  const chosen = format && byFormat[format] ? format : byFormat.tfjs ? 'tfjs' : (Object.keys(byFormat)[0] ?? 'none');
  const head = byFormat[chosen];
  if (!head) return { format: chosen, rawBytes: 0, gzipBytes: 0, byFormat };
  let gzipBytes = 0;
  for (const f of head.files) gzipBytes += await gzipSize(path.join(pkg.dir, f));
  head.gzipBytes = gzipBytes;
  return { format: chosen, rawBytes: head.rawBytes, gzipBytes, byFormat };
}

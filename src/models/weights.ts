// Where the VGG16 base's weights come from: `--weights imagenet` (Keras's published no-top file, downloaded once
// into the mlctl cache with a progress bar and verified by its published MD5), `--weights PATH` or `--weights none`.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256File } from '../artifacts/hash.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';

/** Keras's WEIGHTS_PATH_NO_TOP for VGG16 and the file_hash keras.utils.get_file checks. */
export const VGG16_NOTOP_WEIGHTS = {
  fileName: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  md5: '6d6bbae143d832006294945121d1f1fc',
  bytes: 58_889_256,
} as const;

/** mlctl's cache root: $MLCTL_CACHE, else $XDG_CACHE_HOME/mlctl, else ~/.cache/mlctl. */
export function cacheRoot(): string {
  if (process.env.MLCTL_CACHE) return path.resolve(process.env.MLCTL_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mlctl');
}

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface DownloadOptions {
  url: string;
  md5: string;
  fileName: string;
  /** Folder the file is cached in (default: <cacheRoot>/models). */
  cacheDir?: string;
  logger: Logger;
  /** Abort a download that receives nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface CachedFile {
  path: string;
  md5: string;
  cached: boolean;
}

/**
 * Return the cached file, downloading it first when absent or corrupt (as keras.utils.get_file does). The download
 * streams into a temporary file with a progress bar and is renamed into place only when its MD5 matches; a mismatch
 * deletes it and fails with CHECKSUM_MISMATCH.
 */
export async function cachedDownload(opts: DownloadOptions): Promise<CachedFile> {
  const dir = opts.cacheDir ?? path.join(cacheRoot(), 'models');
  const target = path.join(dir, opts.fileName);
  if (await fs.stat(target).then((s) => s.isFile(), () => false)) {
    const md5 = await md5File(target);
    if (md5 === opts.md5) return { path: target, md5, cached: true };
    opts.logger.warn(`cached ${target} has MD5 ${md5}, expected ${opts.md5}: downloading it again`);
    await fs.rm(target, { force: true });
  }
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${target}.part-${process.pid}`;
  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error('no data received for a while')), opts.idleTimeoutMs ?? 60_000);
  };
  try {
    arm();
    let res: Response;
    try {
      res = await fetch(opts.url, { signal: controller.signal });
    } catch (err) {
      throw offline(opts.url, (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message, err);
    }
    if (!res.ok || !res.body) throw offline(opts.url, `HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length')) || undefined;
    const progress = createProgress({ label: `downloading ${opts.fileName}`, total: total ? Math.round(total / 1e6) : undefined, unit: 'MB', logger: opts.logger });
    const hash = createHash('md5');
    let bytes = 0;
    let reported = 0;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      arm();
      hash.update(chunk);
      bytes += chunk.length;
      const mb = Math.floor(bytes / 1e6);
      if (mb > reported) {
        progress.tick(mb - reported);
        reported = mb;
      }
    });
    try {
      await pipeline(body, createWriteStream(tmp));
    } catch (err) {
      throw offline(opts.url, `download interrupted after ${bytes} bytes (${(err as Error).message})`, err);
    }
    progress.done(`${(bytes / 1e6).toFixed(1)} MB`);
    const md5 = hash.digest('hex');
    if (md5 !== opts.md5) throw new MlctlError('CHECKSUM_MISMATCH', [opts.url, md5, opts.md5]);
    await fs.rename(tmp, target);
    return { path: target, md5, cached: false };
  } finally {
    clearTimeout(idle);
    await fs.rm(tmp, { force: true });
  }
}

function offline(url: string, why: string, cause?: unknown): MlctlError {
  return new MlctlError(
    'WEIGHTS_UNAVAILABLE',
    [`cannot download the ImageNet weights from ${url} (${why}) and no verified copy is cached in ${path.join(cacheRoot(), 'models')}. Pass --weights PATH with a local copy of ${VGG16_NOTOP_WEIGHTS.fileName}, or --weights none to train from random initialisation`],
    { cause },
  );
}

export interface WeightsSource {
  kind: 'imagenet' | 'file' | 'none';
  /** HDF5 file to load (imagenet: the cached download). */
  path?: string;
  /** sha256 of the weights file; for `none`, a stable tag of the random initialisation. */
  sha256: string;
  md5?: string;
  /** As recorded in the manifest. */
  source: string;
}

/** Resolve --weights imagenet|none|PATH to a file (downloading into the cache for imagenet). */
export async function resolveWeights(choice: string, opts: { logger: Logger; seed: number; url?: string; md5?: string; cacheDir?: string }): Promise<WeightsSource> {
  if (choice === 'none') return { kind: 'none', sha256: `random-glorot-uniform-seed-${opts.seed}`, source: 'none (random initialisation)' };
  if (choice === 'imagenet') {
    const url = opts.url ?? process.env.MLCTL_VGG16_WEIGHTS_URL ?? VGG16_NOTOP_WEIGHTS.url;
    const md5 = opts.md5 ?? process.env.MLCTL_VGG16_WEIGHTS_MD5 ?? VGG16_NOTOP_WEIGHTS.md5;
    const file = await cachedDownload({ url, md5, fileName: VGG16_NOTOP_WEIGHTS.fileName, cacheDir: opts.cacheDir, logger: opts.logger });
    opts.logger.info(`ImageNet weights: ${file.path}${file.cached ? ' (cached)' : ''}`);
    return { kind: 'imagenet', path: file.path, md5: file.md5, sha256: await sha256File(file.path), source: `imagenet (${VGG16_NOTOP_WEIGHTS.fileName}, keras-applications)` };
  }
  const file = path.resolve(choice);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new MlctlError('WEIGHTS_INVALID', [choice, 'no such file (--weights takes imagenet, none or the path of a Keras .h5 weights file)']);
  return { kind: 'file', path: file, sha256: await sha256File(file), source: `file ${path.basename(file)}` };
}

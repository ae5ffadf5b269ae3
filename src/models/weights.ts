// Where a backbone's weights come from: `--weights imagenet` (Keras's published no-top file for that backbone,
// downloaded once into the mlctl cache with a progress bar and verified by its published MD5), `--weights PATH` or
// `--weights none`.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cacheRoot, openCache } from '../artifacts/cache.js';
import { sha256File } from '../artifacts/hash.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import type { BackboneDef, BackboneOptions } from './backbones/types.js';
import { vgg16 } from './backbones/vgg16.js';

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface DownloadOptions {
  url: string;
  /** Expected MD5; without one (the publisher gives none) the file is kept as downloaded and its MD5 recorded. */
  md5?: string;
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
    if (opts.md5 === undefined || md5 === opts.md5) {
      if (!opts.cacheDir) await openCache().touch('models', opts.fileName);
      return { path: target, md5, cached: true };
    }
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
      throw offline(opts, (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message, err);
    }
    if (!res.ok || !res.body) throw offline(opts, `HTTP ${res.status} ${res.statusText}`);
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
      throw offline(opts, `download interrupted after ${bytes} bytes (${(err as Error).message})`, err);
    }
    progress.done(`${(bytes / 1e6).toFixed(1)} MB`);
    const md5 = hash.digest('hex');
    if (opts.md5 === undefined) opts.logger.warn(`${opts.fileName}: the publisher gives no checksum for this file (as keras.applications fetches it); recorded MD5 ${md5}`);
    else if (md5 !== opts.md5) throw new MlctlError('CHECKSUM_MISMATCH', [opts.url, md5, opts.md5]);
    await fs.rename(tmp, target);
    // Listed by `mlctl cache ls` and counted against the cache's size cap like everything else in it.
    if (!opts.cacheDir) await openCache({ logger: opts.logger }).recordEntry('models', opts.fileName, { url: opts.url, md5 });
    return { path: target, md5, cached: false };
  } finally {
    clearTimeout(idle);
    await fs.rm(tmp, { force: true });
  }
}

function offline(opts: DownloadOptions, why: string, cause?: unknown): MlctlError {
  return new MlctlError(
    'WEIGHTS_UNAVAILABLE',
    [`cannot download the ImageNet weights from ${opts.url} (${why}) and no verified copy is cached in ${opts.cacheDir ?? path.join(cacheRoot(), 'models')}. Pass --weights PATH with a local copy of ${opts.fileName}, or --weights none to train from random initialisation`],
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

export interface ResolveWeightsOptions {
  logger: Logger;
  seed: number;
  /** The backbone the weights are for (default VGG16) and its options (image size, alpha). */
  backbone?: BackboneDef;
  backboneOptions?: BackboneOptions;
  /** Overrides of the published address and hash (tests, mirrors); also MLCTL_<ID>_WEIGHTS_URL / _MD5. */
  url?: string;
  md5?: string;
  cacheDir?: string;
}

/** Resolve --weights imagenet|none|PATH to a file (downloading the backbone's published file for imagenet). */
export async function resolveWeights(choice: string, opts: ResolveWeightsOptions): Promise<WeightsSource> {
  if (choice === 'none') return { kind: 'none', sha256: `random-glorot-uniform-seed-${opts.seed}`, source: 'none (random initialisation)' };
  if (choice === 'imagenet') {
    const backbone = opts.backbone ?? vgg16;
    const published = backbone.imagenetWeights(opts.backboneOptions ?? { imageSize: 224 });
    const env = backbone.id.toUpperCase();
    const url = opts.url ?? process.env[`MLCTL_${env}_WEIGHTS_URL`] ?? published.url;
    const md5 = opts.md5 ?? process.env[`MLCTL_${env}_WEIGHTS_MD5`] ?? published.md5;
    const file = await cachedDownload({ url, md5, fileName: published.fileName, cacheDir: opts.cacheDir, logger: opts.logger });
    opts.logger.info(`ImageNet weights: ${file.path}${file.cached ? ' (cached)' : ''}`);
    return { kind: 'imagenet', path: file.path, md5: file.md5, sha256: await sha256File(file.path), source: `imagenet (${published.fileName}, keras-applications)` };
  }
  const file = path.resolve(choice);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new MlctlError('WEIGHTS_INVALID', [choice, 'no such file (--weights takes imagenet, none or the path of a Keras .h5 weights file)']);
  return { kind: 'file', path: file, sha256: await sha256File(file), source: `file ${path.basename(file)}` };
}

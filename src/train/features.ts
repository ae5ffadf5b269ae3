// Backbone feature extraction with an on-disk cache: with a frozen base and no augmentation each image's base
// output is computed once, keyed by (backbone, weights hash, image size, preprocessing, file content), and reused by
// every epoch, every rerun and by optimize/classic models. Images stream through imageBatches (bounded memory).
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { sha256, sha256File } from '../artifacts/hash.js';
import { imageBatches, type SkippedFile } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';

/** Features of a set of images, row-major [count, dim]. */
export interface FeatureSet {
  x: Float32Array;
  labels: Int32Array;
  count: number;
  dim: number;
  /** Image paths, in row order (unreadable images are left out). */
  paths: string[];
}

export interface FeatureCacheKey {
  backbone: string;
  weightsSha256: string;
  imageSize: number;
  preprocessing: ImageInputSpec['preprocessing'];
  /** Output shape of the base, e.g. [7, 7, 512]. */
  featureShape: number[];
}

/** Folder holding the cached features for one key. */
export function featureCacheDir(root: string, key: FeatureCacheKey): string {
  const id = sha256(JSON.stringify({ v: 1, ...key })).slice(0, 24);
  return path.join(root, 'features', `${key.backbone}-${key.imageSize}-${id}`);
}

function entryPath(dir: string, contentSha: string): string {
  return path.join(dir, contentSha.slice(0, 2), `${contentSha}.f32`);
}

/** Rename-into-place write without fsync: a crashed write leaves only a stray temp file, never a short entry. */
async function writeEntry(file: string, data: Float32Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  await fs.writeFile(tmp, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  await fs.rename(tmp, file);
}

async function readEntry(file: string, dim: number): Promise<Float32Array | undefined> {
  const buf = await fs.readFile(file).catch(() => undefined);
  if (!buf || buf.byteLength !== dim * 4) return undefined;
  const out = new Float32Array(dim);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export interface ExtractOptions {
  engine: InferenceEngine;
  spec: ImageInputSpec;
  key: FeatureCacheKey;
  /** Cache root (features go under <cacheRoot>/features/…); undefined disables the cache. */
  cacheRoot?: string;
  batchSize?: number;
  logger: Logger;
  label?: string;
  onSkip?: (skip: SkippedFile) => void;
  /** Checked between batches: when it returns true, extraction stops with what is cached so far. */
  shouldStop?: () => boolean;
}

export interface ExtractStats {
  images: number;
  cached: number;
  computed: number;
  skipped: number;
  seconds: number;
  /** Images per second over the computed (uncached) images, decode included. */
  imagesPerSecond: number;
}

/**
 * Base features for `samples`: cache hits are read from disk, the rest are decoded in streamed batches, run through
 * the engine and written to the cache. Returns the features in sample order (skipped images omitted).
 */
export async function extractFeatures(samples: readonly Sample[], opts: ExtractOptions): Promise<{ features: FeatureSet; stats: ExtractStats }> {
  const start = performance.now();
  const dim = opts.key.featureShape.reduce((a, b) => a * b, 1);
  const dir = opts.cacheRoot ? featureCacheDir(opts.cacheRoot, opts.key) : undefined;
  const rows = new Map<string, Float32Array>();
  const shaOf = new Map<string, string>();
  const missing: Sample[] = [];
  let skipped = 0;
  for (const s of samples) {
    if (dir) {
      const sha = await sha256File(s.path).catch(() => undefined);
      if (sha) {
        shaOf.set(s.path, sha);
        const hit = await readEntry(entryPath(dir, sha), dim);
        if (hit) {
          rows.set(s.path, hit);
          continue;
        }
      }
    }
    missing.push(s);
  }
  const cached = rows.size;
  let computed = 0;
  let cacheWritable = true;
  const computeStart = performance.now();
  if (missing.length > 0) {
    const progress = createProgress({ label: opts.label ?? 'extracting features', total: missing.length, unit: 'img', logger: opts.logger });
    for await (const batch of imageBatches(missing, {
      spec: opts.spec,
      batchSize: opts.batchSize ?? 16,
      onSkip: (skip) => {
        skipped++;
        opts.onSkip?.(skip);
      },
    })) {
      const out = await opts.engine.run(batch.x, batch.count);
      for (let i = 0; i < batch.count; i++) {
        const row = out.slice(i * dim, (i + 1) * dim);
        const p = batch.paths[i]!;
        rows.set(p, row);
        const sha = shaOf.get(p);
        if (dir && sha && cacheWritable) {
          // A full disk or read-only cache must not stop training: warn once and carry on without caching.
          await writeEntry(entryPath(dir, sha), row).catch((err: Error) => {
            cacheWritable = false;
            opts.logger.warn(`feature cache disabled for this run: cannot write ${dir} (${err.message.split('\n')[0]})`);
          });
        }
      }
      computed += batch.count;
      progress.tick(batch.count);
      if (opts.shouldStop?.()) break;
    }
    progress.done(`${computed} images (${cached} from cache)`);
  }
  const computeSeconds = (performance.now() - computeStart) / 1000;
  const kept = samples.filter((s) => rows.has(s.path));
  const x = new Float32Array(kept.length * dim);
  const labels = new Int32Array(kept.length);
  kept.forEach((s, i) => {
    x.set(rows.get(s.path)!, i * dim);
    labels[i] = s.label;
  });
  return {
    features: { x, labels, count: kept.length, dim, paths: kept.map((s) => s.path) },
    stats: {
      images: samples.length,
      cached,
      computed,
      skipped,
      seconds: (performance.now() - start) / 1000,
      imagesPerSecond: computed > 0 ? computed / computeSeconds : 0,
    },
  };
}

/** Global average pooling over [h, w, c] rows → [c] rows (GAP head input), done once instead of every step. */
export function globalAveragePool(set: FeatureSet, featureShape: readonly number[]): FeatureSet {
  const [h, w, c] = featureShape as [number, number, number];
  const x = new Float32Array(set.count * c);
  for (let n = 0; n < set.count; n++) {
    const base = n * set.dim;
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) x[n * c + k]! += set.x[base + p * c + k]!;
    for (let k = 0; k < c; k++) x[n * c + k]! /= h * w;
  }
  return { ...set, x, dim: c };
}

/** The engine that runs the frozen base (borrowed: the caller keeps and disposes `base`). */
export async function openBackboneEngine(base: tf.LayersModel, choice: EngineChoice, cacheKey: string, logger: Logger): Promise<InferenceEngine> {
  return openEngine({ kind: 'model', model: base, identity: cacheKey, label: 'the backbone' }, { engine: choice, logger });
}

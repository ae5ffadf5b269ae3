// Streams samples through decode+preprocess in fixed-size batches with bounded concurrency: memory stays
// proportional to batch size, not dataset size. Unreadable files are skipped and reported, never fatal.
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { imageToInput } from './preprocess.js';
import type { Sample } from './imagefolder.js';
import os from 'node:os';

export interface Batch {
  /** NHWC float32, `count` images. */
  x: Float32Array;
  labels: Int32Array;
  paths: string[];
  count: number;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface BatchOptions {
  spec: ImageInputSpec;
  batchSize: number;
  /** Decodes in flight (default: 2 x cores). */
  concurrency?: number;
  onSkip?: (skip: SkippedFile) => void;
  /** Extra per-image transform on the HWC float input (augmentation); runs after preprocessing. */
  transform?: (x: Float32Array, sample: Sample, index: number) => void;
}

export function defaultConcurrency(): number {
  return Math.max(2, os.availableParallelism() * 2);
}

type Decoded = { ok: true; data: Float32Array; sample: Sample } | { ok: false; sample: Sample; reason: string };

export async function* imageBatches(samples: readonly Sample[], opts: BatchOptions): AsyncGenerator<Batch> {
  const { spec, batchSize } = opts;
  const per = spec.height * spec.width * 3;
  const concurrency = Math.max(1, opts.concurrency ?? defaultConcurrency());
  const inflight: Array<Promise<Decoded>> = [];
  let next = 0;
  const launch = () => {
    const sample = samples[next++]!;
    inflight.push(
      imageToInput(sample.path, spec).then(
        (data): Decoded => ({ ok: true, data, sample }),
        (err): Decoded => ({ ok: false, sample, reason: (err as Error).message }),
      ),
    );
  };
  let x = new Float32Array(batchSize * per);
  let labels = new Int32Array(batchSize);
  let paths: string[] = [];
  let count = 0;
  let index = 0;
  while (next < samples.length || inflight.length > 0) {
    while (inflight.length < concurrency && next < samples.length) launch();
    const result = await inflight.shift()!;
    if (!result.ok) {
      opts.onSkip?.({ path: result.sample.path, reason: result.reason });
      continue;
    }
    opts.transform?.(result.data, result.sample, index++);
    x.set(result.data, count * per);
    labels[count] = result.sample.label;
    paths.push(result.sample.path);
    count++;
    if (count === batchSize) {
      yield { x, labels, paths, count };
      x = new Float32Array(batchSize * per);
      labels = new Int32Array(batchSize);
      paths = [];
      count = 0;
    }
  }
  if (count > 0) yield { x: x.subarray(0, count * per), labels: labels.subarray(0, count), paths, count };
}

// The detection head's inputs: pictures decoded with the one preprocessing (data/preprocess.ts, resized to the model
// input by its rule, "fill") with their boxes scaled to the input's pixels, and the backbone's un-pooled feature maps
// of them — read from the feature session's store (computed once per image content), or, with augmentation,
// computed from each epoch's augmented pictures (the store then serves the validation split only).
import type { ImageInputSpec } from '../../artifacts/manifest.js';
import { imageBatches } from '../../data/batches.js';
import type { DetectionSample } from '../../data/detection/types.js';
import type { Sample } from '../../data/imagefolder.js';
import type { FeatureRows } from '../../features/rows.js';
import type { ExtractStats, FeatureSession } from '../../features/session.js';
import type { TargetBox } from '../../models/detection/targets.js';
import { createRng, deriveSeed, shuffleInPlace } from '../../util/random.js';
import { augmentDetection, drawAugmentation, type DetectionAugmentation } from './augment.js';

/**
 * A picture's boxes in the model input's pixels: "fill" stretches the picture to the input, so x·w/W, y·h/H. Crowd
 * regions are left out of training targets (COCO evaluation neither rewards nor punishes detections on them).
 */
export function inputBoxes(s: DetectionSample, spec: Pick<ImageInputSpec, 'height' | 'width'>): TargetBox[] {
  const sx = spec.width / s.width;
  const sy = spec.height / s.height;
  return s.boxes.filter((b) => !b.iscrowd).map((b) => ({ label: b.label, x: b.box.x * sx, y: b.box.y * sy, width: b.box.width * sx, height: b.box.height * sy }));
}

/** A batch of pictures (or of their feature maps) with each one's target boxes in input pixels. */
export interface BoxBatch {
  n: number;
  /** NHWC values: pictures [n, h, w, 3] or feature maps [n, fh, fw, fc]. */
  x: Float32Array;
  boxes: TargetBox[][];
  samples: DetectionSample[];
}

export interface PictureBatchOptions {
  batchSize: number;
  /** Augment each picture with the draw of (seed, key(sample)). */
  augment?: { ops: readonly DetectionAugmentation[]; seed: number; key: (s: DetectionSample) => string };
  onSkip?: (skip: { path: string; reason: string }) => void;
}

/** Pictures in the given order, decoded and preprocessed (and augmented) in batches; unreadable files are skipped. */
export async function* pictureBatches(samples: readonly DetectionSample[], spec: ImageInputSpec, o: PictureBatchOptions): AsyncGenerator<BoxBatch> {
  // The image batcher carries an index as the label: it finds each picture's sample and boxes again.
  const items: Sample[] = samples.map((s, i) => ({ path: s.path, label: i }));
  const moved = new Map<number, TargetBox[]>();
  const aug = o.augment;
  const transform = aug?.ops.length
    ? (x: Float32Array, item: Sample) => {
        const s = samples[item.label]!;
        const map = drawAugmentation(aug.ops, spec.height, spec.width, aug.seed, aug.key(s));
        moved.set(item.label, augmentDetection(x, spec.height, spec.width, inputBoxes(s, spec), map, spec.preprocessing));
      }
    : undefined;
  for await (const b of imageBatches(items, { spec, batchSize: o.batchSize, onSkip: o.onSkip, transform })) {
    const idx = Array.from(b.labels);
    yield {
      n: b.count,
      x: b.x,
      samples: idx.map((i) => samples[i]!),
      boxes: idx.map((i) => {
        const m = moved.get(i);
        moved.delete(i);
        return m ?? inputBoxes(samples[i]!, spec);
      }),
    };
  }
}

/** One split as the head reads it: feature maps with target boxes, batch by batch. */
export interface DetectionSet {
  /** Pictures the set yields (those whose features exist, when stored). */
  readonly count: number;
  /** Values per feature map. */
  readonly dim: number;
  /** An epoch's batches: shuffled with a seed of (seed, epoch) for training, in order for evaluation. */
  batches(epoch: number, batchSize: number, shuffle: boolean): AsyncIterable<BoxBatch>;
}

const epochOrder = (n: number, seed: number, epoch: number, shuffle: boolean) => {
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffle ? shuffleInPlace(order, createRng(deriveSeed(seed, `detection-epoch-${epoch}`))) : order;
};

/**
 * A set's batches without end for a fixed number of steps (an LR range test), each pass a fresh shuffle; undefined
 * once a whole pass yields nothing.
 */
export function endlessBatches(set: DetectionSet, batchSize: number): () => Promise<BoxBatch | undefined> {
  let pass = 0;
  let it: AsyncIterator<BoxBatch> | undefined;
  return async () => {
    for (let fresh = false; ; fresh = true) {
      // Passes are numbered apart from the training epochs, whose shuffles they would otherwise repeat.
      it ??= set.batches(10_000 + ++pass, batchSize, true)[Symbol.asyncIterator]();
      const r = await it.next();
      if (!r.done) return r.value;
      it = undefined;
      if (fresh) return undefined;
    }
  };
}

/** Stored feature maps (rows from the feature session; a row's label is its sample's index). */
export function storedSet(samples: readonly DetectionSample[], rows: FeatureRows, spec: ImageInputSpec, seed: number): DetectionSet {
  return {
    count: rows.count,
    dim: rows.dim,
    async *batches(epoch, batchSize, shuffle) {
      const order = epochOrder(rows.count, seed, epoch, shuffle);
      const bufs = [new Float32Array(batchSize * rows.dim), new Float32Array(batchSize * rows.dim)];
      const read = async (b: number): Promise<BoxBatch> => {
        const from = b * batchSize;
        const to = Math.min(rows.count, from + batchSize);
        const x = await rows.read(order, from, to, bufs[b % 2]!);
        const picked = order.slice(from, to).map((r) => samples[rows.labels[r]!]!);
        return { n: to - from, x, samples: picked, boxes: picked.map((s) => inputBoxes(s, spec)) };
      };
      const batches = Math.ceil(rows.count / batchSize);
      // The next batch is read from disk while the caller trains on this one.
      let next = batches > 0 ? read(0) : undefined;
      for (let b = 0; b < batches; b++) {
        const cur = await next!;
        next = b + 1 < batches ? read(b + 1) : undefined;
        next?.catch(() => undefined);
        yield cur;
      }
    },
  };
}

/** Pictures (augmented per epoch when `ops` are given), decoded as they are read: the input of a model with no frozen part. */
export function pictureSet(samples: readonly DetectionSample[], spec: ImageInputSpec, ops: readonly DetectionAugmentation[], seed: number, onSkip: PictureBatchOptions['onSkip']): DetectionSet {
  return {
    count: samples.length,
    dim: spec.height * spec.width * 3,
    batches(epoch, batchSize, shuffle) {
      const ordered = epochOrder(samples.length, seed, epoch, shuffle).map((i) => samples[i]!);
      return pictureBatches(ordered, spec, { batchSize, onSkip, augment: ops.length ? { ops, seed, key: (s) => `${epoch}:${s.path}` } : undefined });
    },
  };
}

/** Feature maps of each epoch's augmented pictures, computed as they are read (nothing stored). */
export function augmentedSet(samples: readonly DetectionSample[], session: FeatureSession, ops: readonly DetectionAugmentation[], seed: number, onSkip: PictureBatchOptions['onSkip']): DetectionSet {
  const pictures = pictureSet(samples, session.spec, ops, seed, onSkip);
  return {
    count: samples.length,
    dim: session.featureShape.reduce((a, b) => a * b, 1),
    async *batches(epoch, batchSize, shuffle) {
      for await (const b of pictures.batches(epoch, batchSize, shuffle)) yield { ...b, x: await session.run(b.x, b.n) };
    },
  };
}

export interface DetectionInputs {
  train: DetectionSet;
  val?: DetectionSet;
  stats: { train?: ExtractStats; val?: ExtractStats; cacheDir?: string };
}

/** The train and validation sets of a run: stored features, or augmented train pictures per epoch. */
export async function detectionInputs(
  splits: { train: DetectionSample[]; val: DetectionSample[] },
  session: FeatureSession,
  o: { augment: readonly DetectionAugmentation[]; seed: number; shouldStop?: () => boolean; warn: (line: string) => void; what?: string },
): Promise<DetectionInputs> {
  const what = o.what ?? 'feature maps';
  const warned = new Set<string>();
  const onSkip = (s: { path: string; reason: string }) => {
    if (!warned.has(s.path)) o.warn(`skipped ${s.path}: ${s.reason}`);
    warned.add(s.path);
  };
  const asItems = (list: readonly DetectionSample[]): Sample[] => list.map((s, i) => ({ path: s.path, label: i }));
  const stats: DetectionInputs['stats'] = {};
  let train: DetectionSet;
  if (o.augment.length === 0) {
    const r = await session.extract(asItems(splits.train), { label: `train ${what}`, shouldStop: o.shouldStop, onSkip });
    train = storedSet(splits.train, r.rows, session.spec, o.seed);
    stats.train = r.stats;
  } else {
    train = augmentedSet(splits.train, session, o.augment, o.seed, onSkip);
  }
  let val: DetectionSet | undefined;
  if (splits.val.length) {
    const r = await session.extract(asItems(splits.val), { label: `validation ${what}`, shouldStop: o.shouldStop, onSkip });
    val = storedSet(splits.val, r.rows, session.spec, o.seed);
    stats.val = r.stats;
  }
  if (session.storeDir) stats.cacheDir = session.storeDir;
  return { train, val, stats };
}

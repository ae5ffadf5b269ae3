// Train step 3: the head's inputs. Base features of the train and validation splits come from the feature session
// (stored on disk, streamed in batches); with augmentation the train rows are computed as they are read, per epoch.
import path from 'node:path';
import { imageToInput } from '../../data/preprocess.js';
import type { Sample } from '../../data/imagefolder.js';
import { imageBatches } from '../../data/batches.js';
import { pooledRows, type FeatureRows } from '../../features/rows.js';
import type { ExtractStats, FeatureSession } from '../../features/session.js';
import { MlctlError } from '../../errors.js';
import { augmentImage } from '../augment.js';
import { balancedClassWeights } from '../../heads/head.js';
import type { PreparedRun } from './prepare.js';

export interface HeadInputs {
  /** Train rows (undefined with augmentation: see epochRows). */
  train?: FeatureRows;
  val?: FeatureRows;
  /** Augmented train rows for an epoch, computed as read. */
  epochRows?: (epoch: number) => FeatureRows;
  /** Width of a head input row. */
  dim: number;
  classWeights?: number[];
  stats: { train?: ExtractStats; val?: ExtractStats; cacheDir?: string };
}

/**
 * Augmented rows of `samples` for one epoch: each read decodes its images with that epoch's seeded augmentation and
 * runs the base, so nothing is stored and the result is the same for the same seed, whatever the batch.
 */
function augmentedRows(samples: readonly Sample[], session: FeatureSession, run: PreparedRun, epoch: number): FeatureRows {
  const spec = session.spec;
  const per = spec.height * spec.width * 3;
  const dim = session.featureShape.reduce((a, b) => a * b, 1);
  let x = new Float32Array(0);
  return {
    count: samples.length,
    dim,
    labels: Int32Array.from(samples, (s) => s.label),
    paths: samples.map((s) => s.path),
    async read(order, from, to, out) {
      const n = to - from;
      if (x.length < n * per) x = new Float32Array(n * per);
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const s = samples[order[from + i]!]!;
          const img = await imageToInput(s.path, spec, x, i * per);
          augmentImage(img.subarray(i * per, (i + 1) * per), spec.height, run.augment, run.opts.seed, `${epoch}:${s.path}`);
        }),
      );
      out.set(await session.run(x.subarray(0, n * per), n));
      return out.subarray(0, n * dim);
    },
  };
}

/** The samples that decode (augmented epochs read them again and again; an unreadable one is left out once). */
async function readable(samples: readonly Sample[], session: FeatureSession, onSkip: (s: Skip) => void): Promise<Sample[]> {
  const ok = new Set<string>();
  for await (const b of imageBatches(samples, { spec: session.spec, batchSize: 32, onSkip })) for (const p of b.paths) ok.add(p);
  return samples.filter((s) => ok.has(s.path));
}

type Skip = { path: string; reason: string };

/**
 * Fewest readable images a class needs in a split it has images in: two to learn it from, one to be scored on.
 * Without this a class whose files all fail to decode would train with class weight 0 and exit 0.
 */
export const MIN_IMAGES_PER_CLASS = { train: 2, validation: 1 } as const;

/** Every class of `split` keeps at least its minimum of readable images; the error names the class and its skipped files. */
function assertEveryClass(split: keyof typeof MIN_IMAGES_PER_CLASS, planned: readonly Sample[], labels: Int32Array, skipped: readonly Skip[], run: PreparedRun): void {
  const has = new Array<number>(run.classes.length).fill(0);
  for (const s of planned) has[s.label]!++;
  const counts = new Array<number>(run.classes.length).fill(0);
  for (const l of labels) counts[l]!++;
  const min = MIN_IMAGES_PER_CLASS[split];
  const label = new Map(planned.map((s) => [s.path, s.label]));
  for (let c = 0; c < run.classes.length; c++) {
    // A class with no images planned in the split (a tiny class gets no validation image) has nothing to check.
    if (has[c] === 0 || counts[c]! >= min) continue;
    const files = skipped.filter((s) => label.get(s.path) === c);
    // File names with the decoder's reason (without the path it repeats), at most five.
    const why = (f: Skip) => `${path.basename(f.path)} (${f.reason.replace(f.path, '').replace(/^cannot decode image\s*:?\s*/, '')})`;
    const list = files.length ? `; skipped in ${path.dirname(files[0]!.path)}: ${files.slice(0, 5).map(why).join(', ')}${files.length > 5 ? ` and ${files.length - 5} more` : ''}` : '';
    throw new MlctlError('DATA_CLASS_UNREADABLE', [run.classes[c]!, String(counts[c]), split, String(min), list]);
  }
}

export async function headInputs(run: PreparedRun, session: FeatureSession): Promise<HeadInputs> {
  const { opts, splits, augment } = run;
  const logger = opts.logger;
  const pool = (rows: FeatureRows) => (opts.head === 'gap' ? pooledRows(rows, session.featureShape) : rows);
  const skipped: Skip[] = [];
  const onSkip = (s: Skip) => {
    skipped.push(s);
    logger.warn(`skipped ${s.path}: ${s.reason}`);
  };
  const stats: HeadInputs['stats'] = {};
  let train: FeatureRows | undefined;
  let epochRows: HeadInputs['epochRows'];
  let trainLabels: Int32Array;
  if (augment.length === 0) {
    const r = await session.extract(splits.train, { label: 'train features', shouldStop: opts.shouldStop, onSkip });
    train = pool(r.rows);
    stats.train = r.stats;
    trainLabels = train.labels;
  } else {
    logger.info(`augmentation ${augment.join(', ')}: train features are recomputed every epoch (the feature store is used for validation only)`);
    const usable = await readable(splits.train, session, onSkip);
    epochRows = (epoch) => pool(augmentedRows(usable, session, run, epoch));
    trainLabels = Int32Array.from(usable, (s) => s.label);
  }
  assertEveryClass('train', splits.train, trainLabels, skipped, run);
  let val: FeatureRows | undefined;
  if (splits.val.length) {
    const r = await session.extract(splits.val, { label: 'validation features', shouldStop: opts.shouldStop, onSkip });
    val = pool(r.rows);
    stats.val = r.stats;
    assertEveryClass('validation', splits.val, val.labels, skipped, run);
  }
  if (session.storeDir) stats.cacheDir = session.storeDir;
  if (stats.train) logger.info(`features: ${stats.train.cached + (stats.val?.cached ?? 0)} from the store, ${stats.train.computed + (stats.val?.computed ?? 0)} computed${stats.train.computed ? ` at ${stats.train.imagesPerSecond.toFixed(1)} img/s` : ''}`);
  const classWeights = opts.classWeights === 'auto' ? balancedClassWeights(trainLabels, run.classes.length) : undefined;
  if (classWeights && Math.max(...classWeights) / Math.min(...classWeights) > 1.5) logger.info(`class weights (imbalanced data): ${run.classes.map((c, i) => `${c} ${classWeights[i]!.toFixed(2)}`).join(', ')}`);
  const dim = opts.head === 'gap' ? session.featureShape[session.featureShape.length - 1]! : session.featureShape.reduce((a, b) => a * b, 1);
  return { train, val, epochRows, dim, classWeights, stats };
}

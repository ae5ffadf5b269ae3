// Train step 3: the head's inputs. Base features of the train and validation splits come from the feature session
// (stored on disk, streamed in batches); with augmentation the train rows are computed as they are read, per epoch.
import { imageToInput } from '../../data/preprocess.js';
import type { Sample } from '../../data/imagefolder.js';
import { imageBatches } from '../../data/batches.js';
import { pooledRows, type FeatureRows } from '../../features/rows.js';
import type { ExtractStats, FeatureSession } from '../../features/session.js';
import { MlctlError } from '../../errors.js';
import { augmentImage } from '../augment.js';
import { balancedClassWeights } from '../head.js';
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
async function readable(samples: readonly Sample[], session: FeatureSession, run: PreparedRun): Promise<Sample[]> {
  const ok = new Set<string>();
  for await (const b of imageBatches(samples, { spec: session.spec, batchSize: 32, onSkip: (s) => run.opts.logger.warn(`skipped ${s.path}: ${s.reason}`) })) for (const p of b.paths) ok.add(p);
  return samples.filter((s) => ok.has(s.path));
}

function assertEveryClass(labels: Int32Array, run: PreparedRun): void {
  const counts = new Array<number>(run.classes.length).fill(0);
  for (const l of labels) counts[l]!++;
  const missing = counts.findIndex((c) => c === 0);
  if (missing >= 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `no image of class ${run.classes[missing]} could be read; fix or remove its files, or remove the class folder`]);
}

export async function headInputs(run: PreparedRun, session: FeatureSession): Promise<HeadInputs> {
  const { opts, splits, augment } = run;
  const logger = opts.logger;
  const pool = (rows: FeatureRows) => (opts.head === 'gap' ? pooledRows(rows, session.featureShape) : rows);
  const onSkip = (s: { path: string; reason: string }) => logger.warn(`skipped ${s.path}: ${s.reason}`);
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
    const usable = await readable(splits.train, session, run);
    epochRows = (epoch) => pool(augmentedRows(usable, session, run, epoch));
    trainLabels = Int32Array.from(usable, (s) => s.label);
  }
  assertEveryClass(trainLabels, run);
  let val: FeatureRows | undefined;
  if (splits.val.length) {
    const r = await session.extract(splits.val, { label: 'validation features', shouldStop: opts.shouldStop, onSkip });
    val = pool(r.rows);
    stats.val = r.stats;
  }
  if (session.storeDir) stats.cacheDir = session.storeDir;
  if (stats.train) logger.info(`features: ${stats.train.cached + (stats.val?.cached ?? 0)} from the store, ${stats.train.computed + (stats.val?.computed ?? 0)} computed${stats.train.computed ? ` at ${stats.train.imagesPerSecond.toFixed(1)} img/s` : ''}`);
  const classWeights = opts.classWeights === 'auto' ? balancedClassWeights(trainLabels, run.classes.length) : undefined;
  if (classWeights && Math.max(...classWeights) / Math.min(...classWeights) > 1.5) logger.info(`class weights (imbalanced data): ${run.classes.map((c, i) => `${c} ${classWeights[i]!.toFixed(2)}`).join(', ')}`);
  const dim = opts.head === 'gap' ? session.featureShape[session.featureShape.length - 1]! : session.featureShape.reduce((a, b) => a * b, 1);
  return { train, val, epochRows, dim, classWeights, stats };
}

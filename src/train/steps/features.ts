// Train step 3: the head's inputs. Base features of the train and validation splits come from the feature session
// (stored on disk, streamed in batches); with augmentation the train rows are computed as they are read, per epoch.
import path from 'node:path';
import type { Sample } from '../../data/imagefolder.js';
import { pooledRows, type FeatureRows } from '../../features/rows.js';
import type { ExtractStats, FeatureSession } from '../../features/session.js';
import { MlctlError } from '../../errors.js';
import { computedRows, readableSamples } from '../image-rows.js';
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
    const usable = await readableSamples(splits.train, session.spec, onSkip);
    const dim = session.featureShape.reduce((a, b) => a * b, 1);
    epochRows = (epoch) => pool(computedRows(usable, { spec: session.spec, augment, seed: opts.seed, key: String(epoch), dim, run: session.run }));
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

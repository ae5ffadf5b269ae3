// Training data for the classic models: a CSV table (encoded by data/csv.ts) or an image folder flattened to pixel
// vectors, split deterministically into train and validation rows.
import { promises as fs } from 'node:fs';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { imageBatches, type SkippedFile } from '../data/batches.js';
import { readCsv, tabularFromCsv, type TabularEncoding } from '../data/csv.js';
import { scanImageFolder, type Sample } from '../data/imagefolder.js';
import { datasetSplits } from '../data/splits.js';
import { imageInputSpec } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { splitRows } from '../data/tabular.js';
import { matrix, takeRows, type Matrix } from './linalg.js';

export interface ClassicDataset {
  source: 'csv' | 'images';
  task: 'classification' | 'regression';
  features: string[];
  train: Matrix;
  val?: Matrix;
  /** Class indices (classification). */
  trainLabels?: Int32Array;
  valLabels?: Int32Array;
  /** Numeric targets (regression). */
  trainTargets?: Float64Array;
  valTargets?: Float64Array;
  labels: string[];
  /** CSV: column encoding. */
  encoding?: TabularEncoding;
  target?: string;
  /** Images: the input spec every consumer preprocesses with. */
  imageSpec?: ImageInputSpec;
  /** Unreadable images left out. */
  skipped: number;
  dropped: number;
  rows: number;
}

export interface DataOptions {
  data: string;
  target?: string;
  task: 'classification' | 'regression';
  validationSplit: number;
  seed: number;
  categorical?: string[];
  ignore?: string[];
  missing?: 'error' | 'drop';
  /** CSV: text encoding (default utf8, validated) and memory limit in bytes. */
  encoding?: string;
  maxMemory?: number;
  imageSize: number;
  logger: Logger;
}

/** Natural order for class names: numerically when every label is a number ("2" < "10"), else lexically. */
export function sortLabels(values: Iterable<string>): string[] {
  const uniq = [...new Set(values)];
  const numeric = uniq.every((v) => v.trim() !== '' && Number.isFinite(Number(v)));
  return numeric ? uniq.sort((a, b) => Number(a) - Number(b)) : uniq.sort();
}

async function isFile(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isFile(), () => false);
}

export async function loadClassicData(opts: DataOptions): Promise<ClassicDataset> {
  // A missing *.csv path should say "CSV file … does not exist", not talk about image folders.
  if ((await isFile(opts.data)) || /\.(csv|tsv|txt)$/i.test(opts.data)) return loadCsvData(opts);
  if (opts.target) opts.logger.warn(`--target is for CSV data; ${opts.data} is an image folder, so its class folders are the labels`);
  if (opts.task === 'regression') throw new MlctlError('OPTION_CONFLICT', [`regression needs a CSV file with a numeric --target column; ${opts.data} is an image folder`]);
  return loadImageData(opts);
}

async function loadCsvData(opts: DataOptions): Promise<ClassicDataset> {
  if (!opts.target) throw new MlctlError('OPTION_REQUIRED', [`--target COLUMN is required with CSV data (${opts.data}): name the column to predict`]);
  const table = await readCsv(opts.data, { encoding: opts.encoding, maxMemory: opts.maxMemory });
  const tab = tabularFromCsv(table, { target: opts.target, numericTarget: opts.task === 'regression', categorical: opts.categorical, ignore: opts.ignore, missing: opts.missing, maxMemory: opts.maxMemory });
  if (tab.dropped) opts.logger.warn(`dropped ${tab.dropped} row(s) with missing values (--missing drop)`);
  const cats = tab.encoding.columns.filter((c) => c.kind === 'categorical');
  if (cats.length) opts.logger.info(`one-hot encoding ${cats.map((c) => `${c.name} (${c.kind === 'categorical' ? c.categories.length : 0} categories)`).join(', ')}`);
  const all = matrix(tab.rows, tab.features.length, tab.x);
  let labels: string[] = [];
  let classIdx: Int32Array | undefined;
  let targets: Float64Array | undefined;
  if (opts.task === 'classification') {
    labels = sortLabels(tab.targetValues);
    if (labels.length < 2) throw new MlctlError('CSV_INVALID', [opts.data, `target column "${opts.target}" has ${labels.length} distinct value(s); classification needs at least 2`]);
    if (labels.length > 1000) throw new MlctlError('CSV_INVALID', [opts.data, `target column "${opts.target}" has ${labels.length} distinct values; for a numeric target use --model linear (regression)`]);
    const index = new Map(labels.map((l, i) => [l, i]));
    classIdx = Int32Array.from(tab.targetValues, (v) => index.get(v)!);
  } else targets = Float64Array.from(tab.targetValues, Number);
  const { train, val } = splitRows(tab.rows, classIdx, opts.validationSplit, opts.seed);
  return {
    source: 'csv',
    task: opts.task,
    features: tab.features,
    train: takeRows(all, train),
    ...(val.length ? { val: takeRows(all, val) } : {}),
    ...(classIdx ? { trainLabels: Int32Array.from(train, (i) => classIdx![i]!), ...(val.length ? { valLabels: Int32Array.from(val, (i) => classIdx![i]!) } : {}) } : {}),
    ...(targets ? { trainTargets: Float64Array.from(train, (i) => targets![i]!), ...(val.length ? { valTargets: Float64Array.from(val, (i) => targets![i]!) } : {}) } : {}),
    labels,
    encoding: tab.encoding,
    target: opts.target,
    skipped: 0,
    dropped: tab.dropped,
    rows: tab.rows,
  };
}

/** Decode images at the spec's size into flattened rows ('unit' scaling: pixels / 255). */
export async function imagesToRows(samples: readonly Sample[], spec: ImageInputSpec, logger: Logger, label: string, skipped: SkippedFile[]): Promise<{ x: Matrix; labels: Int32Array }> {
  const per = spec.height * spec.width * 3;
  const x = matrix(samples.length, per);
  const labels = new Int32Array(samples.length);
  let n = 0;
  const progress = createProgress({ label, total: samples.length, unit: 'img', logger });
  for await (const batch of imageBatches(samples, { spec, batchSize: 64, onSkip: (s) => skipped.push(s) })) {
    for (let i = 0; i < batch.count; i++) {
      x.data.set(batch.x.subarray(i * per, (i + 1) * per), n * per);
      labels[n++] = batch.labels[i]!;
    }
    progress.tick(batch.count);
  }
  progress.done();
  return { x: { rows: n, cols: per, data: x.data.subarray(0, n * per) }, labels: labels.subarray(0, n) };
}

async function loadImageData(opts: DataOptions): Promise<ClassicDataset> {
  const folder = await scanImageFolder(opts.data);
  const splits = datasetSplits(folder, { validationSplit: opts.validationSplit, seed: opts.seed });
  if (splits.train.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `${opts.data} has no training images`]);
  const spec = imageInputSpec(opts.imageSize, 'unit');
  const skipped: SkippedFile[] = [];
  const train = await imagesToRows(splits.train, spec, opts.logger, 'decoding train images', skipped);
  const val = splits.val.length ? await imagesToRows(splits.val, spec, opts.logger, 'decoding validation images', skipped) : undefined;
  if (skipped.length) opts.logger.warn(`skipped ${skipped.length} unreadable image(s): ${skipped.slice(0, 3).map((s) => `${s.path} (${s.reason})`).join('; ')}`);
  const features = Array.from({ length: train.x.cols }, (_, i) => `p${Math.floor(i / 3)}.${'rgb'[i % 3]}`);
  return {
    source: 'images',
    task: 'classification',
    features,
    train: train.x,
    ...(val && val.x.rows ? { val: val.x, valLabels: val.labels } : {}),
    trainLabels: train.labels,
    labels: folder.classes,
    imageSpec: spec,
    skipped: skipped.length,
    dropped: 0,
    rows: train.x.rows + (val?.x.rows ?? 0),
  };
}

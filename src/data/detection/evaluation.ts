// Which annotated pictures an evaluation (or optimize's mAP gate) sees: the dataset's declared splits, the rest
// carved from train with the seed (detectionSplits), and the dataset's classes mapped onto a model's labels by name.
import { MlctlError } from '../../errors.js';
import type { EvalSplit, SplitParams } from '../evaluation.js';
import { detectionSplits, readDetectionDataset } from './index.js';
import type { DetectionDataset, DetectionSample } from './types.js';

export interface DetectionEvaluationData {
  root: string;
  /** The dataset's format (coco, yolo, voc). */
  layout: string;
  classes: string[];
  split: Exclude<EvalSplit, 'auto'>;
  origin: string;
  params: SplitParams;
  samples: DetectionSample[];
  dataset: DetectionDataset;
}

/**
 * Read a detection dataset and pick the split: the dataset's declared splits, the rest carved from train with the
 * seed (data/detection detectionSplits). `auto` = test when there is one, else val.
 */
export async function loadDetectionEvaluationData(root: string, split: EvalSplit, params: SplitParams, opts: { skipInvalid?: boolean } = {}): Promise<DetectionEvaluationData> {
  const ds = await readDetectionDataset(root);
  const splits = detectionSplits(ds, { validationSplit: params.validationSplit, testSplit: params.testSplit, seed: params.seed, skipInvalid: opts.skipInvalid });
  const resolved: Exclude<EvalSplit, 'auto'> = split === 'auto' ? (splits.test.length > 0 ? 'test' : 'val') : split;
  const samples = resolved === 'all' ? [...splits.train, ...splits.val, ...splits.test] : splits[resolved];
  const declared = (s: 'train' | 'val' | 'test') => ds.splits[s] !== undefined;
  if (samples.length === 0) {
    const how = resolved === 'test' ? 'the dataset declares no test split and --test-split is 0; use --split val or --split all, or pass the --test-split the model was trained with' : resolved === 'val' ? 'the dataset declares no val split and --validation-split is 0; pass the --validation-split the model was trained with or use --split all' : `no pictures in the ${resolved} split`;
    throw new MlctlError('DATA_EMPTY_SPLIT', [resolved, how]);
  }
  const origin =
    resolved === 'all' ? 'all splits' : declared(resolved) ? `the dataset's ${resolved} split` : `${resolved === 'val' ? params.validationSplit : params.testSplit} of train's pictures (seed ${params.seed})`;
  return { root: ds.root, layout: ds.format, classes: ds.labels, split: resolved, origin, params, samples, dataset: ds };
}

/** The samples with their boxes' labels re-indexed into the model's labels (by name); unknown classes are an error. */
export function mapDetectionLabels(data: Pick<DetectionEvaluationData, 'classes' | 'samples'>, modelLabels: readonly string[]): DetectionSample[] {
  const index = new Map(modelLabels.map((l, i) => [l, i]));
  const present = new Set(data.samples.flatMap((s) => s.boxes.map((b) => b.label)));
  const unknown = data.classes.filter((c, i) => present.has(i) && !index.has(c));
  if (unknown.length > 0) throw new MlctlError('DATA_UNKNOWN_LABELS', [unknown.slice(0, 12).join(', '), modelLabels.slice(0, 12).join(', ')]);
  const map = data.classes.map((c) => index.get(c) ?? -1);
  return data.samples.map((s) => ({ ...s, boxes: s.boxes.map((b) => ({ ...b, label: map[b.label]! })) }));
}


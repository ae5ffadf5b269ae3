// Evaluation runs of detection models: the annotated split (COCO, YOLO or VOC, data/detection) mapped onto the
// model's labels by name, COCO metrics from tasks/detection/evaluate.ts, then latency and size as for classifiers.
import type { LoadedPackage } from '../artifacts/package.js';
import { modelSize } from '../artifacts/size.js';
import { detectionSplits, readDetectionDataset, type DetectionDataset, type DetectionSample } from '../data/detection/index.js';
import type { EvalSplit, SplitParams } from '../data/evaluation.js';
import { MlctlError } from '../errors.js';
import { openEngine } from '../runtime/engine.js';
import { evaluateDetectionEngine, type DetectionEvalOptions, type DetectionMetrics } from '../tasks/detection/evaluate.js';
import { packageLatency, type EvaluateOptions, type EvaluationResult } from './run.js';

export type DetectionEvaluationResult = EvaluationResult<DetectionMetrics>;

/** A package whose model locates objects (manifest task "detection"). */
export const isDetectionPackage = (pkg: Pick<LoadedPackage, 'manifest'>) => pkg.manifest.task === 'detection';

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

/** Evaluate a detection package on samples labelled with its label indices (mapDetectionLabels). */
export async function evaluateDetectionPackage(pkg: LoadedPackage, samples: readonly DetectionSample[], opts: EvaluateOptions & DetectionEvalOptions = {}): Promise<DetectionEvaluationResult> {
  const m = pkg.manifest;
  if (!isDetectionPackage(pkg) || !m.detection || m.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `evaluateDetectionPackage evaluates detection models; this is ${m.task ?? 'a generic tensor model'}`]);
  if (samples.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', 'no samples were given']);
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger });
  try {
    const ev = await evaluateDetectionEngine(engine, m.input, m.detection, samples, m.labels, { ...opts, label: opts.label ?? `evaluating ${m.name} v${m.version}` });
    const latency = await packageLatency(pkg, engine, opts, ev.example);
    return {
      model: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256, task: 'detection' },
      engine: { name: engine.name, description: engine.description },
      images: { evaluated: ev.metrics.count, skipped: ev.skipped.count, skippedFiles: ev.skipped.files },
      seconds: ev.seconds,
      metrics: ev.metrics,
      ...(latency ? { latency } : {}),
      size: await modelSize(pkg, engine.name),
    };
  } finally {
    await engine.dispose();
  }
}

// Evaluation runs of detection models: the annotated split (COCO, YOLO or VOC, data/detection) mapped onto the
// model's labels by name, COCO metrics from tasks/detection/evaluate.ts, then latency and size as for classifiers.
import type { LoadedPackage } from '../artifacts/package.js';
import { modelSize } from '../artifacts/size.js';
import type { DetectionSample } from '../data/detection/index.js';
import { MlctlError } from '../errors.js';
import { openEngine, type InferenceEngine } from '../runtime/engine.js';
import { detectorEngine, detectorLatencyRunner } from '../tasks/detection/engine.js';
import { evaluateDetectionEngine, type DetectionEvalOptions, type DetectionMetrics } from '../tasks/detection/evaluate.js';
import { packageLatency, type EvaluateOptions, type EvaluationResult } from './run.js';

export { loadDetectionEvaluationData, mapDetectionLabels, type DetectionEvaluationData } from '../data/detection/evaluation.js';

export type DetectionEvaluationResult = EvaluationResult<DetectionMetrics>;

/** A package whose model locates objects (manifest task "detection"). */
export const isDetectionPackage = (pkg: Pick<LoadedPackage, 'manifest'>) => pkg.manifest.task === 'detection';

/**
 * Latency as for classifiers, timed the way the detection task runs every detector (tasks/detection/engine.ts): every
 * output the head decodes, one run per picture for a model without a batch dimension (torchvision's).
 */
async function detectorLatency(pkg: LoadedPackage, engine: InferenceEngine, opts: EvaluateOptions, example?: Float32Array) {
  if (opts.latency === false) return undefined;
  const m = pkg.manifest;
  if (m.input.kind !== 'image') return undefined;
  const runner = detectorLatencyRunner(detectorEngine(engine, m, pkg.dir), m.input);
  return packageLatency(pkg, engine, { ...opts, latency: { ...opts.latency, runner } }, example);
}

/** Evaluate a detection package on samples labelled with its label indices (mapDetectionLabels). */
export async function evaluateDetectionPackage(pkg: LoadedPackage, samples: readonly DetectionSample[], opts: EvaluateOptions & DetectionEvalOptions = {}): Promise<DetectionEvaluationResult> {
  const m = pkg.manifest;
  if (!isDetectionPackage(pkg) || !m.detection || m.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `evaluateDetectionPackage evaluates detection models; this is ${m.task ?? 'a generic tensor model'}`]);
  if (samples.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', 'no samples were given']);
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger });
  try {
    const ev = await evaluateDetectionEngine(engine, m.input, m.detection, samples, m.labels, { ...opts, label: opts.label ?? `evaluating ${m.name} v${m.version}` });
    const latency = await detectorLatency(pkg, engine, opts, ev.example);
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

/** One detection model beside the first (the baseline): COCO's headline figures, size and latency, and their deltas. */
export interface DetectionComparisonRow {
  model: string;
  engine: string;
  mAP: number;
  AP50: number;
  AP75: number;
  AR100: number;
  sizeRawBytes: number;
  p50Ms?: number;
  /** This row minus the first (mAP points as fractions, like the figures); size as a ratio. */
  delta?: { mAP: number; AP50: number; AP75: number; AR100: number; sizeRawRatio: number; p50Ms?: number };
}

export function compareDetectionResults(results: readonly DetectionEvaluationResult[]): DetectionComparisonRow[] {
  const rows: DetectionComparisonRow[] = results.map((r) => ({
    model: `${r.model.name} v${r.model.version}`,
    engine: r.engine.description,
    mAP: r.metrics.coco.AP,
    AP50: r.metrics.coco.AP50,
    AP75: r.metrics.coco.AP75,
    AR100: r.metrics.coco.AR100,
    sizeRawBytes: r.size.rawBytes,
    ...(r.latency ? { p50Ms: r.latency.p50Ms } : {}),
  }));
  const base = rows[0];
  for (const row of rows.slice(1)) {
    row.delta = {
      mAP: row.mAP - base!.mAP,
      AP50: row.AP50 - base!.AP50,
      AP75: row.AP75 - base!.AP75,
      AR100: row.AR100 - base!.AR100,
      sizeRawRatio: base!.sizeRawBytes > 0 ? row.sizeRawBytes / base!.sizeRawBytes : NaN,
      ...(row.p50Ms !== undefined && base!.p50Ms !== undefined ? { p50Ms: row.p50Ms - base!.p50Ms } : {}),
    };
  }
  return rows;
}

/** The comparison as a table: each figure with its change vs the first model. */
export function detectionComparisonRows(rows: readonly DetectionComparisonRow[]): { head: string[]; rows: string[][]; align: Array<'left' | 'right'> } {
  const f = (x: number) => (x < 0 ? '—' : x.toFixed(3));
  const d = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? '—' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`);
  return {
    head: ['model', 'mAP', 'Δ', 'AP50', 'Δ', 'AP75', 'Δ', 'AR@100', 'Δ', 'size ratio', 'p50 ms', 'Δ'],
    rows: rows.map((r) => [
      r.model,
      f(r.mAP), r.delta ? d(r.delta.mAP) : 'baseline',
      f(r.AP50), r.delta ? d(r.delta.AP50) : 'baseline',
      f(r.AP75), r.delta ? d(r.delta.AP75) : 'baseline',
      f(r.AR100), r.delta ? d(r.delta.AR100) : 'baseline',
      r.delta ? `×${r.delta.sizeRawRatio.toFixed(2)}` : 'baseline',
      r.p50Ms !== undefined ? r.p50Ms.toFixed(2) : '—', r.delta ? d(r.delta.p50Ms, 2) : 'baseline',
    ]),
    align: ['left', ...Array<'right'>(11).fill('right')],
  };
}

// Evaluation runs of detection models: the annotated split (COCO, YOLO or VOC, data/detection) mapped onto the
// model's labels by name, COCO metrics from tasks/detection/evaluate.ts, then latency and size as for classifiers.
import type { LoadedPackage } from '../artifacts/package.js';
import { modelSize } from '../artifacts/size.js';
import type { DetectionSample } from '../data/detection/index.js';
import { MlctlError } from '../errors.js';
import { openEngine } from '../runtime/engine.js';
import { evaluateDetectionEngine, type DetectionEvalOptions, type DetectionMetrics } from '../tasks/detection/evaluate.js';
import { packageLatency, type EvaluateOptions, type EvaluationResult } from './run.js';

export { loadDetectionEvaluationData, mapDetectionLabels, type DetectionEvaluationData } from '../data/detection/evaluation.js';

export type DetectionEvaluationResult = EvaluationResult<DetectionMetrics>;

/** A package whose model locates objects (manifest task "detection"). */
export const isDetectionPackage = (pkg: Pick<LoadedPackage, 'manifest'>) => pkg.manifest.task === 'detection';

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

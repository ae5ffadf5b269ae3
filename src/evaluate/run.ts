// Evaluation runs of image classifiers: the task's evaluation of an engine on the split (tasks/classification),
// then latency and size. evaluatePackage() is the entry point CI scripts call.
import type { LoadedPackage } from '../artifacts/package.js';
import type { SkippedFile } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import { evaluateEngine, type EngineEvalOptions } from '../tasks/classification/evaluate.js';
import { imageClassification } from '../tasks/classification/index.js';
import type { ClassificationMetrics } from '../tasks/classification/metrics.js';
import { requireTask } from '../tasks/index.js';
import { createProgress } from '../util/progress.js';
import { latencyRunCount, measureLatency, type LatencyOptions, type LatencyResult } from '../runtime/latency.js';
import { modelSize, type ModelSize } from '../artifacts/size.js';

export type { EngineEvalOptions };

export interface EvaluateOptions extends EngineEvalOptions {
  engine?: EngineChoice;
  /** false skips latency measurement. */
  latency?: LatencyOptions | false;
}

/** One model's evaluation; `metrics` are its task's (classification unless said otherwise). */
export interface EvaluationResult<M = ClassificationMetrics> {
  model: { name: string; version: number; dir: string; manifestSha256: string; task: string };
  engine: { name: string; description: string };
  /** Images evaluated (decoded) and skipped (unreadable). */
  images: { evaluated: number; skipped: number; skippedFiles: SkippedFile[] };
  seconds: number;
  metrics: M;
  latency?: LatencyResult;
  size: ModelSize;
}

/** Batch-1 latency and throughput of a package's engine (undefined when opts.latency is false). */
export async function packageLatency(pkg: LoadedPackage, engine: InferenceEngine, opts: EvaluateOptions, example?: Float32Array): Promise<LatencyResult | undefined> {
  if (opts.latency === false) return undefined;
  const m = pkg.manifest;
  const lopts = opts.latency ?? {};
  const progress = opts.logger ? createProgress({ label: `latency ${m.name} v${m.version} (${engine.description})`, total: latencyRunCount(lopts), unit: 'runs', logger: opts.logger }) : undefined;
  const latency = await measureLatency(engine, { ...lopts, example: lopts.example ?? example, onRun: () => progress?.tick(1) });
  progress?.done(`p50 ${latency.p50Ms.toFixed(2)} ms, ${latency.throughput.best.imagesPerSecond.toFixed(1)} img/s at batch ${latency.throughput.best.batchSize}`);
  return latency;
}

/**
 * Evaluate a loaded package on samples labelled with the package's label indices (see mapToModelLabels).
 * The engine comes from openEngine(pkg, {engine}); latency is measured on the same engine afterwards.
 */
export async function evaluatePackage(pkg: LoadedPackage, samples: readonly Sample[], opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const m = pkg.manifest;
  const task = requireTask(m, 'evaluate', pkg.dir);
  if (task !== imageClassification || m.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `evaluatePackage reads class folders of images, but this is a ${task.id} model (tabular packages: evaluateTabularClassifier / evaluateTabularRegression)`]);
  if (samples.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', 'no samples were given']);
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger });
  try {
    const label = opts.label ?? `evaluating ${m.name} v${m.version}`;
    const ev = await evaluateEngine(engine, m.input, samples, m.labels, { ...opts, label, softmax: opts.softmax ?? m.output.kind === 'scores' });
    const latency = await packageLatency(pkg, engine, opts, ev.example);
    return {
      model: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256, task: task.id },
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

// Evaluation runs: stream a split through imageBatches (the one preprocessing) and an InferenceEngine, accumulate
// metrics, then measure latency and size. evaluatePackage() is the entry point optimize and CI scripts call.
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { LoadedPackage } from '../artifacts/package.js';
import { imageBatches, type SkippedFile } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import { floatIO, runFloat } from '../runtime/float.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { latencyRunCount, measureLatency, type LatencyOptions, type LatencyResult } from './latency.js';
import { addPredictions, createAccumulator, finalizeMetrics, softmaxRows, type ClassificationMetrics, type MetricsOptions } from '../metrics/classification.js';
import { modelSize, type ModelSize } from './size.js';

/** How many skipped files are listed by path (all are counted). */
export const SKIPPED_LISTED = 20;

export interface EngineEvalOptions extends MetricsOptions {
  batchSize?: number;
  /** Decodes in flight (imageBatches default when absent). */
  concurrency?: number;
  logger?: Logger;
  /** Progress label (default "evaluating"). */
  label?: string;
  /** Apply softmax to the engine output first (models whose output kind is 'scores'). */
  softmax?: boolean;
}

export interface EngineEvaluation {
  metrics: ClassificationMetrics;
  skipped: { count: number; files: SkippedFile[] };
  seconds: number;
  /** The first evaluated example's input (used as a realistic latency input); not serialised. */
  example?: Float32Array;
}

/** Evaluate an engine on samples whose labels index into `labels` (the model's label order). */
export async function evaluateEngine(engine: InferenceEngine, spec: ImageInputSpec, samples: readonly Sample[], labels: readonly string[], opts: EngineEvalOptions = {}): Promise<EngineEvaluation> {
  const k = labels.length;
  const io = floatIO(engine);
  if (io.outputSize !== k && io.outputSize !== -1) {
    throw new MlctlError('PACKAGE_INVALID', [engine.description, `the model outputs ${io.outputSize} values per example but has ${k} labels`]);
  }
  const want = [spec.height, spec.width, 3];
  if (io.inputShape.length !== 3 || io.inputShape.some((d, i) => d !== want[i] && d !== -1)) {
    throw new MlctlError('PACKAGE_INVALID', [engine.description, `the model takes input [${io.inputShape.join(', ')}] but the manifest's input spec is [${want.join(', ')}]`]);
  }
  const acc = createAccumulator(k, opts);
  const skipped: SkippedFile[] = [];
  let skippedCount = 0;
  let example: Float32Array | undefined;
  const start = Date.now();
  const progress = opts.logger ? createProgress({ label: opts.label ?? 'evaluating', total: samples.length, unit: 'img', logger: opts.logger }) : undefined;
  const batches = imageBatches(samples, {
    spec,
    batchSize: Math.max(1, opts.batchSize ?? 16),
    concurrency: opts.concurrency,
    onSkip: (s) => {
      skippedCount++;
      if (skipped.length < SKIPPED_LISTED) skipped.push(s);
      // The first few by name; the rest are counted (and listed in the report) without flooding the log.
      if (skippedCount <= 5) opts.logger?.warn(`skipped ${s.path}: ${s.reason}${skippedCount === 5 ? ' (further skips are counted, not logged)' : ''}`);
      else opts.logger?.debug(`skipped ${s.path}: ${s.reason}`);
      progress?.tick(1);
    },
  });
  for await (const batch of batches) {
    if (!example) example = batch.x.slice(0, spec.height * spec.width * 3);
    const out = await runFloat(engine, batch.x, batch.count);
    const probs = opts.softmax ? softmaxRows(Float32Array.from(out), k) : out;
    addPredictions(acc, probs, batch.labels, batch.paths);
    progress?.tick(batch.count);
  }
  const seconds = (Date.now() - start) / 1000;
  progress?.done(`${acc.count} images${skippedCount ? `, ${skippedCount} skipped` : ''}`);
  if (acc.count === 0) {
    throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', `none of its ${samples.length} image(s) could be decoded (${skipped[0]?.reason ?? 'unknown reason'})`]);
  }
  return { metrics: finalizeMetrics(acc, labels), skipped: { count: skippedCount, files: skipped }, seconds, example };
}

export interface EvaluateOptions extends EngineEvalOptions {
  engine?: EngineChoice;
  /** false skips latency measurement. */
  latency?: LatencyOptions | false;
}

export interface EvaluationResult {
  model: { name: string; version: number; dir: string; manifestSha256: string; task: string };
  engine: { name: string; description: string };
  /** Images evaluated (decoded) and skipped (unreadable). */
  images: { evaluated: number; skipped: number; skippedFiles: SkippedFile[] };
  seconds: number;
  metrics: ClassificationMetrics;
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
  if (m.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `evaluatePackage reads image folders, but this package's input is ${m.input.kind} (tabular packages: evaluateTabularPackage)`]);
  if (m.output.kind === 'regression') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it is a regression model; evaluate computes classification metrics']);
  if (samples.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', 'no samples were given']);
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger });
  try {
    const label = opts.label ?? `evaluating ${m.name} v${m.version}`;
    const ev = await evaluateEngine(engine, m.input, samples, m.labels, { ...opts, label, softmax: opts.softmax ?? m.output.kind === 'scores' });
    const latency = await packageLatency(pkg, engine, opts, ev.example);
    return {
      model: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256, task: m.task },
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

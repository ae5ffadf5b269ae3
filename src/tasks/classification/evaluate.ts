// An image classifier evaluated on labelled images: the split streamed through imageBatches (the one
// preprocessing) and an InferenceEngine, each batch post-processed and added to the metrics by the task. evaluate
// and optimize (its accuracy checks before and after a step) both call this.
import type { ImageInputSpec } from '../../artifacts/manifest.js';
import { imageBatches, type SkippedFile } from '../../data/batches.js';
import { imageTensorShape } from '../../data/preprocess.js';
import type { Sample } from '../../data/imagefolder.js';
import { MlctlError } from '../../errors.js';
import type { InferenceEngine } from '../../runtime/engine.js';
import { floatIO, runFloat } from '../../runtime/float.js';
import type { Logger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { floatOutputs } from '../outputs.js';
import type { MetricsOptions, TaskModel } from '../types.js';
import { imageClassification } from './index.js';
import type { ClassificationMetrics } from './metrics.js';

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
  const want = imageTensorShape(spec);
  if (io.inputShape.length !== 3 || io.inputShape.some((d, i) => d !== want[i] && d !== -1)) {
    throw new MlctlError('PACKAGE_INVALID', [engine.description, `the model takes input [${io.inputShape.join(', ')}] but the manifest's input spec is [${want.join(', ')}]`]);
  }
  const model: TaskModel = { labels: [...labels], output: { name: 'output', kind: opts.softmax ? 'scores' : 'probabilities', size: k } };
  const acc = imageClassification.metrics(model, opts);
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
    acc.add(imageClassification.results(floatOutputs(model, out, batch.count), model), batch.labels, batch.paths);
    progress?.tick(batch.count);
  }
  const seconds = (Date.now() - start) / 1000;
  progress?.done(`${acc.count} images${skippedCount ? `, ${skippedCount} skipped` : ''}`);
  if (acc.count === 0) {
    throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', `none of its ${samples.length} image(s) could be decoded (${skipped[0]?.reason ?? 'unknown reason'})`]);
  }
  return { metrics: acc.finish(), skipped: { count: skippedCount, files: skipped }, seconds, example };
}

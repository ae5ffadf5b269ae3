// Evaluation of tabular (classic) packages on a CSV file: rows encoded with each package's recorded encoding, the
// classic trainer's deterministic split, the package's task post-processing the outputs and accumulating its metrics
// (classification's as for images; R²/MAE/RMSE for regression).
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { splitRows, tabularRowsForPackage } from '../data/tabular.js';
import type { CsvReadOptions } from '../data/csv.js';
import type { Sample } from '../data/imagefolder.js';
import { MlctlError } from '../errors.js';
import { openEngine, type InferenceEngine } from '../runtime/engine.js';
import { floatIO, runFloat } from '../runtime/float.js';
import type { ClassificationMetrics } from '../tasks/classification/metrics.js';
import { tabularClassification } from '../tasks/classification/index.js';
import { requireTask, type AnyTask } from '../tasks/index.js';
import { floatOutputs } from '../tasks/outputs.js';
import { tabularRegression } from '../tasks/regression/index.js';
import type { RegressionMetrics } from '../tasks/regression/metrics.js';
import { createProgress } from '../util/progress.js';
import type { EvalSplit, EvaluationData, SplitParams } from '../data/evaluation.js';
import type { LatencyResult } from '../runtime/latency.js';
import { packageLatency, type EvaluateOptions, type EvaluationResult } from './run.js';
import { modelSize, type ModelSize } from '../artifacts/size.js';

/** A package whose task reads table rows (its examples come from a CSV file, not an image folder). */
export function isTabularPackage(pkg: LoadedPackage): boolean {
  return requireTask(pkg.manifest, 'evaluate', pkg.dir).input === 'tabular';
}

/** One package's encoded rows of the chosen split, in file order. */
export interface TabularRows {
  x: Float32Array;
  width: number;
  /** Class indices into the package's labels (classification). */
  labels?: Int32Array;
  /** Numeric targets (regression). */
  targets?: Float64Array;
  /** "line N" of the CSV for each row: the reference listed for confidently wrong rows. */
  refs: string[];
}

export interface TabularEvaluationData {
  /** Shaped like the image path's data so buildReport/formatText serve both; samples' paths are "line N". */
  data: Omit<EvaluationData, 'layout' | 'plan'> & { layout: 'csv' };
  /** Per package, the same rows (the split is computed once, from the first package). */
  rows: TabularRows[];
}

/**
 * Encode `file` for every package and pick the split the classic trainer held out: splitRows with the recorded
 * seed and validation fraction (stratified by class for classifiers). The trainer has no test split, so `auto` is val.
 */
export async function loadTabularEvaluationData(pkgs: readonly LoadedPackage[], file: string, split: EvalSplit, params: SplitParams, csv: CsvReadOptions = {}): Promise<TabularEvaluationData> {
  const regression = requireTask(pkgs[0]!.manifest, 'evaluate', pkgs[0]!.dir) === tabularRegression;
  const encoded = [];
  for (const pkg of pkgs) {
    const r = await tabularRowsForPackage(pkg.manifest, file, csv);
    if (!r.labels && !r.targets) {
      const target = (pkg.manifest.training?.target as string | undefined) ?? '(unknown)';
      throw new MlctlError('CSV_INVALID', [file, `it has no target column "${target}", so there is nothing to score ${pkg.manifest.name} against`]);
    }
    encoded.push(r);
  }
  const first = encoded[0]!;
  if (params.testSplit > 0) throw new MlctlError('OPTION_CONFLICT', [`tabular packages have no test split (classic train holds out only --validation-split); drop --test-split ${params.testSplit}`]);
  const resolved: Exclude<EvalSplit, 'auto'> = split === 'auto' ? 'val' : split;
  const { train, val } = splitRows(first.rows, regression ? undefined : first.labels, params.validationSplit, params.seed);
  const indices = resolved === 'all' ? Array.from({ length: first.rows }, (_, i) => i) : resolved === 'train' ? train : resolved === 'val' ? val : [];
  if (indices.length === 0) {
    const how =
      resolved === 'test'
        ? 'classic train holds out no test rows; use --split val (the default) or --split all'
        : `--validation-split is ${params.validationSplit} (${first.rows} rows: train ${train.length}, val ${val.length}); use --split all or a --validation-split > 0`;
    throw new MlctlError('DATA_EMPTY_SPLIT', [resolved, how]);
  }
  const rows = encoded.map((r) => {
    const width = r.x.length / r.rows;
    const x = new Float32Array(indices.length * width);
    indices.forEach((i, k) => x.set(r.x.subarray(i * width, (i + 1) * width), k * width));
    return {
      x,
      width,
      ...(r.labels ? { labels: Int32Array.from(indices, (i) => r.labels![i]!) } : {}),
      ...(r.targets ? { targets: Float64Array.from(indices, (i) => r.targets![i]!) } : {}),
      refs: indices.map((i) => `line ${r.lines[i]!}`),
    };
  });
  const classes = regression ? [] : pkgs[0]!.manifest.labels;
  const samples: Sample[] = rows[0]!.refs.map((ref, k) => ({ path: ref, label: rows[0]!.labels?.[k] ?? 0 }));
  const origin = resolved === 'all' ? 'all rows' : `the classic trainer's ${resolved === 'val' ? 'validation' : resolved} rows (--validation-split ${params.validationSplit}, seed ${params.seed})`;
  return { data: { root: path.resolve(file), layout: 'csv', classes, split: resolved, params, samples, origin }, rows };
}

export interface RegressionEvaluationResult {
  model: EvaluationResult['model'];
  engine: EvaluationResult['engine'];
  rows: { evaluated: number };
  seconds: number;
  metrics: RegressionMetrics;
  latency?: LatencyResult;
  size: ModelSize;
}

async function checkedEngine(pkg: LoadedPackage, rows: TabularRows, opts: EvaluateOptions, outputSize: number): Promise<InferenceEngine> {
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger });
  let io: ReturnType<typeof floatIO>;
  try {
    io = floatIO(engine);
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  const shapeOk = io.inputShape.length === 1 && (io.inputShape[0] === rows.width || io.inputShape[0] === -1);
  if ((io.outputSize !== outputSize && io.outputSize !== -1) || !shapeOk) {
    await engine.dispose();
    throw new MlctlError('PACKAGE_INVALID', [engine.description, `the model takes [${io.inputShape.join(', ')}] and outputs ${io.outputSize} values, but its manifest describes ${rows.width} features and ${outputSize} outputs`]);
  }
  return engine;
}

/**
 * Run the engine over every row in batches, each batch post-processed by the task and added to its metrics with the
 * rows' truth (class indices or targets). Returns the metrics and the seconds taken.
 */
async function runRows<M>(pkg: LoadedPackage, task: AnyTask, engine: InferenceEngine, rows: TabularRows, truth: Int32Array | Float64Array, opts: EvaluateOptions): Promise<{ metrics: M; count: number; seconds: number }> {
  const m = pkg.manifest;
  const acc = task.metrics(m, opts);
  const n = rows.refs.length;
  const bs = Math.max(1, opts.batchSize ?? 256);
  const progress = opts.logger ? createProgress({ label: opts.label ?? `evaluating ${m.name} v${m.version}`, total: n, unit: 'rows', logger: opts.logger }) : undefined;
  const start = Date.now();
  for (let s = 0; s < n; s += bs) {
    const count = Math.min(bs, n - s);
    const out = await runFloat(engine, rows.x.subarray(s * rows.width, (s + count) * rows.width), count);
    acc.add(task.results(floatOutputs(m, out, count), m), truth.subarray(s, s + count), rows.refs.slice(s, s + count));
    progress?.tick(count);
  }
  progress?.done(`${n} rows`);
  return { metrics: acc.finish() as M, count: acc.count, seconds: (Date.now() - start) / 1000 };
}

function modelInfo(pkg: LoadedPackage, task: AnyTask): EvaluationResult['model'] {
  const m = pkg.manifest;
  return { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256, task: task.id };
}

/** One package's rows through its engine and task: metrics, then latency and size on the same engine. */
async function evaluateRows<M>(pkg: LoadedPackage, task: AnyTask, rows: TabularRows, truth: Int32Array | Float64Array, opts: EvaluateOptions) {
  const engine = await checkedEngine(pkg, rows, opts, task.outputSize(pkg.manifest));
  try {
    const run = await runRows<M>(pkg, task, engine, rows, truth, opts);
    const latency = await packageLatency(pkg, engine, opts, rows.x.slice(0, rows.width));
    return { model: modelInfo(pkg, task), engine: { name: engine.name, description: engine.description }, ...run, latency, size: await modelSize(pkg, engine.name) };
  } finally {
    await engine.dispose();
  }
}

/** Classification metrics of a tabular classifier, in the image path's result shape (one row = one "image"). */
export async function evaluateTabularClassifier(pkg: LoadedPackage, rows: TabularRows, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const task = requireTask(pkg.manifest, 'evaluate', pkg.dir);
  if (task !== tabularClassification || !rows.labels) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `it is a ${task.id} model; use evaluateTabularRegression`]);
  const r = await evaluateRows<ClassificationMetrics>(pkg, task, rows, rows.labels, opts);
  return { model: r.model, engine: r.engine, images: { evaluated: r.count, skipped: 0, skippedFiles: [] }, seconds: r.seconds, metrics: r.metrics, ...(r.latency ? { latency: r.latency } : {}), size: r.size };
}

/** R², MAE and RMSE (the regression task's metrics, as train reports them) of a tabular regression package. */
export async function evaluateTabularRegression(pkg: LoadedPackage, rows: TabularRows, opts: EvaluateOptions = {}): Promise<RegressionEvaluationResult> {
  const task = requireTask(pkg.manifest, 'evaluate', pkg.dir);
  if (task !== tabularRegression || !rows.targets) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it is not a regression model']);
  const r = await evaluateRows<RegressionMetrics>(pkg, task, rows, rows.targets, opts);
  return { model: r.model, engine: r.engine, rows: { evaluated: r.count }, seconds: r.seconds, metrics: r.metrics, ...(r.latency ? { latency: r.latency } : {}), size: r.size };
}

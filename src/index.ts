// mlctl as a library (`import { train, predict, serve } from 'mlctl'`): the commands as typed functions over the same
// core the CLI runs, with the CLI's defaults (read from its option tables), cancellation by AbortSignal and progress by
// callback. Plain results; failures are MlctlError with the stable codes of src/errors.ts.
import { createRequire } from 'node:module';
import path from 'node:path';
import './engines/index.js'; // the engine kinds register into runtime/engine.ts once
import { loadPackage, type LoadedPackage, type LoadOptions } from './artifacts/package.js';
import { trainCommand } from './cli/commands/train.js';
import type { OptionSpec } from './cli/spec.js';
import { loadEvaluationData, mapToModelLabels, type EvalSplit } from './data/evaluation.js';
import { resolveSplitParams, type SplitParams } from './data/splits.js';
import { evaluatePackage, type EvaluateOptions as PackageEvaluateOptions, type EvaluationResult } from './evaluate/run.js';
import { exportModel, type ExportOptions, type ExportResult } from './export/index.js';
import { quantizePackage, type QuantizeReport } from './optimize/quantize.js';
import type { StepOptions } from './optimize/step.js';
import type { WeightDtype } from './artifacts/weight-quant.js';
import { predict as predictPackage, type PredictOptions as PackagePredictOptions, type PredictResult } from './predict/index.js';
import { selectBackend, currentBackend, type BackendChoice } from './runtime/backend.js';

import { setSessionDefaults, type SessionConfig } from './runtime/device.js';
import { resolveDevice as resolveDeviceNow } from './runtime/ort.js';
import { openEngine, type EngineOptions, type InferenceEngine } from './runtime/engine.js';
import { serveConfig, type ServeConfigInput } from './serve/config.js';
import { startServe, type Serving } from './serve/serve.js';
import type { ModelSource } from './serve/source.js';
import { runTrain } from './train/run.js';
import type { TrainOptions as CoreTrainOptions, TrainResult } from './train/types.js';
import type { EpochMetrics } from './heads/head.js';
import { createLogger, type Logger } from './util/log.js';
import { startWatch, type WatchOptions as CoreWatchOptions, type Watcher, type WatchSummary } from './watch/watcher.js';

export { MlctlError, ERRORS, type ErrorCode } from './errors.js';
export { loadPackage, openEngine, exportModel };
export type { LoadedPackage, LoadOptions, EngineOptions, InferenceEngine, ExportOptions, ExportResult, TrainResult, EvaluationResult, QuantizeReport, PredictResult, Serving, Watcher, WatchSummary, EpochMetrics, Logger, SessionConfig, BackendChoice };
export type { Tensor, TensorSpec, Datatype } from './runtime/tensor.js';
export type { Device, DeviceChoice, GraphOptimization } from './runtime/device.js';
export { parseDevice, formatDevice } from './runtime/device.js';
export { resolveDevice, ortProviders, type ResolvedDevice, type OrtProvider } from './runtime/ort.js';
export type { WatchConfig } from './watch/config/types.js';
// What a caller needs around an engine: the one preprocessing (the model's own input spec), one-float-tensor runs, and
// the TF.js backend choice.
export { imageInputSpec, imageToInput } from './data/preprocess.js';
export type { ImageInputSpec } from './artifacts/manifest.js';
export { runFloat, floatIO } from './runtime/float.js';
export { selectBackend, describeBackend, currentBackend } from './runtime/backend.js';
export { loadWatchConfig } from './watch/config/load.js';

/** What every long-running call takes. */
export interface CallOptions {
  /** Aborting stops the run at its next safe point (a checkpoint, a whole chunk); the promise rejects with the reason. */
  signal?: AbortSignal;
  /** Where mlctl's messages go (default: warnings and errors on stderr). */
  logger?: Logger;
  /** TF.js backend, selected once per process (default auto: tensorflow, wasm, then cpu). */
  backend?: BackendChoice;
  /**
   * ONNX Runtime session settings (device, threads, graph optimisation) for the engines this call opens. Like the
   * TF.js backend they become the process's defaults: later calls without `session` keep them.
   */
  session?: SessionConfig;
}

/** A progress report: what is running, how far it is, and the figures it has. */
export interface Progress {
  phase: 'epoch';
  /** 1-based position over every phase. */
  step: number;
  metrics: EpochMetrics;
}

const quiet = (): Logger => createLogger({ level: 'warn' });

/** The CLI option table's defaults, by option key (camelCase): the library starts from what `mlctl` does. */
function tableDefaults(options: readonly OptionSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of options) {
    if (o.default === undefined) continue;
    const long = /--(?:no-)?([a-z0-9-]+)/.exec(o.flags)![1]!;
    out[long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = o.default;
  }
  return out;
}

async function prepare(opts: CallOptions): Promise<Logger> {
  opts.signal?.throwIfAborted();
  if (!currentBackend() || opts.backend) await selectBackend(opts.backend ?? 'auto');
  // Like the TF.js backend, the session settings are the process's (engines opened later use them too); a device this
  // build cannot run fails here, before anything changes.
  if (opts.session) setSessionDefaults({ ...opts.session, ...(opts.session.device ? { device: resolveDeviceNow(opts.session.device).device } : {}) });
  return opts.logger ?? quiet();
}

function aborted(signal: AbortSignal | undefined): never {
  throw signal?.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

async function pkgOf(model: string | LoadedPackage, access?: LoadOptions): Promise<LoadedPackage> {
  return typeof model === 'string' ? loadPackage(model, access) : model;
}

// ---- train

/** train's options: the data folder, and anything else the CLI takes (its defaults otherwise). */
export type TrainOptions = Partial<Omit<CoreTrainOptions, 'logger' | 'shouldStop' | 'onEpoch' | 'splitGiven'>> & Pick<CoreTrainOptions, 'data'> & CallOptions & {
  /** After every epoch (checkpointed). */
  onProgress?: (p: Progress) => void;
};

/** Transfer learning on an image folder into a model package (`mlctl train`). Aborting keeps a checkpoint (resume: true continues). */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const logger = await prepare(opts);
  const d = tableDefaults(trainCommand.options);
  const { signal, onProgress, backend: _b, session: _s, logger: _l, ...given } = opts;
  const split = resolveSplitParams({ seed: given.seed, validationSplit: given.validationSplit, testSplit: given.testSplit });
  const core = {
    ...d,
    resume: false,
    ...given,
    name: given.name ?? path.basename(path.resolve(given.data)),
    ...split.params,
    splitGiven: split.from,
    logger,
    shouldStop: () => signal?.aborted ?? false,
    onEpoch: (metrics: EpochMetrics, step: number) => onProgress?.({ phase: 'epoch', step, metrics }),
  } as CoreTrainOptions;
  const result = await runTrain(core);
  if (result.interrupted) aborted(signal);
  return result;
}

// ---- evaluate

export interface EvaluateOptions extends Omit<PackageEvaluateOptions, 'logger'>, CallOptions {
  /** Image folder. */
  data: string;
  /** Which split (default: test when the data has one, as the CLI). */
  split?: EvalSplit;
  /** Split parameters (default: the ones the model was trained with). */
  splitParams?: Partial<SplitParams>;
  access?: LoadOptions;
}

/** Accuracy, per-class metrics, confusion and latency of a model on labelled images (`mlctl evaluate`). */
export async function evaluate(model: string | LoadedPackage, opts: EvaluateOptions): Promise<EvaluationResult> {
  const logger = await prepare(opts);
  const pkg = await pkgOf(model, opts.access);
  const params = resolveSplitParams(opts.splitParams ?? {}, pkg.manifest.training).params;
  const data = await loadEvaluationData(opts.data, opts.split ?? 'auto', params);
  opts.signal?.throwIfAborted();
  const { signal: _s, data: _d, split: _p, splitParams: _q, access: _a, backend: _b, session: _c, logger: _l, ...rest } = opts;
  return evaluatePackage(pkg, mapToModelLabels(data, pkg.manifest.labels), { ...rest, logger });
}

// ---- quantize

export interface QuantizeOptions extends Omit<StepOptions, 'logger'>, CallOptions {
  dtype: WeightDtype;
  /** Quantize a package that already is. */
  force?: boolean;
  access?: LoadOptions;
}

/** Weight quantization into a new package version (`mlctl quantize`), gated by an accuracy drop when asked. */
export async function quantize(model: string | LoadedPackage, opts: QuantizeOptions): Promise<QuantizeReport> {
  const logger = await prepare(opts);
  const pkg = await pkgOf(model, opts.access);
  const { signal: _s, dtype, access: _a, backend: _b, session: _c, logger: _l, ...rest } = opts;
  return quantizePackage(pkg, dtype, { ...rest, logger });
}

// ---- predict

export type PredictOptions = Partial<Omit<PackagePredictOptions, 'logger' | 'shouldStop'>> & Pick<PackagePredictOptions, 'inputs'> & CallOptions & { access?: LoadOptions };

/** Batch prediction over files, folders or URLs into CSV/JSONL (`mlctl predict`). Aborting finishes the chunk being written. */
export async function predict(model: string | LoadedPackage, opts: PredictOptions): Promise<PredictResult> {
  const logger = await prepare(opts);
  const pkg = await pkgOf(model, opts.access);
  const { signal, access: _a, backend: _b, session: _c, logger: _l, ...given } = opts;
  const res = await predictPackage(pkg, { format: 'csv', topK: 5, batchSize: 16, ...given, logger, shouldStop: () => signal?.aborted ?? false });
  if (signal?.aborted) aborted(signal);
  return res;
}

// ---- serve

export interface ServeOptions extends ServeConfigInput, CallOptions {
  /** A package, a folder of packages (a repository), or a ModelSource. */
  models: string | ModelSource;
}

/** The inference server (`mlctl serve`): resolves once it listens; aborting the signal drains and closes it. */
export async function serve(opts: ServeOptions): Promise<Serving> {
  const logger = await prepare(opts);
  const { models, signal, backend: _b, session: _c, logger: _l, ...input } = opts;
  const serving = await startServe(serveConfig(models, input), { logger, httpLogger: false });
  signal?.addEventListener('abort', () => void serving.server.shutdown('aborted'), { once: true });
  return serving;
}

// ---- watch

export type WatchOptions = Omit<CoreWatchOptions, 'logger' | 'version'> & CallOptions;

/** Cameras → classifier → rules → notifications (`mlctl watch`): resolves once started; aborting stops it. */
export async function watch(opts: WatchOptions): Promise<Watcher> {
  const logger = await prepare(opts);
  const { signal, backend: _b, session: _c, logger: _l, ...rest } = opts;
  const watcher = await startWatch({ ...rest, logger, version: VERSION });
  signal?.addEventListener('abort', () => void watcher.stop('aborted'), { once: true });
  return watcher;
}

/** This package's version. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

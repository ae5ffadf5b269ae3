// "Give me an engine", in one place: every command that runs a model (train's feature extraction, evaluate, serve,
// optimize, classic, predict, watch) calls openEngine(); engines run named tensors (runtime/tensor.ts). Engine kinds plug in as openers (src/engines/), tried in
// order like the TF.js backends: an explicit --engine fails loudly, `auto` says what it skipped and why.
import type * as tf from '@tensorflow/tfjs';
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { DeviceChoice, GraphOptimization } from './device.js';
import type { Tensor, TensorSpec } from './tensor.js';

export const ENGINES = ['auto', 'onnx', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINES)[number];

/** Where the bytes that run came from, and whether they were checked against a recorded sha256 before running. */
export interface EngineProvenance {
  verified: boolean;
  /** e.g. "package model.onnx (manifest sha256)", "cache onnx/… (recorded sha256)", "in-memory model". */
  source: string;
}

/**
 * A model ready to run. It declares its inputs and outputs as the model does (names, datatypes, shapes with the
 * batch dimension, -1 where dynamic) and runs named feeds into named fetches of any datatype, as ONNX Runtime does.
 * Callers that feed one float tensor and read one back use runFloat() (runtime/float.ts).
 */
export interface InferenceEngine {
  /** The opener that made it: "onnx", "tfjs", "tfjs-thread", "classic". For display and manifests only. */
  readonly name: string;
  /** The model format it runs as KServe/Triton name platforms: "onnxruntime_onnx", "tensorflowjs", "mlctl_classic". */
  readonly platform: string;
  /** Human-readable detail, e.g. "onnxruntime-node 1.23 (cpu, 2 threads)" or "tfjs wasm". */
  readonly description: string;
  /** What the model takes, in its own order. */
  readonly inputs: readonly TensorSpec[];
  /** What it answers, in its own order (non-tensor outputs, e.g. ONNX sequences of maps, are not listed). */
  readonly outputs: readonly TensorSpec[];
  /** True when every input and output has a leading dynamic batch dimension: requests may be stacked along it. */
  readonly batched: boolean;
  readonly provenance: EngineProvenance;
  /**
   * Run one set of feeds (every declared input, by name, in any order; numeric data is used in place, never copied
   * by the engine) and answer the `fetches` asked for (default: every declared output), in that order.
   */
  run(feeds: readonly Tensor[], fetches?: readonly string[], opts?: RunOptions): Promise<Tensor[]>;
  /** Frees what the engine owns. A model it borrowed (EngineSource "model" without `owned`) is never disposed by it. */
  dispose(): Promise<void>;
}

export interface RunOptions {
  /**
   * The caller is done with the feeds' arrays: an engine in a worker thread takes their buffers (transferred, no
   * copy) and leaves them detached. Without it a threaded engine copies every feed first (serve's batches hand over
   * the buffers they made themselves).
   */
  handOver?: boolean;
}

/** What to run. A bare LoadedPackage is accepted wherever a source is, as { kind: 'package', pkg }. */
export type EngineSource =
  | { kind: 'package'; pkg: LoadedPackage }
  /** An ONNX model file or its bytes; with `sha256`, bytes that do not hash to it never run. */
  | { kind: 'onnx'; model: string | Uint8Array; sha256?: string; label?: string }
  /**
   * An in-memory TF.js model. Borrowed unless `owned`: the caller keeps ownership and disposes it; with `owned` the
   * engine takes it over (and ONNX frees it as soon as it is converted). `identity` names its content for caches
   * (e.g. the feature session's backbone identity); without it the content is hashed.
   */
  | { kind: 'model'; model: tf.LayersModel; owned?: boolean; identity?: string; label?: string };

export interface EngineOptions {
  engine?: EngineChoice;
  logger?: Logger;
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /** ONNX Runtime inter-op threads (default 1: sequential execution). */
  interOpThreads?: number;
  /** ONNX Runtime graph optimisation level (default all). */
  graphOptimization?: GraphOptimization;
  /**
   * Where ONNX Runtime runs: "cpu", "cuda:1", "auto" … (runtime/device.ts); default: the process's (cpu unless the CLI
   * or setSessionDefaults chose another). TF.js engines run on the CPU only and refuse any other device.
   */
  device?: string | DeviceChoice;
  /** Run the engine (ONNX Runtime, TF.js) in a worker thread so batches never block the event loop (serve). */
  worker?: boolean;
  /** Cache root for converted models (default: the mlctl cache; see artifacts/cache.ts). */
  cacheRoot?: string;
  /** Keep conversions in memory, never in the cache (encrypted packages: plaintext weights never reach disk). */
  memoryOnly?: boolean;
}

/** An engine kind. `accepts` is cheap and synchronous; `open` may load heavy modules (onnxruntime, tfjs). */
export interface EngineOpener {
  name: string;
  /** --engine values that may select it; `auto` includes it when listed here. */
  choices: readonly EngineChoice[];
  /** True when it can run this source with these options, else why not (shown when `auto` skips it). */
  accepts(source: EngineSource, opts: EngineOptions): true | string;
  open(source: EngineSource, opts: EngineOptions): Promise<InferenceEngine>;
}

const openers: EngineOpener[] = [];

/** Add an engine kind; earlier registrations are tried first. Re-registering a name replaces it in place. */
export function registerEngineOpener(opener: EngineOpener): void {
  const i = openers.findIndex((o) => o.name === opener.name);
  if (i >= 0) openers[i] = opener;
  else openers.push(opener);
}

export function engineOpeners(): readonly EngineOpener[] {
  return openers;
}

export function toSource(source: EngineSource | LoadedPackage): EngineSource {
  return 'kind' in source && typeof source.kind === 'string' && !('manifest' in source) ? source : { kind: 'package', pkg: source as LoadedPackage };
}

export function describeSource(source: EngineSource): string {
  switch (source.kind) {
    case 'package':
      return `${source.pkg.manifest.name} v${source.pkg.manifest.version}`;
    case 'onnx':
      return source.label ?? (typeof source.model === 'string' ? source.model : `ONNX model (${source.model.byteLength} bytes)`);
    case 'model':
      return source.label ?? `model ${source.model.name}`;
  }
}

/** Failures no other engine can get around: the package itself is wrong. */
const NOT_ENGINE_FAULTS = new Set<string>(['DEVICE_UNAVAILABLE', 'PACKAGE_INVALID', 'PACKAGE_HASH_MISMATCH', 'PACKAGE_NOT_FOUND', 'ONNX_UNVERIFIED', 'MODEL_KEY_REQUIRED', 'MODEL_KEY_MISMATCH', 'DECRYPTION_FAILED']);

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);

/**
 * Open the engine that runs `source`. `auto` tries every registered opener that accepts the source, in order, and
 * logs (debug) what it skipped; a named engine that cannot run it is an ENGINE_UNAVAILABLE error with the reason.
 */
export async function openEngine(sourceOrPackage: EngineSource | LoadedPackage, opts: EngineOptions = {}): Promise<InferenceEngine> {
  const source = toSource(sourceOrPackage);
  const choice = opts.engine ?? 'auto';
  const what = describeSource(source);
  const candidates = openers.filter((o) => o.choices.includes(choice));
  if (!openers.length) throw new MlctlError('ENGINE_UNAVAILABLE', [choice, what, 'no engine is registered (import src/engines/index.js once at start-up)']);
  const skipped: string[] = [];
  for (const opener of candidates) {
    const ok = opener.accepts(source, opts);
    if (ok !== true) {
      skipped.push(`${opener.name}: ${ok}`);
      continue;
    }
    try {
      const engine = await opener.open(source, opts);
      if (skipped.length) opts.logger?.debug(`engine for ${what}: ${opener.name} (skipped ${skipped.join('; ')})`);
      return engine;
    } catch (err) {
      // A named engine's failure, or a package that fails its own checks, is reported as it is.
      if (choice !== 'auto' || (err instanceof MlctlError && NOT_ENGINE_FAULTS.has(err.code))) throw err;
      skipped.push(`${opener.name}: ${firstLine(err)}`);
      opts.logger?.warn(`${opener.name} engine unavailable for ${what} (${firstLine(err)}); trying the next engine`);
    }
  }
  // Nobody took over a model handed to the engines: release it with the failure.
  if (source.kind === 'model' && source.owned) source.model.dispose();
  throw new MlctlError('ENGINE_UNAVAILABLE', [choice, what, skipped.join('; ') || `no engine offers --engine ${choice}`]);
}

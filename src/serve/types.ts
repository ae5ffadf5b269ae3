// The contract between mlctl serve's parts: REST routes, gRPC service, auth/audit and hot reload all talk to
// a ModelRepository (loaded packages + batched inference). serve/ implements it; everything else codes against it.
import type { LoadedPackage } from '../artifacts/package.js';
import type { Manifest } from '../artifacts/manifest.js';
import type { ImageGeometry } from '../data/preprocess.js';
import type { EngineProvenance } from '../runtime/engine.js';
import type { Tensor, TensorSpec } from '../runtime/tensor.js';
import type { DetectionLimits } from '../tasks/index.js';
import type { ModelSource, SourceVersion } from './source.js';
import type { ServeMetrics } from './metrics.js';

/**
 * A request's input and a response's output are the runtime's named tensors (any V2 datatype, full shape with the
 * batch dimension). BYTES inputs of image models are encoded images, one per element.
 */
export type InferInput = Tensor;
export type InferOutput = Tensor;

export interface InferContext {
  requestId: string;
  /** Identifies the API key used (never the key itself), for audit logs. */
  keyId?: string;
  /** The models that key may use (undefined: every model, or keys are off): infer refuses any other (403). */
  keyModels?: readonly string[];
  clientAddress?: string;
  /**
   * Who the batching queue shares fairly between (with keyId taking precedence): the connection, e.g.
   * "127.0.0.1:53122", so pipelined requests on one connection queue behind each other, not ahead of everyone.
   */
  connection?: string;
  /**
   * This call carries one example of a client request that a front end sent one by one (POST /predict to a model
   * without a batch dimension): its place in that request (from 0) and the request's size, which its audit line and
   * errors name ("image 2 of 3").
   */
  part?: { index: number; of: number };
}

/** A model version found on disk that could not be served (failed verification, bad model file …). */
export interface UnavailableVersion {
  name: string;
  version: number;
  dir: string;
  reason: string;
}

export interface ServedModel {
  name: string;
  version: number;
  manifest: Manifest;
  manifestSha256: string;
  /** True once loaded and warmed up. */
  ready: boolean;
  /** Engine in use, e.g. "onnx" or "tfjs". */
  engine: string;
  /** The format that runs, as V2 metadata names it (engine.platform). */
  platform: string;
  /** What the engine runs and whether those bytes were checked (audit logs). */
  provenance: EngineProvenance;
  package: LoadedPackage;
  /**
   * What it is served as: the tensors V2 metadata, TF Serving's signatures, Triton's config and request validation
   * describe (batch dimension first, -1 where dynamic). An image or tabular model's one FP32 input and output as its
   * manifest names them (image models also take encoded images as the BYTES input "image"); a generic tensor model's
   * every input and output as the model declares them.
   */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Every input and output has a leading batch dimension: requests are batched together. */
  batched: boolean;
  /** How the weights are stored (fp32, float16, int8-qdq …), read when it was loaded: Triton's config reports it. */
  weights: string;
  /** Where it was loaded from; re-checked by the audit log against what is served. */
  source: SourceVersion;
}

export interface InferResult {
  model: ServedModel;
  outputs: InferOutput[];
  /** Wall time spent in the batch that carried this request (ms). */
  inferenceMs: number;
  /** Examples in the batch that carried it (the largest, when it was split over several). */
  batchSize?: number;
  /** Where the request's time went (ms): decoding/preprocessing its inputs, waiting in the queue, the engine run. */
  timing?: { inputMs: number; queueMs: number; inferMs: number };
  /** Encoded images sent: where each picture landed in the model input, for tasks answering in picture pixels (boxes). */
  images?: ImageGeometry[];
}

/** One engine run of the batching queue (what Triton counts as an execution). */
export interface BatchEvent {
  name: string;
  version: number;
  size: number;
  seconds: number;
}

/** What a repository tells its observers (the audit log) about each infer call, whichever transport carried it. */
export interface InferEvent {
  name: string;
  version: number | undefined;
  inputs: InferInput[];
  ctx: InferContext;
  /** Set when the call succeeded. */
  result?: InferResult;
  /** Set when the call failed (bad input, overload, engine failure). */
  error?: unknown;
  latencyMs: number;
}

/**
 * The one contract between mlctl serve's parts (serve/repository.ts implements it): REST routes, the gRPC service,
 * auth/audit and hot reload all talk to it. Loading and unloading at runtime (hot reload, model control), queue
 * depth, observers and shutdown are part of it, so no part needs to cast.
 */
export interface ModelRepository {
  /** Every loaded model version. */
  list(): ServedModel[];
  /** A model by name and optional version (latest when omitted); undefined when unknown. */
  get(name: string, version?: number): ServedModel | undefined;
  /** Run inference through the batching queue. Throws MlctlError (INPUT_INVALID, QUEUE_FULL, SHUTTING_DOWN …) for bad input or overload. */
  infer(name: string, version: number | undefined, inputs: InferInput[], ctx: InferContext): Promise<InferResult>;
  /** Ready = at least one model loaded and every loaded model warmed up. */
  ready(): boolean;
  /**
   * Load every version a source holds (a ref string is a package dir, a model dir with numeric versions, a root of
   * model dirs, or NAME[@V|:TAG]); each is warmed before it becomes visible.
   */
  load(ref: string | ModelSource): Promise<ServedModel[]>;
  /**
   * Load every package at `ref` one by one: versions that fail (a tampered shard, a bad model file) are reported in
   * `failed` and by unavailable(), the rest serve. Throws the first failure only when no version loads.
   */
  loadEach(ref: string | ModelSource): Promise<{ loaded: ServedModel[]; failed: UnavailableVersion[] }>;
  /** Versions that failed to load at start-up (loadEach), with the reason. */
  unavailable(): UnavailableVersion[];
  /** Hide a version (or every version of `name`) from new requests, finish its queued work, then free its engine. */
  unload(name: string, version?: number): Promise<ServedModel[]>;
  /** Examples waiting in the batching queues (all models). */
  queueDepth(): number;
  /** Refuse new work, finish queued batches and free every engine. */
  close(): Promise<void>;
  /**
   * Requests on their way to infer() (+1 when an inference request arrives at a front end, -1 once it is answered).
   * With none on their way a lone request runs at once instead of waiting --max-delay-ms for company.
   */
  expectRequests(delta: number): void;
  /** Call `listener` after every infer call (success or failure); returns the unsubscribe function. */
  onInfer(listener: (event: InferEvent) => void): () => void;
  /** Call `listener` after every engine run of a batching queue; returns the unsubscribe function. */
  onBatch(listener: (event: BatchEvent) => void): () => void;
  /** The batching settings every model is served with (--max-batch, --max-delay-ms, --instances). */
  readonly batching: { maxBatch: number; maxDelayMs: number; instances: number };
  /** Where the batching queues record batch size, inference time and queue depth; servers export it by default. */
  readonly metrics: ServeMetrics;
}

/** What the drain on close did: read by start.ts for the shutdown result. */
export interface DrainState {
  timeoutMs: number;
  /** False once the drain timeout cut connections that were still busy. */
  drained: boolean;
}

/** Triton's StatisticDuration: how many, and their cumulative time in nanoseconds. */
export interface StatisticDuration {
  count: number;
  ns: number;
}

/** Triton's ModelStatistics, as REST JSON and as the gRPC message object (counts and nanoseconds as numbers). */
export interface ModelStat {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit' | 'cache_miss', StatisticDuration>;
  batch_stats: Array<{ batch_size: number; compute_input: StatisticDuration; compute_infer: StatisticDuration; compute_output: StatisticDuration }>;
  memory_usage: never[];
  response_stats: Record<string, never>;
}

export interface TritonStats {
  /** Statistics of loaded versions: all, one model's, or one version's (the caller checks the model exists). */
  modelStats(name?: string, version?: number): ModelStat[];
  close(): void;
}

/** Model control as the routes and the gRPC service use it (serve/reload.ts implements it for the served directory). */
export interface ModelControl {
  /** --allow-model-control: load/unload answer 403 MODEL_CONTROL_DISABLED without it (the index is always open). */
  enabled: boolean;
  /** Load a model's latest (or given) version from the served directory. */
  load(name: string, version?: number): Promise<ServedModel>;
  /** Unload every version of a model. */
  unload(name: string): Promise<ServedModel[]>;
  /** Complete package versions found on disk under the served directory, loaded or not. */
  available(): Promise<Array<{ name: string; version: number }>>;
  /** Versions hot reload or model control refused to load, with the reason. */
  refused(): UnavailableVersion[];
  /** Look for new versions now, as the watcher's poll does; resolves once a whole scan begun after the call is done. */
  scan(): Promise<void>;
}

export interface ServeState {
  repo: ModelRepository;
  /** Triton statistics of every loaded version (serve/triton-stats.ts). */
  stats: TritonStats;
  /** Set by the model-control plugin: the repository index, load and unload (REST and gRPC). */
  modelControl?: ModelControl;
  metrics: ServeMetrics;
  bodyLimit: number;
  topK: number;
  /** Detection models' /predict defaults (serve --min-score, --max-detections); unset: each manifest's. */
  detection: DetectionLimits;
  maxFiles: number;
  /** V2 protocol extensions advertised by GET /v2 and gRPC ServerMetadata; plugins add theirs when registered. */
  extensions: string[];
  /** False once close() has begun: readiness fails and responses close their connections. */
  accepting: () => boolean;
  drain: DrainState;
  /** Facts plugins report for the start-up line and `mlctl serve --json` (e.g. {grpc: "127.0.0.1:8001"}). */
  info: Record<string, unknown>;
  /** True with API keys on: errors name no model the caller did not name (no "loaded models: …" lists). */
  discreet: boolean;
  /** See ServerOptions.trustProxyHeader (lower case). */
  trustProxyHeader?: string;
}

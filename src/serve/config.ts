// The typed configuration of mlctl serve: what `mlctl serve` builds from its options (cli/run/serve.ts) and what
// library users and tests build directly (serveConfig() fills in the defaults). Values are parsed — bytes,
// milliseconds, origins, rate limits — and files are named, not read: startServe() reads them before loading models.
import type { LoadOptions } from '../artifacts/package.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { DetectionLimits } from '../tasks/index.js';
import type { RateLimit } from './auth.js';
import type { VersionPolicy } from './discover.js';
import type { ModelSource } from './source.js';
import type { TlsFlags } from './tls.js';

export interface ServeConfig {
  /** What to serve: a package, a model directory, a folder of models, NAME[@VERSION|:TAG] — or any ModelSource. */
  models: string | ModelSource;
  host: string;
  /** TCP port (0 = any free port). */
  port: number;
  engine: EngineChoice;
  /** Every version found, or only the latest of each model (the newest a quality gate did not reject). */
  versions: VersionPolicy;
  /** Versions a quality gate marked rejected may load (--allow-rejected); they are refused otherwise. */
  allowRejected?: boolean;
  batching: {
    /** Most examples per engine run (1 = no batching). */
    maxBatch: number;
    /** Longest wait for a batch to fill (0 = run as soon as the engine is free). */
    maxDelayMs: number;
    /** Most examples waiting per model version before requests get QUEUE_FULL. */
    maxQueue: number;
    /** Engine instances per model version, each running one batch at a time (Triton's instance_group count). */
    instances: number;
  };
  limits: {
    /** Largest request body and uploaded file (bytes). */
    bodyLimit: number;
    /** Largest image accepted (pixels), checked from its header before decoding. */
    maxPixels: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    drainTimeoutMs: number;
    /** Most open connections from one client address (0 = no cap). */
    maxConnectionsPerClient: number;
  };
  /** Labels /predict answers per image. */
  topK: number;
  /** Detection models' /predict: score threshold and most boxes per image (absent: each model's manifest). */
  detection?: DetectionLimits;
  /** Signature rules and the model key every load (start-up, hot reload, model control) goes through. */
  access?: Omit<LoadOptions, 'verify'>;
  security: {
    /** HTTPS and gRPC over TLS: certificate and key PEM files (both, checked when read); `ca` requires client certificates (mTLS). */
    tls?: TlsFlags;
    /** API keys: entries as --api-key takes them, and/or a file of them. */
    apiKeys?: { keys?: string; file?: string };
    /** Requests per key (per client address without keys). */
    rateLimit?: RateLimit;
    /** Origins allowed to call from browsers ("*" for any); no CORS when absent. */
    cors?: string[];
    /** One JSON line per prediction and model load, rotated by size. */
    audit?: { file: string; maxBytes: number; keep: number };
    /** Header a trusted reverse proxy sets to the client's address. */
    trustProxyHeader?: string;
  };
  /** The V2 gRPC service on a port of its own. */
  grpc?: { port: number; maxMessageBytes: number };
  /** GET /metrics without a key on a port of its own. */
  metricsPort?: number;
  /** The served model directory: hot reload (--watch) and model control. */
  modelDir: {
    /** Re-scan the directory this often (ms) and load new versions; undefined = no watching. */
    watchIntervalMs?: number;
    /** POST /v2/repository/models/{name}/load|unload. */
    control: boolean;
    /** After a switch keep only the newest N versions of that model loaded. */
    keepVersions?: number;
  };
  web: { ui: boolean; docs: boolean };
}

/** Everything optional about a configuration, by section: what serveConfig() accepts. */
export type ServeConfigInput = Partial<Omit<ServeConfig, 'batching' | 'limits' | 'security' | 'modelDir' | 'web'>> & {
  batching?: Partial<ServeConfig['batching']>;
  limits?: Partial<ServeConfig['limits']>;
  security?: ServeConfig['security'];
  modelDir?: Partial<ServeConfig['modelDir']>;
  web?: Partial<ServeConfig['web']>;
};

/** The defaults `mlctl serve` documents (see its option table). */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 5000,
  engine: 'auto',
  versions: 'all',
  batching: { maxBatch: 8, maxDelayMs: 5, maxQueue: 64, instances: 1 },
  limits: { bodyLimit: 10 * 1024 * 1024, maxPixels: 64 * 1024 * 1024, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5000, drainTimeoutMs: 10_000, maxConnectionsPerClient: 64 },
  topK: 5,
  grpcMaxMessageBytes: 64 * 1024 * 1024,
  audit: { maxBytes: 100 * 1024 * 1024, keep: 5 },
  watchIntervalMs: 2000,
} as const;

/** A whole configuration from the parts a caller cares about; the rest are the CLI's defaults. */
export function serveConfig(models: string | ModelSource, input: ServeConfigInput = {}): ServeConfig {
  const d = SERVE_DEFAULTS;
  return {
    ...input,
    models,
    host: input.host ?? d.host,
    port: input.port ?? d.port,
    engine: input.engine ?? d.engine,
    versions: input.versions ?? d.versions,
    batching: { ...d.batching, ...input.batching },
    limits: { ...d.limits, ...input.limits },
    topK: input.topK ?? d.topK,
    security: input.security ?? {},
    modelDir: { control: false, ...input.modelDir },
    web: { ui: true, docs: true, ...input.web },
  };
}

// Starting mlctl serve from its typed configuration (config.ts): the files the configuration names are read first
// (certificates, API keys — failures in milliseconds, before minutes of loading), then every version the model
// source holds is loaded and warmed (versions that fail are reported unavailable while the rest serve), then the
// plugins are assembled and the server listens. What `mlctl serve` runs, and what library users and tests call.
import type { FastifyServerOptions } from 'fastify';
import type { LoadedPackage } from '../artifacts/package.js';
import { loadPackage } from '../artifacts/package.js';
import type { EngineOptions, InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { assembleServe } from './assemble.js';
import type { ServeConfig } from './config.js';
import { createServeMetrics, type ServeMetrics } from './metrics.js';
import { createRepository } from './repository.js';
import { prepareSecurity, type PreparedSecurity } from './security.js';
import { startServer, type RunningServer } from './start.js';
import type { ModelRepository, ServedModel, UnavailableVersion } from './types.js';

export interface ServeDeps {
  logger: Logger;
  /** Fastify/pino logger options for the HTTP side (default JSON lines at info on stderr; false silences). */
  httpLogger?: FastifyServerOptions['logger'];
  /** Where requests and batches are counted (default a fresh registry with process metrics). */
  metrics?: ServeMetrics;
  /** Engine opener (default runtime/engine.ts openEngine). */
  openEngine?: (pkg: LoadedPackage, opts: EngineOptions) => Promise<InferenceEngine>;
  /** Run engines in worker threads (default true). */
  engineThread?: boolean;
  /** The configuration's security files, already read (prepareSecurity); read now when absent. */
  prepared?: PreparedSecurity;
}

export interface Serving {
  server: RunningServer;
  repo: ModelRepository;
  /** Versions that serve, and versions that could not be loaded (with the reason). */
  loaded: ServedModel[];
  failed: UnavailableVersion[];
}

export async function startServe(config: ServeConfig, deps: ServeDeps): Promise<Serving> {
  const { logger } = deps;
  const prepared = deps.prepared ?? (await prepareSecurity(config.security));
  const access = config.access;
  const repo = createRepository({
    engine: config.engine,
    ...config.batching,
    maxPixels: config.limits.maxPixels,
    versions: config.versions,
    allowRejected: Boolean(config.allowRejected),
    logger,
    metrics: deps.metrics ?? createServeMetrics(),
    // Every load (start-up, --watch, model control) passes the same signature check and gets the model key.
    loadPackage: (dir) => loadPackage(dir, access),
    ...(deps.openEngine ? { openEngine: deps.openEngine } : {}),
    ...(deps.engineThread !== undefined ? { engineThread: deps.engineThread } : {}),
  });
  try {
    // Versions that fail verification are reported unavailable while the others serve; none loading is a failure.
    const { loaded, failed } = await repo.loadEach(config.models);
    const assembled = await assembleServe(config, { repo, logger, prepared });
    const { limits } = config;
    const server = await startServer(repo, {
      port: config.port,
      host: config.host,
      bodyLimit: limits.bodyLimit,
      drainTimeoutMs: limits.drainTimeoutMs,
      requestTimeoutMs: limits.requestTimeoutMs,
      keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
      maxConnectionsPerClient: limits.maxConnectionsPerClient,
      topK: config.topK,
      ...(config.detection ? { detection: config.detection } : {}),
      ...(deps.httpLogger !== undefined ? { logger: deps.httpLogger } : {}),
      ...assembled,
    });
    return { server, repo, loaded, failed };
  } catch (err) {
    // The engines' worker threads would keep a process whose start failed alive: free them, then report the error.
    await Promise.race([repo.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
    throw err;
  }
}

// The mlctl serve HTTP app (Fastify 5): builds routes, error mapping, request ids, logs and metrics around a
// ModelRepository without listening, so tests, `mlctl serve` and the security layer (auth, TLS, audit) share it.
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions, type onRequestHookHandler } from 'fastify';
import multipart from '@fastify/multipart';
import { randomUUID } from 'node:crypto';
import { MlctlError } from '../errors.js';
import { badRequest, httpStatusOf, isExposed, unsupportedMediaType } from './errors.js';
import { createServeMetrics, type ServeMetrics } from './metrics.js';
import { predictRoutes } from './routes/predict.js';
import { tfServingRoutes } from './routes/tfserving.js';
import { v2Routes } from './routes/v2.js';
import { metricsSchema } from './routes/schemas.js';
import type { ManagedModelRepository, ModelRepository } from './types.js';

export { SERVER_VERSION } from './routes/common.js';

/**
 * What a route is, in `request.routeOptions.config.kind`: lets auth leave health probes, /metrics and the pages (the
 * try-it page's files, API docs: no model data) open and guard the rest.
 */
export type RouteKind = 'health' | 'metadata' | 'inference' | 'metrics' | 'page';

declare module 'fastify' {
  interface FastifyContextConfig {
    kind?: RouteKind;
  }
}

export interface ServerOptions {
  /** Largest request body (bytes) for JSON, raw images and each multipart file. Default 10 MiB. */
  bodyLimit?: number;
  /** Labels returned per image by /predict and :classify. Default 5. */
  topK?: number;
  /** Most images in one multipart request. Default 64. */
  maxFiles?: number;
  metrics?: ServeMetrics;
  /** Fastify/pino logger options; default JSON lines at info on stderr. `false` silences. */
  logger?: FastifyServerOptions['logger'];
  /** Extra Fastify constructor options (e.g. `https` for TLS, `http2`). */
  fastify?: Partial<FastifyServerOptions> & { https?: Record<string, unknown> | null };
  /** Hooks run first on every request (auth, rate limiting) — before body parsing. */
  onRequest?: onRequestHookHandler[];
  /**
   * Called after core setup and before any route is added: register plugins, decorators and hooks here so
   * they cover every mlctl route (e.g. the security layer's auth, CORS, audit and model-control routes).
   */
  beforeRoutes?: (app: FastifyInstance) => void;
  /** Extensions advertised by GET /v2 in addition to mlctl's own. */
  extensions?: string[];
  /** Reports false while the server drains on shutdown: readiness fails and responses close their connections. */
  accepting?: () => boolean;
  /**
   * Plugins registered before anything else (serve/web.ts: the OpenAPI collector must see every route). Hooks added
   * later do not reach routes these plugins add themselves: keep their routes in beforeRoutes.
   */
  firstPlugins?: FastifyPluginAsync[];
}

export interface ServeState {
  repo: ModelRepository;
  metrics: ServeMetrics;
  bodyLimit: number;
  topK: number;
  maxFiles: number;
  extensions: string[];
  accepting: () => boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** mlctl serve's shared state (repository, metrics, limits). */
    mlctl: ServeState;
  }
}

export function buildServer(repo: ModelRepository, opts: ServerOptions = {}): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 10 * 1024 * 1024;
  const state: ServeState = {
    repo,
    metrics: opts.metrics ?? (repo as ManagedModelRepository).metrics ?? createServeMetrics(),
    bodyLimit,
    topK: opts.topK ?? 5,
    maxFiles: opts.maxFiles ?? 64,
    extensions: ['binary_tensor_data', 'tfserving_rest', ...(opts.extensions ?? [])],
    accepting: opts.accepting ?? (() => true),
  };
  const app = Fastify({
    logger: opts.logger ?? { level: 'info', stream: process.stderr },
    bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // One access line per request is written in onResponse (with route and latency) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // A request that fails its route's JSON schema is 400 INPUT_INVALID, like every other malformed request.
    schemaErrorFormatter: (errors, dataVar) => badRequest(`invalid request: ${errors.map((e) => `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')}`),
    forceCloseConnections: 'idle',
    ...(opts.fastify as Partial<FastifyServerOptions>),
  }) as unknown as FastifyInstance;
  app.decorate('mlctl', state);
  for (const plugin of opts.firstPlugins ?? []) void app.register(plugin);

  // Announce inference requests to the batching queues as soon as their headers arrive (see expectRequests).
  const expecting = new WeakSet<object>();
  const settle = (request: { raw: object }) => {
    if (expecting.delete(request.raw)) (repo as ManagedModelRepository).expectRequests?.(-1);
  };
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.kind === 'inference' && (repo as ManagedModelRepository).expectRequests) {
      expecting.add(request.raw);
      (repo as ManagedModelRepository).expectRequests!(1);
    }
  });
  app.addHook('onRequestAbort', async (request) => settle(request));
  for (const hook of opts.onRequest ?? []) app.addHook('onRequest', hook);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // While draining, keep-alive sockets must not outlive their last response or the drain waits for them.
    if (!state.accepting()) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    settle(request);
    const route = request.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    state.metrics.requests.inc({ protocol: 'rest', route, status });
    state.metrics.requestSeconds.observe({ protocol: 'rest', route }, reply.elapsedTime / 1000);
    const line = { method: request.method, url: request.url, route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.ip };
    if (reply.statusCode >= 500) request.log.error(line, 'request failed');
    else request.log.info(line, 'request completed');
  });

  app.setErrorHandler((err, request, reply) => {
    const status = httpStatusOf(err);
    if (err instanceof MlctlError && err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    if (status === 413) reply.header('connection', 'close');
    if (status >= 500 && !isExposed(err)) {
      request.log.error({ err }, 'unexpected error');
      return reply.code(status).send({ error: `internal error (request id ${request.id})`, code: 'INTERNAL' });
    }
    if (status === 413 && !(err instanceof MlctlError)) return reply.code(413).send({ error: `the request body is larger than the ${bodyLimit}-byte limit (--body-limit)`, code: 'PAYLOAD_TOO_LARGE' });
    return reply.code(status).send({ error: (err as Error).message, ...(err instanceof MlctlError ? { code: err.code } : {}) });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}: see GET /v2, POST /predict, POST /v2/models/{name}/infer`, code: 'ROUTE_NOT_FOUND' });
  });

  void app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: bodyLimit, files: state.maxFiles, fields: 16, parts: state.maxFiles + 16, fieldSize: 1024 },
  });
  // Raw image bodies (Content-Type image/*) and V2 binary-extension bodies arrive as one Buffer.
  const asBuffer = (_req: unknown, body: string | Buffer, done: (err: null, body: Buffer) => void) => done(null, body as Buffer);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit }, asBuffer);
  app.addContentTypeParser(/^image\/[\w.+-]+$/, { parseAs: 'buffer', bodyLimit }, asBuffer);
  // Binary-extension clients do not all say application/octet-stream: the Inference-Header-Content-Length header
  // is what marks such a body. Any other unknown content type stays 415.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    if (req.headers['inference-header-content-length'] !== undefined) return done(null, body as Buffer);
    const err = unsupportedMediaType(`unsupported Content-Type "${req.headers['content-type'] ?? ''}": send JSON, multipart/form-data, image/* or application/octet-stream`);
    done(err, undefined as unknown as Buffer);
  });

  opts.beforeRoutes?.(app);

  // Every route lives in a plugin, so plugins registered first (the OpenAPI collector) see it.
  void app.register(async (scoped) => {
    scoped.get('/metrics', { config: { kind: 'metrics' }, schema: metricsSchema }, async (_request, reply) => {
      reply.header('content-type', state.metrics.registry.contentType);
      return state.metrics.registry.metrics();
    });
  });
  void app.register(predictRoutes);
  void app.register(v2Routes);
  void app.register(tfServingRoutes);
  return app;
}

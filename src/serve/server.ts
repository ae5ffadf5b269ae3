// The mlctl serve HTTP app (Fastify 5), assembled from plugins: the core (state, request ids, access logs, metrics,
// error mapping, body parsers, drain on close), the API description when docs are on, then the plugins the caller
// gives (hygiene, auth, audit, model control, gRPC, pages — see assemble.ts) in the order their declared
// dependencies need, then the routes. buildServer never listens: tests inject, start.ts listens.
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback, type FastifyPluginOptions, type FastifyServerOptions, type onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import multipart from '@fastify/multipart';
import { randomUUID } from 'node:crypto';
import { MlctlError } from '../errors.js';
import { UPLOAD_TEXT_LIMITS } from './codec.js';
import { badRequest, httpStatusOf, isExposed, unsupportedMediaType } from './errors.js';
import type { ServeMetrics } from './metrics.js';
import { openApiCollector } from './openapi.js';
import { serveRoutes } from './routes/index.js';
import { TRITON_EXTENSIONS } from './triton.js';
import { createTritonStats } from './triton-stats.js';
import type { DetectionLimits } from '../tasks/index.js';
import type { ModelRepository, ServeState } from './types.js';

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

/**
 * A plugin and its options, registered by buildServer between the core and the routes. A plugin made with
 * fastify-plugin names itself and the plugins it must follow (`dependencies`); buildServer registers every plugin
 * after those it depends on, and fastify-plugin refuses to start when one of them is missing.
 */
export interface ServePlugin {
  plugin: FastifyPluginAsync | FastifyPluginCallback;
  opts: FastifyPluginOptions;
}

/** Typed constructor for a ServePlugin list entry: the options must be the plugin's own. */
export function plug<O extends FastifyPluginOptions>(plugin: FastifyPluginAsync<O> | FastifyPluginCallback<O>, opts: O): ServePlugin {
  return { plugin: plugin as FastifyPluginAsync, opts };
}

export interface ServerOptions {
  /** Largest request body (bytes) for JSON, raw images and each multipart file. Default 10 MiB. */
  bodyLimit?: number;
  /** Labels returned per image by /predict and :classify. Default 5. */
  topK?: number;
  /** Detection models' /predict defaults (score threshold, most boxes); absent: each manifest's. */
  detection?: DetectionLimits;
  /** Most images in one multipart request. Default 64. */
  maxFiles?: number;
  /** Where requests are counted; default the repository's registry. */
  metrics?: ServeMetrics;
  /** Fastify/pino logger options; default JSON lines at info on stderr. `false` silences. */
  logger?: FastifyServerOptions['logger'];
  /** Extra Fastify constructor options (e.g. `https` for TLS). */
  fastify?: Partial<FastifyServerOptions> & { https?: Record<string, unknown> | null };
  /** Hooks run first on every request (before body parsing). */
  onRequest?: onRequestHookHandler[];
  /** Longest wait for in-flight requests once close() starts (ms); then remaining connections are cut. Default 10 s. */
  drainTimeoutMs?: number;
  /** Plugins registered after the core and before the routes (so their hooks cover every route), dependencies first. */
  plugins?: ServePlugin[];
  /** Collect the API description of every route (OpenAPI, for /openapi.json and /docs): registered before any route. */
  docs?: boolean;
  /** Longest time to receive a whole request, headers and body (ms); slower clients get 408. Default 30 s. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open between requests (ms). Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Most open connections from one client address; more are answered 429 and closed. 0 = no cap. Default 64. */
  maxConnectionsPerClient?: number;
  /**
   * Header a trusted reverse proxy sets to the client's address (e.g. x-forwarded-for, x-real-ip): its last entry
   * becomes the client address for rate limits, failed-auth throttling, logs and audit. Unset: the socket's address.
   */
  trustProxyHeader?: string;
  /** Initial facts for `app.mlctl.info` (plugins add theirs). */
  info?: Record<string, unknown>;
}

export type { DrainState, ServeState } from './types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's address: the socket's, or the trusted proxy header's last entry (--trust-proxy-header). */
    clientAddress: string;
  }
}

/** The client address a request comes from: the trusted proxy header's last (proxy-appended) entry, else the socket's. */
export function clientAddressOf(headers: Record<string, string | string[] | undefined>, socketAddress: string, trustHeader?: string): string {
  if (!trustHeader) return socketAddress;
  const raw = headers[trustHeader];
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  const last = value?.split(',').pop()?.trim();
  return last && /^[0-9A-Fa-f.:]{2,45}$/.test(last) ? last : socketAddress;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** mlctl serve's shared state (repository, metrics, limits). */
    mlctl: ServeState;
  }
}

interface CoreOptions {
  state: ServeState;
  onRequest: onRequestHookHandler[];
  maxConnectionsPerClient: number;
  tls: boolean;
}

/**
 * Cap the connections one address may hold open (slow clients, pipelining floods): past the cap a new connection is
 * answered 429 (plain HTTP; over TLS it is closed) before any byte is read from it.
 */
function capConnectionsPerClient(server: import('node:net').Server, max: number, tls: boolean, log: FastifyInstance['log']): void {
  const open = new Map<string, number>();
  server.on('connection', (socket) => {
    const addr = socket.remoteAddress ?? 'unknown';
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      log.warn({ ip: addr, limit: max }, 'connection refused: too many open connections from this client');
      if (!tls) {
        const body = JSON.stringify({ error: `too many open connections from ${addr} (limit ${max}, --max-connections-per-client); reuse connections or retry later`, code: 'RATE_LIMITED' });
        socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`);
        socket.on('error', () => {});
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left > 0) open.set(addr, left);
      else open.delete(addr);
    });
  });
}

/** Request ids, access logs, metrics, error mapping and body parsers; preClose stops accepting and starts the drain clock. */
const corePlugin = fp<CoreOptions>(
  async (app, { state, onRequest, maxConnectionsPerClient, tls }) => {
    app.decorate('mlctl', state);
    if (maxConnectionsPerClient > 0) capConnectionsPerClient(app.server, maxConnectionsPerClient, tls, app.log);
    const { repo, bodyLimit } = state;
    let accepting = true;
    state.accepting = () => accepting;

    app.decorateRequest('clientAddress', '');
    app.addHook('onRequest', async (request) => {
      request.clientAddress = clientAddressOf(request.headers, request.ip, state.trustProxyHeader);
    });
    // Announce inference requests to the batching queues as soon as their headers arrive (see expectRequests).
    const expecting = new WeakSet<object>();
    const settle = (request: { raw: object }) => {
      if (expecting.delete(request.raw)) repo.expectRequests(-1);
    };
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.config?.kind === 'inference') {
        expecting.add(request.raw);
        repo.expectRequests(1);
      }
    });
    app.addHook('onRequestAbort', async (request) => settle(request));
    for (const hook of onRequest) app.addHook('onRequest', hook);
    app.addHook('onSend', async (request, reply) => {
      reply.header('x-request-id', request.id);
      // While draining, keep-alive sockets must not outlive their last response or the drain waits for them.
      if (!accepting) reply.header('connection', 'close');
    });
    app.addHook('onResponse', async (request, reply) => {
      settle(request);
      const route = request.routeOptions.url ?? 'unmatched';
      const status = String(reply.statusCode);
      state.metrics.requests.inc({ protocol: 'rest', route, status });
      state.metrics.requestSeconds.observe({ protocol: 'rest', route }, reply.elapsedTime / 1000);
      const line = { method: request.method, url: request.url, route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.clientAddress };
      if (reply.statusCode >= 500) request.log.error(line, 'request failed');
      else request.log.info(line, 'request completed');
    });

    app.setErrorHandler((err, request, reply) => {
      const status = httpStatusOf(err);
      if (err instanceof MlctlError && err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
      if (status === 413) reply.header('connection', 'close');
      // Fastify closes the connection after any body-parser error (415, malformed JSON) in case the client is still
      // sending; once the whole body has arrived that only drops the requests pipelined behind this one: keep it open.
      else if (request.raw.complete && accepting) reply.removeHeader('connection');
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

    await app.register(multipart, {
      throwFileSizeLimit: true,
      limits: { fileSize: bodyLimit, files: state.maxFiles, fields: UPLOAD_TEXT_LIMITS.maxFields, parts: state.maxFiles + UPLOAD_TEXT_LIMITS.maxFields, fieldSize: UPLOAD_TEXT_LIMITS.fieldSize },
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

    // Drain: no new requests (Fastify answers 503 on kept-alive sockets), in-flight ones finish until the drain
    // timeout, then whatever is still open is cut so close() always ends.
    let sweeper: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    app.addHook('preClose', async () => {
      accepting = false;
      app.log.info({ drainTimeoutMs: state.drain.timeoutMs }, 'shutting down: no new requests, finishing in-flight ones');
      // Sockets that finish their last response during the drain become idle: close them as they do.
      sweeper = setInterval(() => app.server.closeIdleConnections?.(), 50);
      deadline = setTimeout(() => {
        state.drain.drained = false;
        app.log.warn({ drainTimeoutMs: state.drain.timeoutMs }, 'drain timeout reached: closing remaining connections');
        app.server.closeAllConnections?.();
      }, state.drain.timeoutMs);
    });
    app.addHook('onClose', async () => {
      clearInterval(sweeper);
      clearTimeout(deadline);
    });
  },
  { name: 'mlctl-core', fastify: '5.x' },
);

/**
 * Frees the engines once the HTTP side has drained. Registered after the caller's plugins: onClose hooks run in
 * reverse order, so the repository closes before plugins registered earlier (the audit log outlives the last batch).
 */
const enginesPlugin = fp(
  async (app) => {
    app.addHook('onClose', async () => {
      app.mlctl.stats.close();
      await Promise.race([app.mlctl.repo.close(), new Promise((r) => setTimeout(r, 2000).unref())]);
    });
  },
  { name: 'mlctl-engines', dependencies: ['mlctl-core'] },
);

type PluginMeta = { name?: string; dependencies?: string[] };
const metaOf = (p: ServePlugin): PluginMeta => ((p.plugin as unknown as Record<symbol, PluginMeta | undefined>)[Symbol.for('plugin-meta')] ?? {});

/**
 * The plugins in an order where each comes after the plugins it declares it depends on (otherwise as given).
 * Dependencies no plugin in the list provides (the core, the API collector) are left to fastify-plugin to check.
 */
export function registrationOrder(plugins: readonly ServePlugin[]): ServePlugin[] {
  const provided = new Set(plugins.map((p) => metaOf(p).name).filter((n): n is string => Boolean(n)));
  const placed = new Set<string>();
  const left = [...plugins];
  const out: ServePlugin[] = [];
  while (left.length) {
    const i = left.findIndex((p) => (metaOf(p).dependencies ?? []).every((d) => placed.has(d) || !provided.has(d)));
    if (i < 0) throw new Error(`serve plugins depend on each other in a circle: ${left.map((p) => metaOf(p).name ?? 'anonymous').join(', ')}`);
    const [p] = left.splice(i, 1);
    out.push(p!);
    if (metaOf(p!).name) placed.add(metaOf(p!).name!);
  }
  return out;
}

export function buildServer(repo: ModelRepository, opts: ServerOptions = {}): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 10 * 1024 * 1024;
  const state: ServeState = {
    repo,
    // Counted from the first request on, whichever transport carries it; read by the REST and gRPC statistics.
    stats: createTritonStats(repo),
    metrics: opts.metrics ?? repo.metrics,
    bodyLimit,
    topK: opts.topK ?? 5,
    detection: { ...opts.detection },
    maxFiles: opts.maxFiles ?? 64,
    extensions: ['binary_tensor_data', ...TRITON_EXTENSIONS, 'tfserving_rest'],
    accepting: () => true,
    drain: { timeoutMs: opts.drainTimeoutMs ?? 10_000, drained: true },
    info: { ...opts.info },
    discreet: false,
    ...(opts.trustProxyHeader ? { trustProxyHeader: opts.trustProxyHeader.toLowerCase() } : {}),
  };
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  // Requests parsed on each connection and not yet answered: a malformed request pipelined behind them must not
  // take their answers down with the connection (see clientErrorHandler).
  const unanswered = new WeakMap<import('node:net').Socket, number>();
  const refusing = new WeakSet<import('node:net').Socket>();
  // Node checks request timeouts on this interval (default 30 s): check often enough that a 408 comes on time.
  const timing = { connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(requestTimeout / 4))), headersTimeout: requestTimeout };
  const https = opts.fastify?.https ? { ...opts.fastify.https, ...timing } : undefined;
  const app = Fastify({
    logger: opts.logger ?? { level: 'info', stream: process.stderr },
    requestTimeout,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5000,
    bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // One access line per request is written in onResponse (with route and latency) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // A request that fails its route's JSON schema is 400 INPUT_INVALID, like every other malformed request.
    schemaErrorFormatter: (errors, dataVar) => badRequest(`invalid request: ${errors.map((e) => `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')}`),
    // A request that did not arrive whole within --request-timeout: a registry-coded 408 like every other error.
    // A malformed request (400) after good ones pipelined in the same write: the good ones were parsed and are being
    // answered, so the 400 waits for their responses (in order, on the same socket), then the connection closes.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: import('node:net').Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || refusing.has(socket)) return;
      refusing.add(socket); // the parser reports the same error again for any byte that follows
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const body = JSON.stringify(timeout ? { error: `the request did not arrive within ${requestTimeout} ms (--request-timeout); send the whole body without pauses`, code: 'REQUEST_TIMEOUT' } : { error: 'malformed HTTP request', code: 'INPUT_INVALID' });
      const refuse = () => {
        if (socket.destroyed) return;
        if (socket.writable) socket.end(`HTTP/1.1 ${timeout ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        setTimeout(() => socket.destroy(), 1000).unref();
      };
      // A timed-out request is itself one of the unanswered: nothing to wait for.
      if (timeout || !unanswered.get(socket)) return refuse();
      socket.once('mlctl:answered', refuse);
      setTimeout(() => socket.destroy(), requestTimeout).unref();
    },
    forceCloseConnections: 'idle',
    ...(opts.fastify as Partial<FastifyServerOptions>),
    ...(https ? { https } : { http: timing }),
  } as FastifyServerOptions) as unknown as FastifyInstance;
  app.server.on('request', (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const socket = req.socket;
    unanswered.set(socket, (unanswered.get(socket) ?? 0) + 1);
    // 'close' comes after the response was handed to the socket (and for pipelined ones, after those before it).
    res.once('close', () => {
      const left = (unanswered.get(socket) ?? 1) - 1;
      unanswered.set(socket, left);
      if (left === 0) socket.emit('mlctl:answered');
    });
  });
  void app.register(corePlugin, { state, onRequest: opts.onRequest ?? [], maxConnectionsPerClient: opts.maxConnectionsPerClient ?? 64, tls: Boolean(https) });
  if (opts.docs) void app.register(openApiCollector);
  for (const p of registrationOrder(opts.plugins ?? [])) void app.register(p.plugin, p.opts);
  void app.register(enginesPlugin);
  void app.register(serveRoutes);
  return app;
}

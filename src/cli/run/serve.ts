// Runs `mlctl serve` (loaded on demand): turns the options into a ServeConfig (every value checked and parsed),
// then startServe() loads, warms and serves (seed /predict, KServe V2 REST+gRPC, TF Serving) with dynamic batching
// and Prometheus metrics until SIGTERM/SIGINT, then drains and exits 0.
import { parseRateLimit } from '../../serve/auth.js';
import { serveConfig, SERVE_DEFAULTS, type ServeConfig } from '../../serve/config.js';
import { parseCorsOrigins } from '../../serve/hygiene.js';
import { createServeMetrics } from '../../serve/metrics.js';
import { prepareSecurity } from '../../serve/security.js';
import { startServe } from '../../serve/serve.js';
import { shutdownOnSignal } from '../../serve/start.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { ServeContext } from '../commands/serve.js';
import { deferBackend, describeBackend, parseBackendChoice } from '../../runtime/backend.js';
import { startBackend, startDevice } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';
import { pinoTextStream } from '../../util/log.js';

type ServeOptions = ServeContext['opts'];

const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v : undefined);

/** `mlctl serve`'s options as a ServeConfig (package access aside: it reads key files, see run()). */
export function serveConfigFromOptions(target: string, opts: Partial<ServeOptions>): ServeConfig {
  const o = opts as Partial<Record<keyof ServeOptions, unknown>> & Partial<ServeOptions>;
  const tlsCert = str(o.tlsCert);
  const tlsKey = str(o.tlsKey);
  const tlsCa = str(o.tlsCa);
  const auditLog = str(o.auditLog);
  const rate = str(o.rateLimit);
  const d = SERVE_DEFAULTS;
  return serveConfig(target, {
    host: opts.host ?? d.host,
    port: opts.port ?? d.port,
    engine: opts.engine ?? d.engine,
    versions: opts.versions ?? d.versions,
    allowRejected: Boolean(opts.allowRejected),
    batching: { maxBatch: opts.maxBatch ?? d.batching.maxBatch, maxDelayMs: opts.maxDelayMs ?? d.batching.maxDelayMs, maxQueue: opts.maxQueue ?? d.batching.maxQueue, instances: opts.instances ?? d.batching.instances },
    limits: {
      bodyLimit: opts.bodyLimit !== undefined ? parseSize(opts.bodyLimit, '--body-limit') : d.limits.bodyLimit,
      maxPixels: opts.maxPixels ?? d.limits.maxPixels,
      drainTimeoutMs: opts.drainTimeout !== undefined ? parseDuration(opts.drainTimeout, '--drain-timeout') : d.limits.drainTimeoutMs,
      requestTimeoutMs: opts.requestTimeout !== undefined ? parseDuration(opts.requestTimeout, '--request-timeout') : d.limits.requestTimeoutMs,
      keepAliveTimeoutMs: opts.keepAliveTimeout !== undefined ? parseDuration(opts.keepAliveTimeout, '--keep-alive-timeout') : d.limits.keepAliveTimeoutMs,
      maxConnectionsPerClient: opts.maxConnectionsPerClient ?? d.limits.maxConnectionsPerClient,
    },
    topK: opts.topK ?? d.topK,
    ...(opts.minScore !== undefined || opts.maxDetections !== undefined ? { detection: { ...(opts.minScore !== undefined ? { minScore: opts.minScore } : {}), ...(opts.maxDetections !== undefined ? { maxDetections: opts.maxDetections } : {}) } } : {}),
    security: {
      ...(tlsCert || tlsKey || tlsCa ? { tls: { cert: tlsCert, key: tlsKey, ca: tlsCa } } : {}),
      ...(str(o.apiKey) || str(o.apiKeysFile) ? { apiKeys: { keys: str(o.apiKey), file: str(o.apiKeysFile) } } : {}),
      ...(rate ? { rateLimit: parseRateLimit(rate) } : {}),
      ...(parseCorsOrigins(str(o.cors)) ? { cors: parseCorsOrigins(str(o.cors)) } : {}),
      ...(auditLog ? { audit: { file: auditLog, maxBytes: opts.auditMaxSize !== undefined ? parseSize(opts.auditMaxSize, '--audit-max-size') : d.audit.maxBytes, keep: opts.auditKeep ?? d.audit.keep } } : {}),
      ...(str(o.trustProxyHeader) ? { trustProxyHeader: str(o.trustProxyHeader) } : {}),
    },
    ...(opts.grpcPort !== undefined ? { grpc: { port: opts.grpcPort, maxMessageBytes: opts.grpcMaxMessage !== undefined ? parseSize(opts.grpcMaxMessage, '--grpc-max-message') : d.grpcMaxMessageBytes } } : {}),
    ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    modelDir: {
      control: Boolean(opts.allowModelControl),
      ...(opts.watch ? { watchIntervalMs: opts.watchInterval !== undefined ? parseDuration(opts.watchInterval, '--watch-interval') : d.watchIntervalMs } : {}),
      ...(opts.keepVersions !== undefined ? { keepVersions: opts.keepVersions } : {}),
    },
    web: { ui: o.ui !== false, docs: o.docs !== false },
  });
}

export async function run(ctx: ServeContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  // Options and the files they name are checked before minutes of model loading and warm-up.
  const config: ServeConfig = serveConfigFromOptions(ctx.args[0]!, opts);
  const prepared = await prepareSecurity(config.security);
  config.access = await packageAccessFrom(opts, { logger });
  // ONNX models need no TF.js: with the automatic backend it is loaded (and announced) only when a version needs it —
  // a TF.js engine or a conversion — which keeps 15 MB off the heap every collection walks. A named backend starts now,
  // so one that cannot fails the command at once.
  const backend = parseBackendChoice(opts.backend);
  if (backend === 'auto') deferBackend(backend, (info) => logger.info(describeBackend(info)));
  else await startBackend(ctx);
  await startDevice(ctx);
  const level = opts.verbose ? 'debug' : opts.quiet ? 'warn' : 'info';
  // The request logs in the format mlctl's own lines use (--log-format).
  const httpLogger = { level, stream: opts.logFormat === 'json' ? process.stderr : pinoTextStream(process.stderr) };
  const { server, loaded: models, failed } = await startServe(config, { logger, prepared, metrics: createServeMetrics(), httpLogger });
  const info = server.app.mlctl.info;
  server.app.log.info({ url: server.url, models: models.map((m) => `${m.name}@${m.version}`), ...(failed.length ? { unavailable: failed.map((u) => `${u.name}@${u.version}`) } : {}), ...info }, `serving on ${server.url}`);
  const res = await shutdownOnSignal(server);
  // Anything still holding the event loop open (native thread pools) must not keep a stopped server alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  const stopped = `stopped ${res.signal ? `on ${res.signal} ` : ''}after draining for ${res.ms} ms${res.drained ? '' : ' (drain timeout reached)'}`;
  // JSON logs: the last line is a log line too, so a collector reading the merged output never meets plain text.
  if (opts.logFormat === 'json') logger.info(stopped);
  return {
    exitCode: 0,
    result: { url: server.url, models: models.map((m) => ({ name: m.name, version: m.version, engine: m.engine })), unavailable: failed.map((u) => ({ name: u.name, version: u.version, reason: u.reason })), ...info, ...res },
    ...(opts.logFormat === 'json' ? {} : { text: stopped }),
  };
}

// Runs `mlctl serve` (loaded on demand): checks every option, loads packages, warms them, serves REST (seed /predict,
// KServe V2, TF Serving) with dynamic batching and Prometheus metrics until SIGTERM/SIGINT, then drains and exits 0.
import { loadPackage } from '../../artifacts/package.js';
import { createServeMetrics } from '../../serve/metrics.js';
import { createRepository } from '../../serve/repository.js';
import { assembleServe } from '../../serve/assemble.js';
import { prepareSecurity } from '../../serve/security.js';
import { shutdownOnSignal, startServer } from '../../serve/start.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { ServeContext } from '../commands/serve.js';
import { startBackend } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';
import { pinoTextStream } from '../../util/log.js';

export async function run(ctx: ServeContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const target = ctx.args[0];
  const bodyLimit = parseSize(opts.bodyLimit, '--body-limit');
  const drainTimeoutMs = parseDuration(opts.drainTimeout, '--drain-timeout');
  const requestTimeoutMs = parseDuration(opts.requestTimeout, '--request-timeout');
  const keepAliveTimeoutMs = parseDuration(opts.keepAliveTimeout, '--keep-alive-timeout');
  // Options and the files they name are checked before minutes of model loading and warm-up.
  const prepared = await prepareSecurity(opts);
  // Every load (start-up, --watch, model control) passes the same signature check and gets the model key.
  const access = await packageAccessFrom(opts, { logger });
  await startBackend(ctx);
  const repo = createRepository({
    engine: opts.engine,
    maxBatch: opts.maxBatch,
    maxDelayMs: opts.maxDelayMs,
    maxQueue: opts.maxQueue,
    maxPixels: opts.maxPixels,
    versions: opts.versions,
    logger,
    metrics: createServeMetrics(),
    loadPackage: (dir) => loadPackage(dir, access),
  });
  const level = opts.verbose ? 'debug' : opts.quiet ? 'warn' : 'info';
  const started = (async () => {
    // Versions that fail verification are reported unavailable while the others serve; none loading is exit 1.
    const { loaded, failed } = await repo.loadEach(target);
    const assembled = await assembleServe({ opts, target, repo, logger, prepared });
    const running = await startServer(repo, {
      port: opts.port,
      host: opts.host,
      bodyLimit,
      drainTimeoutMs,
      requestTimeoutMs,
      keepAliveTimeoutMs,
      maxConnectionsPerClient: opts.maxConnectionsPerClient,
      topK: opts.topK,
      // The request logs in the format mlctl's own lines use (--log-format).
      logger: { level, stream: opts.logFormat === 'json' ? process.stderr : pinoTextStream(process.stderr) },
      ...assembled,
    });
    return { models: loaded, failed, server: running };
  })();
  const { models, failed, server } = await started.catch(async (err: unknown) => {
    // The engines' worker threads would keep a process whose start failed alive: free them, then report the error.
    await Promise.race([repo.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
    throw err;
  });
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

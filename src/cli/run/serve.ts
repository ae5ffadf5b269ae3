// Runs `mlctl serve` (loaded on demand): loads packages, warms them, serves REST (seed /predict, KServe V2,
// TF Serving) with dynamic batching and Prometheus metrics until SIGTERM/SIGINT, then drains and exits 0.
import { loadPackage } from '../../artifacts/package.js';
import { mergeServerOptions, SERVE_EXTENSIONS, type ServeExtensionHandle } from '../../serve/extensions.js';
import { createServeMetrics } from '../../serve/metrics.js';
import { createRepository } from '../../serve/repository.js';
import '../../serve/security.js'; // registers gRPC, auth, TLS, audit, hot reload and hygiene (SERVE_EXTENSIONS)
import '../../serve/web.js'; // registers the page at / and the API docs
import { shutdownOnSignal, startServer } from '../../serve/start.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { ServeContext } from '../commands/serve.js';
import { startBackend } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';

export async function run(ctx: ServeContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const target = ctx.args[0];
  const bodyLimit = parseSize(opts.bodyLimit, '--body-limit');
  const drainTimeoutMs = parseDuration(opts.drainTimeout, '--drain-timeout');
  const prepared = await Promise.all(SERVE_EXTENSIONS.map((ext) => ext.prepare?.(opts)));
  // Every load (start-up, --watch, model control) passes the same signature check and gets the model key.
  const access = await packageAccessFrom(opts, { logger });
  await startBackend(ctx);
  const metrics = createServeMetrics();
  const repo = createRepository({
    engine: opts.engine,
    maxBatch: opts.maxBatch,
    maxDelayMs: opts.maxDelayMs,
    maxQueue: opts.maxQueue,
    maxPixels: opts.maxPixels,
    versions: opts.versions,
    logger,
    metrics,
    loadPackage: (dir) => loadPackage(dir, access),
  });
  const models = await repo.load(target);
  const handles: ServeExtensionHandle[] = [];
  for (const [i, ext] of SERVE_EXTENSIONS.entries()) {
    const h = await ext.setup({ opts, target, repo, metrics, logger, prepared: prepared[i] });
    if (h) handles.push(h);
  }
  const level = opts.verbose ? 'debug' : opts.quiet ? 'warn' : 'info';
  const server = await startServer(
    repo,
    mergeServerOptions({ port: opts.port, host: opts.host, bodyLimit, drainTimeoutMs, topK: opts.topK, metrics, logger: { level, stream: process.stderr } }, handles),
  );
  const origShutdown = server.shutdown;
  server.shutdown = async (reason) => {
    for (const h of handles) await h.beforeClose?.();
    return origShutdown(reason);
  };
  for (const h of handles) await h.afterListen?.(server);
  const extra = Object.assign({}, ...handles.map((h) => h.describe?.() ?? {}));
  server.app.log.info({ url: server.url, models: models.map((m) => `${m.name}@${m.version}`), ...extra }, `serving on ${server.url}`);
  const res = await shutdownOnSignal(server);
  // Anything still holding the event loop open (native thread pools) must not keep a stopped server alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  return {
    exitCode: 0,
    result: { url: server.url, models: models.map((m) => ({ name: m.name, version: m.version, engine: m.engine })), ...extra, ...res },
    text: `stopped ${res.signal ? `on ${res.signal} ` : ''}after draining for ${res.ms} ms${res.drained ? '' : ' (drain timeout reached)'}`,
  };
}

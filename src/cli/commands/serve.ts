// `mlctl serve MODEL_OR_DIR`: load packages, warm them, serve REST (seed /predict, KServe V2, TF Serving) with
// dynamic batching and Prometheus metrics until SIGTERM/SIGINT, then drain and exit 0.
import { startBackend } from '../context.js';
import { ENGINES, type EngineChoice } from '../../runtime/engine.js';
import { mergeServerOptions, SERVE_EXTENSIONS, type ServeExtensionHandle } from '../../serve/extensions.js';
import { parseDuration, parseSize } from '../../util/units.js';
import { createServeMetrics } from '../../serve/metrics.js';
import { createRepository } from '../../serve/repository.js';
import '../../serve/security.js'; // registers gRPC, auth, TLS, audit, hot reload and hygiene (SERVE_EXTENSIONS)
import { shutdownOnSignal, startServer } from '../../serve/start.js';
import type { CommandSpec } from '../spec.js';

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'serve model packages over HTTP: /predict, KServe V2, TF Serving REST, /metrics',
  description:
    'Serve one package, every version of a model, or every model in a directory. Concurrent requests are batched ' +
    '(--max-batch / --max-delay-ms); readiness (/v2/health/ready) turns true once every model is warm. ' +
    'Logs are JSON lines on stderr. SIGTERM/SIGINT stop accepting, finish in-flight requests and exit 0.',
  args: ['<model-or-dir>'],
  options: [
    { flags: '-p, --port <n>', description: 'TCP port (0 = any free port)', type: 'int', default: 5000, min: 0, max: 65535, env: 'MLCTL_PORT' },
    { flags: '--host <addr>', description: 'address to bind (0.0.0.0 for every interface)', default: '127.0.0.1', env: 'MLCTL_HOST' },
    { flags: '--engine <name>', description: 'inference engine: auto prefers ONNX Runtime, then TF.js', choices: ENGINES, default: 'auto' },
    { flags: '--versions <which>', description: 'versions to load from a model directory', choices: ['all', 'latest'], default: 'all' },
    { flags: '--max-batch <n>', description: 'most examples per engine batch (1 = no batching)', type: 'int', default: 8, min: 1, max: 1024 },
    { flags: '--max-delay-ms <ms>', description: 'longest wait for a batch to fill (0 = run as soon as the engine is free)', type: 'float', default: 5, min: 0, max: 10_000 },
    { flags: '--max-queue <n>', description: 'most examples waiting per model version; beyond it requests get 503 + Retry-After', type: 'int', default: 64, min: 1 },
    { flags: '--body-limit <size>', description: 'largest request body / uploaded file, e.g. 512kb, 10mb', default: '10mb' },
    { flags: '--max-pixels <n>', description: 'largest image accepted, in pixels (checked from the header before decoding)', type: 'int', default: 64 * 1024 * 1024, min: 1 },
    { flags: '--drain-timeout <duration>', description: 'on SIGTERM, longest wait for in-flight requests, e.g. 10s, 500ms', default: '10s' },
    { flags: '--top-k <n>', description: 'labels returned per image by /predict', type: 'int', default: 5, min: 0 },
    ...SERVE_EXTENSIONS.flatMap((e) => e.options),
  ],
  examples: [
    'mlctl serve sample',
    'mlctl serve artifacts/ --port 8080 --host 0.0.0.0',
    'mlctl serve artifacts/sample/3 --engine onnx --max-batch 16 --max-delay-ms 10',
    'curl -F image=@cat.jpg http://127.0.0.1:5000/predict',
  ],
  async run(ctx) {
    const { opts, logger } = ctx;
    const target = ctx.args[0] as string;
    const bodyLimit = parseSize(opts.bodyLimit as string, '--body-limit');
    const drainTimeoutMs = parseDuration(opts.drainTimeout as string, '--drain-timeout');
    const prepared = await Promise.all(SERVE_EXTENSIONS.map((ext) => ext.prepare?.(opts)));
    await startBackend(ctx);
    const metrics = createServeMetrics();
    const repo = createRepository({
      engine: opts.engine as EngineChoice,
      maxBatch: opts.maxBatch as number,
      maxDelayMs: opts.maxDelayMs as number,
      maxQueue: opts.maxQueue as number,
      maxPixels: opts.maxPixels as number,
      versions: opts.versions as 'all' | 'latest',
      logger,
      metrics,
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
      mergeServerOptions({ port: opts.port as number, host: opts.host as string, bodyLimit, topK: opts.topK as number, metrics, logger: { level, stream: process.stderr } }, handles),
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
  },
};

// Listening and graceful shutdown for mlctl serve: startServer() binds the app; shutdown() stops accepting
// (readiness goes false, new requests get 503), lets in-flight requests finish within the drain timeout,
// then frees the engines. waitForSignal() turns SIGTERM/SIGINT into that shutdown.
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from './server.js';
import type { ManagedModelRepository, ModelRepository } from './types.js';

export interface StartOptions extends ServerOptions {
  port?: number;
  host?: string;
  /** Longest wait for in-flight requests on shutdown (ms). Default 10 s. */
  drainTimeoutMs?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  /** Stop accepting, finish in-flight work (bounded by the drain timeout), close the repository. */
  shutdown(reason?: string): Promise<{ drained: boolean; ms: number }>;
  /** Resolves when shutdown has finished. */
  closed: Promise<{ drained: boolean; ms: number }>;
}

const isManaged = (repo: ModelRepository): repo is ManagedModelRepository => typeof (repo as ManagedModelRepository).close === 'function';

export async function startServer(repo: ModelRepository, opts: StartOptions = {}): Promise<RunningServer> {
  let accepting = true;
  const userAccepting = opts.accepting;
  const app = buildServer(repo, { ...opts, accepting: () => accepting && (userAccepting?.() ?? true) });
  await app.listen({ port: opts.port ?? 5000, host: opts.host ?? '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 5000);
  const host = opts.host ?? '127.0.0.1';
  const scheme = opts.fastify?.https ? 'https' : 'http';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const drainMs = opts.drainTimeoutMs ?? 10_000;

  let resolveClosed!: (r: { drained: boolean; ms: number }) => void;
  const closed = new Promise<{ drained: boolean; ms: number }>((r) => (resolveClosed = r));
  let shuttingDown: Promise<{ drained: boolean; ms: number }> | undefined;

  async function doShutdown(reason: string): Promise<{ drained: boolean; ms: number }> {
    const t0 = performance.now();
    accepting = false;
    app.log.info({ reason, drainTimeoutMs: drainMs }, 'shutting down: no new requests, finishing in-flight ones');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), drainMs)));
    // Sockets that finish their last response during the drain become idle: close them as they do.
    const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
    // app.close() stops listening, answers 503 to requests arriving on kept-alive sockets and waits for in-flight ones.
    const drained = await Promise.race([app.close().then(() => true), timeout]);
    clearTimeout(timer);
    clearInterval(sweeper);
    if (!drained) {
      app.log.warn({ drainTimeoutMs: drainMs }, 'drain timeout reached: closing remaining connections');
      app.server.closeAllConnections();
    }
    if (isManaged(repo)) await Promise.race([repo.close(), new Promise((r) => setTimeout(r, 2000).unref())]);
    const res = { drained, ms: Math.round(performance.now() - t0) };
    app.log.info(res, 'shut down');
    resolveClosed(res);
    return res;
  }

  return {
    app,
    url,
    port,
    closed,
    shutdown(reason = 'shutdown requested') {
      shuttingDown ??= doShutdown(reason);
      return shuttingDown;
    },
  };
}

/**
 * Shut the server down on the first SIGTERM/SIGINT; a second signal exits at once (status 130).
 * Resolves with the shutdown result and removes its handlers.
 */
export function shutdownOnSignal(server: RunningServer, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Promise<{ drained: boolean; ms: number; signal?: string }> {
  return new Promise((resolve) => {
    let got: string | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      if (got) {
        server.app.log.warn({ signal: sig }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      got = sig;
      void server.shutdown(`received ${sig}`);
    };
    for (const s of signals) process.on(s, onSignal);
    void server.closed.then((r) => {
      for (const s of signals) process.off(s, onSignal);
      resolve({ ...r, ...(got ? { signal: got } : {}) });
    });
  });
}

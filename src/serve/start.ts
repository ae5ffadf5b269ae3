// Listening and graceful shutdown for mlctl serve: startServer() binds the app built by buildServer; shutdown() is
// app.close(), whose hooks stop accepting, drain in-flight requests within the drain timeout and free the engines.
// shutdownOnSignal() turns SIGTERM/SIGINT into that shutdown.
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from './server.js';
import type { ModelRepository } from './types.js';

export interface StartOptions extends ServerOptions {
  port?: number;
  host?: string;
}

export interface ShutdownResult {
  /** False when the drain timeout cut requests still in flight. */
  drained: boolean;
  ms: number;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  /** Stop accepting, finish in-flight work (bounded by the drain timeout), close the repository. */
  shutdown(reason?: string): Promise<ShutdownResult>;
  /** Resolves when shutdown has finished. */
  closed: Promise<ShutdownResult>;
}

export async function startServer(repo: ModelRepository, opts: StartOptions = {}): Promise<RunningServer> {
  const app = buildServer(repo, opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ port: opts.port ?? 5000, host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 5000);
  const scheme = opts.fastify?.https ? 'https' : 'http';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let resolveClosed!: (r: ShutdownResult) => void;
  const closed = new Promise<ShutdownResult>((r) => (resolveClosed = r));
  let shuttingDown: Promise<ShutdownResult> | undefined;
  const shutdown = async (reason: string): Promise<ShutdownResult> => {
    const t0 = performance.now();
    app.log.info({ reason }, 'shutdown requested');
    await app.close();
    const res = { drained: app.mlctl.drain.drained, ms: Math.round(performance.now() - t0) };
    app.log.info(res, 'shut down');
    resolveClosed(res);
    return res;
  };
  return {
    app,
    url,
    port,
    closed,
    shutdown(reason = 'shutdown requested') {
      shuttingDown ??= shutdown(reason);
      return shuttingDown;
    },
  };
}

/**
 * Shut the server down on the first SIGTERM/SIGINT; a second signal exits at once (status 130).
 * Resolves with the shutdown result and removes its handlers.
 */
export function shutdownOnSignal(server: RunningServer, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Promise<ShutdownResult & { signal?: string }> {
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

// Shared set-up for the serve security and gRPC suites: a real repository over tiny packages, started the way
// `mlctl serve` starts it (security plugins + startServer on an ephemeral loopback port), plus openssl certs.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { createMemoryLogger } from '../src/util/log.js';
import { createServeMetrics, type ServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { serveConfigFromOptions } from '../src/cli/run/serve.js';
import { assembleServe } from '../src/serve/assemble.js';
import { startServer, type RunningServer } from '../src/serve/start.js';
import type { ModelRepository } from '../src/serve/types.js';

/** The defaults `mlctl serve` gives the security options, overridable per test. */
export const CLI_DEFAULTS: Record<string, unknown> = {
  host: '127.0.0.1',
  grpcMaxMessage: '64mb',
  auditMaxSize: '100mb',
  auditKeep: 5,
  watchInterval: '2s',
};

export interface SecureServer {
  repo: ModelRepository;
  server: RunningServer;
  metrics: ServeMetrics;
  logger: ReturnType<typeof createMemoryLogger>;
  url: string;
  /** The gRPC port, when opts.grpcPort was given. */
  grpcPort?: number;
  close(): Promise<void>;
}

export async function startSecureServer(target: string, opts: Record<string, unknown>, repoOpts: { maxBatch?: number; maxDelayMs?: number; maxPixels?: number } = {}): Promise<SecureServer> {
  const logger = createMemoryLogger();
  const metrics = createServeMetrics({ defaultMetrics: false });
  const repo = createRepository({ engine: 'tfjs', maxBatch: repoOpts.maxBatch ?? 4, maxDelayMs: repoOpts.maxDelayMs ?? 2, maxQueue: 64, logger, metrics, ...(repoOpts.maxPixels ? { maxPixels: repoOpts.maxPixels } : {}) });
  await repo.load(target);
  const all = { ...CLI_DEFAULTS, ...opts };
  const assembled = await assembleServe(serveConfigFromOptions(target, all as Parameters<typeof serveConfigFromOptions>[1]), { repo, logger });
  const server = await startServer(repo, { port: 0, host: '127.0.0.1', metrics, logger: false, ...assembled });
  const described = server.app.mlctl.info;
  const grpcPort = typeof described.grpc === 'string' ? Number(described.grpc.split(':').pop()) : undefined;
  return {
    repo,
    server,
    metrics,
    logger,
    url: server.url,
    ...(grpcPort ? { grpcPort } : {}),
    async close() {
      await server.shutdown('test done');
    },
  };
}

/** A response body as JSON, untyped: tests assert on its fields. */
export const json = (res: Response): Promise<any> => res.json();

/** A small PNG of a given colour (real encoded image bytes for BYTES/raw-body requests). */
export function pngOf(r: number, g: number, b: number, size = 40): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a different CA: must be refused under mTLS. */
  rogueCert: string;
  rogueKey: string;
}

/** A throw-away CA, a server certificate for 127.0.0.1/localhost and client certificates, made with the openssl CLI. */
export async function makePki(dir: string): Promise<TestPki> {
  const f = (n: string) => path.join(dir, n);
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const keyAndCa = (name: string, cn: string) => {
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`);
  };
  const leaf = (name: string, ca: string, cn: string, ext: string) => {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    const extFile = f(`${name}.ext`);
    execFileSync('sh', ['-c', `printf '%s\\n' "${ext}" > "${extFile}"`]);
    run('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', extFile);
  };
  await fs.mkdir(dir, { recursive: true });
  keyAndCa('ca', 'mlctl test CA');
  keyAndCa('rogue-ca', 'rogue CA');
  leaf('server', 'ca', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  leaf('client', 'ca', 'mlctl-test-client', 'extendedKeyUsage=clientAuth');
  leaf('rogue', 'rogue-ca', 'rogue-client', 'extendedKeyUsage=clientAuth');
  return { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key'), rogueCert: f('rogue.crt'), rogueKey: f('rogue.key') };
}

// The `mlctl serve` extension that wires gRPC, API keys and rate limits, TLS/mTLS, the audit log, hot reload,
// model control and HTTP hygiene into the server. Its options (serve/options.ts) join serve's option table; its
// hooks join the app.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { artifactsRoot, parseModelRef } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { attachAudit, auditModelLoad, openAuditLog, type AuditLog } from './audit.js';
import { AUTH_FAILURE_LIMIT, createRateLimiter, installAuth, loadApiKeys, parseRateLimit, type AccessControl } from './auth.js';
import { SERVE_EXTENSIONS, type ServeExtension, type ServeExtensionContext, type ServeExtensionHandle } from './extensions.js';
import { startGrpcServer, type GrpcServerHandle } from './grpc/server.js';
import { installHygiene, parseCorsOrigins } from './hygiene.js';
import { parseDuration, parseSize } from '../util/units.js';
import { SECURITY_OPTIONS } from './options.js';
import { createReloader, installModelControl, type Reloader } from './reload.js';
import { describeTls, httpsOptions, loadTls } from './tls.js';

/** The directory --watch and model control read: what serve was pointed at, resolved like serve resolves it. */
async function modelRoot(target: string): Promise<string> {
  const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);
  const candidates = [path.resolve(target), path.join(artifactsRoot(), target)];
  // NAME:TAG follows the tag: the reloader reads the model dir's registry.
  const ref = parseModelRef(target);
  if (ref?.tag !== undefined && !(await isDir(target))) return path.join(artifactsRoot(), ref.name);
  for (const c of candidates) {
    if (!(await isDir(c))) continue;
    if (await fs.stat(path.join(c, MANIFEST_FILE)).then(() => true, () => false)) {
      throw new MlctlError('OPTION_CONFLICT', [`${target} is a single package version: serve its model directory (${path.dirname(c)}) to use --watch or --allow-model-control`]);
    }
    return c;
  }
  throw new MlctlError('OPTION_CONFLICT', [`--watch and --allow-model-control need a model directory to read; ${target} is not one (pass artifacts/NAME or a folder of models)`]);
}

const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v : undefined);

/** Every security option parsed and every file (certificates, key file) read: no model needed. */
export async function prepareSecurity(opts: Record<string, unknown>) {
  const tls = await loadTls({ cert: str(opts.tlsCert), key: str(opts.tlsKey), ca: str(opts.tlsCa) });
  const store = await loadApiKeys({ keys: str(opts.apiKey), file: str(opts.apiKeysFile) });
  const rate = str(opts.rateLimit);
  const access: AccessControl = {
    store,
    ...(rate ? { limiter: createRateLimiter(parseRateLimit(rate)) } : {}),
    ...(store.keys.length ? { failures: createRateLimiter(AUTH_FAILURE_LIMIT) } : {}),
  };
  return {
    tls,
    store,
    access,
    corsOrigins: parseCorsOrigins(str(opts.cors)),
    grpcMax: parseSize(opts.grpcMaxMessage as string, '--grpc-max-message'),
    watchMs: parseDuration(opts.watchInterval as string, '--watch-interval'),
    auditMaxBytes: str(opts.auditLog) ? parseSize(opts.auditMaxSize as string, '--audit-max-size') : 0,
  };
}

export async function setupSecurity(ctx: ServeExtensionContext): Promise<ServeExtensionHandle> {
  const { opts, repo, metrics, logger } = ctx;
  const { tls, store, access, corsOrigins, grpcMax, watchMs, auditMaxBytes } =
    (ctx.prepared as Awaited<ReturnType<typeof prepareSecurity>> | undefined) ?? (await prepareSecurity(opts));
  const watchOn = Boolean(opts.watch);
  const controlOn = Boolean(opts.allowModelControl);

  let audit: AuditLog | undefined;
  const auditFile = str(opts.auditLog);
  if (auditFile) {
    audit = openAuditLog({ file: auditFile, maxBytes: auditMaxBytes, keep: opts.auditKeep as number });
    attachAudit(repo, audit);
    for (const m of repo.list()) await auditModelLoad(audit, m, 'model-load');
  }
  let reloader: Reloader | undefined;
  if (watchOn || controlOn) {
    // With --versions latest only the newest version is meant to be served, so a switch retires the previous one.
    const keep = (opts.keepVersions as number | undefined) ?? (opts.versions === 'latest' ? 1 : undefined);
    const ref = parseModelRef(ctx.target);
    const follow = ref?.tag !== undefined && !(await fs.stat(ctx.target).then(() => true, () => false)) ? { name: ref.name, tag: ref.tag } : undefined;
    reloader = createReloader({ root: await modelRoot(ctx.target), repo, logger, audit, ...(keep ? { keepVersions: keep } : {}), ...(follow ? { follow } : {}) });
  }

  logger.info(describeTls(tls));
  logger.info(store.keys.length ? `API keys required on inference and metadata routes (${store.keys.length} key(s): ${store.keys.map((k) => k.id).join(', ')})` : 'API keys off: every caller may run inference (use --api-key / MLCTL_API_KEYS / --api-keys-file)');
  let grpcServer: GrpcServerHandle | undefined;
  const onlyModel = () => {
    const names = [...new Set(repo.list().map((m) => m.name))];
    return names.length === 1 ? names[0] : undefined;
  };

  return {
    server: {
      ...(tls ? { fastify: { https: httpsOptions(tls) } } : {}),
      extensions: controlOn ? ['model_repository'] : [],
      beforeRoutes: (app) => {
        installHygiene(app, { corsOrigins, tls: Boolean(tls) });
        installAuth(app, { ...access, defaultModel: onlyModel });
        if (reloader) void app.register(async (scoped) => installModelControl(scoped, { reloader, repo, enabled: controlOn }));
      },
    },
    async afterListen(server) {
      if (opts.grpcPort !== undefined) {
        grpcServer = await startGrpcServer({
          repo,
          host: opts.host as string,
          port: opts.grpcPort as number,
          tls,
          access,
          logger,
          maxMessageBytes: grpcMax,
          extensions: server.app.mlctl.extensions,
          onCall: (method, code, seconds) => {
            metrics.requests.inc({ protocol: 'grpc', route: method, status: grpc.status[code] ?? String(code) });
            metrics.requestSeconds.observe({ protocol: 'grpc', route: method }, seconds);
          },
        });
        logger.info(`gRPC (inference.GRPCInferenceService) on ${opts.host as string}:${grpcServer.port}${tls ? ' with TLS' : ''}`);
      }
      if (watchOn) reloader!.start(watchMs);
      // The audit log outlives the HTTP drain: predictions finishing during shutdown are still recorded.
      void server.closed.then(() => audit?.close());
    },
    async beforeClose() {
      reloader?.close();
      await grpcServer?.close(5000);
    },
    describe: () => ({
      ...(grpcServer ? { grpc: `${opts.host as string}:${grpcServer.port}` } : {}),
      tls: tls ? (tls.ca ? 'mtls' : 'tls') : 'off',
      apiKeys: store.keys.length,
      ...(audit ? { auditLog: audit.file } : {}),
      ...(watchOn ? { watch: true } : {}),
    }),
  };
}

export const securityExtension: ServeExtension = { name: 'security', options: [...SECURITY_OPTIONS], prepare: prepareSecurity, setup: setupSecurity };

// Registration: `mlctl serve` picks up every extension in SERVE_EXTENSIONS (options, hooks, start/stop steps).
SERVE_EXTENSIONS.push(securityExtension);

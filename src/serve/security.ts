// mlctl serve's security layer: gRPC, API keys and rate limits, TLS/mTLS, the audit log, hot reload, model control
// and HTTP hygiene. prepareSecurity() checks the options before any model loads; securityPlugins() lists the
// Fastify plugins, in registration order, that assemble.ts hands on to buildServer.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { artifactsRoot, parseModelRef } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { auditPlugin, openAuditLog, type AuditLog } from './audit.js';
import { AUTH_FAILURE_LIMIT, authPlugin, createRateLimiter, loadApiKeys, parseRateLimit, type AccessControl } from './auth.js';
import { grpcPlugin } from './grpc/server.js';
import { metricsPortPlugin } from './metrics-port.js';
import { hygienePlugin, parseCorsOrigins } from './hygiene.js';
import { parseDuration, parseSize } from '../util/units.js';
import { createReloader, modelControlPlugin, type Reloader } from './reload.js';
import { plug, type ServePlugin, type ServerOptions } from './server.js';
import type { ModelRepository } from './types.js';
import type { Logger } from '../util/log.js';
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

export interface PreparedSecurity {
  tls: Awaited<ReturnType<typeof loadTls>>;
  store: Awaited<ReturnType<typeof loadApiKeys>>;
  access: AccessControl;
  corsOrigins: string[] | undefined;
  grpcMax: number;
  watchMs: number;
  auditMaxBytes: number;
}

/** Every security option parsed and every file (certificates, key file) read: no model needed. */
export async function prepareSecurity(opts: Record<string, unknown>): Promise<PreparedSecurity> {
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

export interface SecurityContext {
  /** Parsed CLI options (camelCase, as the option table gives them). */
  opts: Record<string, unknown>;
  /** The MODEL_OR_DIR argument (the directory --watch and model control read). */
  target: string;
  repo: ModelRepository;
  logger: Logger;
  /** What prepareSecurity() returned; computed here when absent. */
  prepared?: PreparedSecurity;
}

export interface SecuritySetup {
  /** The plugins to register, in order: hygiene, auth, audit, model control / hot reload, gRPC. */
  plugins: ServePlugin[];
  /** Fastify constructor options (HTTPS when --tls-cert is given). */
  fastify: ServerOptions['fastify'];
  /** Facts for the start-up line and the --json result (the gRPC address is added when it binds). */
  info: Record<string, unknown>;
  /** --trust-proxy-header, for ServerOptions.trustProxyHeader. */
  trustProxyHeader?: string;
}

/** Open what the security options name (audit log, reloader) and list the plugins that serve them. */
export async function securityPlugins(ctx: SecurityContext): Promise<SecuritySetup> {
  const { opts, repo, logger } = ctx;
  const { tls, store, access, corsOrigins, grpcMax, watchMs, auditMaxBytes } = ctx.prepared ?? (await prepareSecurity(opts));
  const watchOn = Boolean(opts.watch);
  const controlOn = Boolean(opts.allowModelControl);
  const auditFile = str(opts.auditLog);
  const audit: AuditLog | undefined = auditFile ? openAuditLog({ file: auditFile, maxBytes: auditMaxBytes, keep: opts.auditKeep as number }) : undefined;
  // Whenever mlctl serve was pointed at a model directory, the repository index (open to all) lists what it holds;
  // loading and unloading need --allow-model-control, watching needs --watch (both refuse a single package version).
  // With --versions latest a switch retires the previous version.
  const keep = (opts.keepVersions as number | undefined) ?? (opts.versions === 'latest' ? 1 : undefined);
  const ref = parseModelRef(ctx.target);
  const follow = ref?.tag !== undefined && !(await fs.stat(ctx.target).then(() => true, () => false)) ? { name: ref.name, tag: ref.tag } : undefined;
  const root = await modelRoot(ctx.target).catch((err: unknown) => {
    if (watchOn || controlOn) throw err;
    return undefined;
  });
  const reloader: Reloader | undefined = root ? createReloader({ root, repo, logger, audit, allowRejected: Boolean(opts.allowRejected), ...(keep ? { keepVersions: keep } : {}), ...(follow ? { follow } : {}) }) : undefined;
  logger.info(describeTls(tls));
  logger.info(store.keys.length ? `API keys required on inference and metadata routes (${store.keys.length} key(s): ${store.keys.map((k) => k.id).join(', ')})` : 'API keys off: every caller may run inference (use --api-key / MLCTL_API_KEYS / --api-keys-file)');
  const onlyModel = () => {
    const names = [...new Set(repo.list().map((m) => m.name))];
    return names.length === 1 ? names[0] : undefined;
  };
  const plugins: ServePlugin[] = [
    plug(hygienePlugin, { corsOrigins, tls: Boolean(tls) }),
    ...(audit ? [plug(auditPlugin, { audit })] : []),
    plug(authPlugin, { ...access, defaultModel: onlyModel }),
    ...(opts.metricsPort !== undefined ? [plug(metricsPortPlugin, { host: opts.host as string, port: opts.metricsPort as number })] : []),
    ...(reloader ? [plug(modelControlPlugin, { reloader, enabled: controlOn, ...(watchOn ? { watchIntervalMs: watchMs } : {}) })] : []),
    ...(opts.grpcPort !== undefined ? [plug(grpcPlugin, { host: opts.host as string, port: opts.grpcPort as number, tls, access, logger, maxMessageBytes: grpcMax })] : []),
  ];
  return {
    plugins,
    fastify: tls ? { https: httpsOptions(tls) } : {},
    ...(str(opts.trustProxyHeader) ? { trustProxyHeader: str(opts.trustProxyHeader) } : {}),
    info: { tls: tls ? (tls.ca ? 'mtls' : 'tls') : 'off', apiKeys: store.keys.length, ...(audit ? { auditLog: audit.file } : {}) },
  };
}

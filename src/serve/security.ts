// mlctl serve's security: TLS/mTLS, API keys and rate limits, CORS and HTTP hygiene, and the audit log.
// prepareSecurity() reads what the configuration names (certificates, key files) before any model loads;
// securityPlugins() opens the audit log and lists the plugins that enforce the rest.
import { auditPlugin, openAuditLog, type AuditLog } from './audit.js';
import { AUTH_FAILURE_LIMIT, authPlugin, createRateLimiter, loadApiKeys, type AccessControl, type KeyStore } from './auth.js';
import type { ServeConfig } from './config.js';
import { hygienePlugin } from './hygiene.js';
import { plug, type ServePlugin, type ServerOptions } from './server.js';
import { describeTls, httpsOptions, loadTls, type TlsMaterial } from './tls.js';
import type { ModelRepository } from './types.js';
import type { Logger } from '../util/log.js';

export interface PreparedSecurity {
  tls: TlsMaterial | undefined;
  store: KeyStore;
  /** API keys, the rate limiter and failed-key throttling, shared by REST and gRPC. */
  access: AccessControl;
}

/** Every security file read and checked (certificates, API key file): no model needed. */
export async function prepareSecurity(security: ServeConfig['security']): Promise<PreparedSecurity> {
  const tls = await loadTls({ cert: security.tls?.cert, key: security.tls?.key, ca: security.tls?.ca });
  const store = await loadApiKeys({ keys: security.apiKeys?.keys, file: security.apiKeys?.file });
  const access: AccessControl = {
    store,
    ...(security.rateLimit ? { limiter: createRateLimiter(security.rateLimit) } : {}),
    ...(store.keys.length ? { failures: createRateLimiter(AUTH_FAILURE_LIMIT) } : {}),
  };
  return { tls, store, access };
}

export interface SecuritySetup {
  /** Hygiene (CORS, security headers), the audit log when on, and API keys / rate limits. */
  plugins: ServePlugin[];
  /** Fastify constructor options (HTTPS when TLS is on). */
  fastify: ServerOptions['fastify'];
  /** Facts for the start-up line and the --json result. */
  info: Record<string, unknown>;
  /** The open audit log, for the other parts that write to it (hot reload, gRPC). */
  audit?: AuditLog;
}

/** Open the audit log (when asked for) and list the plugins that serve the security settings. */
export function securityPlugins(config: ServeConfig, prepared: PreparedSecurity, ctx: { repo: ModelRepository; logger: Logger }): SecuritySetup {
  const { tls, store, access } = prepared;
  const a = config.security.audit;
  const audit: AuditLog | undefined = a ? openAuditLog({ file: a.file, maxBytes: a.maxBytes, keep: a.keep }) : undefined;
  ctx.logger.info(describeTls(tls));
  ctx.logger.info(store.keys.length ? `API keys required on inference and metadata routes (${store.keys.length} key(s): ${store.keys.map((k) => k.id).join(', ')})` : 'API keys off: every caller may run inference (use --api-key / MLCTL_API_KEYS / --api-keys-file)');
  const onlyModel = () => {
    const names = [...new Set(ctx.repo.list().map((m) => m.name))];
    return names.length === 1 ? names[0] : undefined;
  };
  return {
    plugins: [plug(hygienePlugin, { corsOrigins: config.security.cors, tls: Boolean(tls) }), ...(audit ? [plug(auditPlugin, { audit })] : []), plug(authPlugin, { ...access, defaultModel: onlyModel })],
    fastify: tls ? { https: httpsOptions(tls) } : {},
    info: { tls: tls ? (tls.ca ? 'mtls' : 'tls') : 'off', apiKeys: store.keys.length, ...(audit ? { auditLog: audit.file } : {}) },
    ...(audit ? { audit } : {}),
  };
}

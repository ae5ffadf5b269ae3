// API-key access control and per-key rate limiting for mlctl serve, shared by REST (a Fastify hook) and gRPC.
// Keys are held only as sha256 digests and compared in constant time; logs and audit lines carry key ids, never keys.
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { MlctlError } from '../errors.js';
import { requestModelName } from './hygiene.js';
import { accessDenied, outsideKeyScope, type ScopeRefusal } from './errors.js';

export interface ApiKey {
  /** Public name for logs and audit lines, e.g. "ci" or "key-3f2a9c1b" (derived from the digest). */
  id: string;
  digest: Buffer;
  /** Models this key may use; undefined = every model. */
  models?: string[];
}

export interface KeyStore {
  keys: ApiKey[];
}

export interface KeySources {
  /** --api-key / MLCTL_API_KEYS: entries separated by commas or whitespace. */
  keys?: string;
  /** --api-keys-file: entries one per line (or comma-separated), '#' starts a comment. */
  file?: string;
}

const splitEntries = (text: string) => text.split(/[\s,]+/).filter(Boolean);

const ENTRY_HELP = 'an API key entry is [ID:]KEY[@MODEL[+MODEL...]] — KEY at least 16 characters of letters, digits, ".", "_", "-", "~", "+", "/", "="';
const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{16,512}$/;
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Parse one `[ID:]KEY[@MODEL[+MODEL...]]` entry (models joined by '+', which model names never contain). `where` names the source in error messages (never the key). */
export function parseKeyEntry(entry: string, where: string): ApiKey {
  let rest = entry.trim();
  let models: string[] | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    models = rest.slice(at + 1).split('+').map((m) => m.trim()).filter(Boolean);
    rest = rest.slice(0, at);
    if (!models.length) throw new MlctlError('API_KEYS_INVALID', [where, `"@" must be followed by model names; ${ENTRY_HELP}`]);
  }
  let id: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    id = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    if (!ID_PATTERN.test(id)) throw new MlctlError('API_KEYS_INVALID', [where, `key id "${id}" is invalid (letters, digits, '.', '_', '-'; up to 64)`]);
  }
  if (!KEY_PATTERN.test(rest)) throw new MlctlError('API_KEYS_INVALID', [where, `the key is too short or has characters outside the allowed set; ${ENTRY_HELP}`]);
  const d = digest(rest);
  return { id: id ?? `key-${d.toString('hex').slice(0, 8)}`, digest: d, ...(models ? { models } : {}) };
}

/** Gather keys from flags, environment and file. An empty store means access control is off. */
export async function loadApiKeys(sources: KeySources): Promise<KeyStore> {
  const keys: ApiKey[] = [];
  splitEntries(sources.keys ?? '').forEach((k, i) => keys.push(parseKeyEntry(k, `--api-key/MLCTL_API_KEYS entry ${i + 1}`)));
  if (sources.file) {
    let text: string;
    try {
      text = await fs.readFile(sources.file, 'utf8');
    } catch (err) {
      throw new MlctlError('API_KEYS_INVALID', [sources.file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
    }
    text.split(/\r?\n/).forEach((line, i) => {
      for (const entry of splitEntries(line.replace(/#.*$/, ''))) keys.push(parseKeyEntry(entry, `${sources.file}:${i + 1}`));
    });
  }
  const seen = new Map<string, string>();
  for (const k of keys) {
    const hex = k.digest.toString('hex');
    if (seen.has(hex)) throw new MlctlError('API_KEYS_INVALID', [k.id, `the same key is configured twice (also as ${seen.get(hex)})`]);
    seen.set(hex, k.id);
  }
  const ids = new Set<string>();
  for (const k of keys) {
    if (ids.has(k.id)) throw new MlctlError('API_KEYS_INVALID', [k.id, 'two keys share this id; give each key its own ID: prefix']);
    ids.add(k.id);
  }
  return { keys };
}

/**
 * The key matching `presented`, comparing against every configured key with timingSafeEqual on fixed-length
 * digests: no early exit and no length leak, so response time says nothing about how close a guess was.
 */
export function findKey(store: KeyStore, presented: string): ApiKey | undefined {
  const d = digest(presented);
  let match: ApiKey | undefined;
  for (const k of store.keys) {
    if (timingSafeEqual(d, k.digest) && !match) match = k;
  }
  return match;
}

/** The key a request presents: `Authorization: Bearer KEY` or `x-api-key: KEY`. */
export function presentedKey(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
  }
  return xApiKey?.trim() || undefined;
}

export type AuthDecision =
  | { ok: true; keyId?: string }
  | { ok: false; status: 401 | 403; message: string; keyId?: string };

/** The scope a key entry lists to read GET /metrics when keys are on (`ID:KEY@/metrics`, or with models `@a+/metrics`). */
export const METRICS_SCOPE = '/metrics';

/** What a call needs: a model (per-model key scopes) or the metrics scope. */
export type AccessTarget = { model?: string; metrics?: boolean };

/** Decide a call: 401 without a valid key, 403 when the key is not allowed on the model (or on /metrics). */
export function authorize(store: KeyStore, presented: string | undefined, target: AccessTarget = {}): AuthDecision {
  if (!store.keys.length) return { ok: true };
  if (!presented) return { ok: false, status: 401, message: 'an API key is required: send "Authorization: Bearer KEY" or "x-api-key: KEY"' };
  const key = findKey(store, presented);
  if (!key) return { ok: false, status: 401, message: 'the API key is not valid' };
  if (target.metrics && key.models && !key.models.includes(METRICS_SCOPE)) {
    return { ok: false, status: 403, keyId: key.id, message: `API key ${key.id} may not read /metrics: give it the ${METRICS_SCOPE} scope (ID:KEY@${METRICS_SCOPE}) or serve metrics on --metrics-port` };
  }
  // A key scoped to /metrics alone reads metrics and nothing else: no model, no model-less route either.
  if (!target.metrics && key.models && key.models.every((m) => m === METRICS_SCOPE)) {
    return { ok: false, status: 403, keyId: key.id, message: `API key ${key.id} may only read ${METRICS_SCOPE}: give it model scopes (ID:KEY@MODEL) to use models` };
  }
  const refused = target.model !== undefined ? outsideKeyScope({ keyId: key.id, keyModels: key.models }, target.model) : undefined;
  if (refused) return { ok: false, status: 403, keyId: key.id, message: refused.message };
  return { ok: true, keyId: key.id };
}

export interface RateLimit {
  /** Requests allowed per window (also the burst size). */
  limit: number;
  windowMs: number;
}

/** `--rate-limit` values: "N" (per minute), "N/s", "N/m", "N/h" (also second, minute, hour). */
export function parseRateLimit(spec: string): RateLimit {
  const m = /^\s*(\d+)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?\s*$/i.exec(spec);
  const n = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1) {
    throw new MlctlError('OPTION_INVALID', [`--rate-limit "${spec}" is not valid: use N, N/s, N/m or N/h with N >= 1 (requests per key)`]);
  }
  const unit = (m[2] ?? 'm').toLowerCase()[0];
  return { limit: n, windowMs: unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000 };
}

export type RateDecision = { ok: true; remaining: number } | { ok: false; retryAfterSec: number };

export interface RateLimiter {
  readonly limit: RateLimit;
  take(id: string): RateDecision;
  /** Seconds until `id` may act again without using a token (0 = it may now). */
  wait(id: string): number;
}

/** Token bucket per caller id: `limit` tokens, refilled continuously over `windowMs`; idle buckets are dropped. */
export function createRateLimiter(limit: RateLimit, now: () => number = Date.now): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = limit.limit / limit.windowMs;
  let lastSweep = now();
  const refill = (id: string, t: number) => {
    if (t - lastSweep > limit.windowMs) {
      // A bucket idle for a whole window is full again: forgetting it changes nothing and bounds memory.
      for (const [k, b] of buckets) if (t - b.at >= limit.windowMs) buckets.delete(k);
      lastSweep = t;
    }
    const b = buckets.get(id) ?? { tokens: limit.limit, at: t };
    b.tokens = Math.min(limit.limit, b.tokens + (t - b.at) * perMs);
    b.at = t;
    return b;
  };
  const waitFor = (tokens: number) => Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
  return {
    limit,
    take(id) {
      const b = refill(id, now());
      buckets.set(id, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true, remaining: Math.floor(b.tokens) };
      }
      return { ok: false, retryAfterSec: waitFor(b.tokens) };
    },
    wait(id) {
      if (!buckets.has(id)) return 0;
      const b = refill(id, now());
      return b.tokens >= 1 ? 0 : waitFor(b.tokens);
    },
  };
}

/** Default guard against key guessing: 30 wrong keys per minute from one address, then that address waits. */
export const AUTH_FAILURE_LIMIT: RateLimit = { limit: 30, windowMs: 60_000 };

export interface AccessControl {
  store: KeyStore;
  limiter?: RateLimiter;
  /** Counts wrong keys per client address; an address out of tokens is refused (429) before any key check. */
  failures?: RateLimiter;
}

export type AccessDecision =
  | { ok: true; keyId?: string }
  | { ok: false; status: 401 | 403 | 429; message: string; retryAfterSec?: number; keyId?: string };

/**
 * Authorization then rate limiting (per key id, or per client address when keys are off). Wrong keys are counted per
 * client address; a throttled address gets 429 for its wrong keys only — a valid key from it still works, so a
 * guesser sharing an address (NAT, proxy) cannot lock real users out. The key comparison is constant-time either way.
 */
export function checkAccess(ac: AccessControl, presented: string | undefined, target: AccessTarget | string | undefined, clientAddress: string): AccessDecision {
  const auth = authorize(ac.store, presented, typeof target === 'string' ? { model: target } : (target ?? {}));
  if (!auth.ok) {
    if (auth.status === 401 && presented && ac.failures) {
      const blocked = ac.failures.wait(`ip:${clientAddress}`);
      if (blocked > 0) return { ok: false, status: 429, retryAfterSec: blocked, message: `too many requests with a wrong API key from ${clientAddress}; retry after ${blocked}s` };
      ac.failures.take(`ip:${clientAddress}`);
    }
    return auth;
  }
  if (ac.limiter) {
    const rate = ac.limiter.take(auth.keyId ? `key:${auth.keyId}` : `ip:${clientAddress}`);
    if (!rate.ok) {
      return { ok: false, status: 429, retryAfterSec: rate.retryAfterSec, message: `rate limit of ${ac.limiter.limit.limit} requests per ${ac.limiter.limit.windowMs / 1000}s exceeded; retry after ${rate.retryAfterSec}s` };
    }
  }
  return auth;
}

/**
 * Routes anyone may call: the server's liveness/readiness probes and Prometheus scraping. A model's own readiness
 * (/v2/models/{name}/ready) is not among them: with keys on, 200 vs 404 there would list the models to anyone.
 */
export function isOpenRoute(url: string): boolean {
  const p = url.split('?')[0]!;
  return p === '/v2/health/live' || p === '/v2/health/ready' || p === '/metrics';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Id of the API key that authorized this request (never the key). */
    apiKeyId?: string;
    /** The models that key may use (undefined: every model): model-less listings (stats, index) show only these. */
    apiKeyModels?: string[];
  }
}

export interface AuthHookOptions extends AccessControl {
  /** The model a model-less inference route (the seed's POST /predict) acts on, for per-model key scopes. */
  defaultModel?: () => string | undefined;
}



function requestModel(request: FastifyRequest, defaultModel?: () => string | undefined): string | undefined {
  const named = requestModelName(request);
  if (named !== undefined) return named;
  return request.routeOptions.config?.kind === 'inference' ? defaultModel?.() : undefined;
}

/**
 * The access check as an onRequest hook (before any body is read), registered before the routes: health probes and
 * /metrics stay open (route kind from serve's route config, or the URL), everything else needs a key.
 * Sets request.apiKeyId, which serve's routes pass on to the repository (and so to the audit log).
 */
export const authPlugin = fp<AuthHookOptions>(async (app, opts) => {
  if (!opts.store.keys.length && !opts.limiter) return;
  const keysOn = opts.store.keys.length > 0;
  // With keys on, error messages must not tell an unauthenticated caller which models exist.
  if (keysOn) app.mlctl.discreet = true;
  app.decorateRequest('apiKeyId', undefined);
  app.decorateRequest('apiKeyModels', undefined);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const kind = request.routeOptions.config?.kind;
    const metrics = kind === 'metrics' || (kind === undefined && request.url.split('?')[0] === METRICS_SCOPE);
    if (request.method === 'OPTIONS' || kind === 'health' || kind === 'page' || (metrics && !keysOn) || (kind === undefined && !metrics && isOpenRoute(request.url))) return;
    const presented = presentedKey(request.headers.authorization, headerValue(request.headers['x-api-key']));
    const target = metrics ? { metrics: true } : { model: requestModel(request, opts.defaultModel) };
    const decision = checkAccess(opts, presented, target, request.clientAddress);
    if (decision.ok) {
      request.apiKeyId = decision.keyId;
      request.apiKeyModels = opts.store.keys.find((k) => k.id === decision.keyId)?.models;
      return;
    }
    const err = accessDenied(decision);
    if (decision.status === 401) reply.header('www-authenticate', 'Bearer realm="mlctl"');
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    request.log.info({ status: err.httpStatus, url: request.url, ip: request.clientAddress }, err.message);
    if (decision.status !== 429) auditDenied(request, err, decision.keyId, requestModelName(request));
    return reply.code(err.httpStatus).send({ error: err.message, code: err.code });
  });
  // Scopes are also checked where a model is chosen from the body (/predict's multipart or JSON "model") and where it
  // runs (the repository): those refusals are thrown by the route, and audited here like the ones above.
  app.addHook('onError', async (request, _reply, error) => {
    if (error instanceof MlctlError && error.code === 'PERMISSION_DENIED') auditDenied(request, error, request.apiKeyId, (error as Partial<ScopeRefusal>).model);
  });

  function auditDenied(request: FastifyRequest, err: MlctlError, keyId: string | undefined, model: string | undefined): void {
    app.auditLog?.write({
      time: new Date().toISOString(), event: 'auth-denied', requestId: request.id, status: err.httpStatus, code: err.code, keyId: keyId ?? null,
      client: request.clientAddress, route: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]!.slice(0, 200)}`,
      ...(model !== undefined ? { model: model.slice(0, 130) } : {}), reason: err.message,
    });
  }
}, { name: 'mlctl-auth', dependencies: ['mlctl-core', 'mlctl-hygiene'], decorators: { fastify: ['mlctl'] } });

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

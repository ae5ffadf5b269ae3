// HTTP hygiene for mlctl serve: CORS off unless --cors names origins, security headers on every reply, model names
// and versions validated before any route runs (no path outside the model directory), and no stack traces in bodies.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import cors from '@fastify/cors';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { NAME_PATTERN } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';

export interface HygieneOptions {
  /** --cors: allowed origins ("*" for any); undefined or empty = no CORS headers at all. */
  corsOrigins?: string[];
  /** Serving over TLS: adds Strict-Transport-Security. */
  tls?: boolean;
}

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

/** True for a model name mlctl could have written: no separators, no "..", nothing hidden. */
export function isValidModelName(name: string): boolean {
  return NAME_PATTERN.test(name) && !name.includes('..');
}

export function isValidVersion(version: string): boolean {
  return /^[1-9]\d{0,8}$/.test(version);
}

/**
 * The model a request names: V2's `:name`, TF Serving's `:model` (without a trailing ":predict"/":classify" verb)
 * or the seed route's `?model=`. Undefined when the route names none.
 */
export function requestModelName(request: FastifyRequest): string | undefined {
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  if (params.name !== undefined) return params.name;
  if (params.model !== undefined) return params.version === undefined ? params.model.replace(/:[A-Za-z]+$/, '') : params.model;
  const query = (request.query ?? {}) as Record<string, unknown>;
  return typeof query.model === 'string' ? query.model : undefined;
}

/** `--cors` value → origin list; "*" alone allows any origin. */
export function parseCorsOrigins(value: string | string[] | undefined): string[] | undefined {
  const list = (Array.isArray(value) ? value : value ? [value] : []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  if (!list.length) return undefined;
  for (const o of list) {
    if (o !== '*' && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o)) {
      throw new MlctlError('OPTION_INVALID', [`--cors origin "${o}" is not valid: use "*" or origins like https://app.example.com (scheme://host[:port], no path)`]);
    }
  }
  return list;
}

/**
 * Resolve `parts` under `root` and prove the result stays inside it, following symlinks, so a crafted name or a
 * link planted in the model directory cannot reach other files. Throws MODEL_NAME_INVALID otherwise.
 */
export async function resolveInside(root: string, ...parts: string[]): Promise<string> {
  const base = await fs.realpath(root);
  const target = path.resolve(base, ...parts);
  const real = await fs.realpath(target).catch(() => target);
  for (const p of [target, real]) {
    const rel = path.relative(base, p);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new MlctlError('MODEL_NAME_INVALID', [`"${parts.join('/')}" is outside the model directory`]);
  }
  return real;
}

/** Remove anything stack-like from a JSON error body; 500s get a generic message (details stay in the log). */
export function sanitizeErrorBody(body: unknown, statusCode: number, requestId: string): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k === 'stack' || k === 'cause') continue;
    out[k] = typeof v === 'string' && /\n\s+at\s/.test(v) ? v.split('\n')[0] : v;
  }
  if (statusCode === 500) {
    const generic = `internal server error (request id ${requestId}); the details are in the server log`;
    if ('error' in out) out.error = generic;
    if ('message' in out) out.message = generic;
    if (!('error' in out) && !('message' in out)) out.error = generic;
  }
  return out;
}

/**
 * CORS, security headers, model-name validation and error-body sanitising, as a plugin registered before auth and
 * the routes (skipping encapsulation), so refusals carry the same headers.
 */
export const hygienePlugin = fp<HygieneOptions>(
  async (app, opts) => {
    if (opts.corsOrigins?.length) {
      const any = opts.corsOrigins.includes('*');
      await app.register(cors, {
        origin: any ? '*' : opts.corsOrigins,
        methods: ['GET', 'POST', 'OPTIONS'],
        allowedHeaders: ['Content-Type', 'Authorization', 'x-api-key', 'x-request-id', 'Inference-Header-Content-Length'],
        exposedHeaders: ['Retry-After', 'x-request-id', 'Inference-Header-Content-Length'],
        maxAge: 600,
      });
    }
    const headers = opts.tls ? { ...SECURITY_HEADERS, 'strict-transport-security': 'max-age=31536000' } : SECURITY_HEADERS;
    app.addHook('onRequest', async (request, reply) => {
      reply.headers(headers);
      // Model names become directory names (model control, reload): refuse anything that is not a plain name.
      const name = requestModelName(request);
      if (name !== undefined && !isValidModelName(name)) {
        return reply.code(400).send({ error: `invalid model name "${name.slice(0, 130)}": use letters, digits, '.', '_' or '-' (no path separators or "..")` });
      }
    });
    app.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
      if (!String(reply.getHeader('content-type') ?? '').includes('json')) return payload;
      try {
        return JSON.stringify(sanitizeErrorBody(JSON.parse(payload), reply.statusCode, request.id));
      } catch {
        return payload;
      }
    });
  },
  { name: 'mlctl-hygiene', dependencies: ['mlctl-core'], decorators: { fastify: ['mlctl'] } },
);

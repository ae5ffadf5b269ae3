// Helpers shared by serve's route modules: model/version resolution from URLs, and the inference call context.
import type { FastifyRequest } from 'fastify';
import { createRequire } from 'node:module';
import { badRequest, notFound, outsideKeyScope, type KeyScope } from '../errors.js';
import { MlctlError } from '../../errors.js';
import type { InferContext, ServedModel, ServeState, UnavailableVersion } from '../types.js';

const require = createRequire(import.meta.url);
export const SERVER_VERSION: string = (require('../../../package.json') as { version: string }).version;

/** URL version segment → number; anything but a positive integer is an unknown version (404). */
export function parseVersion(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1) throw notFound(`model ${name} has no version "${v}" (versions are positive integers)`);
  return Number(v);
}

/**
 * Versions found on disk that cannot be served: refused at start-up (the repository's) or by hot reload and model
 * control (the reloader's), less any loaded since. Readiness (503), metadata and errors read this one list.
 */
export function unavailableVersions(state: Pick<ServeState, 'repo' | 'modelControl'>): UnavailableVersion[] {
  const out: UnavailableVersion[] = [];
  for (const u of [...(state.modelControl?.refused() ?? []), ...state.repo.unavailable()]) {
    if (state.repo.get(u.name, u.version) || out.some((o) => o.name === u.name && o.version === u.version)) continue;
    out.push(u);
  }
  return out;
}

/** The API-key scope of a request (set by the auth hook), for resolveModel and the repository. */
export function keyScope(request: FastifyRequest): KeyScope {
  return { keyId: request.apiKeyId, keyModels: request.apiKeyModels };
}

/**
 * The model a request means; for /predict with several models loaded the caller must name one. With API keys on
 * (`discreet`) the errors name no other model: a 404 must not list what an unauthenticated caller may not see.
 * With `scope`, a name outside the key's scope is refused (403) before anyone looks it up, so a scoped key learns
 * nothing about other models from a name it carried in a body; the repository checks the same rule where it runs.
 */
export function resolveModel(state: Pick<ServeState, 'repo' | 'discreet' | 'modelControl'>, name: string | undefined, version: string | undefined, scope?: KeyScope): ServedModel {
  const { repo, discreet } = state;
  if (name === undefined || name === '') {
    const names = [...new Set(repo.list().map((m) => m.name))];
    if (names.length === 1) name = names[0]!;
    else if (names.length === 0) throw notFound('no model is loaded');
    else throw badRequest(`several models are loaded${discreet ? '' : ` (${names.sort().join(', ')})`}: pass ?model=NAME (and optionally &version=N)`);
  }
  const refused = scope ? outsideKeyScope(scope, name) : undefined;
  if (refused) throw refused;
  const v = parseVersion(name, version);
  const model = repo.get(name, v);
  if (model) return model;
  const broken = v !== undefined ? unavailableVersions(state).find((u) => u.name === name && u.version === v) : undefined;
  if (broken) throw new MlctlError('MODEL_UNAVAILABLE', [`model ${name} v${v} is unavailable: ${broken.reason}`]);
  const known = repo.list().filter((m) => m.name === name).map((m) => m.version);
  if (known.length && v !== undefined) throw notFound(`model ${name} has no version ${v}${discreet ? '' : ` (loaded: ${known.join(', ')})`}`);
  if (discreet) throw notFound(`model ${name} is not loaded`);
  throw notFound(`model ${name} is not loaded (loaded models: ${[...new Set(repo.list().map((m) => m.name))].sort().join(', ') || 'none'})`);
}

export function inferContext(request: FastifyRequest): InferContext {
  const { keyId, keyModels } = keyScope(request);
  // The fairness key of the batching queue: the API key, else the connection (pipelined requests share one).
  const socket = request.raw.socket;
  const connection = `${socket?.remoteAddress ?? request.ip}:${socket?.remotePort ?? ''}`;
  return { requestId: request.id, clientAddress: request.clientAddress ?? request.ip, connection, ...(keyId ? { keyId } : {}), ...(keyModels ? { keyModels } : {}) };
}

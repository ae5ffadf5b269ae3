// Shorthands for the registry codes mlctl serve raises (src/errors.ts holds each code's HTTP and gRPC status), and
// the status of anything thrown while serving: REST answers {"error", "code"} with it, gRPC maps the same code.
import { MlctlError, type ErrorCode } from '../errors.js';

export const badRequest = (message: string, cause?: unknown) => new MlctlError('INPUT_INVALID', [message], { cause });
export const notFound = (message: string) => new MlctlError('MODEL_NOT_FOUND', [message]);
export const shuttingDown = (message = 'the server is shutting down') => new MlctlError('SHUTTING_DOWN', [message]);
export const notReady = (message: string) => new MlctlError('MODEL_NOT_READY', [message]);
export const payloadTooLarge = (message: string, cause?: unknown) => new MlctlError('PAYLOAD_TOO_LARGE', [message], { cause });
export const unsupportedMediaType = (message: string) => new MlctlError('UNSUPPORTED_MEDIA_TYPE', [message]);

const ACCESS_CODES: Record<401 | 403 | 429, ErrorCode> = { 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 429: 'RATE_LIMITED' };

/** A refused access decision (auth.ts checkAccess) as a registry error: 401/403/429 with Retry-After where given. */
export function accessDenied(d: { status: 401 | 403 | 429; message: string; retryAfterSec?: number }): MlctlError {
  return new MlctlError(ACCESS_CODES[d.status], [d.message], { retryAfter: d.retryAfterSec });
}

/** What an API key may use: its id and the models it is scoped to (undefined: every model, or keys are off). */
export interface KeyScope {
  keyId?: string;
  keyModels?: readonly string[];
}

/** A PERMISSION_DENIED naming the model a scoped key was refused (the audit line names it too). */
export type ScopeRefusal = MlctlError & { model: string };

/**
 * The one per-model scope rule, for every place a model is chosen or run (auth's URL check, resolveModel, the
 * repository's infer): a scoped key may use only the models it lists. Undefined when allowed.
 */
export function outsideKeyScope(scope: KeyScope, model: string): ScopeRefusal | undefined {
  if (!scope.keyModels || scope.keyModels.includes(model)) return undefined;
  return Object.assign(new MlctlError('PERMISSION_DENIED', [`API key ${scope.keyId ?? '(scoped)'} is not allowed to use model "${model.slice(0, 130)}"`]), { model });
}

/** HTTP status for anything thrown while serving a request; unknown errors are 500. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof MlctlError) return err.httpStatus;
  const status = (err as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 600) return status;
  return 500;
}

/**
 * Whether a client may see the error's own message: registry errors raised with a client-facing status (4xx, 503).
 * Anything that maps to a plain 500 is answered generically; its details go to the server log.
 */
export function isExposed(err: unknown): err is MlctlError {
  return err instanceof MlctlError && err.httpStatus !== 500;
}

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

// Errors that carry an HTTP status for mlctl serve: every bad request, unknown model or overload maps to one of
// these so REST answers {"error"} with the right code (and gRPC can map the same status to its own codes).
import { MlctlError } from '../errors.js';

export class ServeError extends Error {
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as Retry-After on 503/429). */
  readonly retryAfter?: number;

  constructor(status: number, message: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'ServeError';
    this.status = status;
    this.retryAfter = opts.retryAfter;
  }
}

export const badRequest = (message: string, cause?: unknown) => new ServeError(400, message, { cause });
export const notFound = (message: string) => new ServeError(404, message);

/** MlctlErrors raised by shared code on bad input (undecodable image, pixel bomb) are the client's fault: 400. */
const CLIENT_CODES = new Set(['IMAGE_DECODE', 'IMAGE_TOO_LARGE', 'USAGE']);

/** HTTP status for anything thrown while serving a request; unknown errors are 500. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof ServeError) return err.status;
  if (err instanceof MlctlError) return CLIENT_CODES.has(err.code) ? 400 : 500;
  const status = (err as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 600) return status;
  return 500;
}

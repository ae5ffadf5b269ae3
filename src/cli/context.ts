// Small helpers command files share: backend start-up with its one-line announcement, and stub handling.
import { MlctlError } from '../errors.js';
import { describeBackend, parseBackendChoice, selectBackend, type BackendInfo } from '../runtime/backend.js';
import type { RunContext } from './spec.js';

/** Select the TF.js backend from --backend / MLCTL_BACKEND and say which one runs (stderr). */
export async function startBackend(ctx: RunContext): Promise<BackendInfo> {
  const info = await selectBackend(parseBackendChoice(ctx.opts.backend as string | undefined));
  ctx.logger.info(describeBackend(info));
  return info;
}

/** For commands not built yet: say so and fail (exit 1) — never pretend to work. */
export function notImplemented(what: string): never {
  throw new MlctlError('NOT_IMPLEMENTED', [what]);
}

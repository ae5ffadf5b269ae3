// Helpers the command runners share (loaded with them, never by --help): backend start-up with its one-line
// announcement.
import { describeBackend, parseBackendChoice, selectBackend, type BackendInfo } from '../runtime/backend.js';
import type { Logger } from '../util/log.js';

/** Select the TF.js backend from --backend / MLCTL_BACKEND and say which one runs (stderr). */
export async function startBackend(ctx: { opts: { backend: string }; logger: Logger }): Promise<BackendInfo> {
  const info = await selectBackend(parseBackendChoice(ctx.opts.backend));
  ctx.logger.info(describeBackend(info));
  return info;
}

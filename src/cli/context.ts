// Helpers the command runners share (loaded with them, never by --help): backend start-up with its one-line
// announcement.
import type { ResolvedDevice } from '../runtime/ort.js';
import { describeBackend, parseBackendChoice, selectBackend, type BackendInfo } from '../runtime/backend.js';
import type { Logger } from '../util/log.js';
import { parseDevice, setSessionDefaults, type GraphOptimization } from '../runtime/device.js';

/** The session options' values as a runner's opts carry them (cli/options.ts SESSION_OPTIONS). */
export interface SessionOpts {
  device: string;
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimization: GraphOptimization;
}

/**
 * Resolve --device once, at start (before data is read): a device this build cannot run fails now with
 * DEVICE_UNAVAILABLE; auto says what it chose. The result becomes the process's session defaults for every engine.
 */
export async function startDevice(ctx: { opts: SessionOpts; logger: Logger }): Promise<ResolvedDevice> {
  const settings = { intraOpThreads: ctx.opts.intraOpThreads, interOpThreads: ctx.opts.interOpThreads, graphOptimization: ctx.opts.graphOptimization };
  const parsed = parseDevice(ctx.opts.device);
  // cpu (the default) needs no probe: commands that end up on TF.js never load onnxruntime for it.
  if (parsed !== 'auto' && parsed.kind === 'cpu') {
    setSessionDefaults({ device: parsed, ...settings });
    return { device: parsed, requested: 'cpu', skipped: [] };
  }
  const { resolveDevice, describeDevice } = await import('../runtime/ort.js');
  const resolved = resolveDevice(parsed);
  setSessionDefaults({ device: resolved.device, ...settings });
  // Named devices are echoed at debug level only: the engine description carries them; auto's choice is news.
  if (resolved.requested === 'auto') ctx.logger.info(describeDevice(resolved));
  else ctx.logger.debug(describeDevice(resolved));
  return resolved;
}

/** Select the TF.js backend from --backend / MLCTL_BACKEND and say which one runs (stderr). */
export async function startBackend(ctx: { opts: { backend: string }; logger: Logger }): Promise<BackendInfo> {
  const info = await selectBackend(parseBackendChoice(ctx.opts.backend));
  ctx.logger.info(describeBackend(info));
  return info;
}

/**
 * SIGINT/SIGTERM request a stop at the next batch boundary (train saves a checkpoint, predict finishes the rows it
 * is writing) and the command exits 130; a second signal exits at once. `what` says what happens before stopping.
 */
export function interruptFlag(ctx: { logger: Logger }, what = 'finishing the current batch and saving a checkpoint'): { stop: () => boolean; signal: () => string | undefined; release: () => void } {
  let received: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      ctx.logger.warn(`second ${sig}: exiting immediately`);
      process.exit(130);
    }
    received = sig;
    ctx.logger.warn(`${sig} received: ${what} (press Ctrl-C again to abort)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stop: () => received !== undefined,
    signal: () => received,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

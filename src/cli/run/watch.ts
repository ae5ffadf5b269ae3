// Runs `mlctl watch` (loaded on demand): the config file with the flags laid over it, then the watcher until
// SIGTERM/SIGINT or until every source has ended. With --json every accepted event is one line on stdout.
import { MlctlError } from '../../errors.js';
import { MLCTL_VERSION } from '../../util/version.js';
import { loadWatchConfig, type WatchOverrides } from '../../watch/config/load.js';
import { startWatch } from '../../watch/watcher.js';
import type { WatchContext } from '../commands/watch.js';
import { startBackend, startDevice } from '../context.js';
import type { CommandResult } from '../spec.js';

function cameraFlags(values: string[]): NonNullable<WatchOverrides['cameras']> {
  return values.map((v) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new MlctlError('OPTION_INVALID', [`--camera "${v}" must be NAME=URL, e.g. --camera door=http://10.0.0.5/video.mjpg`]);
    return { name: v.slice(0, eq), url: v.slice(eq + 1) };
  });
}

/** The flags as config overrides (only those given: the file's values stay otherwise). */
function overridesOf(ctx: WatchContext): WatchOverrides {
  const { opts } = ctx;
  const model = ctx.args[0];
  const o: WatchOverrides = {};
  if (opts.server) Object.assign(o, { server: opts.server }, model ? { serverModel: model } : {});
  else if (model) o.model = model;
  if (opts.labels) o.labels = opts.labels;
  if (opts.camera) o.cameras = cameraFlags(opts.camera);
  if (opts.fps !== undefined) o.fps = opts.fps;
  if (opts.rules) o.rulesFile = opts.rules;
  if (opts.webhook) o.webhook = opts.webhook;
  if (opts.webhookSecret) o.webhookSecret = opts.webhookSecret;
  if (opts.webhookFormat) o.webhookFormat = opts.webhookFormat;
  if (opts.mqtt) o.mqtt = opts.mqtt;
  if (opts.exec) o.exec = opts.exec;
  if (opts.stateDir) o.stateDir = opts.stateDir;
  if (opts.statusPort !== undefined) o.statusPort = opts.statusPort;
  if (opts.statusHost) o.statusHost = opts.statusHost;
  if (opts.engine) o.engine = opts.engine;
  if (opts.maxBatch !== undefined) o.maxBatch = opts.maxBatch;
  return o;
}

export async function run(ctx: WatchContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const config = await loadWatchConfig(opts.config, overridesOf(ctx));
  if (!config.inference.server) {
    await startBackend(ctx);
    await startDevice(ctx);
  }
  const watcher = await startWatch({
    config,
    logger,
    version: MLCTL_VERSION,
    ...(ctx.json ? { onEvent: (e) => void process.stdout.write(JSON.stringify(e) + '\n') } : {}),
  });
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      logger.warn(`second ${sig}: exiting now; undelivered events stay in the spool for the next start`);
      process.exit(130);
    }
    signalled = true;
    void watcher.stop(`received ${sig}`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const summary = await watcher.done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  // Native thread pools (onnxruntime, sharp) must not keep a stopped watcher alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  const waiting = Object.values(summary.backlog).reduce((a, b) => a + b, 0);
  return {
    exitCode: 0,
    result: summary,
    text: `stopped (${summary.reason}) after ${summary.seconds} s: ${summary.events} event(s)${waiting ? `, ${waiting} delivery(ies) waiting in the spool` : ''}`,
  };
}

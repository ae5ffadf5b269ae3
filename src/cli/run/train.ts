// Runs `mlctl train` (loaded on demand): VGG16 transfer learning through src/train, or the classic models through
// src/classic; Ctrl-C stops at a batch boundary with a checkpoint (exit 130).
import path from 'node:path';
import { MlctlError } from '../../errors.js';
import { runTrain, type TrainResult } from '../../train/run.js';
import type { TrainContext } from '../commands/train.js';
import { startBackend } from '../context.js';
import type { CommandResult } from '../spec.js';
import { runClassicTrain } from './train-classic.js';

function defaultName(data: string): string {
  const base = path.basename(path.resolve(data)).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return base || 'model';
}

/** SIGINT/SIGTERM request a stop at the next batch boundary; training saves a checkpoint and we exit 130. */
function interruptFlag(ctx: TrainContext): { stop: () => boolean; signal: () => string | undefined; release: () => void } {
  let received: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      ctx.logger.warn(`second ${sig}: exiting immediately`);
      process.exit(130);
    }
    received = sig;
    ctx.logger.warn(`${sig} received: finishing the current batch and saving a checkpoint (press Ctrl-C again to abort)`);
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

function summary(r: TrainResult): string {
  const m = r.metrics;
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : 'n/a');
  return [
    `${r.package!.dir}`,
    `  version ${r.package!.version}, ${m.epochsRun} epochs (best ${m.bestEpoch}${m.stoppedEarly ? ', stopped early' : ''})`,
    `  val accuracy ${f(m.valAccuracy)}  val loss ${f(m.valLoss)}${m.testAccuracy !== undefined ? `  test accuracy ${f(m.testAccuracy)}` : ''}`,
    `  backend ${r.backend}, features via ${r.engine}${r.features.train ? ` (${r.features.train.cached} cached, ${r.features.train.computed} computed)` : ''}, ${r.timings.totalSeconds}s`,
  ].join('\n');
}

export async function run(ctx: TrainContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  if (opts.model !== 'vgg16') return runClassicTrain(ctx, opts.model);
  const backend = await startBackend(ctx);
  const flag = interruptFlag(ctx);
  try {
    const result = await runTrain({
      data: opts.data,
      name: opts.name ?? defaultName(opts.data),
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      imageSize: opts.imageSize,
      lr: opts.lr,
      head: opts.head,
      dropout: opts.dropout,
      fineTune: opts.fineTune,
      fineTuneLr: opts.fineTuneLr,
      weights: opts.weights,
      augment: opts.augment,
      patience: opts.patience,
      seed: opts.seed,
      resume: opts.resume,
      validationSplit: opts.validationSplit,
      testSplit: opts.testSplit,
      engine: opts.engine,
      classWeights: opts.classWeights,
      featureCache: opts.featureCache,
      logger,
      shouldStop: flag.stop,
    });
    if (result.interrupted) {
      throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'}; checkpoint kept in ${result.runDir} (continue with the same options and --resume)`]);
    }
    return {
      result: {
        package: result.package!.dir,
        name: result.package!.name,
        version: result.package!.version,
        manifestSha256: result.package!.manifestSha256,
        metrics: result.metrics,
        backend: backend.name,
        engine: result.engine,
        features: result.features,
        timings: result.timings,
        runDir: result.runDir,
      },
      text: summary(result),
    };
  } finally {
    flag.release();
  }
}

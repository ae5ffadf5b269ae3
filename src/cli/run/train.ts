// Runs `mlctl train` (loaded on demand): transfer learning through src/train (an image classifier, or with --task
// detection an object detector), or the classic models through src/classic; Ctrl-C stops at a batch boundary with a
// checkpoint (exit 130).
import path from 'node:path';
import { MlctlError } from '../../errors.js';
import { resolveSplitParams } from '../../data/splits.js';
import type { LrFindResult } from '../../train/lr-find.js';
import { runTrain, type TrainResult } from '../../train/run.js';
import { DEFAULT_IMAGE_SIZE, type TrainContext } from '../commands/train.js';
import { interruptFlag, startBackend, startDevice } from '../context.js';
import { parseShard, WHOLE } from '../../util/shard.js';
import type { CommandResult } from '../spec.js';
import { runClassicTrain } from './train-classic.js';
import { defaultName } from './train-name.js';

/** A range test in --json: the curve, fastai's suggestions and the one used. */
function lrFindJson(r: LrFindResult) {
  return { phase: r.phase, stop: r.stop, suggestions: r.suggestions, chosen: r.chosen ?? null, lrs: r.lrs, losses: r.losses, seconds: r.seconds };
}

function summary(r: TrainResult, tensorboard?: string): string {
  const m = r.metrics;
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : 'n/a');
  return [
    ...(r.lrFind ?? []).map((t) => `LR range test (${t.phase}): ${t.chosen ? `suggested lr ${t.chosen.lr.toExponential(2)} (${t.chosen.rule})` : 'no suggestion'}`),
    `${r.package!.dir}`,
    `  version ${r.package!.version}, ${m.epochsRun} epochs (best ${m.bestEpoch}${m.stoppedEarly ? ', stopped early' : ''})`,
    `  val accuracy ${f(m.valAccuracy)}  val loss ${f(m.valLoss)}${m.testAccuracy !== undefined ? `  test accuracy ${f(m.testAccuracy)}` : ''}`,
    `  backend ${r.backend}, features via ${r.engine}${r.features.train ? ` (${r.features.train.cached} cached, ${r.features.train.computed} computed)` : ''}, ${r.timings.totalSeconds}s`,
    `  curves: ${path.join(r.package!.dir, 'history.html')}${tensorboard ? `; TensorBoard: tensorboard --logdir ${tensorboard}` : ''}`,
  ].join('\n');
}

export async function run(ctx: TrainContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  // Loaded only when asked for: the classification path keeps its start-up.
  if (opts.task === 'detection') return (await import('./train-detection.js')).runDetectionTrainCli(ctx);
  if (opts.format !== undefined || opts.skipInvalid) throw new MlctlError('OPTION_CONFLICT', [`${opts.format !== undefined ? '--format' : '--skip-invalid'} reads a detection dataset: add --task detection (an image classifier reads class folders)`]);
  if (opts.model === 'vgg16') {
    // The old name of the neural path said "VGG16" whatever --backbone chose.
    logger.warn(`--model vgg16 is deprecated: it means a neural network on --backbone (${opts.backbone}); use --model nn (the default), and --backbone to choose the base`);
  } else if (opts.model !== 'nn') {
    if (opts.extractOnly || opts.shard !== undefined) throw new MlctlError('OPTION_CONFLICT', [`--extract-only and --shard fill the backbone feature store; --model ${opts.model} has none`]);
    // Classic solvers have no epochs to log.
    if (opts.tensorboard) throw new MlctlError('OPTION_CONFLICT', [`--tensorboard logs epochs of transfer learning (--model nn); --model ${opts.model} has none`]);
    return runClassicTrain(ctx, opts.model);
  }
  if (opts.extractOnly && opts.tensorboard) throw new MlctlError('OPTION_CONFLICT', ['--extract-only trains nothing, so there are no epochs for --tensorboard: drop one of them']);
  if (opts.shard !== undefined && !opts.extractOnly) throw new MlctlError('OPTION_CONFLICT', ['--shard splits the feature extraction of --extract-only; add --extract-only (the head then trains on one machine from the filled store)']);
  if (opts.extractOnly && opts.findLr) throw new MlctlError('OPTION_CONFLICT', ['--extract-only trains nothing, so there is no learning rate for --find-lr to find: drop one of them']);
  if (opts.extractOnly && !opts.featureCache) throw new MlctlError('OPTION_CONFLICT', ['--extract-only fills the feature store: drop --no-feature-cache']);
  const split = resolveSplitParams(opts);
  const extractOnly = opts.extractOnly ? { shard: opts.shard !== undefined ? parseShard(opts.shard) : WHOLE } : undefined;
  const backend = await startBackend(ctx);
  await startDevice(ctx);
  const flag = interruptFlag(ctx);
  try {
    const result = await runTrain({
      data: opts.data,
      name: opts.name ?? defaultName(opts.data),
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      imageSize: opts.imageSize ?? DEFAULT_IMAGE_SIZE['image-classification'],
      backbone: opts.backbone,
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      lr: opts.lr,
      lrSchedule: opts.lrSchedule,
      warmupEpochs: opts.warmupEpochs,
      findLr: opts.findLr,
      head: opts.head,
      dropout: opts.dropout,
      fineTune: opts.fineTune,
      fineTuneEpochs: opts.fineTuneEpochs,
      fineTuneLr: opts.fineTuneLr,
      weights: opts.weights,
      augment: opts.augment,
      patience: opts.patience,
      seed: split.params.seed,
      resume: opts.resume,
      validationSplit: split.params.validationSplit,
      testSplit: split.params.testSplit,
      splitGiven: split.from,
      engine: opts.engine,
      classWeights: opts.classWeights,
      featureCache: opts.featureCache,
      ...(extractOnly ? { extractOnly } : {}),
      tensorboard: opts.tensorboard,
      logger,
      shouldStop: flag.stop,
    });
    if (result.extracted) {
      const x = result.extracted;
      if (result.interrupted) throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'}; the features stored so far stay in ${x.storeDir} (run the same command again to continue)`]);
      return {
        result: { extracted: x, backend: backend.name, engine: result.engine, timings: result.timings },
        text: `feature store ${x.storeDir}: shard ${x.shard}, ${x.images} of ${x.datasetImages} images (${x.cached} already stored, ${x.computed} computed, ${x.skipped} unreadable)\nwhen every shard is done, run the same train command without --extract-only/--shard: the head trains from the store`,
      };
    }
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
        ...(result.lrFind ? { lrFind: result.lrFind.map(lrFindJson) } : {}),
        ...(opts.tensorboard ? { tensorboard: path.resolve(opts.tensorboard) } : {}),
      },
      text: summary(result, opts.tensorboard),
    };
  } finally {
    flag.release();
  }
}

// What `mlctl train` runs the same way for the image classifier (train.ts) and the detector (train-detection.ts): the
// checks of --extract-only/--shard/--find-lr, the options every trainer takes, and the run around the trainer —
// backend, Ctrl-C, the reply for a stored shard, an interrupted run, the LR range tests and the saved package.
import path from 'node:path';
import { resolveSplitParams } from '../../data/splits.js';
import { MlctlError } from '../../errors.js';
import type { LrFindResult } from '../../train/lr-find.js';
import type { ExtractOnlyResult, TrainOptions } from '../../train/types.js';
import { parseShard, WHOLE } from '../../util/shard.js';
import { DEFAULT_IMAGE_SIZE, type TrainContext } from '../commands/train.js';
import { interruptFlag, startBackend, startDevice } from '../context.js';
import type { CommandResult } from '../spec.js';
import { defaultName } from './train-name.js';

/** The options both trainers take, from the command line. */
export type CommonTrainOptions = Omit<TrainOptions, 'head' | 'dropout' | 'classWeights'>;

/** What both trainers return, as far as the reply needs. */
export interface TrainerResult {
  package?: { dir: string; name: string; version: number; manifestSha256: string };
  interrupted: boolean;
  runDir: string;
  metrics: Record<string, unknown>;
  engine: string;
  features: object;
  timings: Record<string, number>;
  lrFind?: LrFindResult[];
  extracted?: ExtractOnlyResult;
}

/** --extract-only and --shard fill the store and train nothing: the options that need training are refused with them. */
function extractOnlyPlan(opts: TrainContext['opts']): CommonTrainOptions['extractOnly'] {
  if (opts.extractOnly && opts.tensorboard) throw new MlctlError('OPTION_CONFLICT', ['--extract-only trains nothing, so there are no epochs for --tensorboard: drop one of them']);
  if (opts.shard !== undefined && !opts.extractOnly) throw new MlctlError('OPTION_CONFLICT', ['--shard splits the feature extraction of --extract-only; add --extract-only (the head then trains on one machine from the filled store)']);
  if (opts.extractOnly && opts.findLr) throw new MlctlError('OPTION_CONFLICT', ['--extract-only trains nothing, so there is no learning rate for --find-lr to find: drop one of them']);
  if (opts.extractOnly && !opts.featureCache) throw new MlctlError('OPTION_CONFLICT', ['--extract-only fills the feature store: drop --no-feature-cache']);
  return opts.extractOnly ? { shard: opts.shard !== undefined ? parseShard(opts.shard) : WHOLE } : undefined;
}

/** A range test in --json: the curve, fastai's suggestions and the one used. */
function lrFindJson(r: LrFindResult) {
  return { phase: r.phase, stop: r.stop, suggestions: r.suggestions, chosen: r.chosen ?? null, lrs: r.lrs, losses: r.losses, seconds: r.seconds };
}

const lrFindLines = (tests: readonly LrFindResult[] = []) =>
  tests.map((t) => `LR range test (${t.phase}): ${t.chosen ? `suggested lr ${t.chosen.lr.toExponential(2)} (${t.chosen.rule})` : 'no suggestion'}`);

/**
 * Run one trainer the way `mlctl train` does: `train` gets the common options (the task adds its own), `summary`
 * says what the package holds, `task` names the task in --json (detection only: a classifier's reply predates it).
 */
export async function runTrainer<R extends TrainerResult>(
  ctx: TrainContext,
  o: { task: keyof typeof DEFAULT_IMAGE_SIZE; jsonTask?: string; train: (common: CommonTrainOptions) => Promise<R>; summary: (r: R) => string },
): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const extractOnly = extractOnlyPlan(opts);
  const split = resolveSplitParams(opts);
  const backend = await startBackend(ctx);
  await startDevice(ctx);
  const flag = interruptFlag(ctx);
  try {
    const result = await o.train({
      data: opts.data,
      name: opts.name ?? defaultName(opts.data),
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      imageSize: opts.imageSize ?? DEFAULT_IMAGE_SIZE[o.task],
      backbone: opts.backbone,
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      lr: opts.lr,
      lrSchedule: opts.lrSchedule,
      warmupEpochs: opts.warmupEpochs,
      findLr: opts.findLr,
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
        result: { ...(o.jsonTask ? { task: o.jsonTask } : {}), extracted: x, backend: backend.name, engine: result.engine, timings: result.timings },
        text: `feature store ${x.storeDir}: shard ${x.shard}, ${x.images} of ${x.datasetImages} images (${x.cached} already stored, ${x.computed} computed, ${x.skipped} unreadable)\nwhen every shard is done, run the same train command without --extract-only/--shard: the head trains from the store`,
      };
    }
    if (result.interrupted) throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'}; checkpoint kept in ${result.runDir} (continue with the same options and --resume)`]);
    return {
      result: {
        ...(o.jsonTask ? { task: o.jsonTask } : {}),
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
      text: [...lrFindLines(result.lrFind), o.summary(result)].join('\n'),
    };
  } finally {
    flag.release();
  }
}

/** The summary's closing line: where the curves are (and the TensorBoard log). */
export function curvesLine(r: TrainerResult, tensorboard?: string): string {
  return `  curves: ${path.join(r.package!.dir, 'history.html')}${tensorboard ? `; TensorBoard: tensorboard --logdir ${tensorboard}` : ''}`;
}

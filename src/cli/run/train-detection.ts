// `mlctl train --task detection` (loaded with the train runner): the CenterNet detector through src/train/detection;
// options that belong to the classifier's head or to the classic models are refused with what to use instead.
import path from 'node:path';
import { resolveSplitParams } from '../../data/splits.js';
import { MlctlError } from '../../errors.js';
import { runDetectionTrain } from '../../train/detection/run.js';
import type { DetectionTrainResult } from '../../train/detection/types.js';
import { DEFAULT_IMAGE_SIZE, type TrainContext } from '../commands/train.js';
import { interruptFlag, startBackend, startDevice } from '../context.js';
import type { CommandResult } from '../spec.js';
import { defaultName } from './train-name.js';

function summary(r: DetectionTrainResult, tensorboard?: string): string {
  const m = r.metrics;
  const v = (m.validation ?? {}) as Record<string, unknown>;
  const t = m.test as Record<string, unknown> | undefined;
  const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : 'n/a');
  return [
    `${r.package!.dir}`,
    `  version ${r.package!.version}, ${m.epochsRun} epochs (best ${m.bestEpoch}${m.stoppedEarly ? ', stopped early' : ''})`,
    `  val mAP ${f(v.mAP)}  AP50 ${f(v.AP50)}  AP75 ${f(v.AP75)}  val loss ${f(v.loss)}${t ? `  test mAP ${f(t.mAP)}  AP50 ${f(t.AP50)}` : ''}`,
    `  backend ${r.backend}, feature maps via ${r.engine}${r.features.train ? ` (${r.features.train.cached} stored, ${r.features.train.computed} computed)` : ''}, ${r.timings.totalSeconds}s`,
    `  curves: ${path.join(r.package!.dir, 'history.html')}${tensorboard ? `; TensorBoard: tensorboard --logdir ${tensorboard}` : ''}`,
  ].join('\n');
}

export async function runDetectionTrainCli(ctx: TrainContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  if (opts.model !== 'nn' && opts.model !== 'vgg16') throw new MlctlError('OPTION_CONFLICT', [`--task detection trains a neural network on --backbone; --model ${opts.model} is a classic classifier: drop --model`]);
  if (opts.model === 'vgg16') logger.warn(`--model vgg16 is deprecated: it means a neural network on --backbone (${opts.backbone}); use --model nn (the default), and --backbone to choose the base`);
  if (opts.head !== 'flatten' || opts.dropout > 0) throw new MlctlError('OPTION_CONFLICT', ['--head and --dropout shape the classifier\'s Dense head; --task detection trains a CenterNet head: set it with --head-channels and --upsample']);
  if (opts.extractOnly || opts.shard !== undefined) throw new MlctlError('OPTION_CONFLICT', ['--extract-only and --shard are not available with --task detection: the first train run stores the feature maps, and later runs read them']);
  if (opts.findLr) throw new MlctlError('OPTION_CONFLICT', ['--find-lr is not available with --task detection yet: set the rates with --lr and --fine-tune-lr (CenterNet heads train well at the default 0.001)']);
  const split = resolveSplitParams(opts);
  const backend = await startBackend(ctx);
  await startDevice(ctx);
  const flag = interruptFlag(ctx);
  try {
    const result = await runDetectionTrain({
      data: opts.data,
      name: opts.name ?? defaultName(opts.data),
      format: opts.format,
      skipInvalid: opts.skipInvalid,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      imageSize: opts.imageSize ?? DEFAULT_IMAGE_SIZE.detection,
      backbone: opts.backbone,
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      lr: opts.lr,
      lrSchedule: opts.lrSchedule,
      warmupEpochs: opts.warmupEpochs,
      headChannels: opts.headChannels,
      upsample: opts.upsample,
      maxDetections: opts.maxDetections,
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
      tensorboard: opts.tensorboard,
      logger,
      shouldStop: flag.stop,
    });
    if (result.interrupted) throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'}; checkpoint kept in ${result.runDir} (continue with the same options and --resume)`]);
    return {
      result: {
        task: 'detection',
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
        ...(opts.tensorboard ? { tensorboard: path.resolve(opts.tensorboard) } : {}),
      },
      text: summary(result, opts.tensorboard),
    };
  } finally {
    flag.release();
  }
}

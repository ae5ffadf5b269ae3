// Runs `mlctl train` (loaded on demand): transfer learning through src/train (an image classifier, or with --task
// detection an object detector), or the classic models through src/classic; Ctrl-C stops at a batch boundary with a
// checkpoint (exit 130).
import { MlctlError } from '../../errors.js';
import { runTrain, type TrainResult } from '../../train/run.js';
import type { TrainContext } from '../commands/train.js';
import type { CommandResult } from '../spec.js';
import { runClassicTrain } from './train-classic.js';
import { curvesLine, runTrainer } from './train-common.js';

function summary(r: TrainResult, tensorboard?: string): string {
  const m = r.metrics;
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : 'n/a');
  return [
    `${r.package!.dir}`,
    `  version ${r.package!.version}, ${m.epochsRun} epochs (best ${m.bestEpoch}${m.stoppedEarly ? ', stopped early' : ''})`,
    `  val accuracy ${f(m.valAccuracy)}  val loss ${f(m.valLoss)}${m.testAccuracy !== undefined ? `  test accuracy ${f(m.testAccuracy)}` : ''}`,
    `  backend ${r.backend}, features via ${r.engine}${r.features.train ? ` (${r.features.train.cached} cached, ${r.features.train.computed} computed)` : ''}, ${r.timings.totalSeconds}s`,
    curvesLine(r, tensorboard),
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
  return runTrainer(ctx, {
    task: 'image-classification',
    train: (common) => runTrain({ ...common, head: opts.head, dropout: opts.dropout, classWeights: opts.classWeights }),
    summary: (r) => summary(r, opts.tensorboard),
  });
}

// `mlctl train --task detection` (loaded with the train runner): the CenterNet detector through src/train/detection,
// run like the classifier (train-common.ts); options that belong to the classifier's head or to the classic models
// are refused with what to use instead.
import { MlctlError } from '../../errors.js';
import { runDetectionTrain } from '../../train/detection/run.js';
import type { DetectionTrainResult } from '../../train/detection/types.js';
import type { TrainContext } from '../commands/train.js';
import type { CommandResult } from '../spec.js';
import { curvesLine, runTrainer } from './train-common.js';

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
    curvesLine(r, tensorboard),
  ].join('\n');
}

export async function runDetectionTrainCli(ctx: TrainContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  if (opts.model !== 'nn' && opts.model !== 'vgg16') throw new MlctlError('OPTION_CONFLICT', [`--task detection trains a neural network on --backbone; --model ${opts.model} is a classic classifier: drop --model`]);
  if (opts.model === 'vgg16') logger.warn(`--model vgg16 is deprecated: it means a neural network on --backbone (${opts.backbone}); use --model nn (the default), and --backbone to choose the base`);
  if (opts.head !== 'flatten' || opts.dropout > 0) throw new MlctlError('OPTION_CONFLICT', ['--head and --dropout shape the classifier\'s Dense head; --task detection trains a CenterNet head: set it with --head-channels and --upsample']);
  return runTrainer(ctx, {
    task: 'detection',
    jsonTask: 'detection',
    train: (common) =>
      runDetectionTrain({ ...common, format: opts.format, skipInvalid: opts.skipInvalid, headChannels: opts.headChannels, upsample: opts.upsample, maxDetections: opts.maxDetections }),
    summary: (r) => summary(r, opts.tensorboard),
  });
}

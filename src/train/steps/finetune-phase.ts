// Train step 5: with --fine-tune K, unfreeze the backbone's last K blocks and keep training the full model on images
// at the lower learning rate; every epoch checkpoints the model so --resume continues inside this phase.
import type * as tf from '@tensorflow/tfjs';
import { writeTfjsModel } from '../../artifacts/package.js';
import { saveCheckpoint, type Checkpoint, type RunConfig } from '../checkpoint.js';
import { fineTune, type FineTuneResult } from '../finetune.js';
import { headParams, newAdamState, type HeadTrainState, type TrainHeadResult } from '../../heads/head.js';
import { checkpointError } from './head-phase.js';
import type { PreparedRun } from './prepare.js';
import type { ImageInputSpec } from '../../artifacts/manifest.js';

/** The finished head phase as a checkpoint state (fine-tune checkpoints carry it so --resume can skip phase 1). */
function headStateFromResult(r: TrainHeadResult): HeadTrainState {
  const weights = headParams(r.weights);
  return { epoch: r.epochsRun, weights, best: { weights, epoch: r.bestEpoch, monitor: Infinity }, wait: 0, history: r.history, optimizer: newAdamState([]) };
}

export async function fineTunePhase(
  run: PreparedRun,
  model: tf.LayersModel,
  head: TrainHeadResult,
  o: { spec: ImageInputSpec; classWeights?: number[]; config: RunConfig; resume?: Checkpoint },
): Promise<FineTuneResult | undefined> {
  const { opts } = run;
  if (opts.fineTune <= 0) return undefined;
  const resuming = o.resume?.phase === 'fine-tune';
  let headDone: HeadTrainState | undefined;
  return fineTune(model, run.splits.train, run.splits.val, {
    blocks: opts.fineTune,
    units: run.backbone.blocks(run.backboneOptions),
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    lr: opts.fineTuneLr ?? opts.lr / 10,
    seed: opts.seed,
    patience: opts.patience,
    classes: run.classes.length,
    classWeights: o.classWeights,
    spec: o.spec,
    augment: run.augment,
    logger: opts.logger,
    shouldStop: opts.shouldStop,
    startEpoch: resuming ? o.resume?.fineTune?.epoch : 0,
    resumeDir: resuming ? o.resume?.modelDir : undefined,
    priorHistory: resuming ? o.resume?.fineTune?.history : undefined,
    checkpoint: async (ftState, headState) => {
      headDone ??= headStateFromResult(head);
      await saveCheckpoint(run.runDir, o.config, { phase: 'fine-tune', head: headState ?? headDone, fineTune: ftState }, (modelDir) => writeTfjsModel(modelDir, model)).catch((err: NodeJS.ErrnoException) => {
        throw checkpointError(run.runDir, err);
      });
      const last = ftState.history[ftState.history.length - 1];
      if (last) await opts.onEpoch?.(last, head.epochsRun + ftState.epoch);
    },
  });
}

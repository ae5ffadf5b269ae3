// Train step 5: with --fine-tune K, unfreeze the backbone's last K blocks and keep training on their own epochs, rate
// and schedule. Its inputs are readied before the head phase (the frozen part's outputs extracted, one step timed for
// the run's ETA); every epoch checkpoints the model so --resume continues inside this phase.
import type * as tf from '@tensorflow/tfjs';
import { writeTfjsModel } from '../../artifacts/package.js';
import type { FeatureSession } from '../../features/session.js';
import { saveCheckpoint, type Checkpoint, type RunConfig } from '../checkpoint.js';
import type { RunClock } from '../eta.js';
import { calibrateFineTune, fineTune, fineTuneRangeTest, prepareFineTune, RANGE_TEST_PHASE, type FineTuneResult, type FineTuneSetup } from '../finetune.js';
import { LR_FIND, type LrFindResult } from '../lr-find.js';
import { headParams, newAdamState, type HeadTrainState, type TrainHeadResult } from '../../heads/head.js';
import { checkpointError, findPhaseLr } from './head-phase.js';
import type { PreparedRun } from './prepare.js';

/** The finished head phase as a checkpoint state (fine-tune checkpoints carry it so --resume can skip phase 1). */
function headStateFromResult(r: TrainHeadResult): HeadTrainState {
  const weights = headParams(r.weights);
  return { epoch: r.epochsRun, weights, best: { weights, epoch: r.bestEpoch, monitor: Infinity }, wait: 0, history: r.history, optimizer: newAdamState([]) };
}

/**
 * The fine-tune phase's inputs, made before the head phase: the model cut before the first unfrozen block, the frozen
 * part's outputs for train and val, and (for the run's ETA) the time of one step.
 */
export async function prepareFineTunePhase(run: PreparedRun, model: tf.LayersModel, session: FeatureSession, o: { clock?: RunClock; classWeights?: number[] }): Promise<FineTuneSetup | undefined> {
  const { opts } = run;
  const plan = run.phases.fineTune;
  if (!plan) return undefined;
  const units = run.backbone.blocks(run.backboneOptions);
  const setup = await prepareFineTune(model, run.splits.train, run.splits.val, {
    blocks: opts.fineTune,
    units,
    spec: session.spec,
    augment: run.augment,
    seed: opts.seed,
    frozen: { engine: opts.engine, baseIdentity: session.identity, useStore: opts.featureCache !== false, cacheRoot: opts.cache },
    logger: opts.logger,
    shouldStop: opts.shouldStop,
  });
  if (opts.shouldStop?.()) return setup;
  try {
    const perImage = await calibrateFineTune(model, setup, { blocks: opts.fineTune, units, batchSize: opts.batchSize, classes: run.classes.length });
    const train = setup.trainRows(1).count;
    const val = setup.val?.count ?? 0;
    // Units as fineTune() counts them: train images, plus a third of val (forward only) per epoch.
    o.clock?.plan('fine-tune', plan.epochs * (train + val / 3), perImage);
    if (opts.findLr) o.clock?.plan(RANGE_TEST_PHASE, LR_FIND.steps, perImage * Math.min(opts.batchSize, train));
    opts.logger.info(`fine-tune phase: ${plan.epochs} epoch(s) of ${train} images, about ${Math.round(1 / Math.max(perImage, 1e-9))} img/s (one step timed)`);
    return setup;
  } catch (err) {
    await setup.dispose();
    throw err;
  }
}

export async function fineTunePhase(
  run: PreparedRun,
  model: tf.LayersModel,
  head: TrainHeadResult,
  setup: FineTuneSetup | undefined,
  o: { classWeights?: number[]; config: RunConfig; resume?: Checkpoint; clock?: RunClock; onLrFind?: (r: LrFindResult) => void },
): Promise<FineTuneResult | undefined> {
  const { opts } = run;
  const plan = run.phases.fineTune;
  if (!plan || !setup) return undefined;
  const units = run.backbone.blocks(run.backboneOptions);
  const resuming = o.resume?.phase === 'fine-tune';
  const lrFind = await findPhaseLr(run, 'fineTune', plan, o.config, resuming, () =>
    fineTuneRangeTest(model, setup, { blocks: opts.fineTune, units, batchSize: opts.batchSize, seed: opts.seed, classes: run.classes.length, classWeights: o.classWeights, logger: opts.logger, shouldStop: opts.shouldStop, clock: o.clock }),
  );
  if (lrFind) o.onLrFind?.(lrFind);
  let headDone: HeadTrainState | undefined;
  return fineTune(model, setup, {
    blocks: opts.fineTune,
    units,
    epochs: plan.epochs,
    batchSize: opts.batchSize,
    lr: plan.lr,
    schedule: { kind: plan.schedule, warmupEpochs: plan.warmupEpochs },
    seed: opts.seed,
    patience: opts.patience,
    classes: run.classes.length,
    classWeights: o.classWeights,
    logger: opts.logger,
    shouldStop: opts.shouldStop,
    clock: o.clock,
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

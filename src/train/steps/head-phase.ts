// Train step 4: the head on frozen features, with a progress bar per epoch on a TTY (a line per epoch in CI) and a
// checkpoint after every epoch, written while the next epoch trains. A fine-tune checkpoint means this phase already
// finished: its result is reused.
import { MlctlError } from '../../errors.js';
import { emptyRows } from '../../features/rows.js';
import type { HeadSpec } from '../../models/head.js';
import { createProgress, type Progress } from '../../util/progress.js';
import type { Checkpoint, CheckpointWriter } from '../checkpoint.js';
import { headWeights, trainHead, type EpochMetrics, type TrainHeadResult } from '../../heads/head.js';
import type { HeadInputs } from './features.js';
import type { PreparedRun } from './prepare.js';

export function epochLine(m: EpochMetrics): string {
  const val = m.valLoss !== undefined ? ` val_loss ${m.valLoss.toFixed(4)} val_acc ${m.valAccuracy!.toFixed(3)}` : '';
  return `loss ${m.loss.toFixed(4)} acc ${m.accuracy.toFixed(3)}${val} (${m.seconds.toFixed(1)}s)`;
}

/** Checkpoint writes that fail say why and how to continue. */
export function checkpointError(runDir: string, err: NodeJS.ErrnoException): MlctlError {
  return new MlctlError('CHECKPOINT_WRITE', [`cannot write the checkpoint in ${runDir}: ${err.message}${err.code === 'ENOSPC' ? ' (out of disk space: free some space, then rerun with --resume)' : ''}`], { cause: err });
}

/** Wait for the checkpoints still being written; a failed write is a CHECKPOINT_WRITE error. */
export async function flushCheckpoints(run: Pick<PreparedRun, 'runDir'>, writer: Pick<CheckpointWriter, 'flush'>): Promise<void> {
  await writer.flush().catch((err: NodeJS.ErrnoException) => {
    throw checkpointError(run.runDir, err);
  });
}

/**
 * The head phase. Its checkpoints go through `writer` while the next epoch trains; the caller flushes it (before the
 * fine-tune phase writes its own, and before the command ends) so the last write overlaps what follows too.
 */
export async function headPhase(run: PreparedRun, inputs: HeadInputs, spec: HeadSpec, writer: CheckpointWriter, resume: Checkpoint | undefined): Promise<TrainHeadResult> {
  const { opts } = run;
  const { logger } = opts;
  const resumeHead = resume?.head;
  if (resume?.phase === 'fine-tune' && resumeHead) {
    return { weights: headWeights(resumeHead.best.weights), history: resumeHead.history, bestEpoch: resumeHead.best.epoch, stoppedEarly: false, interrupted: false, epochsRun: resumeHead.epoch };
  }
  const written = (err: NodeJS.ErrnoException) => {
    throw checkpointError(run.runDir, err);
  };
  let progress: Progress | undefined;
  let epochCounter = resumeHead?.epoch ?? 0;
  const result = await trainHead(inputs.train ?? emptyRows(inputs.dim), inputs.val, {
    spec,
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    lr: opts.lr,
    seed: opts.seed,
    engine: opts.engine,
    logger,
    patience: opts.patience,
    classWeights: inputs.classWeights,
    resume: resume?.phase === 'head' ? resumeHead : undefined,
    shouldStop: opts.shouldStop,
    epochRows: inputs.epochRows,
    onBatch: (b, n, loss, acc) => {
      if (b === 1 && logger.interactive) progress = createProgress({ label: `epoch ${epochCounter + 1}/${opts.epochs}`, total: n, unit: 'batch', logger, plainIntervalMs: 60_000 });
      progress?.tick(1, `loss ${loss.toFixed(4)} acc ${acc.toFixed(3)}`);
    },
    onEpochEnd: async (state, m) => {
      epochCounter = m.epoch;
      if (logger.interactive) progress?.done(epochLine(m));
      else logger.info(`epoch ${m.epoch}/${opts.epochs} ${epochLine(m)}`);
      // The state is a snapshot the trainer no longer touches: it is written while the next epoch runs.
      await writer.save({ phase: 'head', head: state }).catch(written);
      await opts.onEpoch?.(m, m.epoch);
    },
  });
  logger.info(`head trained with ${result.engine}`);
  if (result.stoppedEarly) logger.info(`early stopping after epoch ${result.epochsRun}: restored the weights of epoch ${result.bestEpoch}`);
  return result;
}

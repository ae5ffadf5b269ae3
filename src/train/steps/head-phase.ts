// Train step 4: the head on frozen features, with a progress bar per epoch on a TTY (a line per epoch in CI) and a
// checkpoint after every epoch. A fine-tune checkpoint means this phase already finished: its result is reused.
import { MlctlError } from '../../errors.js';
import { emptyRows } from '../../features/rows.js';
import type { HeadSpec } from '../../models/head.js';
import { createProgress, type Progress } from '../../util/progress.js';
import { saveCheckpoint, type Checkpoint, type RunConfig } from '../checkpoint.js';
import { cloneHead, disposeHead, trainHead, type EpochMetrics, type TrainHeadResult } from '../head.js';
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

export async function headPhase(run: PreparedRun, inputs: HeadInputs, spec: HeadSpec, config: RunConfig, resume: Checkpoint | undefined): Promise<TrainHeadResult> {
  const { opts } = run;
  const { logger } = opts;
  const resumeHead = resume?.head;
  try {
    if (resume?.phase === 'fine-tune' && resumeHead) {
      return { weights: cloneHead(resumeHead.best.weights), history: resumeHead.history, bestEpoch: resumeHead.best.epoch, stoppedEarly: false, interrupted: false, epochsRun: resumeHead.epoch };
    }
    let progress: Progress | undefined;
    let epochCounter = resumeHead?.epoch ?? 0;
    const result = await trainHead(inputs.train ?? emptyRows(inputs.dim), inputs.val, {
      spec,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      seed: opts.seed,
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
        await saveCheckpoint(run.runDir, config, { phase: 'head', head: state }).catch((err: NodeJS.ErrnoException) => {
          throw checkpointError(run.runDir, err);
        });
        await opts.onEpoch?.(m, m.epoch);
      },
    });
    if (result.stoppedEarly) logger.info(`early stopping after epoch ${result.epochsRun}: restored the weights of epoch ${result.bestEpoch}`);
    return result;
  } finally {
    disposeHead(resumeHead?.weights);
    disposeHead(resumeHead?.best.weights);
  }
}

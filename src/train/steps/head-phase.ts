// Train step 4: the head on frozen features, with a progress bar per epoch on a TTY (a line per epoch in CI) and a
// checkpoint after every epoch, written while the next epoch trains. A fine-tune checkpoint means this phase already
// finished: its result is reused.
import { MlctlError } from '../../errors.js';
import { emptyRows } from '../../features/rows.js';
import type { HeadSpec } from '../../models/head.js';
import { createProgress, type Progress } from '../../util/progress.js';
import type { Checkpoint, CheckpointWriter, RunConfig } from '../checkpoint.js';
import { headSteps, headWeights, trainHead, type EpochMetrics, type TrainHeadResult } from '../../heads/head.js';
import type { RunClock } from '../eta.js';
import { rangeTestWithProgress, type LrFindResult } from '../lr-find.js';
import { describeSchedule, learningRateAt, phaseSchedule } from '../schedule.js';
import type { PhasePlan, TrainOptions } from '../types.js';
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

/** The LR range test on the head phase: steps from the seeded initial head over the stored features. */
async function headRangeTest(run: PreparedRun, inputs: HeadInputs, spec: HeadSpec): Promise<LrFindResult> {
  const { opts } = run;
  const stepper = await headSteps(inputs.train ?? emptyRows(inputs.dim), { spec, batchSize: opts.batchSize, seed: opts.seed, engine: opts.engine, logger: opts.logger, classWeights: inputs.classWeights, epochRows: inputs.epochRows });
  try {
    return await rangeTestWithProgress('head', (lr) => stepper.step(lr), { logger: opts.logger, shouldStop: opts.shouldStop });
  } finally {
    await stepper.dispose();
  }
}

/**
 * With --find-lr: the range test for a phase, its suggestion taken unless the rate was given (or, resuming, the rate
 * an earlier test chose, kept in the run config). Returns the test run, if any. Any task's run: `test` is its trainer's.
 */
export async function findPhaseLr(run: { opts: Pick<TrainOptions, 'findLr' | 'logger' | 'shouldStop'> }, phase: 'head' | 'fineTune', plan: PhasePlan, config: RunConfig, resumed: boolean, test: () => Promise<LrFindResult>): Promise<LrFindResult | undefined> {
  const { opts } = run;
  if (!opts.findLr) return undefined;
  const flag = phase === 'head' ? '--lr' : '--fine-tune-lr';
  const kept = config.lrFind?.[phase];
  if (resumed && kept !== undefined) {
    if (plan.lrFrom !== 'option') Object.assign(plan, { lr: kept, lrFrom: 'lr-find' });
    return undefined;
  }
  const r = await test();
  if (opts.shouldStop?.()) return r;
  if (plan.lrFrom === 'option') opts.logger.info(`${phase === 'head' ? 'head' : 'fine-tune'} phase: training at ${flag} ${plan.lr} as given${r.chosen ? ` (the range test suggests ${r.chosen.lr.toExponential(2)})` : ''}`);
  else if (r.chosen) {
    Object.assign(plan, { lr: r.chosen.lr, lrFrom: 'lr-find' });
    config.lrFind = { ...config.lrFind, [phase]: r.chosen.lr };
  } else opts.logger.warn(`${phase === 'head' ? 'head' : 'fine-tune'} phase: the range test gave no suggestion; training at the default rate ${plan.lr}`);
  return r;
}

/**
 * The head phase. Its checkpoints go through `writer` while the next epoch trains; the caller flushes it (before the
 * fine-tune phase writes its own, and before the command ends) so the last write overlaps what follows too.
 */
export async function headPhase(
  run: PreparedRun,
  inputs: HeadInputs,
  spec: HeadSpec,
  writer: CheckpointWriter,
  resume: Checkpoint | undefined,
  o: { config: RunConfig; clock?: RunClock; onLrFind?: (r: LrFindResult) => void },
): Promise<TrainHeadResult> {
  const { opts } = run;
  const { logger } = opts;
  const resumeHead = resume?.head;
  if (resume?.phase === 'fine-tune' && resumeHead) {
    return { weights: headWeights(resumeHead.best.weights), history: resumeHead.history, bestEpoch: resumeHead.best.epoch, stoppedEarly: false, interrupted: false, epochsRun: resumeHead.epoch };
  }
  const plan = run.phases.head;
  const lrFind = await findPhaseLr(run, 'head', plan, o.config, Boolean(resumeHead), () => headRangeTest(run, inputs, spec));
  if (lrFind) o.onLrFind?.(lrFind);
  const count = inputs.train?.count ?? inputs.epochRows?.(1).count ?? 0;
  const sched = phaseSchedule({ ...plan, batchSize: opts.batchSize, schedule: { kind: plan.schedule, warmupEpochs: plan.warmupEpochs } }, count);
  const batchesPerEpoch = Math.ceil(count / opts.batchSize);
  o.clock?.plan('head', plan.epochs * batchesPerEpoch);
  logger.info(`head phase: ${plan.epochs} epoch(s), lr ${describeSchedule(sched, plan.warmupEpochs)}${plan.lrFrom === 'lr-find' ? ' (from the LR range test)' : ''}`);
  const eta = () => {
    const t = o.clock?.text();
    return t ? ` · ${t}` : '';
  };
  const written = (err: NodeJS.ErrnoException) => {
    throw checkpointError(run.runDir, err);
  };
  let progress: Progress | undefined;
  let epochCounter = resumeHead?.epoch ?? 0;
  const result = await trainHead(inputs.train ?? emptyRows(inputs.dim), inputs.val, {
    spec,
    epochs: plan.epochs,
    batchSize: opts.batchSize,
    lr: plan.lr,
    lrAt: (step) => learningRateAt(sched, step),
    seed: opts.seed,
    engine: opts.engine,
    logger,
    patience: opts.patience,
    classWeights: inputs.classWeights,
    resume: resume?.phase === 'head' ? resumeHead : undefined,
    shouldStop: opts.shouldStop,
    epochRows: inputs.epochRows,
    // The checkpoint writer is done with an epoch's state when the next save returns: snapshots reuse its memory.
    reuseSnapshots: true,
    onBatch: (b, n, loss, acc) => {
      o.clock?.progress('head', epochCounter * n + b);
      if (b === 1 && logger.interactive) progress = createProgress({ label: `epoch ${epochCounter + 1}/${plan.epochs}`, total: n, unit: 'batch', logger, plainIntervalMs: 60_000 });
      progress?.tick(1, `loss ${loss.toFixed(4)} acc ${acc.toFixed(3)}${eta()}`);
    },
    onEpochEnd: async (state, m) => {
      epochCounter = m.epoch;
      o.clock?.progress('head', m.epoch * batchesPerEpoch);
      const left = m.epoch < plan.epochs || run.phases.fineTune ? eta() : '';
      if (logger.interactive) progress?.done(`${epochLine(m)}${left}`);
      else logger.info(`epoch ${m.epoch}/${plan.epochs} ${epochLine(m)}${left}`);
      // The state is a snapshot the trainer no longer touches: it is written while the next epoch runs.
      await writer.save({ phase: 'head', head: state }).catch(written);
      await opts.onEpoch?.(m, m.epoch);
    },
  });
  o.clock?.finish('head');
  logger.info(`head trained with ${result.engine}`);
  if (result.stoppedEarly) logger.info(`early stopping after epoch ${result.epochsRun}: restored the weights of epoch ${result.bestEpoch}`);
  return result;
}

// `mlctl train --task detection`: dataset → splits → feature maps of train/val computed once through the feature
// session (pooling none) → the CenterNet head trained on them (head.ts), checkpointed every epoch → optional
// fine-tuning of the last K backbone blocks on the frozen part's stored outputs (finetune.ts) → the saved model scored
// on the validation (and test) split → a package: TF.js layers model, manifest with the detection section, history
// files. The shared pieces are classification's: feature session and --extract-only (run.ts), phase plan, the LR range
// test and its use (--find-lr), run lock, checkpoint writer, resume check, model cut and unfreezing, history writer,
// TensorBoard.
import * as tf from '@tensorflow/tfjs';
import type { FeatureSession } from '../../features/session.js';
import { newAdamState } from '../../heads/head.js';
import { buildCenterNetHead, buildDetectionModel, outputGrid } from '../../models/detection/centernet.js';
import { createProgress, type Progress } from '../../util/progress.js';
import { checkpointWriter, saveCheckpoint, type CheckpointWriter, type NamedParams, type RunConfig } from '../checkpoint.js';
import { writeTfjsModel } from '../../artifacts/package.js';
import { lockRun, type RunLock } from '../run-lock.js';
import { chainEpochHooks, extractOnlyRun, openRunSession, releaseRun, stopwatch } from '../run.js';
import type { LrFindResult } from '../lr-find.js';
import { checkpointError, findPhaseLr, flushCheckpoints } from '../steps/head-phase.js';
import { checkResume } from '../steps/resume.js';
import { saveTrained } from '../steps/save.js';
import { describeSchedule, learningRateAt, phaseSchedule } from '../schedule.js';
import { openTrainBoard } from '../tensorboard.js';
import { detectionFineTuneRangeTest, fineTuneDetector, prepareDetectionFineTune, scoreModel, type DetectionFineTuneResult, type DetectionFineTuneSetup } from './finetune.js';
import { assignNamed, betterEpoch, detectionHeadRangeTest, monitorOf, namedValues, scoreHead, trainableWeights, trainDetectionHead, type DetectionHeadResult, type DetectionHeadState } from './head.js';
import { detectionInputs, storedSet, type DetectionInputs } from './inputs.js';
import { detectionManifest, splitMetrics } from './manifest.js';
import { detectionFingerprint, prepareDetectionRun, type DetectionRun } from './prepare.js';
import { DETECTION_HISTORY, detectionBoardView, detectionEpochLine } from './report.js';
import { scoreDetector, type ScoreContext } from './score.js';
import type { DetectionEpochMetrics, DetectionTrainOptions, DetectionTrainResult } from './types.js';

type Checkpoint = NonNullable<Awaited<ReturnType<typeof checkResume<NamedParams, DetectionEpochMetrics>>>>;

/** The head phase: trained on the stored feature maps, or taken from a fine-tune checkpoint (phase 1 already done). */
async function headPhase(
  run: DetectionRun,
  session: FeatureSession,
  inputs: DetectionInputs,
  score: ScoreContext,
  writer: CheckpointWriter<NamedParams, DetectionEpochMetrics>,
  resume: Checkpoint | undefined,
  o: { config: RunConfig; onEpoch: (m: DetectionEpochMetrics, step: number) => Promise<void>; onLrFind: (r: LrFindResult) => void },
): Promise<DetectionHeadResult> {
  const { opts } = run;
  const { logger } = opts;
  const featureShape = session.featureShape;
  if (resume?.phase === 'fine-tune') {
    const head = buildCenterNetHead(featureShape, run.head, opts.seed);
    assignNamed(trainableWeights(head), resume.head.best.weights);
    return { head, history: resume.head.history, bestEpoch: resume.head.best.epoch, stoppedEarly: false, interrupted: false, epochsRun: resume.head.epoch };
  }
  const batches = Math.ceil(inputs.train.count / opts.batchSize);
  const plan = run.phases.head;
  const lrFind = await findPhaseLr(run, 'head', plan, o.config, Boolean(resume), () =>
    detectionHeadRangeTest(inputs.train, { featureShape, spec: run.head, score, batchSize: opts.batchSize, seed: opts.seed, logger, shouldStop: opts.shouldStop }),
  );
  if (lrFind) o.onLrFind(lrFind);
  const sched = phaseSchedule({ ...plan, batchSize: opts.batchSize, schedule: { kind: plan.schedule, warmupEpochs: plan.warmupEpochs } }, inputs.train.count);
  logger.info(`head phase: ${plan.epochs} epoch(s), lr ${describeSchedule(sched, plan.warmupEpochs)}${plan.lrFrom === 'lr-find' ? ' (from the LR range test)' : ''}`);
  let progress: Progress | undefined;
  let epochCounter = resume?.head.epoch ?? 0;
  const result = await trainDetectionHead(inputs.train, inputs.val, {
    featureShape,
    spec: run.head,
    score,
    epochs: plan.epochs,
    batchSize: opts.batchSize,
    lr: plan.lr,
    lrAt: (step) => learningRateAt(sched, step),
    seed: opts.seed,
    patience: opts.patience,
    logger,
    resume: resume?.phase === 'head' ? resume.head : undefined,
    shouldStop: opts.shouldStop,
    onBatch: (b, parts) => {
      if (b === 1 && logger.interactive) progress = createProgress({ label: `epoch ${epochCounter + 1}/${opts.epochs}`, total: batches, unit: 'batch', logger, plainIntervalMs: 60_000 });
      progress?.tick(1, `loss ${parts.loss.toFixed(4)} heatmap ${parts.heatmapLoss.toFixed(3)}`);
    },
    onEpochEnd: async (state, m) => {
      epochCounter = m.epoch;
      if (logger.interactive) progress?.done(detectionEpochLine(m));
      else logger.info(`epoch ${m.epoch}/${opts.epochs} ${detectionEpochLine(m)}`);
      // The state is a snapshot the trainer no longer touches: it is written while the next epoch runs.
      await writer.save({ phase: 'head', head: state }).catch((err: NodeJS.ErrnoException) => {
        throw checkpointError(run.runDir, err);
      });
      await o.onEpoch(m, m.epoch);
    },
  });
  if (result.stoppedEarly) logger.info(`early stopping after epoch ${result.epochsRun}: restored the weights of epoch ${result.bestEpoch}`);
  return result;
}

/** The finished head phase as a checkpoint state (fine-tune checkpoints carry it so --resume can skip phase 1). */
function headDoneState(head: DetectionHeadResult): DetectionHeadState {
  const weights = namedValues(trainableWeights(head.head));
  const best = head.history[head.bestEpoch - 1];
  return { epoch: head.epochsRun, weights, best: { weights, epoch: head.bestEpoch, monitor: best ? monitorOf(best) : Infinity }, wait: 0, history: head.history, optimizer: newAdamState([]) };
}

/** The epoch whose weights the package holds: the best of the last phase that ran. */
function bestOf(history: DetectionEpochMetrics[], ft: DetectionFineTuneResult | undefined): DetectionEpochMetrics | undefined {
  const phase = ft?.history.length ? history.filter((h) => h.phase === 'fine-tune') : history;
  return phase.reduce<DetectionEpochMetrics | undefined>((b, h) => (betterEpoch(h, b) ? h : b), undefined);
}

export async function runDetectionTrain(opts: DetectionTrainOptions): Promise<DetectionTrainResult> {
  const { logger } = opts;
  const clock = stopwatch();
  const run = await prepareDetectionRun(opts);
  const board = opts.tensorboard ? await openTrainBoard(opts.tensorboard, opts, detectionBoardView(run)) : undefined;
  const onEpoch = chainEpochHooks<DetectionEpochMetrics>(board?.epoch, opts.onDetectionEpoch);
  let boardStatus: 'SUCCESS' | 'FAILURE' | undefined = 'FAILURE';
  const backend = tf.getBackend();
  let lock: RunLock | undefined;
  let session: FeatureSession | undefined;
  let head: DetectionHeadResult | undefined;
  let fullModel: tf.LayersModel | undefined;
  let ftSetup: DetectionFineTuneSetup | undefined;
  let writer: CheckpointWriter<NamedParams, DetectionEpochMetrics> | undefined;
  let features: DetectionTrainResult['features'] = {};
  const lrFind: LrFindResult[] = [];
  const interrupted = (history: DetectionEpochMetrics[]): DetectionTrainResult => {
    boardStatus = undefined; // resumable: the HParams session stays open-ended
    return { interrupted: true, runDir: run.runDir, metrics: {}, history, backend, engine: session!.engine.name, features, timings: clock.timings, ...(lrFind.length ? { lrFind } : {}) };
  };
  try {
    session = await openRunSession(run, clock);
    if (opts.extractOnly) {
      // The pictures the trainer reads from the store: every split's, but the train split's only unaugmented.
      const samples = [...(run.augment.length ? [] : run.splits.train), ...run.splits.val, ...run.splits.test];
      if (run.augment.length) logger.info(`augmentation ${run.augment.join(', ')}: the train split's feature maps are computed each epoch, so only validation and test pictures are stored`);
      return await extractOnlyRun(opts, { root: run.dataset.root, samples }, session, opts.extractOnly.shard, { clock, backend, runDir: run.runDir });
    }
    const s = session;
    lock = await lockRun(run.runDir, opts.name);
    const config: RunConfig = { fingerprint: detectionFingerprint(run, s.weights!.sha256), run: { id: lock.id, pid: lock.pid, startedAt: lock.startedAt } };
    const resume = await checkResume<NamedParams, DetectionEpochMetrics>(run, config, 'named');
    if (run.augment.length) logger.info(`augmentation ${run.augment.join(', ')}: train feature maps are computed from each epoch's augmented pictures (the feature store serves the validation split only)`);
    const inputs = await clock.time('featureSeconds', () => detectionInputs(run.splits, s, { augment: run.augment, seed: opts.seed, shouldStop: opts.shouldStop, warn: (l) => logger.warn(l) }));
    features = inputs.stats;
    if (opts.shouldStop?.()) return interrupted([]);
    const grid = outputGrid(s.featureShape, run.head);
    logger.info(`CenterNet head: ${s.featureShape.join('x')} feature maps → ${grid.join('x')} grid (stride ${s.spec.height / grid[0]}), ${run.labels.length} classes, ${run.head.channels} channels`);
    const score: ScoreContext = { labels: run.labels, categoryIds: run.dataset.categoryIds, grid, inputSize: [s.spec.height, s.spec.width], maxDetections: opts.maxDetections };

    writer = checkpointWriter<NamedParams, DetectionEpochMetrics>(run.runDir, config);
    head = await clock.time('headSeconds', () => headPhase(run, s, inputs, score, writer!, resume, { config, onEpoch, onLrFind: (r) => lrFind.push(r) }));
    if (head.interrupted) return interrupted(head.history);
    if (opts.fineTune > 0) await clock.time('checkpointFlushSeconds', () => flushCheckpoints(run, writer!));

    const headParams = head.head.countParams();
    fullModel = buildDetectionModel(s.base, run.head, head.head);
    const model = fullModel;
    let ft: DetectionFineTuneResult | undefined;
    const ftPlan = run.phases.fineTune;
    if (ftPlan) {
      const h = head;
      const resuming = resume?.phase === 'fine-tune';
      let headDone: DetectionHeadState | undefined;
      const units = run.backbone.blocks(run.backboneOptions);
      ftSetup = await clock.time('fineTuneInputSeconds', () =>
        prepareDetectionFineTune(model, run.splits, {
          blocks: opts.fineTune,
          units,
          spec: s.spec,
          augment: run.augment,
          seed: opts.seed,
          frozen: { engine: opts.engine, baseIdentity: s.identity, useStore: opts.featureCache !== false, cacheRoot: opts.cache },
          logger,
          shouldStop: opts.shouldStop,
        }),
      );
      if (opts.shouldStop?.()) return interrupted(head.history);
      const setup = ftSetup;
      const ftLrFind = await findPhaseLr(run, 'fineTune', ftPlan, config, resuming, () =>
        detectionFineTuneRangeTest(model, setup, { blocks: opts.fineTune, units, batchSize: opts.batchSize, score, logger, shouldStop: opts.shouldStop }),
      );
      if (ftLrFind) lrFind.push(ftLrFind);
      if (opts.shouldStop?.()) return interrupted(head.history);
      ft = await clock.time('fineTuneSeconds', () =>
        fineTuneDetector(model, setup, {
          blocks: opts.fineTune,
          units,
          epochs: ftPlan.epochs,
          batchSize: opts.batchSize,
          lr: ftPlan.lr,
          schedule: { kind: ftPlan.schedule, warmupEpochs: ftPlan.warmupEpochs },
          seed: opts.seed,
          patience: opts.patience,
          score,
          logger,
          shouldStop: opts.shouldStop,
          startEpoch: resuming ? resume?.fineTune?.epoch : 0,
          resumeBestEpoch: resuming ? resume?.fineTune?.bestEpoch : undefined,
          resumeDir: resuming ? resume?.modelDir : undefined,
          priorHistory: resuming ? resume?.fineTune?.history : undefined,
          checkpoint: async (state) => {
            headDone ??= headDoneState(h);
            await saveCheckpoint(run.runDir, config, { phase: 'fine-tune', head: headDone, fineTune: state }, (dir) => writeTfjsModel(dir, model)).catch((err: NodeJS.ErrnoException) => {
              throw checkpointError(run.runDir, err);
            });
            const last = state.history[state.history.length - 1];
            if (last) await onEpoch(last, h.epochsRun + state.epoch);
          },
        }),
      );
      if (ft.interrupted) return interrupted([...head.history, ...ft.history]);
    }

    const history = [...head.history, ...(ft?.history ?? [])];
    // The figures are the saved model's own, measured again on each split: the head (or, fine-tuned, the tail) on the
    // stored maps it trained on, the test split through the same path.
    const { metrics, test } = await clock.time('evalSeconds', async () => {
      const scoreSplit = async (split: 'val' | 'test') => {
        const samples = run.splits[split];
        if (!samples.length) return undefined;
        if (ft && split === 'val' && ftSetup?.val) {
          const { tail, cutShape } = ftSetup.split;
          return scoreDetector(ftSetup.val.batches(0, opts.batchSize, false), (b) => tf.tidy(() => tail.predict(tf.tensor(b.x.subarray(0, b.n * ftSetup!.val!.dim), [b.n, ...cutShape])) as tf.Tensor4D), score);
        }
        if (ft) return scoreModel(model, samples, { spec: s.spec, score, batchSize: opts.batchSize, onSkip: (sk) => logger.warn(`skipped ${sk.path}: ${sk.reason}`) });
        if (split === 'val') return inputs.val ? scoreHead(h0, inputs.val, s.featureShape, score, opts.batchSize) : undefined;
        const r = await s.extract(samples.map((x, i) => ({ path: x.path, label: i })), { label: 'test feature maps', onSkip: (sk) => logger.warn(`skipped ${sk.path}: ${sk.reason}`) });
        features.test = r.stats;
        return scoreHead(h0, storedSet(samples, r.rows, s.spec, opts.seed), s.featureShape, score, opts.batchSize);
      };
      const h0 = head!.head;
      const val = await scoreSplit('val');
      const testScore = await scoreSplit('test');
      const best = bestOf(history, ft);
      const m: Record<string, unknown> = {
        split: val ? 'validation' : null,
        ...(val ? { validation: splitMetrics(val) } : {}),
        ...(testScore ? { test: splitMetrics(testScore) } : {}),
        loss: best?.loss ?? null,
        bestEpoch: best ? history.indexOf(best) + 1 : null,
        epochsRun: history.length,
        stoppedEarly: head!.stoppedEarly || Boolean(ft?.stoppedEarly),
      };
      return { metrics: m, test: testScore };
    });
    const draft = detectionManifest(run, { session: s, headParams, ft, history, metrics, backend, lrFind });
    const pkg = await clock.time('saveSeconds', () => saveTrained(run, model, draft, history, lrFind, DETECTION_HISTORY));
    await clock.time('checkpointFlushSeconds', () => flushCheckpoints(run, writer!));
    clock.total();
    boardStatus = 'SUCCESS';
    await board?.close('SUCCESS', pkg.dir);
    const v = metrics.validation as Record<string, number | null> | undefined;
    const f = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(4) : 'n/a');
    logger.info(`saved ${pkg.dir} (val mAP ${f(v?.mAP)}, AP50 ${f(v?.AP50)}${test ? `; test mAP ${f(test.coco.AP)}` : ''}, ${history.length} epochs)`);
    return {
      package: { dir: pkg.dir, name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 },
      interrupted: false,
      runDir: run.runDir,
      metrics,
      history,
      backend,
      engine: s.engine.name,
      features,
      timings: clock.timings,
      ...(lrFind.length ? { lrFind } : {}),
    };
  } finally {
    await releaseRun(run, { writer, board, boardStatus, fullModel, head: head?.head, ftSetup, session, lock });
  }
}

// `mlctl train` as a short pipeline of named steps (train/steps/): prepare the run → resume check → features
// (feature session) → head phase → fine-tune phase → metrics → manifest → save. Each step is its own module. The
// feature session and --extract-only are opened here for both tasks (detection/run.ts uses them too).
import * as tf from '@tensorflow/tfjs';
import { openFeatureSession, type FeatureSession } from '../features/session.js';
import { buildFullModel, setHeadWeights, type HeadSpec, type HeadWeights } from '../models/head.js';
import { checkpointWriter, type CheckpointWriter, type RunConfig } from './checkpoint.js';
import { lockRun, type RunLock } from './run-lock.js';
import { disposeHead, type EpochMetrics } from '../heads/head.js';
import { extractOnly, type StoredPictures } from './steps/extract-only.js';
import { headInputs } from './steps/features.js';
import { createRunClock } from './eta.js';
import type { FineTuneSetup } from './finetune.js';
import type { LrFindResult } from './lr-find.js';
import { fineTunePhase, prepareFineTunePhase } from './steps/finetune-phase.js';
import { flushCheckpoints, headPhase } from './steps/head-phase.js';
import { trainManifest } from './steps/manifest.js';
import { finalMetrics } from './steps/metrics.js';
import { prepareRun, runFingerprint } from './steps/prepare.js';
import { checkResume } from './steps/resume.js';
import { saveTrained } from './steps/save.js';
import { openTrainBoard } from './tensorboard.js';
import type { TrainOptions, TrainResult } from './types.js';
import type { BackboneDef, BackboneOptions } from '../models/backbones/types.js';
import type { Shard } from '../util/shard.js';

export type { TrainOptions, TrainResult } from './types.js';

const HEAD_UNITS = 1024;

/** Named timings of a run's steps (seconds, ms precision) and its total. */
export function stopwatch() {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  return {
    timings,
    /** Time `work` under `key` (seconds, ms precision). */
    async time<T>(key: string, work: () => Promise<T>): Promise<T> {
      const t = performance.now();
      try {
        return await work();
      } finally {
        timings[key] = Number(((performance.now() - t) / 1000).toFixed(3));
      }
    },
    total: () => (timings.totalSeconds = Number(((performance.now() - t0) / 1000).toFixed(3))),
  };
}

export type Stopwatch = ReturnType<typeof stopwatch>;

/** The hooks in order (the board first, so a caller's hook sees the epoch on disk). */
export function chainEpochHooks<H = EpochMetrics>(...hooks: Array<((m: H, step: number) => Promise<void> | void) | undefined>): (m: H, step: number) => Promise<void> {
  return async (m, step) => {
    for (const h of hooks) await h?.(m, step);
  };
}

/** Either task's feature session on the run's backbone: the shared store unless --no-feature-cache. */
export async function openRunSession(run: { opts: Pick<TrainOptions, 'weights' | 'seed' | 'weightsUrl' | 'weightsMd5' | 'engine' | 'featureCache' | 'cache' | 'logger'>; backbone: BackboneDef; backboneOptions: BackboneOptions }, clock: Stopwatch): Promise<FeatureSession> {
  const { opts } = run;
  const session = await clock.time('backboneSeconds', () =>
    openFeatureSession({
      base: { backbone: run.backbone, options: run.backboneOptions, weights: opts.weights, seed: opts.seed, weightsUrl: opts.weightsUrl, weightsMd5: opts.weightsMd5 },
      engine: opts.engine,
      useStore: opts.featureCache !== false,
      cacheRoot: opts.cache,
      logger: opts.logger,
    }),
  );
  opts.logger.info(`feature extraction engine: ${session.engine.description}`);
  return session;
}

/**
 * Either task's --extract-only: store the base's features of this shard of the pictures and end the run (no run
 * folder, no head, no package: a later train reads the store).
 */
export async function extractOnlyRun(opts: Pick<TrainOptions, 'logger' | 'shouldStop'>, data: StoredPictures, session: FeatureSession, shard: Shard, o: { clock: Stopwatch; backend: string; runDir: string }) {
  const extracted = await o.clock.time('featureSeconds', () => extractOnly(opts, data, session, shard));
  o.clock.total();
  return { interrupted: Boolean(opts.shouldStop?.()), runDir: o.runDir, metrics: {}, history: [], backend: o.backend, engine: session.engine.name, features: { cacheDir: extracted.storeDir }, timings: o.clock.timings, extracted };
}

/**
 * Release what either task's run holds, whichever way it ends: every epoch's checkpoint on disk before the command
 * ends, the TensorBoard session closed unless the run saved (which closed it), the models, inputs, session and lock.
 */
export async function releaseRun(
  run: { runDir: string; opts: Pick<TrainOptions, 'logger'> },
  held: {
    writer?: Pick<CheckpointWriter, 'flush'>;
    board?: { dir: string; close(status?: 'SUCCESS' | 'FAILURE'): Promise<void> };
    boardStatus: 'SUCCESS' | 'FAILURE' | undefined;
    fullModel?: tf.LayersModel;
    /** The trained head, apart from the full model's copy of it. */
    head?: { dispose(): void };
    ftSetup?: { dispose(): Promise<void> };
    session?: FeatureSession;
    lock?: RunLock;
  },
): Promise<void> {
  const { board } = held;
  if (held.writer) await flushCheckpoints(run, held.writer);
  if (held.boardStatus !== 'SUCCESS') await board?.close(held.boardStatus).catch((err: Error) => run.opts.logger.warn(`TensorBoard log ${board.dir}: ${err.message}`));
  // The full model shares the base's layers: its own go here, the base's with the session.
  try {
    held.fullModel?.dispose();
  } catch {
    // already released through the base
  }
  held.head?.dispose();
  await held.ftSetup?.dispose();
  await held.session?.dispose();
  await held.lock?.release();
}

export async function runTrain(opts: TrainOptions): Promise<TrainResult> {
  const { logger } = opts;
  const clock = stopwatch();
  const prepared = await prepareRun(opts);
  const board = opts.tensorboard ? await openTrainBoard(opts.tensorboard, opts) : undefined;
  const run = board ? { ...prepared, opts: { ...prepared.opts, onEpoch: chainEpochHooks(board.epoch, opts.onEpoch) } } : prepared;
  let boardStatus: 'SUCCESS' | 'FAILURE' | undefined = 'FAILURE';
  const backend = tf.getBackend();
  let lock: RunLock | undefined;
  let session: FeatureSession | undefined;
  let fullModel: tf.LayersModel | undefined;
  let headWeights: HeadWeights | undefined;
  let writer: CheckpointWriter | undefined;
  let ftSetup: FineTuneSetup | undefined;
  const lrFind: LrFindResult[] = [];
  const interrupted = (features: TrainResult['features'], history: EpochMetrics[]): TrainResult => {
    boardStatus = undefined; // resumable: the HParams session stays open-ended
    return { interrupted: true, runDir: run.runDir, metrics: {}, history, backend, engine: session!.engine.name, features, timings: clock.timings, ...(lrFind.length ? { lrFind } : {}) };
  };
  try {
    session = await openRunSession(run, clock);
    if (opts.extractOnly) return await extractOnlyRun(opts, { root: run.folder.root, samples: [...run.splits.train, ...run.splits.val, ...run.splits.test] }, session, opts.extractOnly.shard, { clock, backend, runDir: run.runDir });
    // The run folder is this process's from here on (extract-only shards share the store, not the run folder).
    lock = await lockRun(run.runDir, opts.name);
    const config: RunConfig = { fingerprint: runFingerprint(run, session.weights!.sha256), run: { id: lock.id, pid: lock.pid, startedAt: lock.startedAt } };
    const resume = await checkResume(run, config);
    const inputs = await clock.time('featureSeconds', () => headInputs(run, session!));
    if (opts.shouldStop?.()) return interrupted(inputs.stats, []);

    const headSpec: HeadSpec = { pooling: opts.head, units: HEAD_UNITS, dropout: opts.dropout, classes: run.classes.length };
    // The whole model exists from the start (its head takes the trained weights later): the fine-tune phase's inputs
    // are readied before the head phase, so extraction happens up front and the run's ETA covers both phases.
    fullModel = buildFullModel(session.base, headSpec);
    const model = fullModel;
    const eta = createRunClock();
    ftSetup = await clock.time('fineTuneInputsSeconds', () => prepareFineTunePhase(run, model, session!, { clock: eta, classWeights: inputs.classWeights }));
    if (opts.shouldStop?.()) return interrupted(inputs.stats, []);
    writer = checkpointWriter(run.runDir, config);
    const head = await clock.time('headSeconds', () => headPhase(run, inputs, headSpec, writer!, resume, { config, clock: eta, onLrFind: (r) => lrFind.push(r) }));
    headWeights = head.weights;
    if (head.interrupted) return interrupted(inputs.stats, head.history);
    // The fine-tune phase writes checkpoints of its own: the head's last one lands first.
    if (opts.fineTune > 0) await clock.time('checkpointFlushSeconds', () => flushCheckpoints(run, writer!));

    setHeadWeights(model, head.weights);
    const ft = await clock.time('fineTuneSeconds', () => fineTunePhase(run, model, head, ftSetup, { classWeights: inputs.classWeights, config, resume, clock: eta, onLrFind: (r) => lrFind.push(r) }));
    if (ft?.interrupted) return interrupted(inputs.stats, [...head.history, ...(ft?.history ?? [])]);

    const { metrics, history, test } = await clock.time('evalSeconds', () => finalMetrics(run, model, session!, head, ft, ftSetup));
    const features = { ...inputs.stats, ...(test ? { test } : {}) };
    const draft = trainManifest(run, { session, headSpec, ft, history, metrics, classWeights: inputs.classWeights, backend, lrFind });
    const pkg = await clock.time('saveSeconds', () => saveTrained(run, model, draft, history, lrFind));
    await clock.time('checkpointFlushSeconds', () => flushCheckpoints(run, writer!));
    clock.total();
    boardStatus = 'SUCCESS';
    await board?.close('SUCCESS', pkg.dir);
    logger.info(`saved ${pkg.dir} (val accuracy ${typeof metrics.valAccuracy === 'number' ? metrics.valAccuracy.toFixed(4) : 'n/a'}, ${history.length} epochs)`);
    return {
      package: { dir: pkg.dir, name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 },
      interrupted: false,
      runDir: run.runDir,
      metrics,
      history,
      backend,
      engine: session.engine.name,
      features,
      timings: clock.timings,
      ...(lrFind.length ? { lrFind } : {}),
    };
  } finally {
    await releaseRun(run, { writer, board, boardStatus, fullModel, head: { dispose: () => disposeHead(headWeights) }, ftSetup, session, lock });
  }
}

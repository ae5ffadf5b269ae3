// Detection phase 2 (--fine-tune K), on classification's fine-tune machinery (train/finetune.ts, tail.ts): the model
// (backbone + CenterNet head) is cut before the first unfrozen block (models/split.ts). The frozen part runs in the
// feature session's engine (ONNX Runtime on every core) and, without augmentation, its outputs for train and val are
// stored once like the backbone's feature maps. Only the tail (the unfrozen blocks + head) runs forward and backward
// in TF.js, with BatchNormalization in inference mode (tail.ts unfreezeLastBlocks). Each epoch trains with the same
// CenterNet loss on the phase's own rate and schedule, then scores validation loss and COCO AP; the best epoch is kept.
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec } from '../../artifacts/manifest.js';
import type { DetectionSample } from '../../data/detection/types.js';
import { openFeatureSession, type ExtractStats, type FeatureSession } from '../../features/session.js';
import { isCenterNetLayer } from '../../models/detection/centernet.js';
import { splitBefore, type ModelSplit } from '../../models/split.js';
import type { Logger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { tfjsAdam } from '../adam-kernel.js';
import type { FineTuneState, FrozenPartOptions } from '../finetune.js';
import type { LrFindResult } from '../lr-find.js';
import { describeSchedule, learningRateAt, phaseSchedule, type LrScheduleKind } from '../schedule.js';
import { checkBlocks, restoreWeightsByName, unfreezeLastBlocks, weightSnapshot } from '../tail.js';
import { ensureWasmGradients } from '../wasm-grads.js';
import type { DetectionAugmentation } from './augment.js';
import { betterEpoch, centerNetRangeTest, centerNetStep, epochFromScore, monitorOf, type CenterNetShape } from './head.js';
import { detectionInputs, pictureBatches, pictureSet, type DetectionSet } from './inputs.js';
import { scoreDetector, type DetectorScore, type ScoreContext } from './score.js';
import type { DetectionEpochMetrics } from './types.js';

export type DetectionFineTuneState = Omit<FineTuneState, 'history'> & { history: DetectionEpochMetrics[] };

/** What the fine-tune phase trains on: the model cut at the first unfrozen block, and the tail's inputs. */
export interface DetectionFineTuneSetup {
  readonly split: ModelSplit;
  readonly train: DetectionSet;
  readonly val?: DetectionSet;
  readonly stats: { train?: ExtractStats; val?: ExtractStats };
  /** Where the frozen part runs and whether it is stored, for the log. */
  readonly description: string;
  dispose(): Promise<void>;
}

export interface DetectionFineTuneSetupOptions {
  blocks: number;
  /** The backbone's fine-tuning units, first to last (BackboneDef.blocks). */
  units: string[][];
  spec: ImageInputSpec;
  augment: readonly DetectionAugmentation[];
  seed: number;
  frozen: FrozenPartOptions;
  logger: Logger;
  shouldStop?: () => boolean;
}

/**
 * Cut `model` before its first unfrozen block and ready the tail's inputs: the frozen part's outputs for train and val
 * (stored once through a feature session, or computed per epoch from augmented pictures), or the pictures themselves
 * when every block is unfrozen.
 */
export async function prepareDetectionFineTune(model: tf.LayersModel, splits: { train: DetectionSample[]; val: DetectionSample[] }, o: DetectionFineTuneSetupOptions): Promise<DetectionFineTuneSetup> {
  checkBlocks(o.blocks, o.units);
  const split = splitBefore(model, o.units[o.units.length - o.blocks]![0]!);
  const { logger, spec } = o;
  const warned = new Set<string>();
  const onSkip = (s: { path: string; reason: string }) => {
    if (!warned.has(s.path)) logger.warn(`skipped ${s.path}: ${s.reason}`);
    warned.add(s.path);
  };
  let session: FeatureSession | undefined;
  try {
    if (!split.prefix) {
      const train = pictureSet(splits.train, spec, o.augment, o.seed, onSkip);
      const val = splits.val.length ? pictureSet(splits.val, spec, [], o.seed, onSkip) : undefined;
      return { split, train, val, stats: {}, description: 'every block is unfrozen: the whole network trains on pictures', dispose: async () => undefined };
    }
    session = await openFeatureSession({
      base: { model: split.prefix, identity: `${o.frozen.baseIdentity}-to-${split.cutLayer}`, spec },
      engine: o.frozen.engine,
      useStore: o.frozen.useStore !== false,
      cacheRoot: o.frozen.cacheRoot,
      logger,
    });
    const s = session;
    const inputs = await detectionInputs(splits, s, { augment: o.augment, seed: o.seed, shouldStop: o.shouldStop, warn: (l) => logger.warn(l), what: `fine-tune inputs (up to ${split.cutLayer})` });
    const { train: st, val: sv } = inputs.stats;
    if (st) {
      const dim = split.cutShape.reduce((a, b) => a * b, 1);
      const mb = ((st.images + (sv?.images ?? 0)) * dim * 4) / 2 ** 20;
      const where = s.storeDir ? `${mb.toFixed(1)} MiB in ${s.storeDir}` : `${mb.toFixed(1)} MiB in a temporary store (--no-feature-cache)`;
      logger.info(`fine-tune inputs (the frozen part's outputs, up to ${split.cutLayer}): ${st.cached + (sv?.cached ?? 0)} from the store, ${st.computed + (sv?.computed ?? 0)} computed; ${where}`);
    }
    const how = o.augment.length ? ' on every batch of train pictures (--augment changes each epoch\'s pictures; validation is stored)' : `, computed once${s.storeDir ? ' and stored' : ''}`;
    return {
      split,
      train: inputs.train,
      val: inputs.val,
      stats: { train: st, val: sv },
      description: `the frozen part (up to ${split.cutLayer}) runs in ${s.engine.description}${how}; ${split.tail.layers.length - 1} layers from ${split.tail.layers[1]?.name ?? '?'} on train forward and backward in TF.js (${tf.getBackend()})`,
      dispose: () => s.dispose(),
    };
  } catch (err) {
    await session?.dispose();
    throw err;
  }
}

export interface DetectionFineTuneOptions {
  blocks: number;
  /** The backbone's fine-tuning units, first to last (BackboneDef.blocks). */
  units: string[][];
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the phase. */
  lr: number;
  schedule?: { kind: LrScheduleKind; warmupEpochs: number };
  seed: number;
  patience?: number;
  score: ScoreContext;
  logger: Logger;
  shouldStop?: () => boolean;
  startEpoch?: number;
  /** The best fine-tune epoch so far when resuming (its weights are the checkpoint's model when it is the last one). */
  resumeBestEpoch?: number;
  /** Model weights to continue from (a checkpoint's model folder). */
  resumeDir?: string;
  priorHistory?: DetectionEpochMetrics[];
  checkpoint?: (state: DetectionFineTuneState) => Promise<void>;
}

export interface DetectionFineTuneResult {
  history: DetectionEpochMetrics[];
  stoppedEarly: boolean;
  interrupted: boolean;
  trainableParams: number;
}

/** The full model on a split's pictures (no augmentation): the saved model's own figures. */
export function scoreModel(model: tf.LayersModel, samples: readonly DetectionSample[], o: { spec: ImageInputSpec; score: ScoreContext; batchSize: number; onSkip?: (s: { path: string; reason: string }) => void }): Promise<DetectorScore> {
  const { spec } = o;
  return scoreDetector(pictureBatches(samples, spec, { batchSize: o.batchSize, onSkip: o.onSkip }), (b) => tf.tidy(() => model.predict(tf.tensor4d(b.x, [b.n, spec.height, spec.width, 3])) as tf.Tensor4D), o.score);
}

const tensorOf = (x: Float32Array, n: number, shape: number[]) => tf.tensor(x.subarray(0, n * shape.reduce((a, b) => a * b, 1)), [n, ...shape]) as unknown as tf.Tensor4D;

/** The layers fine-tuning trains: the last `blocks` of the backbone and the CenterNet head (tail.ts unfreezeLastBlocks). */
function unfreezeForDetection(model: tf.LayersModel, blocks: number, units: string[][]) {
  const headLayers = model.layers.map((l) => l.name).filter(isCenterNetLayer);
  const unfrozen = unfreezeLastBlocks(model, blocks, units, headLayers);
  const vars = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
  return { unfrozen, headLayers, vars };
}

/**
 * The LR range test of the fine-tune phase (fastai lr_find on the unfrozen blocks + head, from the trained head): Adam
 * steps over the tail's train inputs, the rate growing each step. The weights are put back afterwards, so the phase
 * trains from where the test started.
 */
export async function detectionFineTuneRangeTest(model: tf.LayersModel, setup: DetectionFineTuneSetup, o: Pick<DetectionFineTuneOptions, 'blocks' | 'units' | 'batchSize' | 'score' | 'logger' | 'shouldStop'>): Promise<LrFindResult> {
  o.logger.debug(ensureWasmGradients());
  const { tail, cutShape } = setup.split;
  const { unfrozen, vars } = unfreezeForDetection(model, o.blocks, o.units);
  const saved = weightSnapshot(model);
  const optimizer = tfjsAdam(vars);
  const shape: CenterNetShape = { inputSize: o.score.inputSize, grid: o.score.grid, classes: o.score.labels.length };
  try {
    return await centerNetRangeTest('fine-tune', tail, setup.train, {
      batchSize: o.batchSize,
      shape,
      vars,
      input: (b) => tensorOf(b.x, b.n, cutShape),
      update: (grads, lr) => optimizer.apply(grads, lr),
      logger: o.logger,
      shouldStop: o.shouldStop,
    });
  } finally {
    optimizer.dispose();
    saved.restore();
    saved.dispose();
    unfrozen.restore();
  }
}

/** Fine-tune `model` in place on the setup's inputs; on return it holds the best epoch's weights. */
export async function fineTuneDetector(model: tf.LayersModel, setup: DetectionFineTuneSetup, opts: DetectionFineTuneOptions): Promise<DetectionFineTuneResult> {
  const { logger } = opts;
  logger.debug(ensureWasmGradients());
  if (opts.resumeDir) await restoreWeightsByName(model, opts.resumeDir);
  const { tail, cutShape } = setup.split;
  const { unfrozen, headLayers, vars } = unfreezeForDetection(model, opts.blocks, opts.units);
  const trainableParams = vars.reduce((n, v) => n + v.size, 0);
  const baseLayers = unfrozen.trainable.filter((n) => !headLayers.includes(n)).length;
  const sched = phaseSchedule(opts, setup.train.count);
  logger.info(`fine-tuning ${baseLayers} backbone layers (${opts.blocks} block(s)) + the detection head, ${trainableParams.toLocaleString('en-US')} trainable parameters, ${opts.epochs} epoch(s), lr ${describeSchedule(sched, opts.schedule?.warmupEpochs ?? 0)}`);
  logger.info(`fine-tune: ${setup.description}`);
  const optimizer = tfjsAdam(vars);
  const shape: CenterNetShape = { inputSize: opts.score.inputSize, grid: opts.score.grid, classes: opts.score.labels.length };
  const history: DetectionEpochMetrics[] = [...(opts.priorHistory ?? [])];
  let best = { epoch: 0, weights: undefined as tf.Tensor[] | undefined };
  let bestMetrics: DetectionEpochMetrics | undefined;
  let wait = 0;
  let epoch = opts.startEpoch ?? 0;
  // The checkpoint's model is the last epoch's: it is the best one to beat only when that epoch was the best.
  if (epoch > 0 && opts.resumeBestEpoch === epoch) {
    best = { epoch, weights: model.getWeights().map((w) => w.clone()) };
    bestMetrics = history[history.length - 1];
  }
  let stoppedEarly = false;
  let interrupted = false;
  let step = epoch * Math.ceil(setup.train.count / opts.batchSize);
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const progress = createProgress({ label: `fine-tune epoch ${e}/${opts.epochs}`, total: setup.train.count, unit: 'img', logger, plainIntervalMs: 60_000 });
      const sums = { loss: 0, heatmapLoss: 0, sizeLoss: 0, offsetLoss: 0 };
      let n = 0;
      let lr = learningRateAt(sched, step);
      // The epoch seeds its shuffle apart from the head phase's epochs of the same number.
      for await (const b of setup.train.batches(1000 + e, opts.batchSize, true)) {
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        const x = tensorOf(b.x, b.n, cutShape);
        lr = learningRateAt(sched, step++);
        const { loss, heatmapLoss: hm, sizeLoss: size, offsetLoss: off } = centerNetStep(tail, x, b.boxes, shape, vars, (grads) => optimizer.apply(grads, lr));
        x.dispose();
        sums.loss += loss * b.n;
        sums.heatmapLoss += hm * b.n;
        sums.sizeLoss += size * b.n;
        sums.offsetLoss += off * b.n;
        n += b.n;
        progress.tick(b.n, `loss ${(sums.loss / n).toFixed(4)} lr ${lr.toExponential(2)}`);
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const d = Math.max(n, 1);
      const m: DetectionEpochMetrics = { epoch: e, phase: 'fine-tune', loss: sums.loss / d, heatmapLoss: sums.heatmapLoss / d, sizeLoss: sums.sizeLoss / d, offsetLoss: sums.offsetLoss / d, lr, seconds: 0 };
      if (setup.val?.count) epochFromScore(m, await scoreDetector(setup.val.batches(0, opts.batchSize, false), (b) => tf.tidy(() => tail.predict(tensorOf(b.x, b.n, cutShape)) as tf.Tensor4D), opts.score));
      m.seconds = (performance.now() - t0) / 1000;
      progress.done(`loss ${m.loss.toFixed(4)}${m.valMAP !== undefined ? ` val_loss ${m.valLoss!.toFixed(4)} val_mAP ${m.valMAP.toFixed(4)} AP50 ${m.valAP50!.toFixed(4)}` : ''} (${(n / m.seconds).toFixed(1)} img/s)`);
      history.push(m);
      epoch = e;
      if (betterEpoch(m, bestMetrics)) {
        tf.dispose(best.weights ?? []);
        best = { epoch: e, weights: model.getWeights().map((w) => w.clone()) };
        bestMetrics = m;
        wait = 0;
      } else {
        wait++;
      }
      await opts.checkpoint?.({ epoch: e, history: history.filter((h) => h.phase === 'fine-tune'), bestEpoch: best.epoch, bestMonitor: bestMetrics ? monitorOf(bestMetrics) : Infinity, wait });
      if (opts.patience && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    if (best.weights && !interrupted) model.setWeights(best.weights);
    return { history: history.filter((h) => h.phase === 'fine-tune'), stoppedEarly, interrupted, trainableParams };
  } finally {
    tf.dispose(best.weights ?? []);
    optimizer.dispose();
    unfrozen.restore();
  }
}

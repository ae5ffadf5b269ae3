// Phase 2 of the Keras transfer-learning recipe: unfreeze the backbone's last K blocks (as its definition counts
// them: VGG16's conv blocks, ResNet50's residual blocks, MobileNetV2's/EfficientNet's inverted residual blocks) and
// keep training at a lower learning rate, on its own epochs and schedule. The model is cut before the first unfrozen
// block: the frozen part runs in the feature session's engine (ONNX Runtime on every core, BatchNorm folded) and,
// without augmentation, its outputs are stored once like the backbone features; only the tail (unfrozen blocks +
// head) runs forward and backward in TF.js, its conv and Dense gradients on wasm's SIMD kernels (train/wasm-grads.ts).
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { Sample } from '../data/imagefolder.js';
import type { FeatureRows } from '../features/rows.js';
import { openFeatureSession, type ExtractStats, type FeatureSession } from '../features/session.js';
import { HEAD_LAYER_NAMES } from '../models/head.js';
import { splitBefore, type ModelSplit } from '../models/split.js';
import { vgg16 } from '../models/backbones/vgg16.js';
import { MlctlError } from '../errors.js';
import { checkBlocks, evaluateTail, restoreWeightsByName, tailTrainer, unfreezeLastBlocks, weightSnapshot } from './tail.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import type { Augmentation } from './augment.js';
import type { RunClock } from './eta.js';
import { computedRows, readableSamples } from './image-rows.js';
import { rangeTestWithProgress, type LrFindResult } from './lr-find.js';
import { describeSchedule, learningRateAt, phaseSchedule, type LrScheduleKind } from './schedule.js';
import type { EpochMetrics, HeadTrainState } from '../heads/head.js';
import { ensureWasmGradients } from './wasm-grads.js';

export interface FineTuneState {
  epoch: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestMonitor: number;
  wait: number;
}

/** How the frozen part of the backbone runs: the feature session's engine and store. */
export interface FrozenPartOptions {
  engine: EngineChoice;
  /** Cache identity of the backbone base (weights, size, preprocessing); the frozen part is named by it + the cut. */
  baseIdentity: string;
  /** false: the frozen part's outputs go to a temporary store for this run only. */
  useStore?: boolean;
  cacheRoot?: string;
}

export interface FineTuneSetupOptions {
  blocks: number;
  /** The backbone's fine-tuning units, first to last (BackboneDef.blocks); default VGG16's five conv blocks. */
  units?: string[][];
  spec: ImageInputSpec;
  augment: readonly Augmentation[];
  seed: number;
  frozen: FrozenPartOptions;
  logger: Logger;
  shouldStop?: () => boolean;
}

/** What the fine-tune phase trains on: the model cut at the first unfrozen block, and the tail's input rows. */
export interface FineTuneSetup {
  readonly split: ModelSplit;
  /** Train rows of an epoch (stored frozen-part outputs, or computed per epoch with augmentation). */
  trainRows(epoch: number): FeatureRows;
  readonly val?: FeatureRows;
  /** Where the frozen part runs and whether it is stored, for the log. */
  readonly description: string;
  /** Extraction figures of the frozen part (train, val), when it is stored. */
  readonly stats: { train?: ExtractStats; val?: ExtractStats };
  /** Loss and accuracy of the model on `samples` (the test split): frozen part through the session, tail in TF.js. */
  evaluate(samples: readonly Sample[], classes: number): Promise<{ loss: number; accuracy: number }>;
  dispose(): Promise<void>;
}

export interface FineTuneOptions {
  blocks: number;
  units?: string[][];
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the phase. */
  lr: number;
  schedule?: { kind: LrScheduleKind; warmupEpochs: number };
  seed: number;
  patience?: number;
  classes: number;
  classWeights?: number[];
  logger: Logger;
  shouldStop?: () => boolean;
  startEpoch?: number;
  /** Model weights to continue from (a checkpoint's model directory). */
  resumeDir?: string;
  priorHistory?: EpochMetrics[];
  checkpoint?: (state: FineTuneState, head?: HeadTrainState) => Promise<void>;
  /** The run's ETA: this phase reports its images as "fine-tune" units (train images + a third of val per epoch). */
  clock?: RunClock;
}

export { evaluateTail, lossAndAccuracy, tailTrainer, unfreezeLastBlocks, weightSnapshot, type TailTrainer, type Unfrozen } from './tail.js';

export interface FineTuneResult {
  history: EpochMetrics[];
  stoppedEarly: boolean;
  interrupted: boolean;
  trainableParams: number;
}

/**
 * Cut `model` before its first unfrozen block and ready the tail's inputs: the frozen part's outputs for train and
 * val (stored once through a feature session, or computed per epoch with augmentation), or the images themselves
 * when every block is unfrozen.
 */
export async function prepareFineTune(model: tf.LayersModel, train: readonly Sample[], val: readonly Sample[], o: FineTuneSetupOptions): Promise<FineTuneSetup> {
  const units = o.units ?? vgg16.blocks({ imageSize: 224 });
  checkBlocks(o.blocks, units);
  if (o.blocks === 0) throw new MlctlError('OPTION_CONFLICT', ['--fine-tune 0 unfreezes nothing: there is no fine-tune phase']);
  const split = splitBefore(model, units[units.length - o.blocks]![0]!);
  const { spec, augment, logger } = o;
  const dim = split.cutShape.reduce((a, b) => a * b, 1);
  const skip = () => undefined; // the head phase already reported unreadable files
  let session: FeatureSession | undefined;
  const stats: FineTuneSetup['stats'] = {};
  try {
    if (split.prefix) {
      session = await openFeatureSession({
        base: { model: split.prefix, identity: `${o.frozen.baseIdentity}-to-${split.cutLayer}`, spec },
        engine: o.frozen.engine,
        useStore: o.frozen.useStore !== false,
        cacheRoot: o.frozen.cacheRoot,
        logger,
      });
    }
    const s = session;
    const frozenRun = s ? (x: Float32Array, n: number) => s.run(x, n) : undefined;
    let trainRows: (epoch: number) => FeatureRows;
    if (s && augment.length === 0) {
      const r = await s.extract(train, { label: `fine-tune inputs (up to ${split.cutLayer})`, shouldStop: o.shouldStop });
      stats.train = r.stats;
      trainRows = () => r.rows;
    } else {
      const usable = await readableSamples(train, spec, skip);
      trainRows = (epoch) => computedRows(usable, { spec, augment, seed: o.seed, key: `ft${epoch}`, dim, run: frozenRun });
    }
    let valRows: FeatureRows | undefined;
    if (val.length && !o.shouldStop?.()) {
      if (s) {
        const r = await s.extract(val, { label: `fine-tune validation inputs (up to ${split.cutLayer})`, shouldStop: o.shouldStop });
        stats.val = r.stats;
        valRows = r.rows;
      } else valRows = computedRows(await readableSamples(val, spec, skip), { spec, augment: [], seed: o.seed, key: 'val', dim });
    }
    if (stats.train) {
      const cached = stats.train.cached + (stats.val?.cached ?? 0);
      const computed = stats.train.computed + (stats.val?.computed ?? 0);
      const mb = ((stats.train.images + (stats.val?.images ?? 0)) * dim * 4) / 2 ** 20;
      const where = s!.storeDir ? `${mb.toFixed(1)} MiB in ${s!.storeDir}` : `${mb.toFixed(1)} MiB in a temporary store (--no-feature-cache)`;
      logger.info(`fine-tune inputs (the frozen part's outputs, up to ${split.cutLayer}): ${cached} from the store, ${computed} computed${stats.train.computed ? ` at ${stats.train.imagesPerSecond.toFixed(1)} img/s` : ''}; ${where}`);
    }
    const where = s ? `the frozen part (up to ${split.cutLayer}) runs in ${s.engine.description}${augment.length ? ' on every batch (--augment changes each epoch\'s images; without it, it would be computed once and stored)' : `, computed once${s.storeDir ? ' and stored' : ''}`}` : 'every block is unfrozen: the whole network trains on images';
    return {
      split,
      trainRows,
      val: valRows,
      stats,
      description: `${where}; ${split.tail.layers.length - 1} layers from ${split.tail.layers[1]?.name ?? '?'} on train forward and backward in TF.js (${tf.getBackend()})`,
      async evaluate(samples, classes) {
        const rows = s ? (await s.extract(samples, { label: 'test inputs' })).rows : computedRows(await readableSamples(samples, spec, skip), { spec, augment: [], seed: o.seed, key: 'test', dim });
        return evaluateTail(split.tail, rows, split.cutShape, classes, 32);
      },
      async dispose() {
        await session?.dispose();
      },
    };
  } catch (err) {
    await session?.dispose();
    throw err;
  }
}

/**
 * Shuffled batches of rows, read `ahead` batches in advance. A TF.js step holds the event loop, so a read started just
 * before it would only reach the frozen part's engine after it: two ahead, a batch's images are decoded during one
 * step and run through ONNX Runtime (its own threads) during the next, while the tail trains.
 */
function batchStream(rows: FeatureRows, order: ArrayLike<number>, batchSize: number, ahead = 2) {
  const slots = ahead + 1;
  const bufs = Array.from({ length: slots }, () => new Float32Array(batchSize * rows.dim));
  const labels = Array.from({ length: slots }, () => new Int32Array(batchSize));
  const batches = Math.ceil(rows.count / batchSize);
  const inflight = new Map<number, Promise<{ x: Float32Array; labels: Int32Array; n: number }>>();
  const read = async (b: number) => {
    const from = b * batchSize;
    const to = Math.min(rows.count, from + batchSize);
    const x = await rows.read(order, from, to, bufs[b % slots]!);
    const l = labels[b % slots]!;
    for (let i = from; i < to; i++) l[i - from] = rows.labels[order[i]!]!;
    return { x, labels: l, n: to - from };
  };
  return {
    batches,
    /** Batch b (taken in order: its buffer is reused `ahead` + 1 batches later), with the next reads started. */
    take(b: number) {
      for (let k = b; k <= Math.min(batches - 1, b + ahead); k++) {
        if (inflight.has(k)) continue;
        const p = read(k);
        // A read that fails while a step runs is reported when taken, not as an unhandled rejection.
        p.catch(() => undefined);
        inflight.set(k, p);
      }
      const p = inflight.get(b)!;
      inflight.delete(b);
      return p;
    },
    /** Wait out the reads still in flight (after an interrupt), so nothing writes into the buffers later. */
    async drain() {
      await Promise.all([...inflight.values()].map((p) => p.catch(() => undefined)));
      inflight.clear();
    },
  };
}

/** Fine-tune `model` (base + head) in place on the setup's rows; on return it holds the best weights seen. */
export async function fineTune(model: tf.LayersModel, setup: FineTuneSetup, opts: FineTuneOptions): Promise<FineTuneResult> {
  const { logger } = opts;
  logger.debug(ensureWasmGradients());
  if (opts.resumeDir) await restoreWeightsByName(model, opts.resumeDir);
  const { tail, cutShape } = setup.split;
  const unfrozen = unfreezeLastBlocks(model, opts.blocks, opts.units);
  const trainer = tailTrainer(model, tail, cutShape, opts.classes, { classWeights: opts.classWeights });
  const baseLayers = unfrozen.trainable.filter((n) => n !== HEAD_LAYER_NAMES.dense && n !== HEAD_LAYER_NAMES.predictions).length;
  const history: EpochMetrics[] = [...(opts.priorHistory ?? [])];
  let best = { monitor: Infinity, epoch: 0, weights: undefined as tf.Tensor[] | undefined };
  let wait = 0;
  let epoch = opts.startEpoch ?? 0;
  let stoppedEarly = false;
  let interrupted = false;
  try {
    const first = setup.trainRows(epoch + 1);
    const sched = phaseSchedule(opts, first.count);
    const perEpoch = Math.ceil(first.count / opts.batchSize);
    logger.info(`fine-tuning ${baseLayers} backbone layers (${opts.blocks} block(s)) + head, ${trainer.trainableParams.toLocaleString('en-US')} trainable parameters, ${opts.epochs} epoch(s), lr ${describeSchedule(sched, opts.schedule?.warmupEpochs ?? 0)}`);
    logger.info(`fine-tune: ${setup.description}`);
    const valUnits = (setup.val?.count ?? 0) / 3;
    const unitsPerEpoch = first.count + valUnits;
    opts.clock?.plan('fine-tune', opts.epochs * unitsPerEpoch);
    let step = epoch * perEpoch;
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const rows = setup.trainRows(e);
      const order = shuffleInPlace(Array.from({ length: rows.count }, (_, i) => i), createRng(deriveSeed(opts.seed, `finetune-epoch-${e}`)));
      const stream = batchStream(rows, order, opts.batchSize);
      const progress = createProgress({ label: `fine-tune epoch ${e}/${opts.epochs}`, total: rows.count, unit: 'img', logger, plainIntervalMs: 60_000 });
      let lossSum = 0;
      let correct = 0;
      let n = 0;
      let lr = learningRateAt(sched, step);
      for (let b = 0; b < stream.batches; b++) {
        // The next batches are read (and, with augmentation, run through the frozen part) while this one trains.
        const batch = await stream.take(b);
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        lr = learningRateAt(sched, step++);
        const r = trainer.step(batch.x, batch.labels, batch.n, lr);
        lossSum += r.loss * batch.n;
        correct += r.correct;
        n += batch.n;
        opts.clock?.progress('fine-tune', (e - 1) * unitsPerEpoch + n);
        const eta = opts.clock?.text();
        progress.tick(batch.n, `loss ${(lossSum / n).toFixed(4)} acc ${(correct / n).toFixed(3)} lr ${lr.toExponential(2)}${eta ? ` · ${eta}` : ''}`);
        await new Promise((res) => setImmediate(res));
      }
      await stream.drain();
      if (interrupted) break;
      const m: EpochMetrics = { epoch: history.length + 1, loss: lossSum / Math.max(1, n), accuracy: correct / Math.max(1, n), seconds: 0, lr, phase: 'fine-tune' };
      if (setup.val?.count) {
        const v = await evaluateTail(tail, setup.val, cutShape, opts.classes, opts.batchSize);
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
      opts.clock?.progress('fine-tune', e * unitsPerEpoch);
      m.seconds = (performance.now() - t0) / 1000;
      const eta = opts.clock?.text();
      progress.done(`loss ${m.loss.toFixed(4)} acc ${m.accuracy.toFixed(3)}${m.valLoss !== undefined ? ` val_loss ${m.valLoss.toFixed(4)} val_acc ${m.valAccuracy!.toFixed(3)}` : ''} (${(n / m.seconds).toFixed(1)} img/s)${eta && e < opts.epochs ? ` · ${eta}` : ''}`);
      history.push(m);
      epoch = e;
      const monitor = m.valLoss ?? m.loss;
      if (monitor < best.monitor) {
        tf.dispose(best.weights ?? []);
        best = { monitor, epoch: e, weights: model.getWeights().map((w) => w.clone()) };
        wait = 0;
      } else {
        wait++;
      }
      await opts.checkpoint?.({ epoch: e, history: history.filter((h) => h.phase === 'fine-tune'), bestEpoch: best.epoch, bestMonitor: best.monitor, wait });
      if (opts.patience && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    opts.clock?.finish('fine-tune');
    if (best.weights && !interrupted) model.setWeights(best.weights);
    return { history: history.filter((h) => h.phase === 'fine-tune'), stoppedEarly, interrupted, trainableParams: trainer.trainableParams };
  } finally {
    tf.dispose(best.weights ?? []);
    trainer.dispose();
    unfrozen.restore();
  }
}

/** The run clock's name for the fine-tune range test (100 steps, planned before the head phase with --find-lr). */
export const RANGE_TEST_PHASE = 'fine-tune LR range test';

/** Rows in shuffled passes, as many as a caller needs (the range test may want more steps than one epoch has). */
function endlessBatches(setup: FineTuneSetup, batchSize: number, seed: number) {
  let pass = 0;
  let stream: ReturnType<typeof batchStream> | undefined;
  let b = 0;
  return async () => {
    if (!stream || b >= stream.batches) {
      pass++;
      const rows = setup.trainRows(pass);
      stream = batchStream(rows, shuffleInPlace(Array.from({ length: rows.count }, (_, i) => i), createRng(deriveSeed(seed, `lr-find-fine-tune-${pass}`))), batchSize);
      b = 0;
    }
    return stream.take(b++);
  };
}

/**
 * The LR range test on the fine-tune phase (unfrozen blocks + head, from the trained head): fastai lr_find on the
 * tail. The weights are put back afterwards, so training starts from where the test did.
 */
export async function fineTuneRangeTest(model: tf.LayersModel, setup: FineTuneSetup, o: { blocks: number; units?: string[][]; batchSize: number; seed: number; classes: number; classWeights?: number[]; logger: Logger; shouldStop?: () => boolean; clock?: RunClock }): Promise<LrFindResult> {
  ensureWasmGradients();
  const unfrozen = unfreezeLastBlocks(model, o.blocks, o.units);
  const saved = weightSnapshot(model);
  const trainer = tailTrainer(model, setup.split.tail, setup.split.cutShape, o.classes, { classWeights: o.classWeights });
  const next = endlessBatches(setup, o.batchSize, o.seed);
  try {
    return await rangeTestWithProgress(
      'fine-tune',
      async (lr, i) => {
        const b = await next();
        const loss = trainer.step(b.x, b.labels, b.n, lr).loss;
        o.clock?.progress(RANGE_TEST_PHASE, i + 1);
        return loss;
      },
      { logger: o.logger, shouldStop: o.shouldStop, note: () => (o.clock?.text() ? ` · ${o.clock.text()}` : '') },
    );
  } finally {
    o.clock?.finish(RANGE_TEST_PHASE);
    trainer.dispose();
    saved.restore();
    saved.dispose();
    unfrozen.restore();
  }
}

/**
 * Seconds per train image of a fine-tune step: the faster of two steps on the first batch, Adam included at rate 0
 * (the weights stay exactly as they are; the trainer and its moments are dropped).
 */
export async function calibrateFineTune(model: tf.LayersModel, setup: FineTuneSetup, o: { blocks: number; units?: string[][]; batchSize: number; classes: number }): Promise<number> {
  ensureWasmGradients();
  const unfrozen = unfreezeLastBlocks(model, o.blocks, o.units);
  const trainer = tailTrainer(model, setup.split.tail, setup.split.cutShape, o.classes);
  try {
    const rows = setup.trainRows(1);
    const n = Math.min(o.batchSize, rows.count);
    if (n === 0) return 0;
    const order = Array.from({ length: n }, (_, i) => i);
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const x = await rows.read(order, 0, n, new Float32Array(n * rows.dim));
      trainer.step(x, rows.labels.slice(0, n), n, 0);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return best / n;
  } finally {
    trainer.dispose();
    unfrozen.restore();
  }
}

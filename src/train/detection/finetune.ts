// Detection phase 2 (--fine-tune K): the full model (backbone + CenterNet head) in TF.js on pictures, the backbone's
// last K blocks unfrozen (train/finetune.ts's unfreezeLastBlocks: BatchNormalization stays in inference mode), the
// same CenterNet loss at the lower learning rate, validation loss and COCO AP each epoch, the best epoch kept.
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec } from '../../artifacts/manifest.js';
import { loadLayersModelFromDir } from '../../artifacts/tfjs-io.js';
import type { DetectionSample } from '../../data/detection/types.js';
import { isCenterNetLayer } from '../../models/detection/centernet.js';
import { batchTargets, centerNetLoss } from '../../models/detection/loss.js';
import type { Logger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { createRng, deriveSeed, shuffleInPlace } from '../../util/random.js';
import { tfjsAdam } from '../adam-kernel.js';
import type { FineTuneState } from '../finetune.js';
import { describeSchedule, learningRateAt, phaseSchedule, type LrScheduleKind } from '../schedule.js';
import { unfreezeLastBlocks } from '../tail.js';
import { ensureWasmGradients } from '../wasm-grads.js';
import type { DetectionAugmentation } from './augment.js';
import { betterEpoch, epochFromScore, monitorOf } from './head.js';
import { pictureBatches } from './inputs.js';
import { scoreDetector, type DetectorScore, type ScoreContext } from './score.js';
import type { DetectionEpochMetrics } from './types.js';

export type DetectionFineTuneState = Omit<FineTuneState, 'history'> & { history: DetectionEpochMetrics[] };

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
  spec: ImageInputSpec;
  score: ScoreContext;
  augment: readonly DetectionAugmentation[];
  logger: Logger;
  shouldStop?: () => boolean;
  startEpoch?: number;
  /** The best fine-tune epoch so far when resuming (its weights are the checkpoint's model when it is the last one). */
  resumeBestEpoch?: number;
  /** Model weights to continue from (a checkpoint's model folder). */
  resumeDir?: string;
  priorHistory?: DetectionEpochMetrics[];
  checkpoint?: (state: DetectionFineTuneState) => Promise<void>;
  onSkip?: (s: { path: string; reason: string }) => void;
}

export interface DetectionFineTuneResult {
  history: DetectionEpochMetrics[];
  stoppedEarly: boolean;
  interrupted: boolean;
  trainableParams: number;
}

/** The full model on a split's pictures (no augmentation). */
export function scoreModel(model: tf.LayersModel, samples: readonly DetectionSample[], o: Pick<DetectionFineTuneOptions, 'spec' | 'score' | 'batchSize' | 'onSkip'>): Promise<DetectorScore> {
  const { spec } = o;
  return scoreDetector(pictureBatches(samples, spec, { batchSize: o.batchSize, onSkip: o.onSkip }), (b) => tf.tidy(() => model.predict(tf.tensor4d(b.x, [b.n, spec.height, spec.width, 3])) as tf.Tensor4D), o.score);
}

/** Fine-tune `model` in place; on return it holds the best epoch's weights. */
export async function fineTuneDetector(model: tf.LayersModel, train: readonly DetectionSample[], val: readonly DetectionSample[], opts: DetectionFineTuneOptions): Promise<DetectionFineTuneResult> {
  const { logger, spec } = opts;
  logger.debug(ensureWasmGradients());
  if (opts.resumeDir) {
    const saved = await loadLayersModelFromDir(opts.resumeDir);
    try {
      for (const layer of model.layers) if (layer.weights.length) layer.setWeights(saved.getLayer(layer.name).getWeights());
    } finally {
      saved.dispose();
    }
  }
  const headLayers = model.layers.map((l) => l.name).filter(isCenterNetLayer);
  const unfrozen = unfreezeLastBlocks(model, opts.blocks, opts.units, headLayers);
  const vars = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
  const trainableParams = vars.reduce((n, v) => n + v.size, 0);
  const baseLayers = unfrozen.trainable.filter((n) => !headLayers.includes(n)).length;
  const sched = phaseSchedule(opts, train.length);
  logger.info(`fine-tuning ${baseLayers} backbone layers (${opts.blocks} block(s)) + the detection head, ${trainableParams.toLocaleString('en-US')} trainable parameters, ${opts.epochs} epoch(s), lr ${describeSchedule(sched, opts.schedule?.warmupEpochs ?? 0)}`);
  const optimizer = tfjsAdam(vars);
  const { grid, inputSize } = opts.score;
  const classes = opts.score.labels.length;
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
  let step = epoch * Math.ceil(train.length / opts.batchSize);
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const order = shuffleInPlace([...train], createRng(deriveSeed(opts.seed, `detection-finetune-epoch-${e}`)));
      const progress = createProgress({ label: `fine-tune epoch ${e}/${opts.epochs}`, total: order.length, unit: 'img', logger, plainIntervalMs: 60_000 });
      const sums = { loss: 0, heatmapLoss: 0, sizeLoss: 0, offsetLoss: 0 };
      let n = 0;
      let lr = learningRateAt(sched, step);
      for await (const b of pictureBatches(order, spec, { batchSize: opts.batchSize, onSkip: opts.onSkip, augment: opts.augment.length ? { ops: opts.augment, seed: opts.seed, key: (s) => `ft${e}:${s.path}` } : undefined })) {
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        const x = tf.tensor4d(b.x, [b.n, spec.height, spec.width, 3]);
        const t = batchTargets(b.boxes, inputSize, grid, classes);
        let partsT: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const l = centerNetLoss(model.apply(x, { training: true }) as tf.Tensor4D, t, classes);
          partsT = tf.keep(tf.stack([l.total, l.heatmap, l.size, l.offset]));
          return l.total;
        }, vars);
        lr = learningRateAt(sched, step++);
        optimizer.apply(grads, lr);
        const [loss, hm, size, off] = Array.from(partsT!.dataSync());
        tf.dispose([x, t.heatmap, t.regression, t.mask, value, partsT!, ...Object.values(grads)]);
        sums.loss += loss! * b.n;
        sums.heatmapLoss += hm! * b.n;
        sums.sizeLoss += size! * b.n;
        sums.offsetLoss += off! * b.n;
        n += b.n;
        progress.tick(b.n, `loss ${(sums.loss / n).toFixed(4)}`);
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const d = Math.max(n, 1);
      const m: DetectionEpochMetrics = { epoch: e, phase: 'fine-tune', loss: sums.loss / d, heatmapLoss: sums.heatmapLoss / d, sizeLoss: sums.sizeLoss / d, offsetLoss: sums.offsetLoss / d, lr, seconds: 0 };
      if (val.length) epochFromScore(m, await scoreModel(model, val, opts));
      m.seconds = (performance.now() - t0) / 1000;
      progress.done(`loss ${m.loss.toFixed(4)}${m.valMAP !== undefined ? ` val_loss ${m.valLoss!.toFixed(4)} val_mAP ${m.valMAP.toFixed(4)} AP50 ${m.valAP50!.toFixed(4)}` : ''}`);
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

// Phase 2 of the Keras transfer-learning recipe: unfreeze the backbone's last K blocks (as its definition counts
// them: VGG16's conv blocks, ResNet50's residual blocks, MobileNetV2's/EfficientNet's inverted residual blocks) and
// keep training on images at a lower learning rate. Conv gradients on wasm run through train/wasm-grads.ts.
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { loadLayersModelFromDir } from '../artifacts/tfjs-io.js';
import { imageBatches } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { HEAD_LAYER_NAMES } from '../models/head.js';
import { vgg16 } from '../models/backbones/vgg16.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { augmentImage, type Augmentation } from './augment.js';
import { KERAS_ADAM, type EpochMetrics, type HeadTrainState } from '../heads/head.js';
import { ensureConvFilterGradient } from './wasm-grads.js';

export interface FineTuneState {
  epoch: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestMonitor: number;
  wait: number;
}

export interface FineTuneOptions {
  blocks: number;
  /** The backbone's fine-tuning units, first to last (BackboneDef.blocks); default VGG16's five conv blocks. */
  units?: string[][];
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  patience?: number;
  classes: number;
  classWeights?: number[];
  spec: ImageInputSpec;
  augment: Augmentation[];
  logger: Logger;
  shouldStop?: () => boolean;
  startEpoch?: number;
  /** Model weights to continue from (a checkpoint's model directory). */
  resumeDir?: string;
  priorHistory?: EpochMetrics[];
  checkpoint?: (state: FineTuneState, head?: HeadTrainState) => Promise<void>;
}

export interface FineTuneResult {
  history: EpochMetrics[];
  stoppedEarly: boolean;
  interrupted: boolean;
  trainableParams: number;
}

export interface Unfrozen {
  /** Names of the trainable layers (backbone layers of the last blocks, then the head's Dense layers). */
  trainable: string[];
  /** Every layer trainable again and BatchNormalization back to its own training behaviour. */
  restore(): void;
}

/**
 * Mark only the last `blocks` of `units` and the head (`headLayers`: the Dense head's layers by default) as trainable.
 * BatchNormalization layers run in inference mode throughout, unfrozen or not (Keras's transfer-learning guide): their
 * moving statistics stay the pretrained ones and their gamma/beta train through the inference-mode normalisation.
 */
export function unfreezeLastBlocks(model: tf.LayersModel, blocks: number, units: string[][] = vgg16.blocks({ imageSize: 224 }), headLayers: readonly string[] = [HEAD_LAYER_NAMES.dense, HEAD_LAYER_NAMES.predictions]): Unfrozen {
  if (!Number.isInteger(blocks) || blocks < 0 || blocks > units.length) {
    throw new MlctlError('OPTION_CONFLICT', [`--fine-tune ${blocks} does not fit this backbone: it has ${units.length} blocks (choose 0..${units.length})`]);
  }
  const names = new Set<string>([...units.slice(units.length - blocks).flat(), ...headLayers]);
  const patched: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    layer.trainable = names.has(layer.name);
    if (layer.getClassName() === 'BatchNormalization' && !Object.prototype.hasOwnProperty.call(layer, 'call')) {
      const call = layer.call.bind(layer);
      patched.push(layer);
      layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
    }
  }
  return {
    trainable: model.layers.filter((l) => names.has(l.name)).map((l) => l.name),
    restore() {
      // The instance override goes; the class's own call is back.
      for (const layer of patched) delete (layer as unknown as { call?: unknown }).call;
      for (const layer of model.layers) layer.trainable = true;
    },
  };
}

function lossAndAccuracy(model: tf.LayersModel, x: tf.Tensor4D, labels: tf.Tensor1D, classes: number, training: boolean, classWeights?: tf.Tensor1D) {
  const probs = model.apply(x, { training }) as tf.Tensor2D;
  const y = tf.oneHot(labels, classes);
  const perExample = tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1 - 1e-7))), 1));
  const sw = classWeights ? tf.gather(classWeights, labels) : tf.onesLike(perExample);
  const loss = tf.mean(tf.mul(perExample, sw)) as tf.Scalar;
  const correct = tf.sum(tf.cast(tf.equal(tf.argMax(probs, 1), labels), 'float32'));
  return { loss, correct };
}

async function evaluate(model: tf.LayersModel, samples: Sample[], opts: FineTuneOptions): Promise<{ loss: number; accuracy: number }> {
  let loss = 0;
  let correct = 0;
  let n = 0;
  for await (const b of imageBatches(samples, { spec: opts.spec, batchSize: opts.batchSize })) {
    const [l, c] = tf.tidy(() => {
      const r = lossAndAccuracy(model, tf.tensor4d(b.x, [b.count, opts.spec.height, opts.spec.width, 3]), tf.tensor1d(b.labels, 'int32'), opts.classes, false);
      return [r.loss.dataSync()[0]!, r.correct.dataSync()[0]!];
    });
    loss += l! * b.count;
    correct += c!;
    n += b.count;
  }
  return { loss: n ? loss / n : NaN, accuracy: n ? correct / n : NaN };
}

/** Fine-tune `model` (base + head) in place; on return it holds the best weights seen. */
export async function fineTune(model: tf.LayersModel, train: Sample[], val: Sample[], opts: FineTuneOptions): Promise<FineTuneResult> {
  const { logger, spec } = opts;
  ensureConvFilterGradient(logger);
  if (opts.resumeDir) {
    const saved = await loadLayersModelFromDir(opts.resumeDir);
    try {
      // By layer name: a saved model lists trainable weights first, so whole-model order differs.
      for (const layer of model.layers) if (layer.weights.length) layer.setWeights(saved.getLayer(layer.name).getWeights());
    } finally {
      saved.dispose();
    }
  }
  const unfrozen = unfreezeLastBlocks(model, opts.blocks, opts.units);
  const vars = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
  const trainableParams = vars.reduce((n, v) => n + v.size, 0);
  const baseLayers = unfrozen.trainable.filter((n) => n !== HEAD_LAYER_NAMES.dense && n !== HEAD_LAYER_NAMES.predictions).length;
  logger.info(`fine-tuning ${baseLayers} backbone layers (${opts.blocks} block(s)) + head, ${trainableParams.toLocaleString('en-US')} trainable parameters, lr ${opts.lr}`);
  const optimizer = tf.train.adam(opts.lr, KERAS_ADAM.beta1, KERAS_ADAM.beta2, KERAS_ADAM.epsilon);
  const classWeights = opts.classWeights ? tf.tensor1d(opts.classWeights) : undefined;
  const history: EpochMetrics[] = [...(opts.priorHistory ?? [])];
  let best = { monitor: Infinity, epoch: 0, weights: undefined as tf.Tensor[] | undefined };
  let wait = 0;
  let epoch = opts.startEpoch ?? 0;
  let stoppedEarly = false;
  let interrupted = false;
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const order = shuffleInPlace([...train], createRng(deriveSeed(opts.seed, `finetune-epoch-${e}`)));
      const progress = createProgress({ label: `fine-tune epoch ${e}/${opts.epochs}`, total: order.length, unit: 'img', logger, plainIntervalMs: 60_000 });
      let lossSum = 0;
      let correct = 0;
      let n = 0;
      for await (const b of imageBatches(order, { spec, batchSize: opts.batchSize, transform: opts.augment.length ? (img, s) => augmentImage(img, spec.height, opts.augment, opts.seed, `ft${e}:${s.path}`) : undefined })) {
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        const x = tf.tensor4d(b.x, [b.count, spec.height, spec.width, 3]);
        const labels = tf.tensor1d(b.labels, 'int32');
        let c = 0;
        const { value, grads } = tf.variableGrads(() => {
          const r = lossAndAccuracy(model, x, labels, opts.classes, true, classWeights);
          c = r.correct.dataSync()[0]!;
          return r.loss;
        }, vars);
        optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
        const l = value.dataSync()[0]!;
        tf.dispose([x, labels, value, ...Object.values(grads)]);
        lossSum += l * b.count;
        correct += c;
        n += b.count;
        progress.tick(b.count, `loss ${(lossSum / n).toFixed(4)} acc ${(correct / n).toFixed(3)}`);
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const m: EpochMetrics = { epoch: history.length + 1, loss: lossSum / Math.max(1, n), accuracy: correct / Math.max(1, n), seconds: 0, lr: opts.lr, phase: 'fine-tune' };
      if (val.length) {
        const v = await evaluate(model, val, opts);
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
      m.seconds = (performance.now() - t0) / 1000;
      progress.done(`loss ${m.loss.toFixed(4)} acc ${m.accuracy.toFixed(3)}${m.valLoss !== undefined ? ` val_loss ${m.valLoss.toFixed(4)} val_acc ${m.valAccuracy!.toFixed(3)}` : ''}`);
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
    if (best.weights && !interrupted) model.setWeights(best.weights);
    return { history: history.filter((h) => h.phase === 'fine-tune'), stoppedEarly, interrupted, trainableParams };
  } finally {
    tf.dispose(best.weights ?? []);
    classWeights?.dispose();
    optimizer.dispose();
    unfrozen.restore();
  }
}

// The tail of a fine-tuned model: which layers train (the last K blocks and the head; BatchNormalization in inference
// mode as an affine map), one Adam step on a batch of the tail's input rows, and its loss and accuracy. The same
// trainer steps the whole model on images (the plain TF.js path benchmarks and tests compare against).
import * as tf from '@tensorflow/tfjs';
import { loadLayersModelFromDir } from '../artifacts/tfjs-io.js';
import { rowBatches, type FeatureRows } from '../features/rows.js';
import { HEAD_LAYER_NAMES } from '../models/head.js';
import { vgg16 } from '../models/backbones/vgg16.js';
import { MlctlError } from '../errors.js';
import { tfjsAdam } from './adam-kernel.js';

export interface Unfrozen {
  /** Names of the trainable layers (backbone layers of the last blocks, then the head's Dense layers). */
  trainable: string[];
  /** Every layer trainable again and BatchNormalization back to its own training behaviour. */
  restore(): void;
}

export function checkBlocks(blocks: number, units: string[][]): void {
  if (!Number.isInteger(blocks) || blocks < 0 || blocks > units.length) {
    throw new MlctlError('OPTION_CONFLICT', [`--fine-tune ${blocks} does not fit this backbone: it has ${units.length} blocks (choose 0..${units.length})`]);
  }
}

type LayerVar = { read(): tf.Tensor };
type BatchNormLayer = { movingMean: LayerVar; movingVariance: LayerVar; gamma?: LayerVar; beta?: LayerVar; epsilon: number; axis: number };

/**
 * BatchNormalization in inference mode as one per-channel affine map, x·s + t with s = γ/√(σ²+ε), t = β − μ·s: the
 * same values as tf.batchNorm, but its gradient is a multiply and two channel sums, where tf.batchNorm's tiles the
 * statistics to the activations' full size (wasm's Tile is slow) for gradients of statistics that never train.
 */
function inferenceBatchNorm(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const l = layer as unknown as BatchNormLayer;
  const inv = tf.rsqrt(tf.add(l.movingVariance.read(), l.epsilon));
  const scale = l.gamma ? tf.mul(l.gamma.read(), inv) : inv;
  const shift = tf.neg(tf.mul(l.movingMean.read(), scale));
  return tf.add(tf.mul(x, scale), l.beta ? tf.add(shift, l.beta.read()) : shift);
}

/**
 * Mark only the last `blocks` of `units` and the head (`headLayers`: the Dense head's layers by default) as trainable.
 * BatchNormalization layers run in inference mode throughout, unfrozen or not (Keras's transfer-learning guide): their
 * moving statistics stay the pretrained ones and their gamma/beta train through the inference-mode normalisation.
 */
export function unfreezeLastBlocks(model: tf.LayersModel, blocks: number, units: string[][] = vgg16.blocks({ imageSize: 224 }), headLayers: readonly string[] = [HEAD_LAYER_NAMES.dense, HEAD_LAYER_NAMES.predictions]): Unfrozen {
  checkBlocks(blocks, units);
  const names = new Set<string>([...units.slice(units.length - blocks).flat(), ...headLayers]);
  const patched: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    layer.trainable = names.has(layer.name);
    if (layer.getClassName() === 'BatchNormalization' && !Object.prototype.hasOwnProperty.call(layer, 'call')) {
      const call = layer.call.bind(layer);
      patched.push(layer);
      const axis = (layer as unknown as BatchNormLayer).axis;
      layer.call = (inputs, kwargs) => {
        const x = Array.isArray(inputs) ? inputs[0]! : inputs;
        // Channels last (every backbone here): the affine form; any other axis: the layer's own inference mode.
        if (axis === -1 || axis === x.rank - 1) return tf.tidy(() => inferenceBatchNorm(layer, x));
        return call(inputs, { ...kwargs, training: false });
      };
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

/**
 * Copies of every layer's weights, put back by restore() (by layer, so the trainable flags in between do not matter:
 * a model lists trainable weights first). dispose() drops the copies.
 */
export function weightSnapshot(model: tf.LayersModel): { restore(): void; dispose(): void } {
  const saved = new Map(model.layers.filter((l) => l.weights.length).map((l) => [l.name, l.getWeights().map((w) => w.clone())]));
  return {
    restore() {
      for (const [name, ws] of saved) model.getLayer(name).setWeights(ws);
    },
    dispose() {
      for (const ws of saved.values()) tf.dispose(ws);
      saved.clear();
    },
  };
}

/** Mean (class-weighted) cross-entropy and correct predictions of `net` on a batch. */
export function lossAndAccuracy(net: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor1D, classes: number, training: boolean, classWeights?: tf.Tensor1D) {
  const probs = net.apply(x, { training }) as tf.Tensor2D;
  const y = tf.oneHot(labels, classes);
  const perExample = tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1 - 1e-7))), 1));
  const sw = classWeights ? tf.gather(classWeights, labels) : tf.onesLike(perExample);
  const loss = tf.mean(tf.mul(perExample, sw)) as tf.Scalar;
  const correct = tf.sum(tf.cast(tf.equal(tf.argMax(probs, 1), labels), 'float32'));
  return { loss, correct };
}

/** Adam (tf.train.adam's formula, Keras's β and ε) over the model's trainable weights, stepping the tail on rows of its input. */
export interface TailTrainer {
  readonly trainableParams: number;
  /** Which Adam runs: the fused wasm kernel or tf.train.adam. */
  readonly optimizer: string;
  /** One step at `lr` on n rows. */
  step(x: Float32Array, labels: Int32Array, n: number, lr: number): { loss: number; correct: number };
  dispose(): void;
}

export function tailTrainer(model: tf.LayersModel, tail: tf.LayersModel, cutShape: number[], classes: number, o: { classWeights?: number[]; fusedAdam?: boolean } = {}): TailTrainer {
  const vars = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
  const optimizer = tfjsAdam(vars, { fused: o.fusedAdam });
  const cw = o.classWeights ? tf.tensor1d(o.classWeights) : undefined;
  return {
    trainableParams: vars.reduce((n, v) => n + v.size, 0),
    optimizer: optimizer.kind,
    step(xs, ls, n, lr) {
      const x = tf.tensor(xs.subarray(0, n * cutShape.reduce((a, b) => a * b, 1)), [n, ...cutShape]);
      const labels = tf.tensor1d(ls.subarray(0, n), 'int32');
      let correct = 0;
      const { value, grads } = tf.variableGrads(() => {
        const r = lossAndAccuracy(tail, x, labels, classes, true, cw);
        correct = r.correct.dataSync()[0]!;
        return r.loss;
      }, vars);
      optimizer.apply(grads, lr);
      const loss = value.dataSync()[0]!;
      tf.dispose([x, labels, value, ...Object.values(grads)]);
      return { loss, correct };
    },
    dispose() {
      optimizer.dispose();
      cw?.dispose();
    },
  };
}

/** Loss (unweighted) and accuracy of the tail on rows of its input, without dropout. */
export async function evaluateTail(tail: tf.LayersModel, rows: FeatureRows, cutShape: number[], classes: number, batchSize: number): Promise<{ loss: number; accuracy: number }> {
  let loss = 0;
  let correct = 0;
  for await (const b of rowBatches(rows, batchSize)) {
    const [l, c] = tf.tidy(() => {
      const r = lossAndAccuracy(tail, tf.tensor(b.x, [b.n, ...cutShape]), tf.tensor1d(b.labels, 'int32'), classes, false);
      return [r.loss.dataSync()[0]!, r.correct.dataSync()[0]!];
    });
    loss += l! * b.n;
    correct += c!;
  }
  return { loss: rows.count ? loss / rows.count : NaN, accuracy: rows.count ? correct / rows.count : NaN };
}


/** A checkpoint's weights into `model`, layer by layer by name (a resumed fine-tune phase, either task). */
export async function restoreWeightsByName(model: tf.LayersModel, dir: string): Promise<void> {
  const saved = await loadLayersModelFromDir(dir);
  try {
    // By layer name: a saved model lists trainable weights first, so whole-model order differs.
    for (const layer of model.layers) if (layer.weights.length) layer.setWeights(saved.getLayer(layer.name).getWeights());
  } finally {
    saved.dispose();
  }
}

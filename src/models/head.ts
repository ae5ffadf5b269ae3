// The classification head on top of the VGG16 base, Keras-style: Flatten|GlobalAveragePooling2D → Dense(1024, relu)
// → [Dropout] → Dense(n, softmax); and the full model (base + head) that the package stores.
import * as tf from '@tensorflow/tfjs';

export type HeadPooling = 'flatten' | 'gap';

export interface HeadSpec {
  pooling: HeadPooling;
  units: number;
  dropout: number;
  classes: number;
}

export const HEAD_LAYER_NAMES = { flatten: 'flatten', gap: 'global_average_pooling2d', dense: 'fc1', dropout: 'dropout', predictions: 'predictions' } as const;

/** Input width of the first Dense layer for a base feature shape [h, w, c]. */
export function headInputSize(featureShape: readonly number[], pooling: HeadPooling): number {
  const [h, w, c] = featureShape as [number, number, number];
  return pooling === 'gap' ? c : h * w * c;
}

/** Parameters of the head (two Dense layers). */
export function headParamCount(spec: HeadSpec, inputSize: number): number {
  return inputSize * spec.units + spec.units + spec.units * spec.classes + spec.classes;
}

/** Apply the head's layers to a symbolic tensor (the base's output). */
export function applyHead(x: tf.SymbolicTensor, spec: HeadSpec): tf.SymbolicTensor {
  let y =
    spec.pooling === 'gap'
      ? (tf.layers.globalAveragePooling2d({ name: HEAD_LAYER_NAMES.gap }).apply(x) as tf.SymbolicTensor)
      : (tf.layers.flatten({ name: HEAD_LAYER_NAMES.flatten }).apply(x) as tf.SymbolicTensor);
  y = tf.layers.dense({ name: HEAD_LAYER_NAMES.dense, units: spec.units, activation: 'relu' }).apply(y) as tf.SymbolicTensor;
  if (spec.dropout > 0) y = tf.layers.dropout({ name: HEAD_LAYER_NAMES.dropout, rate: spec.dropout }).apply(y) as tf.SymbolicTensor;
  return tf.layers.dense({ name: HEAD_LAYER_NAMES.predictions, units: spec.classes, activation: 'softmax' }).apply(y) as tf.SymbolicTensor;
}

/** Head weights as plain arrays: fc1 kernel [in, units], bias [units]; predictions kernel [units, classes], bias. */
export interface HeadWeights {
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

/** Full model: the base's layers (sharing weights with `base`) followed by the head; head weights set when given. */
export function buildFullModel(base: tf.LayersModel, spec: HeadSpec, weights?: HeadWeights): tf.LayersModel {
  const out = applyHead(base.outputs[0]!, spec);
  const model = tf.model({ inputs: base.inputs, outputs: out, name: 'vgg16_classifier' });
  if (weights) setHeadWeights(model, weights);
  return model;
}

export function setHeadWeights(model: tf.LayersModel, w: HeadWeights): void {
  model.getLayer(HEAD_LAYER_NAMES.dense).setWeights([w.w1, w.b1]);
  model.getLayer(HEAD_LAYER_NAMES.predictions).setWeights([w.w2, w.b2]);
}

/** Copies of the head weights of a full model (caller disposes). */
export function getHeadWeights(model: tf.LayersModel): HeadWeights {
  const [w1, b1] = model.getLayer(HEAD_LAYER_NAMES.dense).getWeights().map((t) => t.clone());
  const [w2, b2] = model.getLayer(HEAD_LAYER_NAMES.predictions).getWeights().map((t) => t.clone());
  return { w1: w1 as tf.Tensor2D, b1: b1 as tf.Tensor1D, w2: w2 as tf.Tensor2D, b2: b2 as tf.Tensor1D };
}

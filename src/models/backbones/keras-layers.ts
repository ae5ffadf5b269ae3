// Pieces the Keras application graphs share (keras/src/applications/imagenet_utils.py and friends): the padding
// before stride-2 'valid' convs, downsampled sizes, input-size checks and seeded Keras-default initialisers.
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../../errors.js';
import type { BackboneOptions } from './types.js';

export type Sym = tf.SymbolicTensor;

/** imagenet_utils.correct_pad: ((top, bottom), (left, right)) so a stride-2 'valid' conv halves the size like TF 'same'. */
export function correctPad(input: Sym, kernel: number): [[number, number], [number, number]] {
  const [h, w] = [input.shape[1] as number, input.shape[2] as number];
  const c = Math.floor(kernel / 2);
  return [[c - (1 - (h % 2)), c], [c - (1 - (w % 2)), c]];
}

/** Spatial size after `times` stride-2 stages that each give ceil(size / 2). */
export function halved(size: number, times: number): number {
  let s = size;
  for (let i = 0; i < times; i++) s = Math.ceil(s / 2);
  return s;
}

/** Keras applications accept any integer size of at least 32 (obtain_input_shape min_size=32). */
export function assertImageSize(label: string, size: number): void {
  if (!Number.isInteger(size) || size < 32) {
    throw new MlctlError('OPTION_INVALID', [`--image-size ${size} is not usable for ${label}: it must be an integer of at least 32 (e.g. 32, 96, 224)`]);
  }
}

/** Backbones without a width multiplier refuse --alpha instead of ignoring it. */
export function rejectAlpha(label: string, opts: BackboneOptions): void {
  if (opts.alpha !== undefined) throw new MlctlError('OPTION_CONFLICT', [`--alpha applies to mobilenet_v2 only; ${label} has no width multiplier (drop --alpha)`]);
}

/** A seed source: each layer takes the next seed so `--weights none` is reproducible layer by layer. */
export function seeds(seed = 42): () => number {
  let k = 0;
  return () => seed + k++;
}

export function apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
  return layer.apply(x) as Sym;
}

/** BatchNormalization over channels (Keras's defaults unless given: epsilon 1e-3, momentum 0.99). */
export function batchNorm(name: string, opts: { epsilon?: number; momentum?: number } = {}): tf.layers.Layer {
  return tf.layers.batchNormalization({ name, axis: -1, epsilon: opts.epsilon ?? 1e-3, momentum: opts.momentum ?? 0.99 });
}


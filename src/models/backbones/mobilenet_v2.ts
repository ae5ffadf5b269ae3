// MobileNetV2 no-top base (keras.applications.MobileNetV2, include_top=False) with Keras's layer names: Conv1 stem,
// 17 inverted residual blocks (expand 1x1 → ZeroPadding2D for stride 2 → DepthwiseConv2D → project 1x1, ReLU6,
// residual Add where shapes allow) and the Conv_1 1x1 conv, so Keras's .h5 files load by layer name.
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../../errors.js';
import type { BackboneDef, BackboneOptions, PublishedWeights } from './types.js';
import { apply, assertImageSize, batchNorm, correctPad, halved, seeds, type Sym } from './keras-layers.js';

export const MOBILENET_V2_INPUT_NAME = 'input_1';
/** Width multipliers Keras publishes ImageNet weights for (mobilenet_v2.py). */
export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
/** Input sizes with their own published files; other sizes load the 224 file as Keras does (no-top weights do not depend on size). */
export const MOBILENET_V2_SIZES = [96, 128, 160, 192, 224] as const;
const BASE_WEIGHT_PATH = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/';

/** (filters, stride, expansion) of blocks 0..16 (mobilenet_v2.py). */
const BLOCKS: ReadonlyArray<[number, number, number]> = [
  [16, 1, 1],
  [24, 2, 6], [24, 1, 6],
  [32, 2, 6], [32, 1, 6], [32, 1, 6],
  [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
  [96, 1, 6], [96, 1, 6], [96, 1, 6],
  [160, 2, 6], [160, 1, 6], [160, 1, 6],
  [320, 1, 6],
];

/** mobilenet_v2._make_divisible. */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let n = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

function alphaOf(opts: BackboneOptions): number {
  return opts.alpha ?? 1.0;
}

function lastFilters(alpha: number): number {
  return alpha > 1.0 ? makeDivisible(1280 * alpha) : 1280;
}

function checkOptions(opts: BackboneOptions): void {
  assertImageSize('MobileNetV2', opts.imageSize);
  const a = alphaOf(opts);
  if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(a)) {
    throw new MlctlError('OPTION_INVALID', [`--alpha ${a} is not a MobileNetV2 width Keras publishes weights for: choose one of ${MOBILENET_V2_ALPHAS.join(', ')}`]);
  }
}

/** Python's float formatting of alpha in Keras's file names: 1 → "1.0", 0.5 → "0.5". */
function pyFloat(a: number): string {
  return Number.isInteger(a) ? a.toFixed(1) : String(a);
}

function blockPrefix(id: number): string {
  return id === 0 ? 'expanded_conv_' : `block_${id}_`;
}

export function buildMobileNetV2(opts: BackboneOptions): tf.LayersModel {
  checkOptions(opts);
  const alpha = alphaOf(opts);
  const next = seeds(opts.seed);
  const glorot = () => tf.initializers.glorotUniform({ seed: next() });
  const input = tf.input({ shape: [opts.imageSize, opts.imageSize, 3], name: MOBILENET_V2_INPUT_NAME });
  let x = apply(tf.layers.conv2d({ name: 'Conv1', filters: makeDivisible(32 * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: glorot() }), input);
  x = apply(batchNorm('bn_Conv1', { momentum: 0.999 }), x);
  x = apply(tf.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }), x);
  BLOCKS.forEach(([filters, stride, expansion], id) => {
    const inputs = x;
    const inChannels = x.shape[3] as number;
    const pointwise = makeDivisible(Math.trunc(filters * alpha));
    const p = blockPrefix(id);
    if (id) {
      x = apply(tf.layers.conv2d({ name: `${p}expand`, filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: glorot() }), x);
      x = apply(batchNorm(`${p}expand_BN`, { momentum: 0.999 }), x);
      x = apply(tf.layers.reLU({ maxValue: 6, name: `${p}expand_relu` }), x);
    }
    if (stride === 2) x = apply(tf.layers.zeroPadding2d({ name: `${p}pad`, padding: correctPad(x, 3) }), x);
    x = apply(tf.layers.depthwiseConv2d({ name: `${p}depthwise`, kernelSize: 3, strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', depthwiseInitializer: glorot() }), x);
    x = apply(batchNorm(`${p}depthwise_BN`, { momentum: 0.999 }), x);
    x = apply(tf.layers.reLU({ maxValue: 6, name: `${p}depthwise_relu` }), x);
    x = apply(tf.layers.conv2d({ name: `${p}project`, filters: pointwise, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: glorot() }), x);
    x = apply(batchNorm(`${p}project_BN`, { momentum: 0.999 }), x);
    if (inChannels === pointwise && stride === 1) x = apply(tf.layers.add({ name: `${p}add` }), [inputs, x]);
  });
  x = apply(tf.layers.conv2d({ name: 'Conv_1', filters: lastFilters(alpha), kernelSize: 1, useBias: false, kernelInitializer: glorot() }), x);
  x = apply(batchNorm('Conv_1_bn', { momentum: 0.999 }), x);
  x = apply(tf.layers.reLU({ maxValue: 6, name: 'out_relu' }), x);
  return tf.model({ inputs: input, outputs: x as Sym, name: `mobilenetv2_${alpha.toFixed(2)}_${opts.imageSize}` });
}

/** Fine-tuning units: the stem, blocks 0..16, then Conv_1 — each the names of its layers with weights. */
function blocks(): string[][] {
  const units: string[][] = [['Conv1', 'bn_Conv1']];
  BLOCKS.forEach((_, id) => {
    const p = blockPrefix(id);
    const expand = id ? [`${p}expand`, `${p}expand_BN`] : [];
    units.push([...expand, `${p}depthwise`, `${p}depthwise_BN`, `${p}project`, `${p}project_BN`]);
  });
  units.push(['Conv_1', 'Conv_1_bn']);
  return units;
}

function imagenetWeights(opts: BackboneOptions): PublishedWeights {
  checkOptions(opts);
  const rows = (MOBILENET_V2_SIZES as readonly number[]).includes(opts.imageSize) ? opts.imageSize : 224;
  const fileName = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${pyFloat(alphaOf(opts))}_${rows}_no_top.h5`;
  // keras.applications fetches these without a file_hash: there is no published checksum to verify against.
  return { fileName, url: BASE_WEIGHT_PATH + fileName };
}

export const mobilenetV2: BackboneDef = {
  id: 'mobilenet_v2',
  summary: 'MobileNetV2 (--alpha 0.35..1.4): 2.3M parameters at alpha 1.0, 0.3 GMAC per 224 image; for CPUs and cameras; tf preprocessing',
  preprocessing: 'tf',
  inputName: MOBILENET_V2_INPUT_NAME,
  checkOptions,
  featureShape: (o) => [halved(o.imageSize, 5), halved(o.imageSize, 5), lastFilters(alphaOf(o))],
  build: buildMobileNetV2,
  imagenetWeights,
  blocks,
  blockNames: () => ['Conv1', ...BLOCKS.map((_, id) => blockPrefix(id).slice(0, -1)), 'Conv_1'],
  variant: (o) => `alpha${pyFloat(alphaOf(o))}`,
};

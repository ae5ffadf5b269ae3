// ResNet50 no-top base (keras.applications.ResNet50, include_top=False) with Keras's layer names: conv1 stem
// (ZeroPadding2D, 7x7/2 conv, BatchNormalization, ReLU, 3x3/2 max pool) and 16 bottleneck blocks in stages conv2..conv5,
// each adding its shortcut (a 1x1 conv + BN on the first block of a stage) before the ReLU.
import * as tf from '@tensorflow/tfjs';
import type { BackboneDef, BackboneOptions } from './types.js';
import { apply, assertImageSize, batchNorm, halved, rejectAlpha, seeds, type Sym } from './keras-layers.js';

export const RESNET50_INPUT_NAME = 'input_1';

/** Keras's no-top file and its WEIGHTS_HASHES entry (resnet.py). */
export const RESNET50_NOTOP_WEIGHTS = {
  fileName: 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
  md5: '4d473c1dd8becc155b73f8504c6f6626',
} as const;

/** (stage name, bottleneck filters, blocks, first stride) of ResNet50's stack_fn. */
const STAGES: ReadonlyArray<[string, number, number, number]> = [
  ['conv2', 64, 3, 1],
  ['conv3', 128, 4, 2],
  ['conv4', 256, 6, 2],
  ['conv5', 512, 3, 2],
];
const EPS = 1.001e-5;

function checkOptions(opts: BackboneOptions): void {
  assertImageSize('ResNet50', opts.imageSize);
  rejectAlpha('resnet50', opts);
}

export function buildResNet50(opts: BackboneOptions): tf.LayersModel {
  checkOptions(opts);
  const next = seeds(opts.seed);
  const conv = (name: string, filters: number, kernelSize: number, strides = 1, padding: 'same' | 'valid' = 'valid') =>
    tf.layers.conv2d({ name, filters, kernelSize, strides, padding, kernelInitializer: tf.initializers.glorotUniform({ seed: next() }), biasInitializer: 'zeros' });
  const input = tf.input({ shape: [opts.imageSize, opts.imageSize, 3], name: RESNET50_INPUT_NAME });
  let x = apply(tf.layers.zeroPadding2d({ name: 'conv1_pad', padding: [[3, 3], [3, 3]] }), input);
  x = apply(conv('conv1_conv', 64, 7, 2), x);
  x = apply(batchNorm('conv1_bn', { epsilon: EPS }), x);
  x = apply(tf.layers.activation({ name: 'conv1_relu', activation: 'relu' }), x);
  x = apply(tf.layers.zeroPadding2d({ name: 'pool1_pad', padding: [[1, 1], [1, 1]] }), x);
  x = apply(tf.layers.maxPooling2d({ name: 'pool1_pool', poolSize: 3, strides: 2 }), x);
  for (const [stage, filters, count, stride1] of STAGES) {
    for (let b = 1; b <= count; b++) {
      const name = `${stage}_block${b}`;
      const stride = b === 1 ? stride1 : 1;
      let shortcut: Sym = x;
      if (b === 1) {
        shortcut = apply(conv(`${name}_0_conv`, 4 * filters, 1, stride), x);
        shortcut = apply(batchNorm(`${name}_0_bn`, { epsilon: EPS }), shortcut);
      }
      let y = apply(conv(`${name}_1_conv`, filters, 1, stride), x);
      y = apply(batchNorm(`${name}_1_bn`, { epsilon: EPS }), y);
      y = apply(tf.layers.activation({ name: `${name}_1_relu`, activation: 'relu' }), y);
      y = apply(conv(`${name}_2_conv`, filters, 3, 1, 'same'), y);
      y = apply(batchNorm(`${name}_2_bn`, { epsilon: EPS }), y);
      y = apply(tf.layers.activation({ name: `${name}_2_relu`, activation: 'relu' }), y);
      y = apply(conv(`${name}_3_conv`, 4 * filters, 1), y);
      y = apply(batchNorm(`${name}_3_bn`, { epsilon: EPS }), y);
      y = apply(tf.layers.add({ name: `${name}_add` }), [shortcut, y]);
      x = apply(tf.layers.activation({ name: `${name}_out`, activation: 'relu' }), y);
    }
  }
  return tf.model({ inputs: input, outputs: x, name: 'resnet50' });
}

/** Fine-tuning units: the conv1 stem, then the 16 residual blocks conv2_block1 … conv5_block3. */
function blocks(): string[][] {
  const units: string[][] = [['conv1_conv', 'conv1_bn']];
  for (const [stage, , count] of STAGES) {
    for (let b = 1; b <= count; b++) {
      const n = `${stage}_block${b}`;
      const shortcut = b === 1 ? [`${n}_0_conv`, `${n}_0_bn`] : [];
      units.push([...shortcut, `${n}_1_conv`, `${n}_1_bn`, `${n}_2_conv`, `${n}_2_bn`, `${n}_3_conv`, `${n}_3_bn`]);
    }
  }
  return units;
}

export const resnet50: BackboneDef = {
  id: 'resnet50',
  summary: 'ResNet50: 23.6M parameters, 4.1 GMAC per 224 image; residual blocks with BatchNormalization; caffe preprocessing',
  preprocessing: 'caffe',
  inputName: RESNET50_INPUT_NAME,
  checkOptions,
  featureShape: (o) => [halved(o.imageSize, 5), halved(o.imageSize, 5), 2048],
  build: buildResNet50,
  imagenetWeights: (o) => {
    checkOptions(o);
    return { ...RESNET50_NOTOP_WEIGHTS };
  },
  blocks,
  blockNames: () => ['conv1', ...STAGES.flatMap(([stage, , count]) => Array.from({ length: count }, (_, b) => `${stage}_block${b + 1}`))],
  variant: () => '',
};

// VGG16 convolutional base (include_top=False) built layer by layer with Keras's exact layer names and shapes,
// so Keras HDF5 weights map onto it by name and the saved TF.js model reads like keras.applications.VGG16.
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../../errors.js';
import type { BackboneDef, BackboneOptions } from './types.js';
import { rejectAlpha } from './keras-layers.js';

/** Conv blocks of VGG16: filters per block and convs per block (Keras vgg16.py). */
export const VGG16_BLOCKS: ReadonlyArray<{ filters: number; convs: number }> = [
  { filters: 64, convs: 2 },
  { filters: 128, convs: 2 },
  { filters: 256, convs: 3 },
  { filters: 512, convs: 3 },
  { filters: 512, convs: 3 },
];

/** Parameters of the no-top VGG16 base; independent of the input size. */
export const VGG16_NOTOP_PARAMS = 14_714_688;
export const VGG16_INPUT_NAME = 'input_1';

/** Keras's WEIGHTS_PATH_NO_TOP for VGG16 and the file_hash keras.utils.get_file checks. */
export const VGG16_NOTOP_WEIGHTS = {
  fileName: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  md5: '6d6bbae143d832006294945121d1f1fc',
  bytes: 58_889_256,
} as const;

export function assertVggImageSize(size: number): void {
  if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) {
    throw new MlctlError('OPTION_INVALID', [`--image-size ${size} is not usable for VGG16: it must be at least 32 and a multiple of 32 (five 2x2 poolings), e.g. 32, 64, 224`]);
  }
}

/** Names of the conv layers in model order: block1_conv1 … block5_conv3. */
export function vggConvLayerNames(): string[] {
  return VGG16_BLOCKS.flatMap((_, i) => blockLayerNames(i + 1));
}

/** Output shape of the base for an input size: [size/32, size/32, 512]. */
export function vggFeatureShape(size: number): [number, number, number] {
  return [size / 32, size / 32, 512];
}

export interface Vgg16Options {
  imageSize: number;
  /** Seed for the (Keras-default glorot-uniform) kernel initialisation used by --weights none. */
  seed?: number;
}

/** Build the VGG16 base as a functional model: input_1 → block1_conv1 … block5_pool. */
export function buildVgg16(opts: Vgg16Options): tf.LayersModel {
  assertVggImageSize(opts.imageSize);
  const seed = opts.seed ?? 42;
  const input = tf.input({ shape: [opts.imageSize, opts.imageSize, 3], name: VGG16_INPUT_NAME });
  let x: tf.SymbolicTensor = input;
  let k = 0;
  VGG16_BLOCKS.forEach((block, b) => {
    for (let c = 0; c < block.convs; c++) {
      x = tf.layers
        .conv2d({
          name: `block${b + 1}_conv${c + 1}`,
          filters: block.filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k++ }),
          biasInitializer: 'zeros',
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
  });
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

/** Layer names of conv block `block` (1-based), for freezing/unfreezing. */
export function blockLayerNames(block: number): string[] {
  const b = VGG16_BLOCKS[block - 1];
  if (!b) throw new Error(`VGG16 has no block ${block}`);
  return Array.from({ length: b.convs }, (_, j) => `block${block}_conv${j + 1}`);
}

export const vgg16: BackboneDef = {
  id: 'vgg16',
  summary: 'VGG16 (Keras default here): 14.7M parameters, 15.5 GMAC per 224 image; caffe preprocessing',
  preprocessing: 'caffe',
  inputName: VGG16_INPUT_NAME,
  checkOptions: (o: BackboneOptions) => {
    assertVggImageSize(o.imageSize);
    rejectAlpha('vgg16', o);
  },
  featureShape: (o) => vggFeatureShape(o.imageSize),
  build: (o) => buildVgg16(o),
  imagenetWeights: () => ({ ...VGG16_NOTOP_WEIGHTS }),
  blocks: () => VGG16_BLOCKS.map((_, i) => blockLayerNames(i + 1)),
  blockNames: () => VGG16_BLOCKS.map((_, i) => `block${i + 1}`),
  variant: () => '',
};

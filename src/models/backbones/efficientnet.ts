// EfficientNetB0 no-top base (keras.applications.EfficientNetB0, include_top=False) with Keras's layer names: the
// in-graph preprocessing (Rescaling 1/255, Normalization, and the ImageNet-weights stddev correction Rescaling), the
// swish stem, 16 MBConv blocks with squeeze-and-excitation and residual adds, and the top 1x1 conv.
import * as tf from '@tensorflow/tfjs';
import type { BackboneDef, BackboneOptions } from './types.js';
import type { H5Layer, KerasWeightsAdapter } from '../hdf5.js';
import { apply, assertImageSize, batchNorm, correctPad, halved, rejectAlpha, seeds, type Sym } from './keras-layers.js';

export const EFFICIENTNET_INPUT_NAME = 'input_1';

/** Keras's no-top file and its WEIGHTS_HASHES entry (efficientnet.py). */
export const EFFICIENTNET_B0_NOTOP_WEIGHTS = {
  fileName: 'efficientnetb0_notop.h5',
  url: 'https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5',
  md5: '50bc09e76180e00e4465e1a485ddc09d',
} as const;

/** efficientnet.IMAGENET_STDDEV_RGB: Keras's Normalization stores these as variances, corrected by a second Rescaling. */
const IMAGENET_STDDEV_RGB = [0.229, 0.224, 0.225];

/** DEFAULT_BLOCKS_ARGS: kernel, repeats, filters in, filters out, expand ratio, stride (se_ratio 0.25, id_skip). */
const STAGES: ReadonlyArray<[number, number, number, number, number, number]> = [
  [3, 1, 32, 16, 1, 1],
  [3, 2, 16, 24, 6, 2],
  [5, 2, 24, 40, 6, 2],
  [3, 3, 40, 80, 6, 2],
  [5, 3, 80, 112, 6, 1],
  [5, 4, 112, 192, 6, 2],
  [3, 1, 192, 320, 6, 1],
];
const SE_RATIO = 0.25;
const DROP_CONNECT_RATE = 0.2;

/**
 * Keras's Normalization layer (axis -1) as the TF.js Rescaling it computes: (x - mean) / max(sqrt(variance), 1e-7)
 * = x * scale + offset per channel. It takes mean/variance/count from a Keras weights file (hdf5.ts adapters) and
 * saves as a stock Rescaling, so the exported TF.js model needs no custom class.
 */
const RescalingLayer = Object.getPrototypeOf(tf.layers.rescaling({ scale: 1 })).constructor as new (args: { name: string; scale: number | number[]; offset?: number | number[] }) => tf.layers.Layer;

export class KerasNormalization extends RescalingLayer implements KerasWeightsAdapter {
  static readonly className = 'Rescaling';
  readonly kerasWeightNames = ['mean', 'variance', 'count'];

  constructor(name: string, channels: number) {
    super({ name, scale: new Array<number>(channels).fill(1), offset: new Array<number>(channels).fill(0) });
  }

  setKerasWeights(weights: H5Layer['weights']): void {
    const [mean, variance] = weights.map((w) => w.values);
    const channels = (this.getConfig().scale as number[]).length;
    if (!mean || !variance || mean.length !== channels || variance.length !== channels) {
      throw new Error(`${this.name}: expected mean and variance of ${channels} channels, got ${mean?.length ?? 0} and ${variance?.length ?? 0}`);
    }
    const sd = Array.from(variance, (v) => Math.max(Math.sqrt(v), 1e-7));
    const self = this as unknown as { scale: number[]; offset: number[] };
    self.scale = sd.map((s) => 1 / s);
    self.offset = Array.from(mean, (m, i) => -m / sd[i]!);
  }
}

function checkOptions(opts: BackboneOptions): void {
  assertImageSize('EfficientNetB0', opts.imageSize);
  rejectAlpha('efficientnet_b0', opts);
}

interface BlockArgs {
  name: string;
  kernel: number;
  filtersIn: number;
  filtersOut: number;
  expand: number;
  stride: number;
  dropRate: number;
}

/** The 16 blocks of B0 (width and depth coefficients 1.0) with their names block1a … block7a. */
function blockArgs(): BlockArgs[] {
  const out: BlockArgs[] = [];
  const total = STAGES.reduce((n, s) => n + s[1], 0);
  STAGES.forEach(([kernel, repeats, fin, fout, expand, stride], i) => {
    for (let j = 0; j < repeats; j++) {
      out.push({ name: `block${i + 1}${String.fromCharCode(97 + j)}_`, kernel, filtersIn: j ? fout : fin, filtersOut: fout, expand, stride: j ? 1 : stride, dropRate: (DROP_CONNECT_RATE * out.length) / total });
    }
  });
  return out;
}

export function buildEfficientNetB0(opts: BackboneOptions): tf.LayersModel {
  checkOptions(opts);
  const next = seeds(opts.seed);
  // CONV_KERNEL_INITIALIZER: VarianceScaling(2.0, fan_out, truncated normal).
  const convInit = () => tf.initializers.varianceScaling({ scale: 2.0, mode: 'fanOut', distribution: 'truncatedNormal', seed: next() });
  const conv = (name: string, filters: number, kernelSize: number, extra: { strides?: number; padding?: 'same' | 'valid'; useBias?: boolean; activation?: string } = {}) =>
    tf.layers.conv2d({ name, filters, kernelSize, strides: extra.strides ?? 1, padding: extra.padding ?? 'same', useBias: extra.useBias ?? false, activation: extra.activation as 'swish' | undefined, kernelInitializer: convInit() });
  const input = tf.input({ shape: [opts.imageSize, opts.imageSize, 3], name: EFFICIENTNET_INPUT_NAME });
  let x: Sym = apply(tf.layers.rescaling({ name: 'rescaling', scale: 1 / 255 }), input);
  x = apply(new KerasNormalization('normalization', 3), x);
  x = apply(tf.layers.rescaling({ name: 'rescaling_1', scale: IMAGENET_STDDEV_RGB.map((s) => 1 / Math.sqrt(s)) as unknown as number }), x);
  x = apply(tf.layers.zeroPadding2d({ name: 'stem_conv_pad', padding: correctPad(x, 3) }), x);
  x = apply(conv('stem_conv', 32, 3, { strides: 2, padding: 'valid' }), x);
  x = apply(batchNorm('stem_bn'), x);
  x = apply(tf.layers.activation({ name: 'stem_activation', activation: 'swish' }), x);
  for (const b of blockArgs()) x = mbConv(x, b, conv, next);
  x = apply(conv('top_conv', 1280, 1), x);
  x = apply(batchNorm('top_bn'), x);
  x = apply(tf.layers.activation({ name: 'top_activation', activation: 'swish' }), x);
  return tf.model({ inputs: input, outputs: x, name: 'efficientnetb0' });
}

type ConvFactory = (name: string, filters: number, kernelSize: number, extra?: { strides?: number; padding?: 'same' | 'valid'; useBias?: boolean; activation?: string }) => tf.layers.Layer;

/** efficientnet.block: expand → depthwise → squeeze-and-excitation → project (+ drop-connect and residual add). */
function mbConv(inputs: Sym, b: BlockArgs, conv: ConvFactory, next: () => number): Sym {
  const n = b.name;
  const filters = b.filtersIn * b.expand;
  let x = inputs;
  if (b.expand !== 1) {
    x = apply(conv(`${n}expand_conv`, filters, 1), x);
    x = apply(batchNorm(`${n}expand_bn`), x);
    x = apply(tf.layers.activation({ name: `${n}expand_activation`, activation: 'swish' }), x);
  }
  if (b.stride === 2) x = apply(tf.layers.zeroPadding2d({ name: `${n}dwconv_pad`, padding: correctPad(x, b.kernel) }), x);
  x = apply(
    tf.layers.depthwiseConv2d({ name: `${n}dwconv`, kernelSize: b.kernel, strides: b.stride, padding: b.stride === 2 ? 'valid' : 'same', useBias: false, depthwiseInitializer: tf.initializers.varianceScaling({ scale: 2.0, mode: 'fanOut', distribution: 'truncatedNormal', seed: next() }) }),
    x,
  );
  x = apply(batchNorm(`${n}bn`), x);
  x = apply(tf.layers.activation({ name: `${n}activation`, activation: 'swish' }), x);
  const filtersSe = Math.max(1, Math.trunc(b.filtersIn * SE_RATIO));
  let se = apply(tf.layers.globalAveragePooling2d({ name: `${n}se_squeeze` }), x);
  se = apply(tf.layers.reshape({ name: `${n}se_reshape`, targetShape: [1, 1, filters] }), se);
  se = apply(conv(`${n}se_reduce`, filtersSe, 1, { useBias: true, activation: 'swish' }), se);
  se = apply(conv(`${n}se_expand`, filters, 1, { useBias: true, activation: 'sigmoid' }), se);
  x = apply(tf.layers.multiply({ name: `${n}se_excite` }), [x, se]);
  x = apply(conv(`${n}project_conv`, b.filtersOut, 1), x);
  x = apply(batchNorm(`${n}project_bn`), x);
  if (b.stride === 1 && b.filtersIn === b.filtersOut) {
    if (b.dropRate > 0) x = apply(tf.layers.dropout({ name: `${n}drop`, rate: b.dropRate, noiseShape: [null, 1, 1, 1] as unknown as number[] }), x);
    x = apply(tf.layers.add({ name: `${n}add` }), [x, inputs]);
  }
  return x;
}

/** Fine-tuning units: the stem, blocks 1a … 7a, then the top conv. */
function blocks(): string[][] {
  const units: string[][] = [['stem_conv', 'stem_bn']];
  for (const b of blockArgs()) {
    const n = b.name;
    const expand = b.expand !== 1 ? [`${n}expand_conv`, `${n}expand_bn`] : [];
    units.push([...expand, `${n}dwconv`, `${n}bn`, `${n}se_reduce`, `${n}se_expand`, `${n}project_conv`, `${n}project_bn`]);
  }
  units.push(['top_conv', 'top_bn']);
  return units;
}

export const efficientnetB0: BackboneDef = {
  id: 'efficientnet_b0',
  summary: 'EfficientNetB0: 4.0M parameters, 0.4 GMAC per 224 image; swish + squeeze-and-excitation; preprocessing inside the graph (raw 0..255 pixels)',
  preprocessing: 'raw',
  inputName: EFFICIENTNET_INPUT_NAME,
  checkOptions,
  featureShape: (o) => [halved(o.imageSize, 5), halved(o.imageSize, 5), 1280],
  build: buildEfficientNetB0,
  imagenetWeights: (o) => {
    checkOptions(o);
    return { ...EFFICIENTNET_B0_NOTOP_WEIGHTS };
  },
  blocks,
  blockNames: () => ['stem', ...blockArgs().map((b) => b.name.slice(0, -1)), 'top'],
  variant: () => '',
};

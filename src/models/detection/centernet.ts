// The detection head: CenterNet, "Objects as Points" (Zhou, Wang, Krähenbühl 2019; github.com/xingyizhou/CenterNet).
// On the frozen backbone's stride-32 feature map: a 1x1 neck, optional ×2 upsampling steps (nearest + 3x3 conv, like
// the paper's upsampling stages, to stride 16 or 8), then three heads of 3x3 conv + ReLU + 1x1 conv: a per-class
// centre heatmap (sigmoid, bias −2.19 as the reference code initialises it), the box size (w, h) and the sub-cell
// offset of the centre, both in output-grid units. The three are concatenated into one [h, w, classes + 4] output.
import * as tf from '@tensorflow/tfjs';

export interface CenterNetSpec {
  classes: number;
  /** ×2 upsampling steps on the stride-32 backbone output: 0 (stride 32), 1 (stride 16), 2 (stride 8). */
  upsample: number;
  /** Channels of the neck, the upsampling convs and each head's 3x3 conv. */
  channels: number;
}

export const BACKBONE_STRIDE = 32;

/** The reference code's heatmap bias: sigmoid(−2.19) ≈ 0.1, so training starts from few confident centres. */
export const HEATMAP_PRIOR_BIAS = -2.19;

export const CENTERNET_LAYERS = {
  neck: 'det_neck',
  up: (i: number) => `det_up${i + 1}`,
  upConv: (i: number) => `det_up${i + 1}_conv`,
  heatmapConv: 'det_heatmap_conv',
  heatmap: 'det_heatmap',
  sizeConv: 'det_size_conv',
  size: 'det_size',
  offsetConv: 'det_offset_conv',
  offset: 'det_offset',
  output: 'detections',
} as const;

/** A layer of the head (every one is named det_… or is the output), as opposed to the backbone's. */
export const isCenterNetLayer = (name: string) => name.startsWith('det_') || name === CENTERNET_LAYERS.output;

export const outputStride = (spec: Pick<CenterNetSpec, 'upsample'>) => BACKBONE_STRIDE / 2 ** spec.upsample;

/** Output grid [h, w] for the backbone's feature map [h, w, c]: each upsampling step doubles it. */
export function outputGrid(featureShape: readonly number[], spec: Pick<CenterNetSpec, 'upsample'>): [number, number] {
  return [featureShape[0]! * 2 ** spec.upsample, featureShape[1]! * 2 ** spec.upsample];
}

/** Channels of the one output: heatmap (one per class), then size (w, h), then offset (dx, dy). */
export const outputChannels = (spec: Pick<CenterNetSpec, 'classes'>) => spec.classes + 4;

function conv(name: string, filters: number, kernelSize: number, seed: number, opts: { activation?: 'relu' | 'sigmoid' | 'linear'; bias?: number } = {}) {
  return tf.layers.conv2d({
    name,
    filters,
    kernelSize,
    padding: 'same',
    activation: opts.activation ?? 'relu',
    kernelInitializer: tf.initializers.heNormal({ seed }),
    biasInitializer: opts.bias !== undefined ? tf.initializers.constant({ value: opts.bias }) : 'zeros',
  });
}

/** Apply the head's layers to a symbolic feature map (the backbone's output). */
export function applyCenterNet(features: tf.SymbolicTensor, spec: CenterNetSpec, seed = 1): tf.SymbolicTensor {
  const L = CENTERNET_LAYERS;
  let x = conv(L.neck, spec.channels, 1, seed).apply(features) as tf.SymbolicTensor;
  for (let i = 0; i < spec.upsample; i++) {
    x = tf.layers.upSampling2d({ name: L.up(i), size: [2, 2] }).apply(x) as tf.SymbolicTensor;
    x = conv(L.upConv(i), spec.channels, 3, seed + 10 + i).apply(x) as tf.SymbolicTensor;
  }
  const head = (convName: string, outName: string, filters: number, s: number, opts: { activation?: 'sigmoid' | 'linear'; bias?: number }) =>
    conv(outName, filters, 1, s + 1, { activation: opts.activation ?? 'linear', ...(opts.bias !== undefined ? { bias: opts.bias } : {}) }).apply(conv(convName, spec.channels, 3, s).apply(x)) as tf.SymbolicTensor;
  const heatmap = head(L.heatmapConv, L.heatmap, spec.classes, seed + 20, { activation: 'sigmoid', bias: HEATMAP_PRIOR_BIAS });
  const size = head(L.sizeConv, L.size, 2, seed + 30, {});
  const offset = head(L.offsetConv, L.offset, 2, seed + 40, {});
  return tf.layers.concatenate({ name: L.output, axis: -1 }).apply([heatmap, size, offset]) as tf.SymbolicTensor;
}

/** The head alone, on feature maps of `featureShape` [h, w, c] (what trains on the cached backbone features). */
export function buildCenterNetHead(featureShape: readonly number[], spec: CenterNetSpec, seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [...featureShape], name: 'features' });
  return tf.model({ inputs: input, outputs: applyCenterNet(input, spec, seed), name: 'centernet_head' });
}

/** Backbone + head as one model (what the package stores); head weights copied from a trained head when given. */
export function buildDetectionModel(base: tf.LayersModel, spec: CenterNetSpec, head?: tf.LayersModel): tf.LayersModel {
  const model = tf.model({ inputs: base.inputs, outputs: applyCenterNet(base.outputs[0]!, spec), name: 'centernet_detector' });
  if (head) for (const layer of head.layers) if (layer.weights.length) model.getLayer(layer.name).setWeights(layer.getWeights());
  return model;
}

// Per-layer conversion of TF.js layers to ONNX nodes. Spatial (rank-4) tensors are kept NCHW inside the graph so
// Conv/Pool run in ONNX's native layout; a value is transposed only where a layer needs TF.js's NHWC element order.
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../errors.js';
import type { GraphBuilder } from './builders.js';

export type Layout = 'NCHW' | 'TF';

/** A converted tensor: its ONNX name, its layout in the graph and its TF.js shape (batch first, null = dynamic). */
export interface Value {
  name: string;
  layout: Layout;
  shape: Array<number | null>;
}

export interface LayerContext {
  g: GraphBuilder;
  /** Prefix for names made for this layer (nested models add their own name). */
  base: string;
  /** The value in the requested layout (rank-4 only; other ranks are always TF layout). Memoised per value. */
  toLayout(v: Value, layout: Layout): Value;
}

type Config = Record<string, unknown>;
type LayerConverter = (layer: tf.layers.Layer, cfg: Config, inputs: Value[], outShapes: Array<Array<number | null>>, ctx: LayerContext) => Value[];

const NHWC_TO_NCHW_AXIS = [0, 3, 1, 2];
/** Position of TF (NHWC) axis a in an NCHW tensor. */
const TF_AXIS_IN_NCHW = [0, 2, 3, 1];

function fail(layer: tf.layers.Layer, hint: string): never {
  throw new MlctlError('UNSUPPORTED_LAYER', [layer.name, layer.getClassName(), hint]);
}

function pair(v: unknown, dflt: number): [number, number] {
  if (v === undefined || v === null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0] ?? dflt, a[1] ?? a[0] ?? dflt];
}

/** A layer weight by its Keras name (kernel, bias, gamma, ...), or undefined when the layer has none. */
function weight(layer: tf.layers.Layer, name: string): tf.Tensor | undefined {
  const v = layer.weights.find((w) => {
    const full = (w as unknown as { originalName?: string }).originalName ?? w.name;
    return full.split('/').pop()!.replace(/_\d+$/, '') === name;
  });
  return v?.read();
}

function requireWeight(layer: tf.layers.Layer, name: string): tf.Tensor {
  return weight(layer, name) ?? fail(layer, `it has no "${name}" weight`);
}

/** A weight's values, optionally permuted (rank 4); a plain loop is ~50x faster than tf.transpose on the cpu backend. */
function floats(t: tf.Tensor, perm?: number[]): Float32Array {
  const src = t.dataSync() as Float32Array;
  if (!perm) return src.slice();
  const shape = t.shape;
  if (shape.length !== 4 || perm.length !== 4) throw new Error(`cannot permute a rank-${shape.length} weight`);
  const strides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const [d0, d1, d2, d3] = perm.map((p) => shape[p]!) as [number, number, number, number];
  const [s0, s1, s2, s3] = perm.map((p) => strides[p]!) as [number, number, number, number];
  const out = new Float32Array(src.length);
  let o = 0;
  for (let a = 0; a < d0; a++)
    for (let b = 0; b < d1; b++)
      for (let c = 0; c < d2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++) out[o++] = src[base + d * s3]!;
      }
  return out;
}

function checkChannelsLast(layer: tf.layers.Layer, cfg: Config): void {
  const df = cfg.dataFormat as string | undefined;
  if (df && df !== 'channelsLast') fail(layer, `dataFormat ${df} is not supported; build the model channelsLast (the TF.js default)`);
}

/** TF 'same' padding for one spatial dim: output = ceil(in / stride), extra pad at the end (TF's asymmetric rule). */
function samePads(inSize: number, k: number, stride: number, dilation: number): [number, number] {
  const effK = (k - 1) * dilation + 1;
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + effK - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** ONNX pads [top, left, bottom, right] for a conv/pool, or auto_pad when the spatial size is unknown. */
function padAttrs(layer: tf.layers.Layer, padding: string, inShape: Array<number | null>, k: [number, number], s: [number, number], d: [number, number]): { pads?: number[]; auto_pad?: string } {
  if (padding === 'valid') return { pads: [0, 0, 0, 0] };
  if (padding !== 'same') fail(layer, `padding "${padding}" is not supported (use same or valid)`);
  const [h, w] = [inShape[1], inShape[2]];
  if (h == null || w == null) return { auto_pad: 'SAME_UPPER' };
  const [t, b] = samePads(h, k[0], s[0], d[0]);
  const [l, r] = samePads(w, k[1], s[1], d[1]);
  return { pads: [t, l, b, r] };
}

const ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'logSoftmax', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid', 'swish'];

/** Apply a Keras activation by name; softmax runs over the TF channel axis whatever the layout. */
export function applyActivation(layer: tf.layers.Layer, act: string | undefined, v: Value, ctx: LayerContext, outName?: string): Value {
  const a = act ?? 'linear';
  if (a === 'linear') return v;
  const { g } = ctx;
  const out = outName ?? g.unique(`${ctx.base}/${a}`);
  const lastAxis = v.layout === 'NCHW' ? 1 : -1;
  switch (a) {
    case 'relu': g.node('Relu', [v.name], [out]); break;
    case 'relu6': g.node('Clip', [v.name, g.floatConst('zero', [], [0]), g.floatConst('six', [], [6])], [out]); break;
    case 'sigmoid': g.node('Sigmoid', [v.name], [out]); break;
    case 'tanh': g.node('Tanh', [v.name], [out]); break;
    case 'softmax': g.node('Softmax', [v.name], [out], { axis: lastAxis }); break;
    case 'logSoftmax': g.node('LogSoftmax', [v.name], [out], { axis: lastAxis }); break;
    case 'elu': g.node('Elu', [v.name], [out], { alpha: { float: 1 } }); break;
    case 'selu': g.node('Selu', [v.name], [out]); break;
    case 'softplus': g.node('Softplus', [v.name], [out]); break;
    case 'softsign': g.node('Softsign', [v.name], [out]); break;
    case 'hardSigmoid': g.node('HardSigmoid', [v.name], [out], { alpha: { float: 0.2 }, beta: { float: 0.5 } }); break;
    case 'swish': {
      const sig = g.node('Sigmoid', [v.name], [g.unique(`${ctx.base}/swish_sigmoid`)]);
      g.node('Mul', [v.name, sig], [out]);
      break;
    }
    default:
      fail(layer, `activation "${a}" is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  }
  return { ...v, name: out };
}

function conv2d(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const { g, base } = ctx;
  const x = ctx.toLayout(input!, 'NCHW');
  const k = pair(cfg.kernelSize, 1);
  const s = pair(cfg.strides, 1);
  const d = pair(cfg.dilationRate, 1);
  const kernel = requireWeight(layer, 'kernel'); // [kh, kw, in, out]
  const w = g.initializer(`${base}/kernel`, (n) => ({ name: n, dims: [kernel.shape[3]!, kernel.shape[2]!, k[0], k[1]], dataType: 1, rawData: u8(floats(kernel, [3, 2, 0, 1])) }));
  const bias = cfg.useBias === false ? undefined : weight(layer, 'bias');
  const inputs = [x.name, w];
  if (bias) inputs.push(g.initializer(`${base}/bias`, (n) => ({ name: n, dims: [bias.shape[0]!], dataType: 1, rawData: u8(floats(bias)) })));
  const y = g.node('Conv', inputs, [g.unique(`${base}/conv`)], { kernel_shape: k, strides: s, dilations: d, group: 1, ...padAttrs(layer, cfg.padding as string, input!.shape, k, s, d) });
  return [applyActivation(layer, cfg.activation as string, { name: y, layout: 'NCHW', shape: outShape! }, ctx)];
}

function depthwiseConv(layer: tf.layers.Layer, cfg: Config, x: Value, ctx: LayerContext, opts: { bias: boolean; outShape: Array<number | null>; activation?: string }): Value {
  const { g, base } = ctx;
  const k = pair(cfg.kernelSize, 1);
  const s = pair(cfg.strides, 1);
  const d = pair(cfg.dilationRate, 1);
  const kernel = requireWeight(layer, 'depthwise_kernel'); // [kh, kw, in, mult]
  const [cin, mult] = [kernel.shape[2]!, kernel.shape[3]!];
  // Output channel c*mult+m of TF's depthwise conv is ONNX group c, filter m: weight [in*mult, 1, kh, kw].
  const w = g.initializer(`${base}/depthwise_kernel`, (n) => ({ name: n, dims: [cin * mult, 1, k[0], k[1]], dataType: 1, rawData: u8(floats(kernel, [2, 3, 0, 1])) }));
  const inputs = [ctx.toLayout(x, 'NCHW').name, w];
  const bias = opts.bias && cfg.useBias !== false ? weight(layer, 'bias') : undefined;
  if (bias) inputs.push(g.initializer(`${base}/bias`, (n) => ({ name: n, dims: [bias.shape[0]!], dataType: 1, rawData: u8(floats(bias)) })));
  const y = g.node('Conv', inputs, [g.unique(`${base}/depthwise`)], { kernel_shape: k, strides: s, dilations: d, group: cin, ...padAttrs(layer, cfg.padding as string, x.shape, k, s, d) });
  return applyActivation(layer, opts.activation, { name: y, layout: 'NCHW', shape: opts.outShape }, ctx);
}

function depthwiseConv2d(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  return [depthwiseConv(layer, cfg, input!, ctx, { bias: true, outShape: outShape!, activation: cfg.activation as string })];
}

function separableConv2d(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const { g, base } = ctx;
  const dw = depthwiseConv(layer, cfg, input!, ctx, { bias: false, outShape: outShape! });
  const pk = requireWeight(layer, 'pointwise_kernel'); // [1, 1, in*mult, filters]
  const w = g.initializer(`${base}/pointwise_kernel`, (n) => ({ name: n, dims: [pk.shape[3]!, pk.shape[2]!, 1, 1], dataType: 1, rawData: u8(floats(pk, [3, 2, 0, 1])) }));
  const inputs = [dw.name, w];
  const bias = cfg.useBias === false ? undefined : weight(layer, 'bias');
  if (bias) inputs.push(g.initializer(`${base}/bias`, (n) => ({ name: n, dims: [bias.shape[0]!], dataType: 1, rawData: u8(floats(bias)) })));
  const y = g.node('Conv', inputs, [g.unique(`${base}/pointwise`)], { kernel_shape: [1, 1], strides: [1, 1], dilations: [1, 1], group: 1, pads: [0, 0, 0, 0] });
  return [applyActivation(layer, cfg.activation as string, { name: y, layout: 'NCHW', shape: outShape! }, ctx)];
}

function dense(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const { g, base } = ctx;
  const x = ctx.toLayout(input!, 'TF'); // Dense contracts TF.js's last axis
  const kernel = requireWeight(layer, 'kernel'); // [in, units]
  const w = g.initializer(`${base}/kernel`, (n) => ({ name: n, dims: [...kernel.shape], dataType: 1, rawData: u8(floats(kernel)) }));
  let y = g.node('MatMul', [x.name, w], [g.unique(`${base}/matmul`)]);
  const bias = cfg.useBias === false ? undefined : weight(layer, 'bias');
  if (bias) {
    const b = g.initializer(`${base}/bias`, (n) => ({ name: n, dims: [bias.shape[0]!], dataType: 1, rawData: u8(floats(bias)) }));
    y = g.node('Add', [y, b], [g.unique(`${base}/add`)]);
  }
  return [applyActivation(layer, cfg.activation as string, { name: y, layout: 'TF', shape: outShape! }, ctx)];
}

function pool(op: 'MaxPool' | 'AveragePool'): LayerConverter {
  return (layer, cfg, [input], [outShape], ctx) => {
    checkChannelsLast(layer, cfg);
    const x = ctx.toLayout(input!, 'NCHW');
    const k = pair(cfg.poolSize, 2);
    const s = cfg.strides == null ? k : pair(cfg.strides, 1);
    // TF averages over valid (unpadded) cells only: count_include_pad=0, ONNX's default.
    const attrs = { kernel_shape: k, strides: s, ...padAttrs(layer, cfg.padding as string, input!.shape, k, s, [1, 1]) };
    const y = ctx.g.node(op, [x.name], [ctx.g.unique(`${ctx.base}/${op === 'MaxPool' ? 'maxpool' : 'avgpool'}`)], attrs);
    return [{ name: y, layout: 'NCHW', shape: outShape! }];
  };
}

function globalPool(op: 'GlobalMaxPool' | 'GlobalAveragePool'): LayerConverter {
  return (layer, cfg, [input], [outShape], ctx) => {
    checkChannelsLast(layer, cfg);
    const x = ctx.toLayout(input!, 'NCHW');
    const p = ctx.g.node(op, [x.name], [ctx.g.unique(`${ctx.base}/${op}`)]);
    const y = ctx.g.node('Flatten', [p], [ctx.g.unique(`${ctx.base}/flatten`)], { axis: 1 });
    return [{ name: y, layout: 'TF', shape: outShape! }];
  };
}

function flatten(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const x = ctx.toLayout(input!, 'TF'); // keep TF.js's NHWC element order so the next Dense's weights line up
  if (x.shape.length === 2) return [x];
  const y = ctx.g.node('Flatten', [x.name], [ctx.g.unique(`${ctx.base}/flatten`)], { axis: 1 });
  return [{ name: y, layout: 'TF', shape: outShape! }];
}

function reshape(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const x = ctx.toLayout(input!, 'TF');
  const target = (cfg.targetShape as Array<number | null>).map((d) => d ?? -1); // TF.js stores -1 as null
  // 0 copies the (dynamic) batch dimension; the target may itself contain one -1.
  const shape = ctx.g.int64Const(`${ctx.base}/shape`, [target.length + 1], [0, ...target]);
  const y = ctx.g.node('Reshape', [x.name, shape], [ctx.g.unique(`${ctx.base}/reshape`)]);
  return [{ name: y, layout: 'TF', shape: outShape! }];
}

const identity: LayerConverter = (_layer, _cfg, inputs) => [inputs[0]!];

function batchNorm(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const { g, base } = ctx;
  const rank = input!.shape.length;
  const axis = Array.isArray(cfg.axis) ? (cfg.axis as number[]) : [(cfg.axis as number | undefined) ?? -1];
  if (axis.length !== 1 || (axis[0]! + rank) % rank !== rank - 1) fail(layer, `only normalisation over the last (channel) axis is supported, got axis ${JSON.stringify(cfg.axis)}`);
  const mean = floats(requireWeight(layer, 'moving_mean'));
  const variance = floats(requireWeight(layer, 'moving_variance'));
  const c = mean.length;
  const gamma = weight(layer, 'gamma');
  const beta = weight(layer, 'beta');
  const scale = gamma && cfg.scale !== false ? floats(gamma) : new Float32Array(c).fill(1);
  const shift = beta && cfg.center !== false ? floats(beta) : new Float32Array(c);
  const eps = (cfg.epsilon as number | undefined) ?? 1e-3;
  if (rank === 4 || rank === 2) {
    // Channels sit on axis 1 of NCHW (rank 4) and of [N, C] (rank 2): ONNX's BatchNormalization applies directly.
    const x = rank === 4 ? ctx.toLayout(input!, 'NCHW') : input!;
    const ins = [x.name, g.floatConst(`${base}/gamma`, [c], scale), g.floatConst(`${base}/beta`, [c], shift), g.floatConst(`${base}/moving_mean`, [c], mean), g.floatConst(`${base}/moving_variance`, [c], variance)];
    const y = g.node('BatchNormalization', ins, [g.unique(`${base}/batchnorm`)], { epsilon: { float: eps } });
    return [{ name: y, layout: x.layout, shape: outShape! }];
  }
  // Other ranks: fold into y = x * a + b over the last axis.
  const x = ctx.toLayout(input!, 'TF');
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    a[i] = scale[i]! / Math.sqrt(variance[i]! + eps);
    b[i] = shift[i]! - mean[i]! * a[i]!;
  }
  const m = g.node('Mul', [x.name, g.floatConst(`${base}/scale`, [c], a)], [g.unique(`${base}/mul`)]);
  const y = g.node('Add', [m, g.floatConst(`${base}/offset`, [c], b)], [g.unique(`${base}/add`)]);
  return [{ name: y, layout: 'TF', shape: outShape! }];
}

function activationLayer(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const v = applyActivation(layer, cfg.activation as string, input!, ctx);
  return [{ ...v, shape: outShape! }];
}

function reluLayer(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const max = cfg.maxValue as number | null | undefined;
  const { g } = ctx;
  const out = g.unique(`${ctx.base}/relu`);
  if (max == null) g.node('Relu', [input!.name], [out]);
  else g.node('Clip', [input!.name, g.floatConst('zero', [], [0]), g.floatConst(`${ctx.base}/max`, [], [max])], [out]);
  return [{ ...input!, name: out, shape: outShape! }];
}

function leakyRelu(_layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const out = ctx.g.node('LeakyRelu', [input!.name], [ctx.g.unique(`${ctx.base}/leakyrelu`)], { alpha: { float: (cfg.alpha as number | undefined) ?? 0.3 } });
  return [{ ...input!, name: out, shape: outShape! }];
}

function eluLayer(_layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const out = ctx.g.node('Elu', [input!.name], [ctx.g.unique(`${ctx.base}/elu`)], { alpha: { float: (cfg.alpha as number | undefined) ?? 1 } });
  return [{ ...input!, name: out, shape: outShape! }];
}

function softmaxLayer(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const rank = input!.shape.length;
  const axes = Array.isArray(cfg.axis) ? (cfg.axis as number[]) : [(cfg.axis as number | undefined) ?? -1];
  if (axes.length !== 1) fail(layer, 'softmax over several axes is not supported');
  const a = (axes[0]! + rank) % rank;
  const axis = input!.layout === 'NCHW' ? TF_AXIS_IN_NCHW[a]! : a;
  const out = ctx.g.node('Softmax', [input!.name], [ctx.g.unique(`${ctx.base}/softmax`)], { axis });
  return [{ ...input!, name: out, shape: outShape! }];
}

function zeroPadding(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const p = cfg.padding as number | number[] | number[][];
  const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p[0]) ? (p as number[][]) : [[p[0] as number, p[0] as number], [p[1] as number, p[1] as number]];
  const x = ctx.toLayout(input!, 'NCHW');
  const pads = ctx.g.int64Const(`${ctx.base}/pads`, [8], [0, 0, t!, l!, 0, 0, b!, r!]);
  const y = ctx.g.node('Pad', [x.name, pads], [ctx.g.unique(`${ctx.base}/pad`)], { mode: 'constant' });
  return [{ name: y, layout: 'NCHW', shape: outShape! }];
}

function cropping(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const [[t, b], [l, r]] = cfg.cropping as number[][];
  const [h, w] = [input!.shape[1], input!.shape[2]];
  if (h == null || w == null) fail(layer, 'cropping needs a static spatial size');
  const x = ctx.toLayout(input!, 'NCHW');
  const { g, base } = ctx;
  const y = g.node('Slice', [x.name, g.int64Const(`${base}/starts`, [2], [t!, l!]), g.int64Const(`${base}/ends`, [2], [h - b!, w - r!]), g.int64Const(`${base}/axes`, [2], [2, 3])], [g.unique(`${base}/crop`)]);
  return [{ name: y, layout: 'NCHW', shape: outShape! }];
}

/**
 * UpSampling2D as ONNX Resize: nearest copies each input pixel size[0] x size[1] times (TF.js reads source
 * floor(y / s): 'asymmetric' coordinates, 'floor' rounding); bilinear samples at y / s too (TF.js's resizeBilinear
 * without alignCorners or halfPixelCenters: 'asymmetric').
 */
function upSampling(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  checkChannelsLast(layer, cfg);
  const [sh, sw] = pair(cfg.size, 2);
  const interpolation = (cfg.interpolation as string | undefined) ?? 'nearest';
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') fail(layer, `interpolation ${interpolation} is not supported (nearest, bilinear)`);
  const x = ctx.toLayout(input!, 'NCHW');
  const { g, base } = ctx;
  const scales = g.floatConst(`${base}/scales`, [4], [1, 1, sh, sw]);
  const attrs = interpolation === 'nearest' ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } : { mode: 'linear', coordinate_transformation_mode: 'asymmetric' };
  const y = g.node('Resize', [x.name, '', scales], [g.unique(`${base}/resize`)], attrs);
  return [{ name: y, layout: 'NCHW', shape: outShape! }];
}

/** Elementwise merges: all inputs in one layout (NCHW for spatial tensors so conv chains stay untransposed). */
function merge(op: 'Add' | 'Mul' | 'Mean' | 'Max' | 'Min'): LayerConverter {
  return (layer, _cfg, inputs, [outShape], ctx) => {
    const layout: Layout = inputs.some((v) => v.layout === 'NCHW') ? 'NCHW' : 'TF';
    if (inputs.some((v) => v.shape.length !== inputs[0]!.shape.length)) fail(layer, 'inputs of different ranks are not supported');
    const xs = inputs.map((v) => ctx.toLayout(v, layout).name);
    const { g, base } = ctx;
    let y: string;
    if (op === 'Add' && xs.length > 2) y = g.node('Sum', xs, [g.unique(`${base}/sum`)]);
    else if (op === 'Add' || op === 'Mul') {
      y = xs[0]!;
      for (const other of xs.slice(1)) y = g.node(op, [y, other], [g.unique(`${base}/${op.toLowerCase()}`)]);
    } else y = g.node(op, xs, [g.unique(`${base}/${op.toLowerCase()}`)]);
    return [{ name: y, layout, shape: outShape! }];
  };
}

function concatenate(layer: tf.layers.Layer, cfg: Config, inputs: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const rank = inputs[0]!.shape.length;
  const a = (((cfg.axis as number | undefined) ?? -1) + rank) % rank;
  if (a === 0) fail(layer, 'concatenation over the batch axis is not supported');
  const layout: Layout = rank === 4 && inputs.some((v) => v.layout === 'NCHW') ? 'NCHW' : 'TF';
  const xs = inputs.map((v) => ctx.toLayout(v, layout).name);
  const axis = layout === 'NCHW' ? TF_AXIS_IN_NCHW[a]! : a;
  const y = ctx.g.node('Concat', xs, [ctx.g.unique(`${ctx.base}/concat`)], { axis });
  return [{ name: y, layout, shape: outShape! }];
}

function rescaling(layer: tf.layers.Layer, cfg: Config, [input]: Value[], [outShape]: Array<Array<number | null>>, ctx: LayerContext): Value[] {
  const { g, base } = ctx;
  const x = input!;
  const channels = x.shape[x.shape.length - 1];
  // Scalars, or per-channel vectors (Keras's Rescaling([...]) and EfficientNet's folded Normalization).
  const operand = (v: unknown, what: string): { dims: number[]; values: number[] } | undefined => {
    if (typeof v === 'number') return v === (what === 'scale' ? 1 : 0) ? undefined : { dims: [], values: [v] };
    if (!Array.isArray(v) || !v.every((e) => typeof e === 'number') || v.length !== channels) fail(layer, `${what} must be a number or one number per channel (${channels}), got ${JSON.stringify(v)}`);
    const values = v as number[];
    const neutral = what === 'scale' ? 1 : 0;
    if (values.every((e) => e === neutral)) return undefined;
    return { dims: x.layout === 'NCHW' ? [values.length, 1, 1] : [values.length], values };
  };
  const scale = operand(cfg.scale ?? 1, 'scale');
  const offset = operand(cfg.offset ?? 0, 'offset');
  let y = x.name;
  if (scale) y = g.node('Mul', [y, g.floatConst(`${base}/scale`, scale.dims, scale.values)], [g.unique(`${base}/mul`)]);
  if (offset) y = g.node('Add', [y, g.floatConst(`${base}/offset`, offset.dims, offset.values)], [g.unique(`${base}/add`)]);
  return [{ ...x, name: y, shape: outShape! }];
}

export const CONVERTERS: Record<string, LayerConverter> = {
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  Dense: dense,
  MaxPooling2D: pool('MaxPool'),
  AveragePooling2D: pool('AveragePool'),
  GlobalAveragePooling2D: globalPool('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPool('GlobalMaxPool'),
  Flatten: flatten,
  Reshape: reshape,
  Dropout: identity,
  SpatialDropout1D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  BatchNormalization: batchNorm,
  Activation: activationLayer,
  ReLU: reluLayer,
  LeakyReLU: leakyRelu,
  ELU: eluLayer,
  Softmax: softmaxLayer,
  ZeroPadding2D: zeroPadding,
  Cropping2D: cropping,
  Add: merge('Add'),
  Multiply: merge('Mul'),
  Average: merge('Mean'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  UpSampling2D: upSampling,
  Rescaling: rescaling,
};

export const SUPPORTED_LAYERS = ['InputLayer', ...Object.keys(CONVERTERS)].sort();

export { NHWC_TO_NCHW_AXIS };

function u8(f: Float32Array): Uint8Array {
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}

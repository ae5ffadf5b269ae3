// Gradient kernels the wasm backend lacks, bridged with its forward kernels (fine-tuning needs them):
// Conv2DBackpropFilter — the filter gradient is itself a convolution (REFERENCE.md): x as [ci, H, W, n] convolved
// with dy as a [h, w, n, co] filter, dilation = stride, gives [ci, kh, kw, co]; and DepthwiseConv2dNativeBackprop
// Filter/Input for MobileNetV2 and EfficientNet, as depthwise convolutions (per-channel versions of the same trick).
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../util/log.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** The forward conv's explicit padding (top, bottom, left, right) for TF's 'same'/'valid'/explicit pads. */
function explicitPads(pad: Pad, inHW: [number, number], outHW: [number, number], k: [number, number], s: [number, number]): [number, number, number, number] {
  if (pad === 'valid') return [0, 0, 0, 0];
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  if (pad === 'same') {
    const ph = Math.max((outHW[0] - 1) * s[0] + k[0] - inHW[0], 0);
    const pw = Math.max((outHW[1] - 1) * s[1] + k[1] - inHW[1], 0);
    return [Math.floor(ph / 2), ph - Math.floor(ph / 2), Math.floor(pw / 2), pw - Math.floor(pw / 2)];
  }
  const [, [t, b], [l, r]] = pad;
  return [t, b, l, r];
}

/** x padded as the forward conv saw it, cropped to the rows/columns it read (later ones only meet zeros in dy). */
function paddedInput(x: tf.Tensor4D, dy: tf.Tensor4D, k: [number, number], s: [number, number], pad: Pad): tf.Tensor4D {
  const [top, bottom, left, right] = explicitPads(pad, [x.shape[1], x.shape[2]], [dy.shape[1], dy.shape[2]], k, s);
  const needH = (dy.shape[1] - 1) * s[0] + k[0];
  const needW = (dy.shape[2] - 1) * s[1] + k[1];
  const xp = tf.pad(x, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]]);
  return tf.slice(xp, [0, 0, 0, 0], [-1, needH, needW, -1]);
}

/** dW of a 2-D convolution (NHWC, HWIO), computed with forward convolutions only. */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filterShape;
    const [sh, sw] = pair(strides);
    const xp = paddedInput(x, dy, [kh, kw], [sh, sw], pad);
    const xt = tf.transpose(xp, [3, 1, 2, 0]); // [ci, H', W', n]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, co]
    const g = tf.conv2d(xt as tf.Tensor4D, dyt as tf.Tensor4D, 1, 'valid', 'NHWC', [sh, sw]); // [ci, kh, kw, co]
    return tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * dW of a depthwise convolution (filter [kh, kw, c, m]), as one depthwise conv: x as [1, H, W, c·n] (each example's
 * channel its own channel) filtered by dy as [oh, ow, c·n, m] with dilation = stride gives [1, kh, kw, c·n·m]; summing
 * over the n examples leaves [kh, kw, c, m].
 */
export function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filterShape;
    const s = pair(strides);
    const n = x.shape[0];
    const xp = paddedInput(x, dy, [kh, kw], s, pad);
    const [, hp, wp] = xp.shape;
    const [, oh, ow] = dy.shape;
    const xs = tf.reshape(tf.transpose(xp, [1, 2, 3, 0]), [1, hp, wp, c * n]) as tf.Tensor4D; // channel c·n + i
    const f = tf.reshape(tf.transpose(tf.reshape(dy, [n, oh, ow, c, m]), [1, 2, 3, 0, 4]), [oh, ow, c * n, m]);
    const g = tf.depthwiseConv2d(xs, f as tf.Tensor4D, 1, 'valid', 'NHWC', s); // [1, kh, kw, c·n·m]
    return tf.sum(tf.reshape(g, [kh, kw, c, n, m]), 3) as tf.Tensor4D;
  });
}

/**
 * dx of a depthwise convolution: dy dilated by the stride, padded so the flipped filter's correlation lands on x's
 * rows, then a stride-1 depthwise conv per (channel, multiplier) summed over the multiplier.
 */
export function depthwiseInputGrad(inputShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, H, W, c] = inputShape;
    const [kh, kw, , m] = filter.shape;
    const [sh, sw] = pair(strides);
    const [, oh, ow] = dy.shape;
    const [top, , left] = explicitPads(pad, [H, W], [oh, ow], [kh, kw], [sh, sw]);
    // Dilate: dy[i] sits at row i·s of a (oh−1)·s+1 tall map, zeros between.
    let d: tf.Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      const z = tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, c * m]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
      d = tf.slice(tf.reshape(z, [n, oh * sh, ow * sw, c * m]) as tf.Tensor4D, [0, 0, 0, 0], [-1, (oh - 1) * sh + 1, (ow - 1) * sw + 1, -1]);
    }
    const [lh, lw] = [d.shape[1], d.shape[2]];
    const [pt, pl] = [kh - 1 - top, kw - 1 - left];
    const [pb, pr] = [H + kh - 1 - lh - pt, W + kw - 1 - lw - pl];
    let dp = tf.pad(d, [[0, 0], [Math.max(pt, 0), Math.max(pb, 0)], [Math.max(pl, 0), Math.max(pr, 0)], [0, 0]]);
    dp = tf.slice(dp, [0, Math.max(-pt, 0), Math.max(-pl, 0), 0], [-1, H + kh - 1, W + kw - 1, -1]);
    const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]);
    const g = tf.depthwiseConv2d(dp, flipped as tf.Tensor4D, 1, 'valid'); // [n, H, W, c·m]
    return tf.sum(tf.reshape(g, [n, H, W, c, m]), 4) as tf.Tensor4D;
  });
}

type Backend = { incRef(id: unknown): void };

/**
 * Run `compute` on the kernel's inputs as tensors and hand its result to the engine. Input handles take their own
 * reference first (tensors made from a TensorInfo do not), so disposing them never frees data the caller still
 * holds — e.g. dy, which the sibling input-gradient kernel reads next.
 */
function bridge(be: unknown, inputs: tf.TensorInfo[], compute: (...xs: tf.Tensor4D[]) => tf.Tensor): tf.TensorInfo {
  const backend = be as Backend;
  const xs = inputs.map((info) => {
    backend.incRef(info.dataId);
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D;
  });
  try {
    const out = compute(...xs);
    // Keep the result's storage alive past disposing our handle: the engine adopts it from the returned info.
    backend.incRef(out.dataId);
    const info: tf.TensorInfo = { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
    out.dispose();
    return info;
  } finally {
    tf.dispose(xs);
  }
}

function registerDepthwiseGrads(): void {
  type Attrs = { strides: number | [number, number]; pad: Pad; dilations?: number | [number, number] };
  const checkDilation = (name: string, a: Attrs) => {
    const d = pair(a.dilations ?? 1);
    if (d[0] !== 1 || d[1] !== 1) throw new Error(`${name} (mlctl wasm kernel): dilation ${d} is not supported`);
  };
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'DepthwiseConv2dNativeBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const a = attrs as unknown as Attrs & { filterShape: [number, number, number, number] };
        checkDilation('DepthwiseConv2dNativeBackpropFilter', a);
        const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        return bridge(be, [x, dy], (xt, dyt) => depthwiseFilterGrad(xt!, dyt!, a.filterShape, a.strides, a.pad));
      },
    });
  }
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropInput', 'wasm')) {
    tf.registerKernel({
      kernelName: 'DepthwiseConv2dNativeBackpropInput',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const a = attrs as unknown as Attrs & { inputShape: [number, number, number, number] };
        checkDilation('DepthwiseConv2dNativeBackpropInput', a);
        const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
        return bridge(be, [dy, filter], (dyt, ft) => depthwiseInputGrad(a.inputShape, dyt!, ft!, a.strides, a.pad));
      },
    });
  }
}

let installed = false;

/**
 * Register Conv2DBackpropFilter on wasm (once). Returns the one line saying how filter gradients run, for the log.
 * On other backends nothing changes (cpu and tensorflow have the kernel).
 */
export function ensureConvFilterGradient(logger?: Logger): string {
  const backend = tf.getBackend();
  if (backend !== 'wasm') return `conv filter gradients: ${backend} kernel`;
  const line = 'conv filter gradients: wasm has no Conv2DBackpropFilter or DepthwiseConv2dNativeBackprop{Filter,Input}; using mlctl\'s kernels built on wasm conv2d/depthwiseConv2d (REFERENCE.md conv trick)';
  registerDepthwiseGrads();
  if (!installed && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        const a = attrs as unknown as { strides: number | [number, number]; pad: Pad; dataFormat: string; filterShape: [number, number, number, number] };
        if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter (mlctl wasm kernel): only NHWC is supported, got ${a.dataFormat}`);
        return bridge(be, [x, dy], (xt, dyt) => conv2dFilterGrad(xt!, dyt!, a.filterShape, a.strides, a.pad));
      },
    });
    installed = true;
  }
  logger?.info(line);
  return line;
}

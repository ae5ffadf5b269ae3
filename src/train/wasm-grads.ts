// Gradient kernels for fine-tuning on the wasm backend, built on its fast (XNNPACK, SIMD) forward kernels:
// - the ones it lacks: Conv2DBackpropFilter — the filter gradient is itself a convolution: x as [ci, H, W, n]
//   convolved with dy as a [h, w, n, co] filter, dilation = stride, gives [ci, kh, kw, co]; and
//   DepthwiseConv2dNativeBackprop{Filter,Input} for MobileNetV2 and EfficientNet (per-channel versions of the trick);
// - the ones it has but runs slowly: Conv2DBackpropInput (a scalar loop in wasm, ~6x a forward conv; here a forward
//   conv of the stride-dilated dy with the flipped filter) and BatchMatMul with a transposed operand (Dense-layer
//   gradients; transposeA is ~17x slower than an explicit transpose first).
import * as tf from '@tensorflow/tfjs';

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
 * dy laid out for an input gradient by forward correlation: dilated by the stride (dy[i] at row i·s, zeros between)
 * and padded so a stride-1 'valid' correlation with the spatially flipped filter lands exactly on x's [H, W].
 */
function dilatedPaddedDy(dy: tf.Tensor4D, inHW: [number, number], k: [number, number], s: [number, number], pad: Pad): tf.Tensor4D {
  const [n, oh, ow, c] = dy.shape;
  const [H, W] = inHW;
  const [kh, kw] = k;
  const [sh, sw] = s;
  const [top, , left] = explicitPads(pad, inHW, [oh, ow], k, s);
  let d: tf.Tensor4D = dy;
  if (sh > 1 || sw > 1) {
    const z = tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    d = tf.slice(tf.reshape(z, [n, oh * sh, ow * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [-1, (oh - 1) * sh + 1, (ow - 1) * sw + 1, -1]);
  }
  const [lh, lw] = [d.shape[1], d.shape[2]];
  const [pt, pl] = [kh - 1 - top, kw - 1 - left];
  const [pb, pr] = [H + kh - 1 - lh - pt, W + kw - 1 - lw - pl];
  const dp = tf.pad(d, [[0, 0], [Math.max(pt, 0), Math.max(pb, 0)], [Math.max(pl, 0), Math.max(pr, 0)], [0, 0]]);
  return tf.slice(dp, [0, Math.max(-pt, 0), Math.max(-pl, 0), 0], [-1, H + kh - 1, W + kw - 1, -1]);
}

/** dx of a depthwise convolution: a stride-1 depthwise conv of the laid-out dy per (channel, multiplier), summed over the multiplier. */
export function depthwiseInputGrad(inputShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, H, W, c] = inputShape;
    const [kh, kw, , m] = filter.shape;
    const dp = dilatedPaddedDy(dy, [H, W], [kh, kw], pair(strides), pad);
    const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]);
    const g = tf.depthwiseConv2d(dp, flipped as tf.Tensor4D, 1, 'valid'); // [n, H, W, c·m]
    return tf.sum(tf.reshape(g, [n, H, W, c, m]), 4) as tf.Tensor4D;
  });
}

/** dx of a 2-D convolution (NHWC, HWIO): the laid-out dy correlated with the filter flipped in space, in/out swapped. */
export function conv2dInputGrad(inputShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = inputShape;
    const [kh, kw] = filter.shape;
    const s = pair(strides);
    if (kh === 1 && kw === 1 && s[0] === 1 && s[1] === 1) return tf.conv2d(dy, tf.transpose(filter, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid');
    const dp = dilatedPaddedDy(dy, [H, W], [kh, kw], s, pad);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [kh, kw, co, ci]
    return tf.conv2d(dp, flipped, 1, 'valid');
  });
}

/**
 * a·b with transposes made explicit, on whichever side moves less data: C = Aᵀ·B as transpose(A)·B or (Bᵀ·A)ᵀ, and
 * C = A·Bᵀ as A·transpose(B) or (B·Aᵀ)ᵀ. Only the last two axes are transposed (batched matmuls keep their batch).
 */
export function explicitMatMul(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  return tf.tidy(() => {
    const t = (x: tf.Tensor) => tf.transpose(x, [...Array.from({ length: x.rank - 2 }, (_, i) => i), x.rank - 1, x.rank - 2]);
    const last2 = (x: tf.Tensor) => x.shape[x.rank - 1]! * x.shape[x.rank - 2]!;
    if (transposeA && transposeB) return t(tf.matMul(b, a)); // Aᵀ·Bᵀ = (B·A)ᵀ
    if (transposeA) {
      const direct = last2(a);
      const swapped = last2(b) + a.shape[a.rank - 1]! * b.shape[b.rank - 1]!;
      return direct <= swapped ? tf.matMul(t(a), b) : t(tf.matMul(t(b), a));
    }
    const direct = last2(b);
    const swapped = last2(a) + a.shape[a.rank - 2]! * b.shape[b.rank - 2]!;
    return direct <= swapped ? tf.matMul(a, t(b)) : t(tf.matMul(b, t(a)));
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

type Attrs = { strides: number | [number, number]; pad: Pad; dilations?: number | [number, number]; dataFormat?: string };

function checkAttrs(name: string, a: Attrs): void {
  const d = pair(a.dilations ?? 1);
  if (d[0] !== 1 || d[1] !== 1) throw new Error(`${name} (mlctl wasm kernel): dilation ${d} is not supported`);
  if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error(`${name} (mlctl wasm kernel): only NHWC is supported, got ${a.dataFormat}`);
}

/** The kernels wasm lacks: registered once, kept for the process. */
function addedKernels(): tf.KernelConfig[] {
  return [
    {
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const a = attrs as unknown as Attrs & { filterShape: [number, number, number, number] };
        checkAttrs('Conv2DBackpropFilter', a);
        const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        return bridge(be, [x, dy], (xt, dyt) => conv2dFilterGrad(xt!, dyt!, a.filterShape, a.strides, a.pad));
      },
    },
    {
      kernelName: 'DepthwiseConv2dNativeBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const a = attrs as unknown as Attrs & { filterShape: [number, number, number, number] };
        checkAttrs('DepthwiseConv2dNativeBackpropFilter', a);
        const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        return bridge(be, [x, dy], (xt, dyt) => depthwiseFilterGrad(xt!, dyt!, a.filterShape, a.strides, a.pad));
      },
    },
    {
      kernelName: 'DepthwiseConv2dNativeBackpropInput',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const a = attrs as unknown as Attrs & { inputShape: [number, number, number, number] };
        checkAttrs('DepthwiseConv2dNativeBackpropInput', a);
        const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
        return bridge(be, [dy, filter], (dyt, ft) => depthwiseInputGrad(a.inputShape, dyt!, ft!, a.strides, a.pad));
      },
    },
  ];
}

/** Replacements for wasm kernels that exist but are slow; `stock` is wasm's own, used where ours does not apply. */
function fasterKernels(stock: (name: string) => tf.KernelConfig): tf.KernelConfig[] {
  const matMul = stock('BatchMatMul');
  const inputGrad = stock('Conv2DBackpropInput');
  return [
    {
      ...matMul,
      kernelFunc: (args) => {
        const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
        if (!transposeA && !transposeB) return matMul.kernelFunc(args);
        const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
        return bridge(args.backend, [a, b], (at, bt) => explicitMatMul(at!, bt!, transposeA, transposeB));
      },
    },
    {
      ...inputGrad,
      kernelFunc: (args) => {
        const a = args.attrs as unknown as Attrs & { inputShape: [number, number, number, number]; dimRoundingMode?: string };
        if ((a.dataFormat && a.dataFormat !== 'NHWC') || a.dimRoundingMode) return inputGrad.kernelFunc(args);
        const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
        return bridge(args.backend, [dy, filter], (dyt, ft) => conv2dInputGrad(a.inputShape, dyt!, ft!, a.strides, a.pad));
      },
    },
  ];
}

const stockKernels = new Map<string, tf.KernelConfig>();
let added = false;
let fast = false;

function replaceKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/**
 * Install mlctl's gradient kernels on wasm (idempotent): the ones wasm lacks always; with `fast` (the default) also the
 * faster Conv2DBackpropInput and transposed BatchMatMul, or wasm's stock ones back with `fast: false` (benchmarks
 * measure the path before). Other backends are left alone (cpu and tensorflow have every kernel). Returns a line for
 * the debug log.
 */
export function ensureWasmGradients(opts: { fast?: boolean } = {}): string {
  const backend = tf.getBackend();
  if (backend !== 'wasm') return `gradient kernels: the ${backend} backend's own`;
  if (!added) {
    for (const k of addedKernels()) if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
    added = true;
  }
  const want = opts.fast ?? true;
  if (stockKernels.size === 0) for (const name of ['BatchMatMul', 'Conv2DBackpropInput']) stockKernels.set(name, tf.getKernel(name, 'wasm')!);
  if (want !== fast) {
    const stock = (name: string) => stockKernels.get(name)!;
    for (const k of want ? fasterKernels(stock) : [stock('BatchMatMul'), stock('Conv2DBackpropInput')]) replaceKernel(k);
    fast = want;
  }
  return `gradient kernels on wasm: mlctl's Conv2DBackpropFilter, DepthwiseConv2dNativeBackprop{Filter,Input}${fast ? ', Conv2DBackpropInput and transposed BatchMatMul' : ''} on wasm's SIMD forward kernels`;
}

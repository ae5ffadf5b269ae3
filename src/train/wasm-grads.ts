// Conv2DBackpropFilter for the wasm backend, which lacks it (fine-tuning needs conv filter gradients). The filter
// gradient is itself a convolution (REFERENCE.md): x as [ci, H, W, n] convolved with dy as a [h, w, n, co] filter,
// dilation = stride, gives [ci, kh, kw, co] — so it runs on wasm's SIMD conv instead of the pure-JS cpu kernel.
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../util/log.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** dW of a 2-D convolution (NHWC, HWIO), computed with forward convolutions only. */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filterShape;
    const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
    const [, H, W] = x.shape;
    const [, oh, ow] = dy.shape;
    let top: number, bottom: number, left: number, right: number;
    if (pad === 'valid') {
      top = bottom = left = right = 0;
    } else if (pad === 'same') {
      const ph = Math.max((oh - 1) * sh + kh - H, 0);
      const pw = Math.max((ow - 1) * sw + kw - W, 0);
      top = Math.floor(ph / 2);
      bottom = ph - top;
      left = Math.floor(pw / 2);
      right = pw - left;
    } else if (typeof pad === 'number') {
      top = bottom = left = right = pad;
    } else {
      [[, ], [top, bottom], [left, right]] = pad;
    }
    // Rows beyond the last position the forward conv read would only add zeros×dy; crop them so the output is kh x kw.
    const needH = (oh - 1) * sh + kh;
    const needW = (ow - 1) * sw + kw;
    let xp = tf.pad(x, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]]);
    xp = tf.slice(xp, [0, 0, 0, 0], [-1, needH, needW, -1]);
    const xt = tf.transpose(xp, [3, 1, 2, 0]); // [ci, H', W', n]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, co]
    const g = tf.conv2d(xt as tf.Tensor4D, dyt as tf.Tensor4D, 1, 'valid', 'NHWC', [sh, sw]); // [ci, kh, kw, co]
    return tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

let installed = false;

/**
 * Register Conv2DBackpropFilter on wasm (once). Returns the one line saying how filter gradients run, for the log.
 * On other backends nothing changes (cpu and tensorflow have the kernel).
 */
export function ensureConvFilterGradient(logger?: Logger): string {
  const backend = tf.getBackend();
  if (backend !== 'wasm') return `conv filter gradients: ${backend} kernel`;
  const line = 'conv filter gradients: wasm has no Conv2DBackpropFilter; using mlctl\'s kernel built on wasm conv2d (REFERENCE.md conv trick)';
  if (!installed && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend: be, attrs }) => {
        const engine = tf.engine();
        const xInfo = (inputs as { x: tf.TensorInfo }).x;
        const dyInfo = (inputs as { dy: tf.TensorInfo }).dy;
        const a = attrs as unknown as { strides: number | [number, number]; pad: Pad; dataFormat: string; filterShape: [number, number, number, number] };
        if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter (mlctl wasm kernel): only NHWC is supported, got ${a.dataFormat}`);
        const x = engine.makeTensorFromTensorInfo(xInfo) as tf.Tensor4D;
        const dy = engine.makeTensorFromTensorInfo(dyInfo) as tf.Tensor4D;
        const out = conv2dFilterGrad(x, dy, a.filterShape, a.strides, a.pad);
        // Keep the result's storage alive past disposing our handle: the engine adopts it from the returned info.
        (be as unknown as { incRef(id: unknown): void }).incRef(out.dataId);
        const info: tf.TensorInfo = { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
        tf.dispose([x, dy, out]);
        return info;
      },
    });
    installed = true;
  }
  logger?.info(line);
  return line;
}

// Fine-tuning gradients on wasm: mlctl's DepthwiseConv2dNativeBackprop{Filter,Input} kernels (wasm has none) match
// the cpu backend's to 1e-4 across strides, paddings, kernel sizes and multipliers; and whole-backbone gradients
// (last blocks + head, BatchNorm in inference mode) match between the two backends for every backbone.
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKBONES } from '../src/models/backbones/index.js';
import { buildFullModel } from '../src/models/head.js';
import { selectBackend } from '../src/runtime/backend.js';
import { unfreezeLastBlocks } from '../src/train/finetune.js';
import { conv2dInputGrad, depthwiseFilterGrad, depthwiseInputGrad, ensureWasmGradients } from '../src/train/wasm-grads.js';
import { createRng, gaussian } from '../src/util/random.js';
import { calibrateBatchNorms } from './helpers/backbones.js';

afterAll(async () => {
  await selectBackend('cpu');
});

function close(got: ArrayLike<number>, ref: ArrayLike<number>, tol = 1e-4): void {
  expect(got.length).toBe(ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  expect(worst).toBeLessThanOrEqual(tol);
}

/** Run `f` on cpu then on wasm (mlctl kernels installed); returns both results' values. */
async function onBoth(f: () => tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  await selectBackend('cpu');
  const ref = f().map((t) => {
    const d = t.dataSync() as Float32Array;
    t.dispose();
    return d.slice();
  });
  await selectBackend('wasm');
  ensureWasmGradients();
  const got = f().map((t) => {
    const d = t.dataSync() as Float32Array;
    t.dispose();
    return d.slice();
  });
  return [ref, got];
}

describe('DepthwiseConv2dNative gradients on wasm', () => {
  it.each([
    { k: 3, stride: 1, pad: 'same' as const, size: 8, mult: 1 },
    { k: 3, stride: 2, pad: 'valid' as const, size: 9, mult: 1 },
    { k: 3, stride: 2, pad: 'same' as const, size: 9, mult: 2 },
    { k: 5, stride: 2, pad: 'same' as const, size: 10, mult: 1 },
    { k: 5, stride: 1, pad: 'valid' as const, size: 7, mult: 3 },
  ])('dx and dW match cpu to 1e-4 (kernel $k, stride $stride, $pad, size $size, multiplier $mult)', async ({ k, stride, pad, size, mult }) => {
    const rng = createRng(5);
    const xv = Float32Array.from({ length: 2 * size * size * 3 }, () => gaussian(rng));
    const fv = Float32Array.from({ length: k * k * 3 * mult }, () => gaussian(rng));
    const [ref, got] = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, [2, size, size, 3]);
        const f = tf.tensor4d(fv, [k, k, 3, mult]);
        // A non-uniform upstream gradient: d/dy of sum(y² · position weights).
        const loss = (a: tf.Tensor, b: tf.Tensor) => {
          const y = tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
          return tf.sum(tf.mul(tf.square(y), tf.range(0, y.size).reshape(y.shape).div(y.size)));
        };
        const [dx, dw] = tf.grads(loss)([x, f]);
        return [dx!, dw!];
      }),
    );
    close(got[0]!, ref[0]!);
    close(got[1]!, ref[1]!);
    // The helpers directly (dy of ones) give the kernels' shapes.
    await selectBackend('wasm');
    tf.tidy(() => {
      const x = tf.tensor4d(xv, [2, size, size, 3]);
      const f = tf.tensor4d(fv, [k, k, 3, mult]);
      const dy = tf.onesLike(tf.depthwiseConv2d(x, f, stride, pad));
      expect(depthwiseFilterGrad(x, dy, [k, k, 3, mult], stride, pad).shape).toEqual([k, k, 3, mult]);
      expect(depthwiseInputGrad([2, size, size, 3], dy, f, stride, pad).shape).toEqual([2, size, size, 3]);
    });
  });
});

describe('Conv2DBackpropInput and transposed BatchMatMul on wasm (mlctl kernels on forward convs / explicit transposes)', () => {
  it.each([
    { k: 3, stride: 1, pad: 'same' as const, size: 8 },
    { k: 3, stride: 2, pad: 'same' as const, size: 9 },
    { k: 3, stride: 2, pad: 'valid' as const, size: 10 },
    { k: 1, stride: 1, pad: 'same' as const, size: 5 },
    { k: 1, stride: 2, pad: 'valid' as const, size: 7 },
    { k: 5, stride: 1, pad: 'valid' as const, size: 9 },
    { k: 7, stride: 2, pad: 'same' as const, size: 12 },
  ])('conv dx matches cpu to 1e-4 (kernel $k, stride $stride, $pad, size $size)', async ({ k, stride, pad, size }) => {
    const rng = createRng(7);
    const xv = Float32Array.from({ length: 2 * size * size * 3 }, () => gaussian(rng));
    const fv = Float32Array.from({ length: k * k * 3 * 4 }, () => gaussian(rng));
    const [ref, got] = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, [2, size, size, 3]);
        const f = tf.tensor4d(fv, [k, k, 3, 4]);
        const loss = (a: tf.Tensor) => {
          const y = tf.conv2d(a as tf.Tensor4D, f, stride, pad);
          return tf.sum(tf.mul(tf.square(y), tf.range(0, y.size).reshape(y.shape).div(y.size)));
        };
        return [tf.grad(loss)(x)];
      }),
    );
    close(got[0]!, ref[0]!);
    await selectBackend('wasm');
    tf.tidy(() => {
      const x = tf.tensor4d(xv, [2, size, size, 3]);
      const f = tf.tensor4d(fv, [k, k, 3, 4]);
      expect(conv2dInputGrad([2, size, size, 3], tf.onesLike(tf.conv2d(x, f, stride, pad)), f, stride, pad).shape).toEqual([2, size, size, 3]);
    });
  });

  it('matMul with either operand transposed (and batched) matches cpu to 1e-4, so Dense gradients do too', async () => {
    const rng = createRng(8);
    const v = (n: number) => Float32Array.from({ length: n }, () => gaussian(rng));
    const [x, dy, w, c, d] = [v(6 * 40), v(6 * 9), v(40 * 9), v(3 * 5 * 4), v(3 * 7 * 4)];
    const [ref, got] = await onBoth(() =>
      tf.tidy(() => [
        tf.matMul(tf.tensor2d(x, [6, 40]), tf.tensor2d(dy, [6, 9]), true, false), // a Dense kernel's gradient: xᵀ·dy
        tf.matMul(tf.tensor2d(dy, [6, 9]), tf.tensor2d(w, [40, 9]), false, true), // its input gradient: dy·Wᵀ
        tf.matMul(tf.tensor2d(w, [40, 9]), tf.tensor2d(x, [6, 40]), true, true),
        tf.matMul(tf.tensor3d(c, [3, 4, 5]), tf.tensor3d(d, [3, 7, 4]), true, true),
        tf.matMul(tf.tensor3d(c, [3, 5, 4]), tf.tensor3d(d, [3, 7, 4]), false, true),
        tf.matMul(tf.tensor3d(c, [3, 4, 5]), tf.tensor3d(d, [3, 4, 7]), true, false),
      ]),
    );
    ref.forEach((r, i) => close(got[i]!, r));
  });
});

describe.each([
  ['mobilenet_v2', { imageSize: 32, alpha: 0.35 }, 3],
  ['resnet50', { imageSize: 32 }, 1],
  ['efficientnet_b0', { imageSize: 32 }, 3],
] as const)('%s fine-tuning gradients', (id, opts, blocks) => {
  it(`wasm matches cpu to 1e-4 for the last ${blocks} block(s) + head, BatchNorm in inference mode`, async () => {
    const rng = createRng(9);
    const xv = Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => 50 * gaussian(rng));
    const def = BACKBONES[id]!;
    const build = () => buildFullModel(def.build({ ...opts, seed: 4 }), { pooling: 'gap', units: 8, dropout: 0, classes: 3 });
    // One set of weights for both backends: BatchNorm statistics calibrated once (on cpu) on a batch of images.
    await selectBackend('cpu');
    const m = build();
    // The head's Dense layers are built with Keras's unseeded defaults: seeded weights keep this test repeatable.
    for (const [name, seed] of [['fc1', 11], ['predictions', 12]] as const) {
      const [k, b] = m.getLayer(name).getWeights();
      const w = [tf.initializers.glorotUniform({ seed }).apply(k!.shape) as tf.Tensor, tf.zerosLike(b!)];
      m.getLayer(name).setWeights(w);
      tf.dispose(w);
    }
    const calib = tf.randomNormal([4, 32, 32, 3], 0, 50, 'float32', 3);
    calibrateBatchNorms(m, calib);
    // (Outside tf.tidy: it would walk the typed arrays element by element.)
    const weights = m.getWeights().map((t) => ({ shape: t.shape, values: (t.dataSync() as Float32Array).slice() }));
    m.dispose();
    calib.dispose();
    const [ref, got] = await onBoth(() => {
      const model = build();
      try {
        const initial = weights.map((w) => tf.tensor(w.values, w.shape));
        model.setWeights(initial);
        tf.dispose(initial);
        const x = tf.tensor4d(xv, [2, 32, 32, 3]);
        const unfrozen = unfreezeLastBlocks(model, blocks, def.blocks(opts));
        const vars = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
        expect(vars.length).toBeGreaterThan(4);
        const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
        const { grads, value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: false }) as tf.Tensor) as tf.Scalar, vars);
        unfrozen.restore();
        tf.dispose([x, labels]);
        return [value, ...vars.map((v) => grads[v.name]!)];
      } finally {
        model.dispose();
      }
    });
    expect(got.length).toBe(ref.length);
    // Per tensor, the worst element error relative to that gradient's largest magnitude: the two backends sum in
    // different orders through a deep forward pass, so elementwise error scales with the tensor, not the element.
    let worstAll = 0;
    ref.forEach((r, i) => {
      let worst = 0;
      let scale = 0;
      for (let j = 0; j < r.length; j++) {
        worst = Math.max(worst, Math.abs(got[i]![j]! - r[j]!));
        scale = Math.max(scale, Math.abs(r[j]!));
      }
      worstAll = Math.max(worstAll, worst / Math.max(scale, 1e-12));
    });
    expect(worstAll).toBeLessThanOrEqual(1e-4);
  }, 120_000);
});

describe('unfreezeLastBlocks', () => {
  it('trains only the last K blocks + head, keeps BatchNormalization in inference mode, and restore() undoes both', async () => {
    await selectBackend('cpu');
    const def = BACKBONES.mobilenet_v2!;
    const opts = { imageSize: 32, alpha: 0.35 };
    const model = buildFullModel(def.build({ ...opts, seed: 2 }), { pooling: 'gap', units: 8, dropout: 0, classes: 3 });
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1);
    try {
      const bn = model.getLayer('block_16_project_BN');
      const stats = () => bn.getWeights().slice(2).map((t) => Array.from(t.dataSync()));
      const before = stats();
      const unfrozen = unfreezeLastBlocks(model, 2, def.blocks(opts));
      expect(unfrozen.trainable).toEqual([...def.blocks(opts).slice(-2).flat(), 'fc1', 'predictions']);
      expect(model.getLayer('block_15_project').trainable).toBe(false);
      expect(model.getLayer('block_16_project').trainable).toBe(true);
      const inference = model.predict(x) as tf.Tensor;
      const training = model.apply(x, { training: true }) as tf.Tensor;
      expect(Array.from(training.dataSync())).toEqual(Array.from(inference.dataSync()));
      expect(stats()).toEqual(before);
      unfrozen.restore();
      expect(model.layers.every((l) => l.trainable)).toBe(true);
      tf.dispose([inference, training, model.apply(x, { training: true }) as tf.Tensor]);
      // Back to TF.js's own training behaviour: batch statistics move the moving averages.
      expect(stats()).not.toEqual(before);
      expect(() => unfreezeLastBlocks(model, 20, def.blocks(opts))).toThrow(/has 19 blocks/);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

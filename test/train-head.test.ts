// The fast head trainer: its hand-written gradients + Adam match TF.js autodiff + tf.train.adam, it learns, --seed
// makes it deterministic, patience restores the best epoch; and the wasm Conv2DBackpropFilter matches cpu's to 1e-4.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/runtime/backend.js';
import { memoryRows, pooledRows, toMatrix, type FeatureMatrix } from '../src/features/rows.js';
import { adamUpdate, balancedClassWeights, disposeHead, headParams, initHeadParams, initHeadWeights, newAdamState, trainHead } from '../src/heads/head.js';
import { conv2dFilterGrad, ensureWasmGradients } from '../src/train/wasm-grads.js';
import { createRng, gaussian } from '../src/util/random.js';

/** Gaussian blobs: class k has mean +2 on feature k. */
function blobs(n: number, dim: number, classes: number, seed: number): FeatureMatrix {
  const rng = createRng(seed);
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < dim; d++) x[i * dim + d] = gaussian(rng) + (d === labels[i] ? 2 : 0);
  }
  return { x, labels, count: n, dim, paths: [] };
}

const spec = { pooling: 'flatten' as const, units: 16, dropout: 0, classes: 3 };

describe('initial weights', () => {
  it('initHeadParams draws exactly TF.js\'s seeded glorot_uniform (alea), without a tensor', async () => {
    await selectBackend('cpu');
    for (const [inputSize, units, classes, seed] of [[6, 4, 3, 9], [300, 70, 5, 1], [1, 1, 2, 123456789]] as const) {
      const mine = initHeadParams({ pooling: 'flatten', units, dropout: 0, classes }, inputSize, seed);
      const w = initHeadWeights({ pooling: 'flatten', units, dropout: 0, classes }, inputSize, seed);
      const tfjs = headParams(w);
      disposeHead(w);
      for (const k of ['w1', 'b1', 'w2', 'b2'] as const) expect(Array.from(mine[k])).toEqual(Array.from(tfjs[k]));
    }
  });
});

describe('trainHead', () => {
  it.each(['cpu', 'wasm'] as const)('matches TF.js autodiff gradients with the Keras Adam update, step for step (%s)', async (backend) => {
    await selectBackend(backend);
    const data = blobs(24, 6, 3, 1);
    const trained = await trainHead(memoryRows(data), undefined, { spec, epochs: 3, batchSize: 24, lr: 0.01, seed: 9 });
    const r = { weights: { w1: tf.tensor(trained.weights.w1.dataSync(), trained.weights.w1.shape), b1: tf.tensor(trained.weights.b1.dataSync()), w2: tf.tensor(trained.weights.w2.dataSync(), trained.weights.w2.shape), b2: tf.tensor(trained.weights.b2.dataSync()) } };
    disposeHead(trained.weights);
    // The reference runs on cpu.
    await selectBackend('cpu');
    // Reference: same init, full batch (order-independent), gradients from tf.variableGrads.
    const w = initHeadWeights(spec, 6, 9);
    const vars = [tf.variable(w.w1), tf.variable(w.b1), tf.variable(w.w2), tf.variable(w.b2)];
    disposeHead(w);
    const adam = newAdamState(vars.map((v) => v.size));
    const x = tf.tensor2d(data.x, [24, 6]);
    const y = tf.oneHot(tf.tensor1d(data.labels, 'int32'), 3);
    for (let s = 1; s <= 3; s++) {
      const { grads } = tf.variableGrads(() => {
        const logits = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, vars[0]!), vars[1]!)), vars[2]!), vars[3]!);
        return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      }, vars);
      vars.forEach((v, k) => {
        const wa = Float32Array.from(v.dataSync());
        adamUpdate(wa, grads[v.name]!.dataSync() as Float32Array, adam.m[k]!, adam.v[k]!, 0.01, s);
        v.assign(tf.tensor(wa, v.shape) as never);
      });
      tf.dispose(Object.values(grads));
    }
    const mine = [r.weights.w1, r.weights.b1, r.weights.w2, r.weights.b2];
    mine.forEach((t, i) => {
      const a = t.dataSync();
      const b = vars[i]!.dataSync();
      for (let k = 0; k < a.length; k++) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(1e-5);
    });
    tf.dispose([...vars, x, y, r.weights.w1, r.weights.b1, r.weights.w2, r.weights.b2]);
  });

  it('adamUpdate agrees with tf.train.adam where epsilon does not matter', async () => {
    await selectBackend('cpu');
    const v = tf.variable(tf.tensor1d([0.5, -1, 2]));
    const opt = tf.train.adam(0.1, 0.9, 0.999, 1e-7);
    const wa = Float32Array.from([0.5, -1, 2]);
    const st = newAdamState([3]);
    for (let s = 1; s <= 4; s++) {
      const g = Float32Array.from([0.3 * s, -0.7, 1.1 / s]);
      opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
      adamUpdate(wa, g, st.m[0]!, st.v[0]!, 0.1, s);
    }
    Array.from(v.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(wa[i]!, 5));
    v.dispose();
    opt.dispose();
  });

  it('learns separable features, and the same seed gives the same result', async () => {
    await selectBackend('cpu');
    const train = blobs(90, 8, 3, 2);
    const val = blobs(30, 8, 3, 3);
    const opts = { spec: { ...spec, dropout: 0.3 }, epochs: 6, batchSize: 16, lr: 0.01, seed: 4 };
    const a = await trainHead(memoryRows(train), memoryRows(val), opts);
    const b = await trainHead(memoryRows(train), memoryRows(val), opts);
    expect(a.history.at(-1)!.valAccuracy).toBeGreaterThan(0.8);
    expect(b.history).toEqual(a.history.map((h, i) => ({ ...h, seconds: b.history[i]!.seconds })));
    expect(Array.from(b.weights.w1.dataSync())).toEqual(Array.from(a.weights.w1.dataSync()));
    disposeHead(a.weights);
    disposeHead(b.weights);
  });

  it('stops after --patience epochs without val_loss improvement and restores the best weights', async () => {
    await selectBackend('cpu');
    // Labels that do not depend on the features: validation loss soon stops improving.
    const train = blobs(60, 8, 3, 5);
    const val = { ...blobs(30, 8, 3, 6), labels: Int32Array.from({ length: 30 }, (_, i) => (i * 7) % 3) };
    const r = await trainHead(memoryRows(train), memoryRows(val), { spec, epochs: 40, batchSize: 8, lr: 0.05, seed: 1, patience: 2 });
    expect(r.stoppedEarly).toBe(true);
    expect(r.epochsRun).toBe(r.bestEpoch + 2);
    const best = Math.min(...r.history.map((h) => h.valLoss!));
    expect(r.history[r.bestEpoch - 1]!.valLoss).toBe(best);
    disposeHead(r.weights);
  });

  it('weights classes by inverse frequency', () => {
    expect(balancedClassWeights(Int32Array.from([0, 0, 0, 1]), 2)).toEqual([4 / 6, 2]);
  });
});

describe('Conv2DBackpropFilter on wasm', () => {
  it.each([
    { stride: 1, pad: 'same' as const, size: 8 },
    { stride: 2, pad: 'same' as const, size: 9 },
    { stride: 2, pad: 'valid' as const, size: 9 },
  ])('matches the cpu backend gradient to 1e-4 (stride $stride, $pad)', async ({ stride, pad, size }) => {
    const rng = createRng(11);
    const xv = Float32Array.from({ length: 2 * size * size * 3 }, () => gaussian(rng));
    const fv = Float32Array.from({ length: 3 * 3 * 3 * 4 }, () => gaussian(rng));
    const grad = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, [2, size, size, 3]);
        const f = tf.tensor4d(fv, [3, 3, 3, 4]);
        return tf.grad((ff: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, ff as tf.Tensor4D, stride, pad))))(f);
      });
    await selectBackend('cpu');
    const ref = grad();
    const refData = ref.dataSync().slice();
    ref.dispose();
    await selectBackend('wasm');
    expect(ensureWasmGradients()).toMatch(/wasm/);
    const got = grad();
    expect(got.shape).toEqual([3, 3, 3, 4]);
    const gotData = got.dataSync();
    got.dispose();
    for (let i = 0; i < refData.length; i++) expect(Math.abs(gotData[i]! - refData[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(refData[i]!)));
    // The helper on its own as well (dy of ones).
    const direct = tf.tidy(() => {
      const x = tf.tensor4d(xv, [2, size, size, 3]);
      const y = tf.conv2d(x, tf.tensor4d(fv, [3, 3, 3, 4]), stride, pad);
      return conv2dFilterGrad(x, tf.onesLike(y), [3, 3, 3, 4], stride, pad);
    });
    expect(direct.shape).toEqual([3, 3, 3, 4]);
    direct.dispose();
    await selectBackend('cpu');
  });
});

describe('feature helpers', () => {
  it('global average pooling averages each channel over positions, as rows are read in any order', async () => {
    // 2 examples of [2, 2, 3]: channel c at position p holds 10*p + c (+100 for the second example).
    const x = Float32Array.from({ length: 24 }, (_, i) => {
      const n = Math.floor(i / 12), p = Math.floor((i % 12) / 3), c = i % 3;
      return 10 * p + c + 100 * n;
    });
    const g = pooledRows(memoryRows({ x, labels: Int32Array.from([0, 1]), count: 2, dim: 12, paths: [] }), [2, 2, 3]);
    expect(g.dim).toBe(3);
    expect(Array.from((await toMatrix(g)).x)).toEqual([15, 16, 17, 115, 116, 117]);
    expect(Array.from(await g.read([1, 0], 0, 2, new Float32Array(6)))).toEqual([115, 116, 117, 15, 16, 17]);
  });

  it('history CSV has one row per epoch with Keras column names', async () => {
    const { historyCsv, historySvg } = await import('../src/train/history.js');
    const h = [
      { epoch: 1, loss: 1, accuracy: 0.5, valLoss: 0.9, valAccuracy: 0.6, seconds: 1, lr: 0.001, phase: 'head' as const },
      { epoch: 2, loss: 0.5, accuracy: 0.8, seconds: 1, lr: 0.001, phase: 'head' as const },
    ];
    const lines = historyCsv(h).trim().split('\n');
    expect(lines[0]).toBe('epoch,phase,loss,accuracy,val_loss,val_accuracy,lr,seconds');
    expect(lines[1]).toBe('1,head,1,0.5,0.9,0.6,0.001,1');
    expect(lines[2]).toBe('2,head,0.5,0.8,,,0.001,1');
    expect(historySvg(h)).toContain('<polyline');
  });
});

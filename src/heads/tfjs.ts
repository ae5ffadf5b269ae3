// The TF.js head trainer (--engine tfjs, or when onnxruntime-node is missing): gradients written out by hand with
// explicit transposes (autodiff of Dense uses matMul(transposeA), ~17x slower on wasm) and Adam in plain arrays,
// updated in place in the backend's own memory where it is reachable.
import * as tf from '@tensorflow/tfjs';
import type { FeatureRows } from '../features/rows.js';
import { adamUpdate, evaluateLogits, initialParams, transposeMatrix, type AdamState, type HeadBatch, type HeadParams, type HeadTrainer, type HeadTrainerInit } from './trainer.js';

/**
 * A writable view of a tensor's storage on backends that keep it in JS-visible memory (wasm heap, cpu arrays), so
 * Adam can update parameters in place and read gradients without copying 100 MB per step. undefined elsewhere.
 */
function storageView(t: tf.Tensor): Float32Array | undefined {
  const name = tf.getBackend();
  const be = tf.backend() as unknown as {
    wasm?: { HEAPF32: Float32Array };
    dataIdMap?: { get(id: unknown): { memoryOffset: number } | undefined };
    data?: { get(id: unknown): { values?: unknown } | undefined };
  };
  if (t.dtype !== 'float32') return undefined;
  if (name === 'wasm' && be.wasm && be.dataIdMap) {
    const d = be.dataIdMap.get(t.dataId);
    return d ? new Float32Array(be.wasm.HEAPF32.buffer, d.memoryOffset, t.size) : undefined;
  }
  if (name === 'cpu' && be.data) {
    const v = be.data.get(t.dataId)?.values;
    return v instanceof Float32Array && v.length === t.size ? v : undefined;
  }
  return undefined;
}

/**
 * The trainer's parameters: fc1's kernel is kept transposed ([units, in]) so that it is always the left operand of
 * matMul — wasm then never re-packs 25M weights per step and the kernel can be updated in place. Its Adam moments
 * follow that layout inside the trainer and are transposed back to Keras's in snapshots.
 */
interface Params {
  w1t: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

/** Logits for rows x [n, in] with the transposed fc1 kernel. */
function logitsT(p: Params, x: tf.Tensor2D): { z1: tf.Tensor2D; logits: (h: tf.Tensor2D) => tf.Tensor2D } {
  const z1 = tf.add(tf.transpose(tf.matMul(p.w1t, tf.transpose(x))), p.b1) as tf.Tensor2D;
  return { z1, logits: (h) => tf.add(tf.matMul(h, p.w2), p.b2) as tf.Tensor2D };
}

/**
 * Apply one Adam step to a parameter tensor: in place when allowed and its storage is reachable, else by replacing
 * it. Only tensors never used as matMul's right operand may change in place (wasm caches packed right operands by id).
 */
function adamStep(param: tf.Tensor, grad: tf.Tensor, m: Float32Array, v: Float32Array, lr: number, step: number, inPlace: boolean): tf.Tensor {
  const g = storageView(grad) ?? (grad.dataSync() as Float32Array);
  const w = inPlace ? storageView(param) : undefined;
  if (w) {
    adamUpdate(w, g, m, v, lr, step);
    return param;
  }
  const copy = Float32Array.from(param.dataSync() as Float32Array);
  adamUpdate(copy, g, m, v, lr, step);
  const next = tf.tensor(copy, param.shape);
  param.dispose();
  return next;
}

export async function openTfjsHeadTrainer(init: HeadTrainerInit): Promise<HeadTrainer> {
  const { spec } = init;
  const p0 = initialParams(init);
  const [inputSize, units] = [p0.inputSize, p0.units];
  // Fresh tensors that nothing else shares: they are updated in place.
  const p: Params = {
    w1t: tf.tensor2d(transposeMatrix(p0.w1, inputSize, units), [units, inputSize]),
    b1: tf.tensor1d(p0.b1.slice()),
    w2: tf.tensor2d(p0.w2.slice(), [units, p0.classes]),
    b2: tf.tensor1d(p0.b2.slice()),
  };
  const o = init.optimizer;
  const m = [transposeMatrix(o.m[0]!, inputSize, units), o.m[1]!.slice(), o.m[2]!.slice(), o.m[3]!.slice()];
  const v = [transposeMatrix(o.v[0]!, inputSize, units), o.v[1]!.slice(), o.v[2]!.slice(), o.v[3]!.slice()];
  const read = (t: tf.Tensor) => Float32Array.from(t.dataSync() as Float32Array);
  return {
    description: `TF.js ${tf.getBackend()}`,
    async step(batch: HeadBatch, lr: number, step: number) {
      const { n } = batch;
      const outs = tf.tidy(() => {
        const x = tf.tensor2d(batch.x.subarray(0, n * inputSize), [n, inputSize]);
        const labels = tf.tensor1d(batch.labels, 'int32');
        const y = tf.tensor2d(batch.y, [n, spec.classes]);
        const sw = tf.tensor1d(batch.sw);
        const f = logitsT(p, x);
        const h = tf.relu(f.z1);
        const mask = batch.mask ? tf.tensor2d(batch.mask, [n, units]) : undefined;
        const hd = mask ? tf.mul(h, mask) : h;
        const logits = f.logits(hd as tf.Tensor2D);
        const logp = tf.logSoftmax(logits);
        const loss = tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(y, logp), 1)), sw));
        // Softmax cross-entropy gradient w.r.t. the logits, scaled by the sample weights (sw already holds 1/n);
        // explicit transposes keep every product on wasm's fast matMul path (no transposeA).
        const dz2 = tf.mul(tf.sub(tf.exp(logp), y), tf.expandDims(sw, 1));
        const dw2 = tf.matMul(tf.transpose(hd), dz2);
        const db2 = tf.sum(dz2, 0);
        let dh = tf.matMul(dz2, tf.transpose(p.w2));
        if (mask) dh = tf.mul(dh, mask);
        const dz1 = tf.mul(dh, tf.step(f.z1));
        const dw1t = tf.matMul(tf.transpose(dz1), x);
        const db1 = tf.sum(dz1, 0);
        const acc = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
        return [dw1t, db1, dw2, db2, loss, acc];
      });
      const loss = outs[4]!.dataSync()[0]!;
      const correct = outs[5]!.dataSync()[0]!;
      p.w1t = adamStep(p.w1t, outs[0]!, m[0]!, v[0]!, lr, step, true) as tf.Tensor2D;
      p.b1 = adamStep(p.b1, outs[1]!, m[1]!, v[1]!, lr, step, true) as tf.Tensor1D;
      p.w2 = adamStep(p.w2, outs[2]!, m[2]!, v[2]!, lr, step, false) as tf.Tensor2D;
      p.b2 = adamStep(p.b2, outs[3]!, m[3]!, v[3]!, lr, step, true) as tf.Tensor1D;
      tf.dispose(outs);
      return { loss, correct };
    },
    evaluate(rows: FeatureRows) {
      return evaluateLogits(rows, (x) => {
        const f = logitsT(p, x);
        return f.logits(tf.relu(f.z1));
      });
    },
    async snapshot(withOptimizer: boolean) {
      const params: HeadParams = { inputSize, units, classes: p0.classes, w1: transposeMatrix(read(p.w1t), units, inputSize), b1: read(p.b1), w2: read(p.w2), b2: read(p.b2) };
      if (!withOptimizer) return { params };
      const back = (a: Float32Array[], i: number) => (i === 0 ? transposeMatrix(a[0]!, units, inputSize) : a[i]!.slice());
      const optimizer: AdamState = { step: 0, m: m.map((_, i) => back(m, i)), v: v.map((_, i) => back(v, i)) };
      return { params, optimizer };
    },
    async dispose() {
      tf.dispose([p.w1t, p.b1, p.w2, p.b2]);
    },
  };
}

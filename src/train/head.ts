// Fast training of the Dense head on cached features. Gradients are written out by hand with explicit transposes:
// autodiff of Dense uses matMul(transposeA), ~17x slower on wasm. Adam (Keras defaults) via tf.train.adam,
// categorical cross-entropy with optional class weights, accuracy; early stopping restores the best weights.
import * as tf from '@tensorflow/tfjs';
import type { HeadSpec, HeadWeights } from '../models/head.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { rowBatches, type FeatureRows } from '../features/rows.js';

export interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
  lr: number;
  phase: 'head' | 'fine-tune';
}

/** Everything needed to continue training exactly where an epoch ended (checkpoints, --resume). */
export interface HeadTrainState {
  epoch: number;
  weights: HeadWeights;
  best: { weights: HeadWeights; epoch: number; monitor: number };
  /** Epochs since the monitored metric last improved. */
  wait: number;
  history: EpochMetrics[];
  optimizer: AdamState;
}

export interface TrainHeadOptions {
  spec: HeadSpec;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Stop after this many epochs without improvement of the monitored metric (val_loss, else loss). */
  patience?: number;
  /** Per-class loss weights (index = label). */
  classWeights?: number[];
  /** Continue from a checkpoint. */
  resume?: HeadTrainState;
  /** Called after each epoch with the live state (save a checkpoint here; do not dispose it). */
  onEpochEnd?: (state: HeadTrainState, metrics: EpochMetrics) => Promise<void> | void;
  /** Called after each batch (progress). */
  onBatch?: (batch: number, batches: number, loss: number, accuracy: number) => void;
  /** Checked between batches; true stops training (the current epoch is discarded, state is the last epoch's). */
  shouldStop?: () => boolean;
  /** Fresh training rows for each epoch (augmentation, computed as they are read); `train` then only gives the width. */
  epochRows?: (epoch: number) => FeatureRows;
}

export interface TrainHeadResult {
  /** Best weights (restored as Keras's restore_best_weights does). Caller disposes. */
  weights: HeadWeights;
  history: EpochMetrics[];
  bestEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  epochsRun: number;
}

/** Keras Adam defaults: beta_1 0.9, beta_2 0.999, epsilon 1e-7. */
export const KERAS_ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

/** Keras's default Dense initialisation: glorot-uniform kernel, zero bias. Seeded for --seed reproducibility. */
export function initHeadWeights(spec: HeadSpec, inputSize: number, seed: number): HeadWeights {
  return tf.tidy(() => ({
    w1: tf.initializers.glorotUniform({ seed: deriveSeed(seed, 'fc1') }).apply([inputSize, spec.units]) as tf.Tensor2D,
    b1: tf.zeros([spec.units]) as tf.Tensor1D,
    w2: tf.initializers.glorotUniform({ seed: deriveSeed(seed, 'predictions') }).apply([spec.units, spec.classes]) as tf.Tensor2D,
    b2: tf.zeros([spec.classes]) as tf.Tensor1D,
  }));
}

export function cloneHead(w: HeadWeights): HeadWeights {
  return { w1: w.w1.clone(), b1: w.b1.clone(), w2: w.w2.clone(), b2: w.b2.clone() };
}

export function disposeHead(w: HeadWeights | undefined): void {
  if (w) tf.dispose([w.w1, w.b1, w.w2, w.b2]);
}

/** Class weights "balanced" as scikit-learn/Keras users compute them: n / (k * count_c). */
export function balancedClassWeights(labels: Int32Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of labels) counts[l]!++;
  return counts.map((c) => (c > 0 ? labels.length / (classes * c) : 0));
}

/**
 * Mean cross-entropy and accuracy of any logits function over a feature set (forward only, batched).
 * Shared by the head trainer and optimize's pruned Dense stacks so both report the same figures.
 */
export async function evaluateLogits(set: FeatureRows, forward: (x: tf.Tensor2D) => tf.Tensor2D, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  let loss = 0;
  let correct = 0;
  for await (const b of rowBatches(set, batchSize)) {
    const n = b.n;
    const [l, c] = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [n, set.dim]);
      const labels = tf.tensor1d(b.labels, 'int32');
      const logits = forward(x);
      const logp = tf.logSoftmax(logits);
      const y = tf.oneHot(labels, logits.shape[1]);
      return [tf.neg(tf.sum(tf.mul(y, logp))), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'))];
    });
    loss += l!.dataSync()[0]!;
    correct += c!.dataSync()[0]!;
    tf.dispose([l!, c!]);
  }
  return { loss: set.count ? loss / set.count : NaN, accuracy: set.count ? correct / set.count : NaN };
}

/** Loss and accuracy of head weights over feature rows. */
export function evaluateHead(w: HeadWeights, set: FeatureRows, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  return evaluateLogits(set, (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2), batchSize);
}

/** Class probabilities [count, classes] for feature rows. */
export async function predictHead(w: HeadWeights, set: FeatureRows, batchSize = 256): Promise<Float32Array> {
  const out = new Float32Array(set.count * w.b2.shape[0]);
  for await (const b of rowBatches(set, batchSize)) {
    const p = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.n, set.dim]);
      return tf.softmax(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2));
    });
    out.set(p.dataSync(), b.from * w.b2.shape[0]);
    p.dispose();
  }
  return out;
}

/** Adam state kept in plain arrays: one fused pass per parameter instead of ~14 tensor ops over 25M floats. */
export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export function newAdamState(sizes: number[]): AdamState {
  return { step: 0, m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
}

/** One Keras Adam update in place: m, v moments; w -= lr·√(1-β2^t)/(1-β1^t) · m / (√v + ε). */
export function adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, step: number): void {
  const { beta1: b1, beta2: b2, epsilon: eps } = KERAS_ADAM;
  const lrT = (lr * Math.sqrt(1 - Math.pow(b2, step))) / (1 - Math.pow(b1, step));
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    const mi = (m[i] = b1 * m[i]! + c1 * gi);
    const vi = (v[i] = b2 * v[i]! + c2 * gi * gi);
    w[i] = w[i]! - (lrT * mi) / (Math.sqrt(vi) + eps);
  }
}

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
 * matMul — wasm then never re-packs 25M weights per step and the kernel can be updated in place.
 */
interface Params {
  w1t: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

function toParams(w: HeadWeights): Params {
  // Fresh tensors that nothing else shares: they are updated in place.
  return {
    w1t: tf.tidy(() => tf.transpose(w.w1).clone()) as tf.Tensor2D,
    b1: tf.tensor1d(Float32Array.from(w.b1.dataSync())),
    w2: tf.tensor2d(Float32Array.from(w.w2.dataSync()), w.w2.shape),
    b2: tf.tensor1d(Float32Array.from(w.b2.dataSync())),
  };
}

function toHead(p: Params): HeadWeights {
  return { w1: tf.transpose(p.w1t) as tf.Tensor2D, b1: p.b1.clone(), w2: p.w2.clone(), b2: p.b2.clone() };
}

/** Logits for rows x [n, in] with the transposed fc1 kernel. */
function logitsT(p: Params, x: tf.Tensor2D): { z1: tf.Tensor2D; logits: (h: tf.Tensor2D) => tf.Tensor2D } {
  const z1 = tf.add(tf.transpose(tf.matMul(p.w1t, tf.transpose(x))), p.b1) as tf.Tensor2D;
  return { z1, logits: (h) => tf.add(tf.matMul(h, p.w2), p.b2) as tf.Tensor2D };
}

function evaluateParams(p: Params, set: FeatureRows, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  return evaluateLogits(
    set,
    (x) => {
      const f = logitsT(p, x);
      return f.logits(tf.relu(f.z1));
    },
    batchSize,
  );
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

/**
 * Train the head on features (Flatten rows, or GAP rows for a GAP head). One Adam step per batch; each epoch reshuffles
 * with a seed derived from (--seed, epoch), dropout masks from (--seed, epoch, batch): same seed → same weights.
 */
export async function trainHead(trainSet: FeatureRows, val: FeatureRows | undefined, opts: TrainHeadOptions): Promise<TrainHeadResult> {
  const { spec, batchSize } = opts;
  const init = opts.resume?.weights ?? initHeadWeights(spec, trainSet.dim, opts.seed);
  const p: Params = toParams(init);
  if (!opts.resume) disposeHead(init);
  // Adam moments follow the trainer's layout (fc1 transposed); checkpoints store them as they are.
  const adam: AdamState = opts.resume?.optimizer?.m.length
    ? { step: opts.resume.optimizer.step, m: opts.resume.optimizer.m.map((a) => a.slice()), v: opts.resume.optimizer.v.map((a) => a.slice()) }
    : newAdamState([p.w1t.size, p.b1.size, p.w2.size, p.b2.size]);
  const history = [...(opts.resume?.history ?? [])];
  let best = opts.resume ? { weights: cloneHead(opts.resume.best.weights), epoch: opts.resume.best.epoch, monitor: opts.resume.best.monitor } : { weights: toHead(p), epoch: 0, monitor: Infinity };
  let wait = opts.resume?.wait ?? 0;
  const classWeights = opts.classWeights ? tf.tensor1d(opts.classWeights) : undefined;
  const buf = new Float32Array(batchSize * trainSet.dim);
  const labelBuf = new Int32Array(batchSize);
  let stoppedEarly = false;
  let interrupted = false;
  let epoch = opts.resume?.epoch ?? 0;
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const train = opts.epochRows ? opts.epochRows(e) : trainSet;
      const batches = Math.ceil(train.count / batchSize);
      const order = shuffleInPlace(Array.from({ length: train.count }, (_, i) => i), createRng(deriveSeed(opts.seed, `epoch-${e}`)));
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < batches; b++) {
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        const from = b * batchSize;
        const to = Math.min(train.count, from + batchSize);
        const n = to - from;
        const xData = await train.read(order, from, to, buf);
        for (let i = from; i < to; i++) labelBuf[i - from] = train.labels[order[i]!]!;
        const outs = tf.tidy(() => {
          const x = tf.tensor2d(xData, [n, train.dim]);
          const labels = tf.tensor1d(labelBuf.subarray(0, n), 'int32');
          const y = tf.oneHot(labels, spec.classes);
          const f = logitsT(p, x);
          const h = tf.relu(f.z1);
          let mask: tf.Tensor | undefined;
          let hd = h;
          if (spec.dropout > 0) {
            const keep = 1 - spec.dropout;
            mask = tf.div(tf.cast(tf.greaterEqual(tf.randomUniform([n, spec.units], 0, 1, 'float32', deriveSeed(opts.seed, `dropout-${e}-${b}`)), spec.dropout), 'float32'), keep);
            hd = tf.mul(h, mask);
          }
          const logits = f.logits(hd);
          const logp = tf.logSoftmax(logits);
          const sw = classWeights ? tf.gather(classWeights, labels) : tf.ones([n]);
          const loss = tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(y, logp), 1)), sw)), n);
          // Softmax cross-entropy gradient w.r.t. the logits, scaled by the sample weights; explicit transposes
          // keep every product on wasm's fast matMul path (no transposeA).
          const dz2 = tf.div(tf.mul(tf.sub(tf.exp(logp), y), tf.expandDims(sw, 1)), n);
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
        const l = outs[4]!.dataSync()[0]!;
        const c = outs[5]!.dataSync()[0]!;
        adam.step++;
        p.w1t = adamStep(p.w1t, outs[0]!, adam.m[0]!, adam.v[0]!, opts.lr, adam.step, true) as tf.Tensor2D;
        p.b1 = adamStep(p.b1, outs[1]!, adam.m[1]!, adam.v[1]!, opts.lr, adam.step, true) as tf.Tensor1D;
        p.w2 = adamStep(p.w2, outs[2]!, adam.m[2]!, adam.v[2]!, opts.lr, adam.step, false) as tf.Tensor2D;
        p.b2 = adamStep(p.b2, outs[3]!, adam.m[3]!, adam.v[3]!, opts.lr, adam.step, true) as tf.Tensor1D;
        tf.dispose(outs);
        lossSum += l * n;
        correct += c;
        opts.onBatch?.(b + 1, batches, lossSum / to, correct / to);
        // Let signal handlers and progress output run between steps.
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const m: EpochMetrics = { epoch: e, loss: lossSum / train.count, accuracy: correct / train.count, seconds: (performance.now() - t0) / 1000, lr: opts.lr, phase: 'head' };
      if (val && val.count > 0) {
        const v = await evaluateParams(p, val);
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
      history.push(m);
      epoch = e;
      const monitor = m.valLoss ?? m.loss;
      if (monitor < best.monitor) {
        disposeHead(best.weights);
        best = { weights: toHead(p), epoch: e, monitor };
        wait = 0;
      } else {
        wait++;
      }
      if (opts.onEpochEnd) {
        const weights = toHead(p);
        try {
          await opts.onEpochEnd({ epoch: e, weights, best, wait, history, optimizer: adam }, m);
        } finally {
          disposeHead(weights);
        }
      }
      if (opts.patience !== undefined && opts.patience > 0 && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    return { weights: best.epoch > 0 ? cloneHead(best.weights) : toHead(p), history, bestEpoch: best.epoch, stoppedEarly, interrupted, epochsRun: epoch };
  } finally {
    disposeHead(best.weights);
    tf.dispose([p.w1t, p.b1, p.w2, p.b2]);
    classWeights?.dispose();
  }
}

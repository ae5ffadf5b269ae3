// Fast training of the Dense head on cached features. Gradients are written out by hand with explicit transposes:
// autodiff of Dense uses matMul(transposeA), ~17x slower on wasm. Adam (Keras defaults) via tf.train.adam,
// categorical cross-entropy with optional class weights, accuracy; early stopping restores the best weights.
import * as tf from '@tensorflow/tfjs';
import type { HeadSpec, HeadWeights } from '../models/head.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import type { FeatureSet } from './features.js';

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
  /** Fresh training features for each epoch (augmentation); `train` then only gives the feature width. */
  epochFeatures?: (epoch: number) => Promise<FeatureSet>;
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

function gatherRows(set: FeatureSet, idx: number[], from: number, to: number, buf: Float32Array): Float32Array {
  const d = set.dim;
  for (let i = from; i < to; i++) buf.set(set.x.subarray(idx[i]! * d, idx[i]! * d + d), (i - from) * d);
  return buf.subarray(0, (to - from) * d);
}

/** Loss and accuracy of head weights over a feature set (forward only, batched). */
export function evaluateHead(w: HeadWeights, set: FeatureSet, classes: number, batchSize = 256): { loss: number; accuracy: number } {
  let loss = 0;
  let correct = 0;
  for (let from = 0; from < set.count; from += batchSize) {
    const n = Math.min(batchSize, set.count - from);
    const [l, c] = tf.tidy(() => {
      const x = tf.tensor2d(set.x.subarray(from * set.dim, (from + n) * set.dim), [n, set.dim]);
      const labels = tf.tensor1d(set.labels.subarray(from, from + n), 'int32');
      const logits = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2);
      const logp = tf.logSoftmax(logits);
      const y = tf.oneHot(labels, classes);
      return [tf.neg(tf.sum(tf.mul(y, logp))), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'))];
    });
    loss += l!.dataSync()[0]!;
    correct += c!.dataSync()[0]!;
    tf.dispose([l!, c!]);
  }
  return { loss: set.count ? loss / set.count : NaN, accuracy: set.count ? correct / set.count : NaN };
}

/** Class probabilities [count, classes] for a feature set. */
export function predictHead(w: HeadWeights, set: FeatureSet, batchSize = 256): Float32Array {
  const out = new Float32Array(set.count * w.b2.shape[0]);
  for (let from = 0; from < set.count; from += batchSize) {
    const n = Math.min(batchSize, set.count - from);
    const p = tf.tidy(() => {
      const x = tf.tensor2d(set.x.subarray(from * set.dim, (from + n) * set.dim), [n, set.dim]);
      return tf.softmax(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2));
    });
    out.set(p.dataSync(), from * w.b2.shape[0]);
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

function headToArrays(w: HeadWeights): Float32Array[] {
  return [w.w1, w.b1, w.w2, w.b2].map((t) => Float32Array.from(t.dataSync() as Float32Array));
}

function arraysToHead(a: Float32Array[], inputSize: number, spec: HeadSpec): HeadWeights {
  return {
    w1: tf.tensor2d(a[0]!, [inputSize, spec.units]),
    b1: tf.tensor1d(a[1]!),
    w2: tf.tensor2d(a[2]!, [spec.units, spec.classes]),
    b2: tf.tensor1d(a[3]!),
  };
}

/**
 * Train the head on features (Flatten rows, or GAP rows for a GAP head). One Adam step per batch; each epoch reshuffles
 * with a seed derived from (--seed, epoch), dropout masks from (--seed, epoch, batch): same seed → same weights.
 */
export async function trainHead(trainSet: FeatureSet, val: FeatureSet | undefined, opts: TrainHeadOptions): Promise<TrainHeadResult> {
  const { spec, batchSize } = opts;
  const init = opts.resume?.weights ?? initHeadWeights(spec, trainSet.dim, opts.seed);
  const params = headToArrays(init);
  if (!opts.resume) disposeHead(init);
  const adam: AdamState = opts.resume?.optimizer
    ? { step: opts.resume.optimizer.step, m: opts.resume.optimizer.m.map((a) => a.slice()), v: opts.resume.optimizer.v.map((a) => a.slice()) }
    : newAdamState(params.map((p) => p.length));
  // The forward pass reads tensors; they are re-uploaded from the arrays after each update.
  let live = arraysToHead(params, trainSet.dim, spec);
  const history = [...(opts.resume?.history ?? [])];
  let best = opts.resume ? { weights: cloneHead(opts.resume.best.weights), epoch: opts.resume.best.epoch, monitor: opts.resume.best.monitor } : { weights: cloneHead(live), epoch: 0, monitor: Infinity };
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
      const train = opts.epochFeatures ? await opts.epochFeatures(e) : trainSet;
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
        const xData = gatherRows(train, order, from, to, buf);
        for (let i = from; i < to; i++) labelBuf[i - from] = train.labels[order[i]!]!;
        const w = live;
        const outs = tf.tidy(() => {
          const x = tf.tensor2d(xData, [n, train.dim]);
          const labels = tf.tensor1d(labelBuf.subarray(0, n), 'int32');
          const y = tf.oneHot(labels, spec.classes);
          const z1 = tf.add(tf.matMul(x, w.w1), w.b1);
          const h = tf.relu(z1);
          let mask: tf.Tensor | undefined;
          let hd = h;
          if (spec.dropout > 0) {
            const keep = 1 - spec.dropout;
            mask = tf.div(tf.cast(tf.greaterEqual(tf.randomUniform([n, spec.units], 0, 1, 'float32', deriveSeed(opts.seed, `dropout-${e}-${b}`)), spec.dropout), 'float32'), keep);
            hd = tf.mul(h, mask);
          }
          const logits = tf.add(tf.matMul(hd, w.w2), w.b2);
          const logp = tf.logSoftmax(logits);
          const sw = classWeights ? tf.gather(classWeights, labels) : tf.ones([n]);
          const loss = tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(y, logp), 1)), sw)), n);
          // Softmax cross-entropy gradient w.r.t. the logits, scaled by the sample weights; explicit transposes
          // keep every product on wasm's fast matMul path.
          const dz2 = tf.div(tf.mul(tf.sub(tf.exp(logp), y), tf.expandDims(sw, 1)), n);
          const dw2 = tf.matMul(tf.transpose(hd), dz2);
          const db2 = tf.sum(dz2, 0);
          let dh = tf.matMul(dz2, tf.transpose(w.w2));
          if (mask) dh = tf.mul(dh, mask);
          const dz1 = tf.mul(dh, tf.step(z1));
          const dw1 = tf.matMul(tf.transpose(x), dz1);
          const db1 = tf.sum(dz1, 0);
          const acc = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
          return [dw1, db1, dw2, db2, loss, acc];
        });
        const grads = outs.slice(0, 4).map((t) => t.dataSync() as Float32Array);
        const l = outs[4]!.dataSync()[0]!;
        const c = outs[5]!.dataSync()[0]!;
        adam.step++;
        for (let k = 0; k < 4; k++) adamUpdate(params[k]!, grads[k]!, adam.m[k]!, adam.v[k]!, opts.lr, adam.step);
        tf.dispose(outs);
        disposeHead(live);
        live = arraysToHead(params, train.dim, spec);
        lossSum += l * n;
        correct += c;
        opts.onBatch?.(b + 1, batches, lossSum / to, correct / to);
        // Let signal handlers and progress output run between steps.
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const m: EpochMetrics = { epoch: e, loss: lossSum / train.count, accuracy: correct / train.count, seconds: (performance.now() - t0) / 1000, lr: opts.lr, phase: 'head' };
      if (val && val.count > 0) {
        const v = evaluateHead(live, val, spec.classes);
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
      history.push(m);
      epoch = e;
      const monitor = m.valLoss ?? m.loss;
      if (monitor < best.monitor) {
        disposeHead(best.weights);
        best = { weights: cloneHead(live), epoch: e, monitor };
        wait = 0;
      } else {
        wait++;
      }
      await opts.onEpochEnd?.({ epoch: e, weights: live, best, wait, history, optimizer: adam }, m);
      if (opts.patience !== undefined && opts.patience > 0 && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    return { weights: cloneHead(best.epoch > 0 ? best.weights : live), history, bestEpoch: best.epoch, stoppedEarly, interrupted, epochsRun: epoch };
  } finally {
    disposeHead(best.weights);
    disposeHead(live);
    classWeights?.dispose();
  }
}

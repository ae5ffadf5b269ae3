// Fine-tuning a model's Dense tail (Dense/Dropout layers after Flatten or pooling) on cached features, with pruning
// masks re-selected on a schedule and applied after every step. Kernel gradients use explicit transposes: autodiff's
// matMul(transposeA) is ~17x slower on the wasm backend.
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../errors.js';
import type { FeatureRows } from '../features/rows.js';
import { KERAS_ADAM, evaluateLogits } from '../heads/head.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { magnitudeMask, shouldUpdate, sparsityAt, type PruningSchedule } from './schedule.js';

export type StackLayer =
  | { kind: 'dense'; name: string; activation: string; kernel: tf.Variable; bias?: tf.Variable; mask?: tf.Tensor; prune: boolean }
  | { kind: 'dropout'; name: string; rate: number };

const ACTIVATIONS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  relu6: (x) => tf.relu6(x),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
  sigmoid: (x) => tf.sigmoid(x),
  tanh: (x) => tf.tanh(x),
  softmax: (x) => tf.softmax(x),
};

/** matMul whose gradient transposes explicitly instead of using matMul(transposeA) (slow on wasm). */
const matMul = tf.customGrad((a, b, save) => {
  const x = a as tf.Tensor2D;
  const w = b as tf.Tensor2D;
  (save as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[1]!) as tf.Tensor2D), tf.matMul(tf.transpose(saved[0]!) as tf.Tensor2D, dy as tf.Tensor2D)],
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** The trainable tail of a layer chain: trailing Dense/Dropout layers. Returns its start index (layers.length when none). */
export function denseTailStart(layers: tf.layers.Layer[]): number {
  let i = layers.length;
  while (i > 0 && ['Dense', 'Dropout'].includes(layers[i - 1]!.getClassName())) i--;
  // The tail must begin with a Dense layer fed a flat [batch, features] tensor.
  while (i < layers.length && layers[i]!.getClassName() !== 'Dense') i++;
  return i;
}

/** Variables for the tail's layers (copies of the model's weights); `prune` marks layers whose kernels get masks. */
export function stackFromLayers(layers: tf.layers.Layer[], prune: ReadonlySet<string>): StackLayer[] {
  return layers.map((l): StackLayer => {
    const config = l.getConfig();
    if (l.getClassName() === 'Dropout') return { kind: 'dropout', name: l.name, rate: Number(config.rate ?? 0) };
    const activation = String(config.activation ?? 'linear');
    if (!ACTIVATIONS[activation]) throw new MlctlError('UNSUPPORTED_LAYER', [l.name, 'Dense', `activation ${activation} is not supported for fine-tuning`]);
    const [k, b] = l.getWeights();
    return { kind: 'dense', name: l.name, activation, kernel: tf.variable(k!), ...(b ? { bias: tf.variable(b) } : {}), prune: prune.has(l.name) };
  });
}

export function disposeStack(stack: StackLayer[]): void {
  for (const l of stack) if (l.kind === 'dense') tf.dispose([l.kernel, ...(l.bias ? [l.bias] : []), ...(l.mask ? [l.mask] : [])]);
}

/** Logits of the stack (the last Dense's activation is left out: it must be softmax, applied by the loss). */
function logits(stack: StackLayer[], x: tf.Tensor2D, training: { seed: number } | undefined): tf.Tensor2D {
  let h: tf.Tensor2D = x;
  stack.forEach((l, i) => {
    if (l.kind === 'dropout') {
      if (training && l.rate > 0) h = tf.dropout(h, l.rate, undefined, deriveSeed(training.seed, `${l.name}-${i}`)) as tf.Tensor2D;
      return;
    }
    let z = matMul(h, l.kernel as tf.Tensor2D);
    if (l.bias) z = tf.add(z, l.bias);
    h = (i === stack.length - 1 ? z : ACTIVATIONS[l.activation]!(z)) as tf.Tensor2D;
  });
  return h;
}

export function evaluateStack(stack: StackLayer[], set: FeatureRows, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  return evaluateLogits(set, (x) => logits(stack, x, undefined), batchSize);
}

/** Re-select every pruned layer's mask at `sparsity` by magnitude and zero the masked weights. */
export function updateMasks(stack: StackLayer[], sparsity: number): void {
  for (const l of stack) {
    if (l.kind !== 'dense' || !l.prune) continue;
    const mask = magnitudeMask(l.kernel.dataSync(), sparsity);
    l.mask?.dispose();
    l.mask = tf.tensor(mask, l.kernel.shape);
  }
  applyMasks(stack);
}

/** w where the mask keeps it, +0 elsewhere (w·0 would leave -0 for negative weights: not byte-zero, worse for gzip). */
export function masked(w: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.where(tf.cast(mask, 'bool'), w, tf.zerosLike(w)));
}

export function applyMasks(stack: StackLayer[]): void {
  for (const l of stack) {
    if (l.kind !== 'dense' || !l.mask) continue;
    const w = masked(l.kernel, l.mask);
    l.kernel.assign(w);
    w.dispose();
  }
}

export interface FineTuneOptions {
  schedule: PruningSchedule;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  logger: Logger;
}

export interface FineTuneEpoch {
  epoch: number;
  loss: number;
  accuracy: number;
  valAccuracy?: number;
  sparsity: number;
}

/** Fine-tune the stack in place: masks updated on the schedule before a step, applied after every step (tfmot's UpdatePruningStep). */
export async function fineTuneStack(stack: StackLayer[], train: FeatureRows, val: FeatureRows | undefined, opts: FineTuneOptions): Promise<FineTuneEpoch[]> {
  const last = stack[stack.length - 1];
  if (!last || last.kind !== 'dense' || last.activation !== 'softmax') throw new MlctlError('UNSUPPORTED_LAYER', [last?.name ?? '(none)', 'Dense', 'fine-tuning needs a softmax output layer']);
  const classes = last.kernel.shape[1]!;
  const vars = stack.flatMap((l) => (l.kind === 'dense' ? [l.kernel, ...(l.bias ? [l.bias] : [])] : []));
  const optimizer = tf.train.adam(opts.lr, KERAS_ADAM.beta1, KERAS_ADAM.beta2, KERAS_ADAM.epsilon);
  const batches = Math.ceil(train.count / opts.batchSize);
  const history: FineTuneEpoch[] = [];
  const progress = createProgress({ label: 'pruning fine-tune', total: opts.epochs * batches, unit: 'steps', logger: opts.logger });
  let step = 0;
  let sparsity = 0;
  const xBuf = new Float32Array(opts.batchSize * train.dim);
  const yBuf = new Int32Array(opts.batchSize);
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      const order = shuffleInPlace(Array.from({ length: train.count }, (_, i) => i), createRng(deriveSeed(opts.seed, `prune-epoch-${epoch}`)));
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < batches; b++) {
        if (shouldUpdate(opts.schedule, step)) {
          sparsity = sparsityAt(opts.schedule, step);
          updateMasks(stack, sparsity);
        }
        const from = b * opts.batchSize;
        const n = Math.min(train.count, from + opts.batchSize) - from;
        await train.read(order, from, from + n, xBuf);
        for (let i = 0; i < n; i++) yBuf[i] = train.labels[order[from + i]!]!;
        const [lossT, correctT] = tf.tidy(() => {
          const x = tf.tensor2d(xBuf.subarray(0, n * train.dim), [n, train.dim]);
          const labels = tf.tensor1d(yBuf.subarray(0, n), 'int32');
          let z: tf.Tensor2D | undefined;
          const { value, grads } = tf.variableGrads(() => {
            // Kept past variableGrads' own scope for the accuracy below; the outer tidy disposes it.
            z = tf.keep(logits(stack, x, { seed: deriveSeed(opts.seed, `step-${step}`) }));
            return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, classes), tf.logSoftmax(z)), 1))) as tf.Scalar;
          }, vars);
          optimizer.applyGradients(grads as unknown as Record<string, tf.Variable>);
          const hits = tf.sum(tf.cast(tf.equal(tf.argMax(z!, 1), labels), 'float32'));
          z!.dispose();
          return [value, hits];
        });
        applyMasks(stack);
        lossSum += (await lossT!.data())[0]! * n;
        correct += (await correctT!.data())[0]!;
        tf.dispose([lossT!, correctT!]);
        step++;
        progress.tick(1, `loss ${(lossSum / (from + n)).toFixed(4)} sparsity ${sparsity.toFixed(3)}`);
      }
      const e: FineTuneEpoch = { epoch, loss: lossSum / train.count, accuracy: correct / train.count, sparsity };
      if (val && val.count > 0) e.valAccuracy = (await evaluateStack(stack, val)).accuracy;
      history.push(e);
      opts.logger.info(`epoch ${epoch}/${opts.epochs}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)}${e.valAccuracy !== undefined ? ` val_acc ${e.valAccuracy.toFixed(4)}` : ''} sparsity ${sparsity.toFixed(3)}`);
    }
    // Whatever the step count, the result carries the final sparsity.
    if (sparsity !== opts.schedule.finalSparsity) updateMasks(stack, opts.schedule.finalSparsity);
    progress.done();
    return history;
  } finally {
    optimizer.dispose();
  }
}

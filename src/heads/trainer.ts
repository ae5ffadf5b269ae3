// What a head trainer is (head.ts runs the epochs, onnx.ts / tfjs.ts do the arithmetic): the batch it takes,
// its interface, and what every trainer shares — parameters in Keras's layout, the Keras Adam update, evaluation.
import * as tf from '@tensorflow/tfjs';
import type { HeadSpec } from '../models/head.js';
import { rowBatches, type FeatureRows } from '../features/rows.js';
import type { AdamState } from './adam.js';

export { adamStepSize, adamUpdate, KERAS_ADAM, newAdamState, type AdamState } from './adam.js';

/**
 * Head parameters as plain arrays in Keras's layout: fc1 kernel w1 [inputSize, units] row-major, b1 [units],
 * predictions kernel w2 [units, classes], b2 [classes]. Adam moments (AdamState m/v 0..3) follow the same layout.
 */
export interface HeadParams {
  inputSize: number;
  units: number;
  classes: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** dst[c, r] = src[r, c] for a [rows, cols] row-major matrix (blocked, so both sides stream through the cache). */
export function transposeMatrix(src: Float32Array, rows: number, cols: number, dst = new Float32Array(rows * cols)): Float32Array {
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c]!;
    }
  }
  return dst;
}

/**
 * Mean cross-entropy and accuracy of any logits function over a feature set (forward only, batched).
 * Shared by the TF.js head trainer and optimize's pruned Dense stacks so both report the same figures.
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

/** One batch as every trainer takes it. */
export interface HeadBatch {
  n: number;
  /** Rows [n, inputSize]. */
  x: Float32Array;
  labels: Int32Array;
  /** One-hot labels [n, classes]. */
  y: Float32Array;
  /** Per-row loss weight divided by n (class weight / n): the batch loss is Σ sw·CE. */
  sw: Float32Array;
  /** Dropout mask [n, units] with kept units at 1/(1-rate), or undefined without dropout. */
  mask?: Float32Array;
}

/** The arithmetic of training, behind one interface so the loop above is the same for every engine. */
export interface HeadTrainer {
  /** For logs and results, e.g. "onnxruntime-node 1.30 (2 worker threads)". */
  readonly description: string;
  /** One Adam step (number `step`, 1-based) on a batch; returns the batch's weighted loss and correct predictions. */
  step(batch: HeadBatch, lr: number, step: number): Promise<{ loss: number; correct: number }>;
  /** Mean cross-entropy (unweighted) and accuracy over rows, without dropout. */
  evaluate(rows: FeatureRows): Promise<{ loss: number; accuracy: number }>;
  /** Copies of the current parameters (and Adam moments, step left to the caller), Keras layout. */
  snapshot(withOptimizer: boolean): Promise<{ params: HeadParams; optimizer?: AdamState }>;
  /**
   * Hand back fc1-sized arrays of earlier snapshots that the caller no longer reads: later snapshots are written into
   * them instead of fresh memory (hundreds of MB per epoch for a Flatten head, whose page faults cost more than the
   * copy). Optional; arrays the trainer did not hand out are ignored.
   */
  recycle?(arrays: Float32Array[]): void;
  dispose(): Promise<void>;
}

export interface HeadTrainerInit {
  spec: HeadSpec;
  /** fc1's input width (the parameters' inputSize). */
  inputSize: number;
  /**
   * The starting parameters, or the function that makes them: a trainer may call it while its threads start (the
   * seeded initialisation of a Flatten head's 25M weights takes as long as starting them).
   */
  params: HeadParams | (() => HeadParams);
  optimizer: AdamState;
  batchSize: number;
  threads?: number;
}

/** The starting parameters of a trainer's init, made now if they are made on demand. */
export function initialParams(init: HeadTrainerInit): HeadParams {
  return typeof init.params === 'function' ? init.params() : init.params;
}


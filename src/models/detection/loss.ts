// CenterNet's loss (xingyizhou/CenterNet src/lib/models/losses.py): the penalty-reduced pixel-wise focal loss on the
// heatmap (α = 2, β = 4, predictions clamped to [1e-4, 1 − 1e-4], normalised by the number of centres) plus L1 on
// size and offset at the centre cells (each normalised by 2 × objects + 1e-4), weighted 1 : 0.1 : 1.
import * as tf from '@tensorflow/tfjs';
import { encodeTargets, type TargetBox } from './targets.js';

export const LOSS_WEIGHTS = { heatmap: 1, size: 0.1, offset: 1 } as const;

export interface CenterNetBatchTargets {
  /** [N, h, w, classes]. */
  heatmap: tf.Tensor4D;
  /** [N, h, w, 4]: size (w, h), offset (dx, dy). */
  regression: tf.Tensor4D;
  /** [N, h, w, 1]. */
  mask: tf.Tensor4D;
}

/** The targets of a batch (each picture's boxes in input pixels) as the loss takes them. Caller disposes. */
export function batchTargets(boxes: ReadonlyArray<readonly TargetBox[]>, inputSize: [number, number], grid: [number, number], classes: number): CenterNetBatchTargets {
  const n = boxes.length;
  const cells = grid[0] * grid[1];
  const heatmap = new Float32Array(n * cells * classes);
  const regression = new Float32Array(n * cells * 4);
  const mask = new Float32Array(n * cells);
  boxes.forEach((b, i) => {
    const t = encodeTargets(b, inputSize, grid, classes);
    heatmap.set(t.heatmap, i * cells * classes);
    regression.set(t.regression, i * cells * 4);
    mask.set(t.mask, i * cells);
  });
  const [h, w] = grid;
  return { heatmap: tf.tensor4d(heatmap, [n, h, w, classes]), regression: tf.tensor4d(regression, [n, h, w, 4]), mask: tf.tensor4d(mask, [n, h, w, 1]) };
}

export interface CenterNetLoss {
  total: tf.Scalar;
  heatmap: tf.Scalar;
  size: tf.Scalar;
  offset: tf.Scalar;
}

/** Focal loss of predicted heatmap probabilities against the Gaussian targets. */
export function focalLoss(pred: tf.Tensor, gt: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(pred, 1e-4, 1 - 1e-4);
    const pos = tf.cast(tf.equal(gt, 1), 'float32');
    const neg = tf.sub(1, pos);
    const negWeights = tf.pow(tf.sub(1, gt), 4);
    const posLoss = tf.sum(tf.mul(tf.mul(tf.log(p), tf.square(tf.sub(1, p))), pos));
    const negLoss = tf.sum(tf.mul(tf.mul(tf.mul(tf.log(tf.sub(1, p)), tf.square(p)), negWeights), neg));
    // With no centre in the batch pos_loss is 0 and the reference divides by nothing: max(n, 1) gives both cases.
    const n = tf.maximum(tf.sum(pos), 1);
    return tf.neg(tf.div(tf.add(posLoss, negLoss), n)) as tf.Scalar;
  });
}

/** L1 at the masked cells over two channels, normalised by the mask expanded to them. */
function regL1(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(tf.abs(tf.sub(pred, target)), mask)), tf.add(tf.mul(tf.sum(mask), 2), 1e-4)) as tf.Scalar);
}

/** The loss of a batch of head outputs [N, h, w, classes + 4]. */
export function centerNetLoss(output: tf.Tensor4D, targets: CenterNetBatchTargets, classes: number): CenterNetLoss {
  return tf.tidy(() => {
    const [hm, size, offset] = tf.split(output, [classes, 2, 2], -1);
    const [tSize, tOffset] = tf.split(targets.regression, [2, 2], -1);
    const heatmap = focalLoss(hm!, targets.heatmap);
    const sizeLoss = regL1(size!, tSize!, targets.mask);
    const offsetLoss = regL1(offset!, tOffset!, targets.mask);
    const total = tf.addN([tf.mul(heatmap, LOSS_WEIGHTS.heatmap), tf.mul(sizeLoss, LOSS_WEIGHTS.size), tf.mul(offsetLoss, LOSS_WEIGHTS.offset)]) as tf.Scalar;
    return { total, heatmap, size: sizeLoss, offset: offsetLoss };
  });
}

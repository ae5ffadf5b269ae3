// A detector's figures on one split: the CenterNet loss (and its parts) against the targets, and COCO AP — each
// picture's output decoded (3x3 peaks, top K), mapped back to the picture's own pixels and scored against its boxes
// with pycocotools' semantics (metrics/coco.ts). The head on stored feature maps and the full model on pictures
// (fine-tuning) are scored by the same code.
import * as tf from '@tensorflow/tfjs';
import { cocoPerCategory, evaluateCoco, type CocoDetection, type CocoGroundTruth, type CocoStatName } from '../../metrics/coco.js';
import { decodeCenterNet, toPictureBoxes } from '../../models/detection/decode.js';
import { batchTargets, centerNetLoss } from '../../models/detection/loss.js';
import type { BoxBatch } from './inputs.js';

export interface ScoreContext {
  labels: readonly string[];
  categoryIds: readonly number[];
  grid: [number, number];
  /** Model input [h, w] in pixels. */
  inputSize: [number, number];
  maxDetections: number;
}

export interface LossParts {
  loss: number;
  heatmapLoss: number;
  sizeLoss: number;
  offsetLoss: number;
}

export interface DetectorScore extends LossParts {
  images: number;
  /** COCO's twelve summary figures (-1 where the split has no ground truth of that kind, as pycocotools). */
  coco: Record<CocoStatName, number>;
  perClass: Array<{ label: string; categoryId: number; AP: number; AP50: number; AP75: number }>;
}

/** The loss parts of a batch's outputs [n, h, w, classes + 4] (four numbers, tensors disposed). */
export function batchLoss(out: tf.Tensor4D, boxes: BoxBatch['boxes'], ctx: ScoreContext): LossParts {
  const t = batchTargets(boxes, ctx.inputSize, ctx.grid, ctx.labels.length);
  try {
    const v = tf.tidy(() => {
      const l = centerNetLoss(out, t, ctx.labels.length);
      return tf.stack([l.total, l.heatmap, l.size, l.offset]);
    });
    const [loss, heatmapLoss, sizeLoss, offsetLoss] = Array.from(v.dataSync());
    v.dispose();
    return { loss: loss!, heatmapLoss: heatmapLoss!, sizeLoss: sizeLoss!, offsetLoss: offsetLoss! };
  } finally {
    tf.dispose([t.heatmap, t.regression, t.mask]);
  }
}

/** Score `predict` (a batch → its outputs) over every batch of a split. */
export async function scoreDetector(batches: AsyncIterable<BoxBatch>, predict: (b: BoxBatch) => tf.Tensor4D, ctx: ScoreContext): Promise<DetectorScore> {
  const classes = ctx.labels.length;
  const per = ctx.grid[0] * ctx.grid[1] * (classes + 4);
  const gts: CocoGroundTruth[] = [];
  const dts: CocoDetection[] = [];
  const imgIds: number[] = [];
  const sums = { loss: 0, heatmapLoss: 0, sizeLoss: 0, offsetLoss: 0 };
  let images = 0;
  for await (const b of batches) {
    const out = predict(b);
    try {
      const parts = batchLoss(out, b.boxes, ctx);
      for (const k of Object.keys(sums) as Array<keyof LossParts>) sums[k] += parts[k] * b.n;
      const values = out.dataSync();
      b.samples.forEach((s, i) => {
        imgIds.push(s.id);
        for (const a of s.boxes) gts.push({ id: gts.length + 1, image_id: s.id, category_id: ctx.categoryIds[a.label]!, bbox: [a.box.x, a.box.y, a.box.width, a.box.height], iscrowd: a.iscrowd ? 1 : 0 });
        const boxes = toPictureBoxes(decodeCenterNet(values.subarray(i * per, (i + 1) * per), ctx.grid, classes, ctx.inputSize, { maxDetections: ctx.maxDetections }), ctx.inputSize, s);
        for (const d of boxes) dts.push({ image_id: s.id, category_id: ctx.categoryIds[d.label]!, bbox: [d.x, d.y, d.width, d.height], score: d.score });
      });
      images += b.n;
    } finally {
      out.dispose();
    }
    // Let signal handlers and progress output run between batches.
    await new Promise((r) => setImmediate(r));
  }
  const ev = evaluateCoco({ imgIds, catIds: [...ctx.categoryIds], gts, dts });
  const byId = new Map(ctx.categoryIds.map((id, i) => [id, ctx.labels[i]!]));
  const n = Math.max(images, 1);
  return {
    images,
    loss: sums.loss / n,
    heatmapLoss: sums.heatmapLoss / n,
    sizeLoss: sums.sizeLoss / n,
    offsetLoss: sums.offsetLoss / n,
    coco: ev.stats,
    perClass: cocoPerCategory(ev).map((c) => ({ label: byId.get(c.categoryId)!, categoryId: c.categoryId, AP: c.AP, AP50: c.AP50, AP75: c.AP75 })),
  };
}

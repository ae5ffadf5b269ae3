// Detection metrics for evaluate and optimize: a streaming accumulator over per-image results and ground-truth boxes
// (both in the picture's pixels) that hands everything to metrics/coco.ts (pycocotools' COCOeval semantics) at the end.
import { COCO_STAT_NAMES, cocoPerCategory, cocoPrCurve, evaluateCoco, type CocoDetection, type CocoGroundTruth, type CocoStatName } from '../../metrics/coco.js';
import type { Box } from '../../data/detection/types.js';
import type { MetricsAccumulator, TaskModel } from '../types.js';
import type { DetectionResult } from './result.js';

/** One image's ground truth: its boxes, each with its label index (a DetectionSample fits). */
export interface DetectionTruth {
  boxes: ReadonlyArray<{ label: number; box: Box; iscrowd?: boolean; area?: number }>;
}

export interface DetectionMetrics {
  /** Images evaluated. */
  count: number;
  /** Ground-truth boxes (crowd regions included) and detections scored. */
  boxes: number;
  detections: number;
  /** COCOeval.summarize()'s 12 numbers, -1 where a setting has no ground truth. */
  stats: Record<CocoStatName, number>;
  /** Per label: AP@[.5:.95], AP50, AP75, AR@100 (-1: no ground truth of that label). */
  perClass: Array<{ label: string; categoryId: number; AP: number; AP50: number; AP75: number; AR100: number }>;
  /** Interpolated precision at 101 recall points, IoU 0.5, mean over labels with ground truth. */
  prCurve50: Array<{ recall: number; precision: number }>;
}

/** The category id of each label: the manifest's (COCO ids), else index + 1. */
export const categoryIdsOf = (m: TaskModel): number[] => m.detection?.categoryIds ?? m.labels.map((_, i) => i + 1);

export { COCO_STAT_NAMES };

/**
 * Results and truth are added per image (image ids are assigned in order); detections should be decoded with
 * minScore 0 and the manifest's maxDetections, as COCO evaluation expects (scores are ranked, not thresholded).
 */
export function detectionAccumulator(m: TaskModel): MetricsAccumulator<DetectionResult, DetectionMetrics, readonly DetectionTruth[]> {
  const catIds = categoryIdsOf(m);
  const gts: CocoGroundTruth[] = [];
  const dts: CocoDetection[] = [];
  let images = 0;
  return {
    get count() {
      return images;
    },
    add(results, truth) {
      results.forEach((r, i) => {
        const imageId = ++images;
        for (const g of truth[i]?.boxes ?? []) {
          const b = g.box;
          gts.push({ id: gts.length + 1, image_id: imageId, category_id: catIds[g.label]!, bbox: [b.x, b.y, b.width, b.height], ...(g.area !== undefined ? { area: g.area } : {}), iscrowd: g.iscrowd ? 1 : 0 });
        }
        for (const d of r.detections) dts.push({ image_id: imageId, category_id: catIds[d.classIndex]!, bbox: [d.box.x, d.box.y, d.box.width, d.box.height], score: d.score });
      });
    },
    finish() {
      const ev = evaluateCoco({ imgIds: Array.from({ length: images }, (_, i) => i + 1), catIds, gts, dts });
      const perCat = cocoPerCategory(ev);
      return {
        count: images,
        boxes: gts.length,
        detections: dts.length,
        stats: ev.stats,
        perClass: perCat.map((c, k) => ({ label: m.labels[k]!, ...c })),
        prCurve50: cocoPrCurve(ev, { iouThr: 0.5 }),
      };
    },
  };
}

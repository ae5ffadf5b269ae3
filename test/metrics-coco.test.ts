// COCO detection metrics against cases computed by hand with pycocotools' rules (cocoeval.py): greedy matching by
// score, ties at the IoU threshold accepted, 101-point interpolated precision made monotone, crowd regions that
// swallow detections, categories without ground truth at -1, maxDets and area ranges.
import { describe, expect, it } from 'vitest';
import { boxIou, cocoPerCategory, cocoPrCurve, evaluateCoco, type CocoDetection, type CocoGroundTruth } from '../src/metrics/coco.js';

const gt = (id: number, image_id: number, category_id: number, bbox: [number, number, number, number], iscrowd = 0): CocoGroundTruth => ({ id, image_id, category_id, bbox, iscrowd });
const dt = (image_id: number, category_id: number, bbox: [number, number, number, number], score: number): CocoDetection => ({ image_id, category_id, bbox, score });

describe('boxIou', () => {
  it('is intersection over union, and over the detection alone for crowd regions', () => {
    const iou = boxIou([[0, 0, 10, 10], [5, 0, 10, 10]], [[0, 0, 10, 10], [0, 0, 100, 100]], [false, true]);
    expect(Array.from(iou)).toEqual([1, 1, 50 / 150, 1]);
    expect(Array.from(boxIou([[20, 20, 5, 5]], [[0, 0, 10, 10]], [false]))).toEqual([0]);
  });
});

describe('evaluateCoco (hand-computed cases)', () => {
  // Image 1, one category: A and B, three detections: exact on A, a false positive, half of B (IoU exactly 0.5).
  const one = evaluateCoco({
    imgIds: [1],
    catIds: [1],
    gts: [gt(1, 1, 1, [0, 0, 10, 10]), gt(2, 1, 1, [20, 20, 10, 10])],
    dts: [dt(1, 1, [0, 0, 10, 10], 0.9), dt(1, 1, [50, 50, 10, 10], 0.8), dt(1, 1, [20, 20, 10, 5], 0.7)],
  });

  it('AP50 accepts an IoU equal to the threshold and interpolates precision at 101 recall points', () => {
    // TP, FP, TP: recall .5 .5 1, precision 1 .5 2/3 → monotone 1 2/3 2/3; 51 points at 1, 50 at 2/3.
    expect(one.stats.AP50).toBeCloseTo(253 / 303, 12);
    // Above 0.5 the half box misses: TP, FP, FP → 51 points at 1, the rest 0.
    expect(one.stats.AP75).toBeCloseTo(51 / 101, 12);
    expect(one.stats.AP).toBeCloseTo(163 / 303, 12);
  });

  it('AR counts the best recall per threshold, limited by maxDets per image', () => {
    expect(one.stats.AR100).toBeCloseTo(0.55, 12);
    expect(one.stats.AR10).toBeCloseTo(0.55, 12);
    expect(one.stats.AR1).toBeCloseTo(0.5, 12);
  });

  it('splits by COCO area (all boxes here are small): medium and large are -1', () => {
    expect(one.stats.APsmall).toBeCloseTo(one.stats.AP, 12);
    expect(one.stats.ARsmall).toBeCloseTo(0.55, 12);
    expect([one.stats.APmedium, one.stats.APlarge, one.stats.ARmedium, one.stats.ARlarge]).toEqual([-1, -1, -1, -1]);
  });

  it('ranks detections across images by score before accumulating', () => {
    // Global order: .9 FP (image 2), .6 TP (image 1), .5 TP (image 2) → precision 0 .5 2/3 → monotone 2/3 everywhere.
    const ev = evaluateCoco({
      imgIds: [1, 2],
      catIds: [7],
      gts: [gt(1, 1, 7, [0, 0, 10, 10]), gt(2, 2, 7, [0, 0, 10, 10])],
      dts: [dt(1, 7, [0, 0, 10, 10], 0.6), dt(2, 7, [30, 30, 10, 10], 0.9), dt(2, 7, [0, 0, 10, 10], 0.5)],
    });
    expect(ev.stats.AP50).toBeCloseTo(2 / 3, 12);
    expect(ev.stats.AP).toBeCloseTo(2 / 3, 12);
    expect(ev.stats.AR100).toBe(1);
    const curve = cocoPrCurve(ev);
    expect(curve).toHaveLength(101);
    expect(curve.every((p) => Math.abs(p.precision - 2 / 3) < 1e-12)).toBe(true);
  });

  it('a detection inside a crowd region is neither a true nor a false positive', () => {
    const boxes = (crowd: number) => ({
      imgIds: [1],
      catIds: [1],
      gts: [gt(1, 1, 1, [0, 0, 100, 100], crowd), gt(2, 1, 1, [200, 200, 10, 10])],
      dts: [dt(1, 1, [10, 10, 20, 20], 0.9), dt(1, 1, [200, 200, 10, 10], 0.8)],
    });
    expect(evaluateCoco(boxes(1)).stats.AP50).toBeCloseTo(1, 12);
    // The same box as an ordinary object: the first detection is a false positive (IoU 0.04) and the big box is
    // missed: recall reaches .5 at precision .5, so 51 of the 101 recall points score .5.
    expect(evaluateCoco(boxes(0)).stats.AP50).toBeCloseTo(25.5 / 101, 12);
  });

  it('a category without ground truth is -1 and left out of the means; its detections touch nothing else', () => {
    const ev = evaluateCoco({
      imgIds: [1],
      catIds: [1, 2],
      gts: [gt(1, 1, 1, [0, 0, 10, 10])],
      dts: [dt(1, 1, [0, 0, 10, 10], 0.5), dt(1, 2, [0, 0, 10, 10], 0.99)],
    });
    expect(ev.stats.AP).toBeCloseTo(1, 12);
    const [c1, c2] = cocoPerCategory(ev);
    expect(c1!.categoryId).toBe(1);
    for (const v of [c1!.AP, c1!.AP50, c1!.AP75, c1!.AR100]) expect(v).toBeCloseTo(1, 12);
    expect(c2).toEqual({ categoryId: 2, AP: -1, AP50: -1, AP75: -1, AR100: -1 });
  });

  it('matches each ground truth once: a duplicate detection is a false positive', () => {
    const ev = evaluateCoco({
      imgIds: [1],
      catIds: [1],
      gts: [gt(1, 1, 1, [0, 0, 10, 10])],
      dts: [dt(1, 1, [0, 0, 10, 10], 0.9), dt(1, 1, [0, 0, 10, 10], 0.8)],
    });
    // TP then FP: precision 1, .5 → recall reaches 1 at the first detection: every recall point has precision 1.
    expect(ev.stats.AP).toBeCloseTo(1, 12);
    const worse = evaluateCoco({
      imgIds: [1],
      catIds: [1],
      gts: [gt(1, 1, 1, [0, 0, 10, 10])],
      dts: [dt(1, 1, [0, 0, 10, 10], 0.8), dt(1, 1, [0, 0, 10, 10], 0.9), dt(1, 1, [40, 40, 10, 10], 0.95)],
    });
    // FP (.95), TP (.9), FP (.8): precision .5 at recall 1.
    expect(worse.stats.AP).toBeCloseTo(0.5, 12);
  });

  it('an image without ground truth still counts its false positives', () => {
    const ev = evaluateCoco({
      imgIds: [1, 2],
      catIds: [1],
      gts: [gt(1, 1, 1, [0, 0, 10, 10])],
      dts: [dt(1, 1, [0, 0, 10, 10], 0.5), dt(2, 1, [0, 0, 10, 10], 0.9)],
    });
    expect(ev.stats.AP50).toBeCloseTo(0.5, 12);
  });
});

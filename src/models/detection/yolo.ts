// Ultralytics YOLO heads exported before NMS (YOLOv8: [batch, 4 + classes, anchors]; YOLOv5: [batch, anchors,
// 5 + classes]) decoded as Ultralytics' non_max_suppression does with its defaults: each anchor's best class
// (times objectness for v5) is its score, candidates under the score threshold are dropped, then greedy NMS per class.
import type { YoloSection } from '../../artifacts/manifest.js';
import { elementCount, toNumbers, type Tensor } from '../../runtime/tensor.js';
import type { DecodedBox, DecodeOptions } from './decode.js';

export type YoloLayout = Pick<YoloSection, 'classes' | 'anchors' | 'transposed' | 'objectness' | 'iouThreshold' | 'scoreThreshold' | 'maxDetections'>;

/** Intersection over union of two boxes given as x, y, width, height. */
export function iou(a: Pick<DecodedBox, 'x' | 'y' | 'width' | 'height'>, b: Pick<DecodedBox, 'x' | 'y' | 'width' | 'height'>): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/**
 * Greedy non-maximum suppression per class (torchvision.ops.batched_nms): best score first, a box is dropped when it
 * overlaps a kept box of its class by more than `threshold`. Equal scores keep the earlier box first.
 */
export function nmsPerClass(boxes: DecodedBox[], threshold: number, limit: number): DecodedBox[] {
  const order = boxes.map((b, i) => ({ b, i })).sort((p, q) => q.b.score - p.b.score || p.i - q.i);
  const kept: DecodedBox[] = [];
  for (const { b } of order) {
    if (kept.length >= limit) break;
    if (kept.some((k) => k.label === b.label && iou(k, b) > threshold)) continue;
    kept.push(b);
  }
  return kept;
}

/** One example's head values (anchors x values, in the section's order) → boxes in input pixels, best first. */
export function decodeYolo(out: ArrayLike<number>, layout: YoloLayout, opts: DecodeOptions = {}): DecodedBox[] {
  const { anchors: n, classes, objectness } = layout;
  const first = objectness ? 5 : 4;
  // Value v of anchor a: [values, anchors] (v8) or [anchors, values] (v5).
  const values = first + classes;
  const at = layout.transposed ? (a: number, v: number) => out[a * values + v]! : (a: number, v: number) => out[v * n + a]!;
  const minScore = Math.max(layout.scoreThreshold, opts.minScore ?? 0);
  const candidates: DecodedBox[] = [];
  for (let a = 0; a < n; a++) {
    const obj = objectness ? at(a, 4) : 1;
    if (objectness && !(obj > layout.scoreThreshold)) continue;
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = at(a, first + c);
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    const score = bestScore * obj;
    if (!(score > minScore)) continue;
    const w = at(a, 2);
    const h = at(a, 3);
    candidates.push({ label: best, score, x: at(a, 0) - w / 2, y: at(a, 1) - h / 2, width: w, height: h });
  }
  return nmsPerClass(candidates, layout.iouThreshold, opts.maxDetections ?? layout.maxDetections);
}

/** A batch of fetches (the section's output tensor among them) → boxes per example. */
export function decodeYoloOutputs(section: YoloSection, fetches: readonly Tensor[], opts: DecodeOptions = {}): DecodedBox[][] {
  const t = fetches.find((f) => f.name === section.output) ?? (fetches.length === 1 ? fetches[0] : undefined);
  if (!t) throw new RangeError(`the yolo head output ${section.output} is not among the fetched outputs (${fetches.map((f) => f.name).join(', ')})`);
  const values = toNumbers(t);
  const per = section.anchors * ((section.objectness ? 5 : 4) + section.classes);
  // [batch, values, anchors], [batch, values x anchors] (packed float rows) or one unbatched head.
  const batch = Math.round(elementCount(t.shape) / per);
  if (batch < 1 || elementCount(t.shape) !== batch * per) throw new RangeError(`yolo head output ${t.name} [${t.shape.join(', ')}] does not hold ${batch} x ${per} values`);
  return Array.from({ length: batch }, (_, i) => decodeYolo(values.subarray(i * per, (i + 1) * per), section, opts));
}

// Stand-in for the detection task's results and metrics (tasks/detection/index.ts, being built beside this): one
// example's CenterNet map → boxes in the original picture's pixels, and COCO metrics of such boxes. When the task
// lands, evaluate and optimize switch to its results()/metrics() here and nowhere else.
import type { CenterNetSection, DetectionSection } from '../../artifacts/manifest.js';
import type { Box } from '../../data/detection/types.js';
import { evaluateCoco, type CocoDetection, type CocoEvaluation, type CocoGroundTruth } from '../../metrics/coco.js';
import { decodeCenterNet, toPictureBoxes } from '../../models/detection/decode.js';

/** One detected object in the original picture's pixels. */
export interface Detection {
  /** Index into the model's labels. */
  label: number;
  score: number;
  box: Box;
}

/**
 * Map a box from the model's input pixels back to the original picture's, by the resize rule the input was made with:
 * fill stretches each axis on its own; contain (letterbox, centred) and cover (centre crop) scale both axes alike.
 */
export function toOriginal(b: Box, resize: DetectionSection['resize'], input: [number, number], original: { width: number; height: number }): Box {
  const [h, w] = input;
  if (resize === 'fill') {
    const sx = original.width / w;
    const sy = original.height / h;
    return { x: b.x * sx, y: b.y * sy, width: b.width * sx, height: b.height * sy };
  }
  const s = resize === 'contain' ? Math.min(w / original.width, h / original.height) : Math.max(w / original.width, h / original.height);
  const ox = (w - original.width * s) / 2;
  const oy = (h - original.height * s) / 2;
  return { x: (b.x - ox) / s, y: (b.y - oy) / s, width: b.width / s, height: b.height / s };
}

/** Clip a box to the picture (a box reaching past the edge covers only what is in it). */
function clip(b: Box, original: { width: number; height: number }): Box {
  const x0 = Math.min(Math.max(b.x, 0), original.width);
  const y0 = Math.min(Math.max(b.y, 0), original.height);
  const x1 = Math.min(Math.max(b.x + b.width, 0), original.width);
  const y1 = Math.min(Math.max(b.y + b.height, 0), original.height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** One example's head output → its detections (best first, at most maxDetections) in the original picture's pixels. */
export function detectionsOf(out: ArrayLike<number>, d: CenterNetSection, original: { width: number; height: number }): Detection[] {
  const input: [number, number] = [d.grid[0] * d.stride, d.grid[1] * d.stride];
  const decoded = decodeCenterNet(out, d.grid, d.classes, input, { maxDetections: d.maxDetections });
  // fill: training's own mapping (decode.ts), so evaluate scores boxes exactly as training's validation did.
  if (d.resize === 'fill') return toPictureBoxes(decoded, input, original).map((b) => ({ label: b.label, score: b.score, box: { x: b.x, y: b.y, width: b.width, height: b.height } }));
  return decoded
    .map((b) => ({ label: b.label, score: b.score, box: clip(toOriginal(b, d.resize, input, original), original) }))
    .filter((b) => b.box.width > 0 && b.box.height > 0);
}

/** COCO evaluation (pycocotools' bbox semantics) of detections against ground truth, categories as the manifest's. */
export function cocoEvaluation(imgIds: number[], catIds: number[], gts: CocoGroundTruth[], dts: CocoDetection[]): CocoEvaluation {
  return evaluateCoco({ imgIds, catIds, gts, dts });
}

// Evaluation's view of mlctl's own CenterNet packages: one example's map → boxes in the original picture's pixels
// (every box up to maxDetections, no score cut, through the one mapping data/preprocess.ts boxToPicture), and COCO
// metrics of such boxes. Imported heads are evaluated through the task's results() (evaluate.ts importedDetector).
import type { CenterNetSection } from '../../artifacts/manifest.js';
import type { Box } from '../../data/detection/types.js';
import { evaluateCoco, type CocoDetection, type CocoEvaluation, type CocoGroundTruth } from '../../metrics/coco.js';
import { boxToPicture, resizeGeometry } from '../../data/preprocess.js';
import { decodeCenterNet } from '../../models/detection/decode.js';

/** One detected object in the original picture's pixels. */
export interface Detection {
  /** Index into the model's labels. */
  label: number;
  score: number;
  box: Box;
}

/** One example's head output → its detections (best first, at most maxDetections) in the original picture's pixels. */
export function detectionsOf(out: ArrayLike<number>, d: CenterNetSection, original: { width: number; height: number }): Detection[] {
  const input: [number, number] = [d.grid[0] * d.stride, d.grid[1] * d.stride];
  const decoded = decodeCenterNet(out, d.grid, d.classes, input, { maxDetections: d.maxDetections });
  // The one mapping back to the picture (data/preprocess.ts), as serve and predict map the task's results.
  const geometry = resizeGeometry(original.width, original.height, input[1], input[0], d.resize);
  return decoded.map((b) => ({ label: b.label, score: b.score, box: boxToPicture(b, geometry) })).filter((b) => b.box.width > 0 && b.box.height > 0);
}

/** COCO evaluation (pycocotools' bbox semantics) of detections against ground truth, categories as the manifest's. */
export function cocoEvaluation(imgIds: number[], catIds: number[], gts: CocoGroundTruth[], dts: CocoDetection[]): CocoEvaluation {
  return evaluateCoco({ imgIds, catIds, gts, dts });
}

// detection: a model that finds objects — a label, a score and a box each — in an image. The output tensors are
// decoded by models/detection/outputs.ts (per the manifest's detection head) into model-input pixels and mapped back
// to each picture's own pixels through the geometry preprocessing reports (fill, letterbox or crop). Rendering for
// serve/predict/watch/audit; COCO metrics for evaluate.
import type { Manifest } from '../../artifacts/manifest.js';
import { boxToPicture, identityGeometry, type ImageGeometry } from '../../data/preprocess.js';
import { MlctlError } from '../../errors.js';
import { decodeDetections, detectionInputSize } from '../../models/detection/outputs.js';
import type { Tensor } from '../../runtime/tensor.js';
import { f4 } from '../../util/table.js';
import { ROUND } from '../scores.js';
import type { ResultContext, Task, TaskModel } from '../types.js';
import { detectionAccumulator, type DetectionMetrics, type DetectionTruth } from './metrics.js';
import type { Detection, DetectionResult } from './result.js';

export type { Detection, DetectionResult } from './result.js';
export type { DetectionMetrics, DetectionTruth } from './metrics.js';
export { categoryIdsOf, detectionAccumulator } from './metrics.js';

/**
 * Score below which serve and predict drop a box when neither the request, the flag nor the manifest says: CenterNet's
 * demo threshold (vis_thresh 0.3). evaluate passes 0 (COCO ranks every box up to maxDetections).
 */
export const DEFAULT_MIN_SCORE = 0.3;

/** predict rows write scores to 6 significant digits and boxes to 2 decimals (a hundredth of a pixel); the audit log 6 decimals. */
const ROWS = { score: ROUND.significant(6), px: ROUND.decimals(2) };
const AUDIT = ROUND.decimals(6);

const section = (m: TaskModel) => {
  if (!m.detection) throw new MlctlError('PACKAGE_INVALID', [m.output.name ?? 'the model', 'its task is detection but it has no detection section (how its output becomes boxes)']);
  return m.detection;
};

const importedInputSize = (m: TaskModel): [number, number] => {
  if (m.input?.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [m.output.name ?? 'the model', 'its task is detection but the manifest records no image input (the size its boxes are in)']);
  return [m.input.height, m.input.width];
};

/** The score threshold and box budget in force: the caller's, else the manifest's, else the defaults. */
export function detectionLimits(m: TaskModel, ctx: Pick<ResultContext, 'minScore' | 'maxDetections'> = {}): { minScore: number; maxDetections: number } {
  const d = section(m);
  return { minScore: ctx.minScore ?? d.minScore ?? DEFAULT_MIN_SCORE, maxDetections: ctx.maxDetections ?? d.maxDetections };
}

/** One batch of fetches → each image's boxes in its picture's pixels (input pixels for an image without geometry). */
export function detectionResults(outputs: readonly Tensor[], m: TaskModel, ctx: ResultContext = {}): DetectionResult[] {
  const d = section(m);
  const { minScore, maxDetections } = detectionLimits(m, ctx);
  // Boxes come in model-input pixels: CenterNet's grid times its stride; an imported head's, the manifest's image input.
  const [h, w] = d.head === 'centernet' ? detectionInputSize(d) : importedInputSize(m);
  const input: ImageGeometry = identityGeometry(w, h);
  return decodeDetections(d, outputs, { outputName: m.output.name, minScore, maxDetections }).map((boxes, i) => {
    const g = ctx.images?.[i] ?? input;
    const detections: Detection[] = [];
    for (const b of boxes) {
      const box = boxToPicture(b, g);
      // A box wholly in the letterbox padding (or cropped away) has nothing of the picture left.
      if (box.width > 0 && box.height > 0) detections.push({ label: m.labels[b.label] ?? String(b.label), classIndex: b.label, score: b.score, box });
    }
    return { detections };
  });
}

/** A detection as /predict and JSON Lines write it: label, score, box. */
const plain = (d: Detection, round: (v: number) => number = (v) => v, px: (v: number) => number = (v) => v) => ({
  label: d.label,
  score: round(d.score),
  box: { x: px(d.box.x), y: px(d.box.y), width: px(d.box.width), height: px(d.box.height) },
});

export const detection: Task<DetectionResult, DetectionMetrics, readonly DetectionTruth[]> = {
  id: 'detection',
  summary: 'finds objects in an image: a label, a score and a box each',
  input: 'image',
  check(m: Manifest, where: string) {
    if (m.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [where, `its task is detection but its input is ${m.input.kind}`]);
    if (!m.detection) throw new MlctlError('PACKAGE_INVALID', [where, 'its task is detection but it has no detection section (how its output becomes boxes)']);
    const s = m.detection.minScore;
    if (s !== undefined && !(typeof s === 'number' && s >= 0 && s <= 1)) throw new MlctlError('PACKAGE_INVALID', [where, `its detection minScore ${JSON.stringify(s)} is not a number from 0 to 1`]);
  },
  outputSize: (m) => m.output.size ?? 0,
  results: detectionResults,
  serve: {
    // One list per image, in request order (as "predictions" and "labels" are for classifiers).
    predict: (results) => ({ detections: results.map((r) => r.detections.map((d) => plain(d))) }),
  },
  rows: () => ({
    columns: ['label', 'score', 'x', 'y', 'width', 'height'],
    topK: 0,
    split: (r) => r.detections.map((d) => ({ detections: [d] })),
    cells: (r) => {
      const d = r.detections[0];
      return d ? [d.label, ROWS.score(d.score), ROWS.px(d.box.x), ROWS.px(d.box.y), ROWS.px(d.box.width), ROWS.px(d.box.height)] : [];
    },
    fields: (r) => {
      const d = r.detections[0];
      if (!d) return {};
      const p = plain(d, ROWS.score, ROWS.px);
      return { label: p.label, score: p.score, ...p.box };
    },
  }),
  audit: (r) => {
    const best = r.detections[0];
    return { detections: r.detections.length, ...(best ? { label: best.label, score: AUDIT(best.score) } : {}) };
  },
  watch: {
    // Each label's best box score (0 when none): what label rules read of a frame.
    scores: (r, m) => {
      const top = new Float32Array(m?.labels.length ?? Math.max(0, ...r.detections.map((d) => d.classIndex + 1)));
      for (const d of r.detections) top[d.classIndex] = Math.max(top[d.classIndex]!, d.score);
      return top;
    },
    objects: (r) => r.detections.map((d) => ({ label: d.label, score: d.score, box: d.box })),
  },
  metrics: (m) => detectionAccumulator(m),
  report: {
    summary: (s) => [
      ['AP @[.50:.95]', f4(s.stats.AP)],
      ['AP50', f4(s.stats.AP50)],
      ['AP75', f4(s.stats.AP75)],
      ['AP small / medium / large', `${f4(s.stats.APsmall)} / ${f4(s.stats.APmedium)} / ${f4(s.stats.APlarge)}`],
      ['AR @1 / @10 / @100', `${f4(s.stats.AR1)} / ${f4(s.stats.AR10)} / ${f4(s.stats.AR100)}`],
    ],
  },
};

// A detection model evaluated on annotated pictures: the split streamed through imageBatches (the one
// preprocessing) and an InferenceEngine, each output decoded into boxes in the picture's own pixels, and COCO metrics
// (AP@[.50:.05:.95], AP50, AP75, AP by size, AR@1/10/100) overall and per class, PR curves at IoU .5 and .75, and the
// pictures with the most mistakes for the report. evaluate and optimize (quantize's mAP-drop gate) both call this.
import type { CenterNetSection, DetectionSection, ImageInputSpec } from '../../artifacts/manifest.js';
import { imageBatches, type SkippedFile } from '../../data/batches.js';
import type { Box, DetectionSample } from '../../data/detection/types.js';
import { resizeGeometry } from '../../data/preprocess.js';
import { MlctlError } from '../../errors.js';
import { boxIou, cocoPerCategory, cocoPrCurve, type CocoDetection, type CocoGroundTruth, type CocoStatName, type XYWH } from '../../metrics/coco.js';
import type { InferenceEngine } from '../../runtime/engine.js';
import { floatIO, runFloat } from '../../runtime/float.js';
import type { Logger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { detectorEngine, runDetector } from './engine.js';
import { detectionResults } from './index.js';
import { cocoEvaluation, detectionsOf, type Detection } from './standin.js';

/** How many skipped files are listed by path (all are counted). */
const SKIPPED_LISTED = 20;

/** The IoU at which the report's pictures count a detection as a hit. */
export const DRAW_IOU = 0.5;

export interface DetectionClassMetrics {
  label: string;
  categoryId: number;
  /** Ground-truth boxes (crowd regions not counted) and detections of this class. */
  truth: number;
  detections: number;
  /** -1 when the class has no ground truth in the split (COCO's convention). */
  AP: number;
  AP50: number;
  AP75: number;
  AR100: number;
}

/** A picture as the report draws it: truth boxes (found or missed) and the detections at the drawing threshold. */
export interface DetectionExample {
  ref: string;
  width: number;
  height: number;
  truth: Array<{ label: number; box: Box; found: boolean }>;
  detections: Array<{ label: number; score: number; box: Box; hit: boolean }>;
  /** False positives + missed objects at the drawing threshold. */
  errors: number;
}

export interface DetectionMetrics {
  /** Pictures evaluated. */
  count: number;
  labels: string[];
  truthBoxes: number;
  detections: number;
  /** The 12 numbers of pycocotools' COCOeval.summarize(), by name (-1 where a setting has no ground truth). */
  coco: Record<CocoStatName, number>;
  perClass: DetectionClassMetrics[];
  /** Interpolated precision at recall 0, .01 … 1 (COCO's 101 points): the mean over classes, and per class. */
  pr: Array<{ iou: number; mean: number[]; perClass: number[][] }>;
  /** The score above which the report draws detections: the best F1 at IoU .5 over the split (matched as COCO does). */
  threshold: { score: number; precision: number; recall: number; f1: number };
  /** The pictures with mistakes at that threshold, the most first (at most --worst). */
  examples: DetectionExample[];
}

export interface DetectionEvalOptions {
  batchSize?: number;
  concurrency?: number;
  logger?: Logger;
  label?: string;
  /** Pictures kept for the report (default 10). */
  worst?: number;
}

export interface DetectionEngineEvaluation {
  metrics: DetectionMetrics;
  skipped: { count: number; files: SkippedFile[] };
  seconds: number;
  /** The first evaluated example's input (a realistic latency input); not serialised. */
  example?: Float32Array;
}

const xywh = (b: Box): XYWH => [b.x, b.y, b.width, b.height];

interface ImageRecord {
  sample: DetectionSample;
  dets: Detection[];
}

/**
 * Greedy matching at IoU .5 as COCO does it (per class, detections by score, each to the best unmatched truth;
 * crowd truth absorbs detections without counting): which detections hit and which truth boxes were found.
 */
function matchImage(rec: ImageRecord, classes: number): { hit: Array<boolean | undefined>; found: boolean[] } {
  const hit: Array<boolean | undefined> = rec.dets.map(() => false);
  const found = rec.sample.boxes.map(() => false);
  for (let c = 0; c < classes; c++) {
    const gi = rec.sample.boxes.flatMap((b, i) => (b.label === c ? [i] : []));
    const di = rec.dets.flatMap((d, i) => (d.label === c ? [i] : []));
    if (!gi.length || !di.length) continue;
    // Non-crowd truth first, as pycocotools sorts it: a detection prefers a real object to a crowd region.
    gi.sort((a, b) => Number(!!rec.sample.boxes[a]!.iscrowd) - Number(!!rec.sample.boxes[b]!.iscrowd));
    const crowd = gi.map((g) => !!rec.sample.boxes[g]!.iscrowd);
    const iou = boxIou(di.map((d) => xywh(rec.dets[d]!.box)), gi.map((g) => xywh(rec.sample.boxes[g]!.box)), crowd);
    const taken = new Set<number>();
    di.forEach((d, k) => {
      let best = -1;
      let bestIou = DRAW_IOU - 1e-10;
      for (let j = 0; j < gi.length; j++) {
        if (taken.has(j) && !crowd[j]) continue;
        if (best > -1 && !crowd[best] && crowd[j]) break;
        const v = iou[k * gi.length + j]!;
        if (v < bestIou) continue;
        bestIou = v;
        best = j;
      }
      if (best < 0) return;
      if (crowd[best]) hit[d] = undefined;
      else {
        taken.add(best);
        hit[d] = true;
        found[gi[best]!] = true;
      }
    });
  }
  return { hit, found };
}

/** Accumulates pictures and their detections; finish() runs the COCO evaluation once over all of them. */
export function detectionAccumulator(labels: readonly string[], section: DetectionSection, opts: { worst?: number } = {}) {
  const records: ImageRecord[] = [];
  return {
    get count() {
      return records.length;
    },
    add(sample: DetectionSample, dets: Detection[]) {
      records.push({ sample, dets });
    },
    finish(): DetectionMetrics {
      const catIds = section.categoryIds;
      const gts: CocoGroundTruth[] = [];
      const dts: CocoDetection[] = [];
      const truth = labels.map(() => 0);
      const detected = labels.map(() => 0);
      // Image ids are positions: a dataset's own ids may repeat across splits merged by --split all.
      records.forEach((r, i) => {
        for (const b of r.sample.boxes) {
          gts.push({ id: gts.length + 1, image_id: i + 1, category_id: catIds[b.label]!, bbox: xywh(b.box), iscrowd: b.iscrowd ? 1 : 0 });
          if (!b.iscrowd) truth[b.label]!++;
        }
        for (const d of r.dets) {
          dts.push({ image_id: i + 1, category_id: catIds[d.label]!, bbox: xywh(d.box), score: d.score });
          detected[d.label]!++;
        }
      });
      const ev = cocoEvaluation(records.map((_, i) => i + 1), [...catIds], gts, dts);
      const per = cocoPerCategory(ev);
      const pr = [0.5, 0.75].map((iou) => ({
        iou,
        mean: cocoPrCurve(ev, { iouThr: iou }).map((p) => p.precision),
        perClass: catIds.map((_, k) => cocoPrCurve(ev, { iouThr: iou, k }).map((p) => p.precision)),
      }));
      // The drawing threshold: sweep every detection's score, best F1 of hits at IoU .5 (crowd matches ignored).
      const matches = records.map((r) => matchImage(r, labels.length));
      const scored = records.flatMap((r, i) => r.dets.map((d, j) => ({ s: d.score, hit: matches[i]!.hit[j] }))).filter((x) => x.hit !== undefined);
      scored.sort((a, b) => b.s - a.s);
      const nTruth = truth.reduce((a, b) => a + b, 0);
      let tp = 0;
      let best = { score: 1, precision: 0, recall: 0, f1: 0 };
      scored.forEach((x, i) => {
        if (x.hit) tp++;
        if (i + 1 < scored.length && scored[i + 1]!.s === x.s) return;
        const f1 = (2 * tp) / (i + 1 + nTruth);
        if (f1 > best.f1) best = { score: x.s, precision: tp / (i + 1), recall: nTruth ? tp / nTruth : 0, f1 };
      });
      const examples = records
        .map((r, i) => {
          const m = matches[i]!;
          const keep = r.dets.map((d) => d.score >= best.score);
          const detections = r.dets.flatMap((d, j) => (keep[j] ? [{ label: d.label, score: d.score, box: d.box, hit: m.hit[j] !== false }] : []));
          // A truth box counts as found only through a detection that is drawn.
          const found = r.sample.boxes.map(() => false);
          const again = matchImage({ sample: r.sample, dets: r.dets.filter((_, j) => keep[j]) }, labels.length);
          again.found.forEach((f, g) => (found[g] = f));
          const truthBoxes = r.sample.boxes.flatMap((b, g) => (b.iscrowd ? [] : [{ label: b.label, box: b.box, found: found[g]! }]));
          const errors = detections.filter((d) => !d.hit).length + truthBoxes.filter((t) => !t.found).length;
          return { ref: r.sample.path, width: r.sample.width, height: r.sample.height, truth: truthBoxes, detections, errors };
        })
        .filter((e) => e.errors > 0)
        .sort((a, b) => b.errors - a.errors)
        .slice(0, opts.worst ?? 10);
      return {
        count: records.length,
        labels: [...labels],
        truthBoxes: nTruth,
        detections: dts.length,
        coco: ev.stats,
        perClass: labels.map((label, k) => ({ label, categoryId: catIds[k]!, truth: truth[k]!, detections: detected[k]!, AP: per[k]!.AP, AP50: per[k]!.AP50, AP75: per[k]!.AP75, AR100: per[k]!.AR100 })),
        pr,
        threshold: best,
        examples,
      };
    },
  };
}

/** A batch of preprocessed pictures → each one's detections in its own pixels (every box, up to maxDetections). */
type Detector = (x: Float32Array, pictures: readonly DetectionSample[]) => Promise<Detection[][]>;

/** mlctl's own CenterNet: one float map per picture, decoded as the stand-in always has. */
function centerNetDetector(engine: InferenceEngine, section: CenterNetSection): Detector {
  const io = floatIO(engine);
  const size = section.grid[0] * section.grid[1] * (section.classes + 4);
  if (io.outputSize !== size && io.outputSize !== -1) {
    throw new MlctlError('PACKAGE_INVALID', [engine.description, `the model outputs ${io.outputSize} values per example but its detection section describes a ${section.grid.join('x')}x${section.classes + 4} map`]);
  }
  return async (x, pictures) => {
    const out = await runFloat(engine, x, pictures.length);
    return pictures.map((sample, i) => detectionsOf(out.subarray(i * size, (i + 1) * size), section, sample));
  };
}

/**
 * An imported head (yolo, torchvision): run as serve and predict run it (tasks/detection/engine.ts, every output, one
 * picture at a time without a batch dimension) and decoded by the task's results(), boxes mapped to each picture by
 * the section's resize rule.
 */
function importedDetector(engine: InferenceEngine, spec: ImageInputSpec, section: DetectionSection, labels: readonly string[]): Detector {
  const detector = detectorEngine(engine, { input: spec }, engine.description);
  const model = { labels: [...labels], detection: section, input: spec, output: { name: detector.outputs[0]?.name ?? 'output', kind: 'detection' as const, size: 0 } };
  return async (x, pictures) => {
    const runs = await runDetector(detector, spec, x, pictures.length);
    const found: Detection[][] = [];
    for (const run of runs) {
      const here = pictures.slice(found.length, found.length + run.n);
      const images = here.map((p) => resizeGeometry(p.width, p.height, spec.width, spec.height, section.resize));
      for (const r of detectionResults(run.outputs, model, { images, minScore: 0, maxDetections: section.maxDetections })) {
        found.push(r.detections.map((d) => ({ label: d.classIndex, score: d.score, box: d.box })));
      }
    }
    return found;
  };
}

/** Evaluate an engine on pictures whose boxes' labels index into `labels` (the model's label order). */
export async function evaluateDetectionEngine(
  engine: InferenceEngine,
  spec: ImageInputSpec,
  section: DetectionSection,
  samples: readonly DetectionSample[],
  labels: readonly string[],
  opts: DetectionEvalOptions = {},
): Promise<DetectionEngineEvaluation> {
  const detect = section.head === 'centernet' ? centerNetDetector(engine, section) : importedDetector(engine, spec, section, labels);
  const acc = detectionAccumulator(labels, section, opts);
  const skipped: SkippedFile[] = [];
  let skippedCount = 0;
  let example: Float32Array | undefined;
  const start = Date.now();
  const progress = opts.logger ? createProgress({ label: opts.label ?? 'evaluating', total: samples.length, unit: 'img', logger: opts.logger }) : undefined;
  // The sample's position rides in the label slot, so each output finds its picture (size and boxes) again.
  const batches = imageBatches(samples.map((s, i) => ({ path: s.path, label: i })), {
    spec,
    batchSize: Math.max(1, opts.batchSize ?? 16),
    concurrency: opts.concurrency,
    onSkip: (s) => {
      skippedCount++;
      if (skipped.length < SKIPPED_LISTED) skipped.push(s);
      if (skippedCount <= 5) opts.logger?.warn(`skipped ${s.path}: ${s.reason}${skippedCount === 5 ? ' (further skips are counted, not logged)' : ''}`);
      progress?.tick(1);
    },
  });
  for await (const batch of batches) {
    if (!example) example = batch.x.slice(0, spec.height * spec.width * 3);
    const pictures = Array.from(batch.labels.subarray(0, batch.count), (k) => samples[k]!);
    const found = await detect(batch.x, pictures);
    pictures.forEach((sample, i) => acc.add(sample, found[i]!));
    progress?.tick(batch.count);
  }
  const seconds = (Date.now() - start) / 1000;
  progress?.done(`${acc.count} images${skippedCount ? `, ${skippedCount} skipped` : ''}`);
  if (acc.count === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['evaluation', `none of its ${samples.length} image(s) could be decoded (${skipped[0]?.reason ?? 'unknown reason'})`]);
  return { metrics: acc.finish(), skipped: { count: skippedCount, files: skipped }, seconds, example };
}

// Detection datasets in one call: the format is recognised from the files (COCO JSON, YOLO data.yaml or
// images/+labels/, Pascal VOC XML), read into one shape, split (declared splits as given, the rest carved from train
// with a seeded shuffle), and refused when it has invalid annotations unless the caller chose to leave them out.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../../errors.js';
import { deriveSeed } from '../../util/random.js';
import { carve, checkSplitParams } from '../splits.js';
import { findCocoFiles, readCocoDataset } from './coco.js';
import { boxArea, cocoSizeClass, issuePlace, type DetectionDataset, type DetectionFormat, type DetectionSample, type DetectionSplitName } from './types.js';
import { findYoloConfig, looksLikeYoloFolder, readYoloDataset } from './yolo.js';
import { looksLikeVocFolder, readVocDataset } from './voc.js';

export * from './types.js';
export { cocoDocument } from './coco.js';
export { vocDocument } from './voc.js';

export const DETECTION_FORMATS: readonly DetectionFormat[] = ['coco', 'yolo', 'voc'];

/** Which format a path holds, by its files; undefined when none fits. */
export async function detectFormat(root: string): Promise<DetectionFormat | undefined> {
  const yaml = await findYoloConfig(root);
  if (yaml && (await fs.stat(yaml).then(() => true, () => false))) return 'yolo';
  if (await findCocoFiles(root).catch(() => undefined)) return 'coco';
  if (await looksLikeYoloFolder(root)) return 'yolo';
  if (await looksLikeVocFolder(root)) return 'voc';
  return undefined;
}

/** Read a dataset in `format` (default: recognised from its files). Invalid annotations are in `issues`, not in samples. */
export async function readDetectionDataset(root: string, format?: DetectionFormat): Promise<DetectionDataset> {
  const abs = path.resolve(root);
  if (!(await fs.stat(abs).then(() => true, () => false))) throw new MlctlError('DATA_DIR_MISSING', [abs]);
  const f = format ?? (await detectFormat(abs));
  if (!f) throw new MlctlError('DATA_NOT_FOUND', [abs, 'it is none of the detection formats: COCO (annotations.json), YOLO (data.yaml, or images/ + labels/ + classes.txt), Pascal VOC (Annotations/*.xml)']);
  if (f === 'coco') return readCocoDataset(abs);
  if (f === 'yolo') return readYoloDataset(abs);
  return readVocDataset(abs);
}

export interface DetectionSplitOptions {
  validationSplit: number;
  testSplit?: number;
  seed: number;
  /** Leave invalid annotations out (each is still reported) instead of refusing the dataset. */
  skipInvalid?: boolean;
}

/**
 * Train/val/test samples: the dataset's own splits where it declares them; a missing val (and test, when asked for)
 * is carved out of train by image with a seeded shuffle (the same seed and files give the same split).
 */
export function detectionSplits(ds: DetectionDataset, opts: DetectionSplitOptions): Record<DetectionSplitName, DetectionSample[]> {
  const { validationSplit: v, testSplit: t = 0, seed } = opts;
  checkSplitParams({ validationSplit: v, testSplit: t });
  if (ds.issues.length && !opts.skipInvalid) {
    const shown = ds.issues.slice(0, 3).map((i) => `${issuePlace(i)}: ${i.message}`).join('; ');
    throw new MlctlError('DATA_INVALID_BOXES', [ds.root, String(ds.issues.length), shown + (ds.issues.length > 3 ? '; …' : '')]);
  }
  const train = [...(ds.splits.train ?? [])];
  const out: Record<DetectionSplitName, DetectionSample[]> = { train, val: ds.splits.val ?? [], test: ds.splits.test ?? [] };
  const carveVal = !ds.splits.val && v > 0;
  const carveTest = !ds.splits.test && t > 0;
  if (carveVal || carveTest) {
    // The image folders' cut (data/splits.ts), over the whole set: a picture holds boxes of several classes.
    const cut = carve(train, deriveSeed(seed, 'detection'), carveVal ? v : 0, carveTest ? t : 0);
    if (carveTest) out.test = cut.test;
    if (carveVal) out.val = cut.val;
    out.train = cut.train;
  }
  return out;
}

export interface DetectionStats {
  images: number;
  /** Images without any box (background images). */
  emptyImages: number;
  boxes: number;
  perClass: Array<{ label: string; boxes: number; images: number; small: number; medium: number; large: number }>;
  /** COCO size classes over all boxes. */
  sizes: { small: number; medium: number; large: number };
}

/** Boxes per class and per COCO size class, images with and without boxes. */
export function detectionStats(samples: readonly DetectionSample[], labels: readonly string[]): DetectionStats {
  const perClass = labels.map((label) => ({ label, boxes: 0, images: 0, small: 0, medium: 0, large: 0 }));
  const sizes = { small: 0, medium: 0, large: 0 };
  let boxes = 0;
  for (const s of samples) {
    const seen = new Set<number>();
    for (const b of s.boxes) {
      const c = perClass[b.label]!;
      const size = cocoSizeClass(boxArea(b.box));
      c.boxes++;
      c[size]++;
      sizes[size]++;
      boxes++;
      if (!seen.has(b.label)) {
        seen.add(b.label);
        c.images++;
      }
    }
  }
  return { images: samples.length, emptyImages: samples.filter((s) => s.boxes.length === 0).length, boxes, perClass, sizes };
}

// `mlctl predict --format coco`: a COCO detection results file ([{image_id, category_id, bbox: [x, y, w, h], score}],
// what pycocotools' COCO.loadRes and every COCO evaluator read). The rows are written first as JSON Lines beside it
// (<out>.rows.jsonl, resumable and shardable like any predict output); a finished run turns them into the JSON array.
// Image ids come from a COCO annotations file (--coco-images, matched on file_name) or are listing positions + 1.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../artifacts/manifest.js';
import { writeFileAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import { categoryIdsOf } from '../tasks/detection/index.js';
import { readRows } from './output.js';

/** Where the per-box rows of a COCO results file are kept. */
export const cocoRowsPath = (out: string) => `${out}.rows.jsonl`;

/** image file name (as the annotations give it, '/'-separated) → COCO image id. */
export type CocoImageIds = Map<string, number>;

/** The images of a COCO annotations file: file_name → id. */
export async function readCocoImageIds(file: string): Promise<CocoImageIds> {
  let doc: { images?: unknown };
  try {
    doc = JSON.parse(await fs.readFile(file, 'utf8')) as { images?: unknown };
  } catch (err) {
    throw new MlctlError('OPTION_INVALID', [`--coco-images ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(err as Error).message.split('\n')[0]})`}; give a COCO annotations file (with "images": [{"id", "file_name"}])`]);
  }
  const images = doc?.images;
  if (!Array.isArray(images)) throw new MlctlError('OPTION_INVALID', [`--coco-images ${file} has no "images" array; give a COCO annotations file`]);
  const ids: CocoImageIds = new Map();
  images.forEach((im: { id?: unknown; file_name?: unknown }, i) => {
    if (!Number.isInteger(im?.id) || typeof im?.file_name !== 'string' || !im.file_name) throw new MlctlError('OPTION_INVALID', [`--coco-images ${file}: images[${i}] needs an integer "id" and a "file_name"`]);
    ids.set(im.file_name.split(path.sep).join('/'), im.id as number);
  });
  return ids;
}

/** The id of an input (as listed) in the annotations: the file name it ends with, longest match first. */
function idOf(input: string, ids: CocoImageIds): number | undefined {
  const key = input.split(path.sep).join('/');
  const parts = key.split('/');
  for (let i = 0; i < parts.length; i++) {
    const id = ids.get(parts.slice(i).join('/'));
    if (id !== undefined) return id;
  }
  return undefined;
}

export interface CocoResultsSummary {
  detections: number;
  images: number;
}

/**
 * Turn the per-box JSON Lines rows into the COCO results file at `out` (written atomically). Inputs missing from the
 * annotations are refused (pycocotools' loadRes rejects image ids its ground truth lacks), naming the first few.
 */
export async function writeCocoResults(rowsFile: string, out: string, m: Pick<Manifest, 'labels' | 'output' | 'detection'>, ids?: CocoImageIds): Promise<CocoResultsSummary> {
  const catOf = new Map(m.labels.map((l, i) => [l, categoryIdsOf(m)[i]!]));
  const results: string[] = [];
  const missing: string[] = [];
  let images = 0;
  let last: number | undefined;
  for await (const row of readRows(rowsFile, 'jsonl')) {
    if (row.error) continue;
    if (row.index !== last) images++;
    last = row.index;
    const doc = JSON.parse(row.raw) as { label?: string; score?: number; x?: number; y?: number; width?: number; height?: number };
    if (doc.label === undefined) continue; // an image without boxes
    const imageId = ids ? idOf(row.input, ids) : row.index + 1;
    if (imageId === undefined) {
      if (!missing.includes(row.input)) missing.push(row.input);
      continue;
    }
    const categoryId = catOf.get(doc.label);
    if (categoryId === undefined) throw new MlctlError('PREDICT_OUTPUT', [rowsFile, `a row has the label "${doc.label}", which the model does not have`]);
    results.push(JSON.stringify({ image_id: imageId, category_id: categoryId, bbox: [doc.x, doc.y, doc.width, doc.height], score: doc.score }));
  }
  if (missing.length) {
    throw new MlctlError('OPTION_CONFLICT', [`${missing.length} input(s) are not images of the --coco-images file (e.g. ${missing.slice(0, 3).join(', ')}); their ids would not be in its ground truth. The rows are kept in ${rowsFile}: fix the annotations or the inputs and run again with --resume`]);
  }
  await writeFileAtomic(out, `[${results.length ? '\n' + results.join(',\n') + '\n' : ''}]\n`, { syncDir: true });
  return { detections: results.length, images };
}

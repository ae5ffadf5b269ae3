// COCO object-detection annotations (cocodataset/cocoapi coco.py): {images: [{id, file_name, width, height}],
// annotations: [{id, image_id, category_id, bbox: [x, y, w, h] pixels, area, iscrowd}], categories: [{id, name}]}.
// A folder may hold one annotations file, one per split folder (Roboflow's train/_annotations.coco.json), or COCO's own
// annotations/instances_<split>.json beside the image folders.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../../errors.js';
import { displayedSize } from './image-size.js';
import type { DatasetIssue, DetectionDataset, DetectionSample, DetectionSplitName } from './types.js';
import { checkBox } from './validate.js';

const SINGLE_FILES = ['annotations.json', '_annotations.coco.json', 'instances.json'];
const SPLIT_DIRS: Array<[DetectionSplitName, string[]]> = [['train', ['train']], ['val', ['val', 'valid', 'validation']], ['test', ['test']]];

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

/** Where a COCO dataset's annotation files are, by split ('train' alone when the dataset declares no split). */
export async function findCocoFiles(root: string): Promise<Partial<Record<DetectionSplitName, string>> | undefined> {
  if (root.endsWith('.json')) return { train: root };
  for (const f of SINGLE_FILES) if (await exists(path.join(root, f))) return { train: path.join(root, f) };
  const found: Partial<Record<DetectionSplitName, string>> = {};
  for (const [split, names] of SPLIT_DIRS) {
    for (const n of names) {
      for (const f of SINGLE_FILES) if (!found[split] && (await exists(path.join(root, n, f)))) found[split] = path.join(root, n, f);
    }
  }
  const annDir = path.join(root, 'annotations');
  const listed = await fs.readdir(annDir).catch(() => [] as string[]);
  for (const f of listed.filter((n) => /^instances_.*\.json$/.test(n)).sort()) {
    const split = /train/.test(f) ? 'train' : /val/.test(f) ? 'val' : /test/.test(f) ? 'test' : undefined;
    if (split && !found[split]) found[split] = path.join(annDir, f);
  }
  return Object.keys(found).length ? found : undefined;
}

/** Folders an image's file_name may be relative to, most specific first. */
function imageDirs(jsonFile: string): string[] {
  const dir = path.dirname(jsonFile);
  const parent = path.dirname(dir);
  // instances_val2017.json → val2017/ beside annotations/ (COCO's own layout).
  const set = path.basename(jsonFile).match(/^instances_(.+)\.json$/)?.[1];
  return [dir, path.join(dir, 'images'), ...(set ? [path.join(parent, set), path.join(parent, 'images', set)] : []), path.join(parent, 'images')];
}

interface RawImage { id?: unknown; file_name?: unknown; width?: unknown; height?: unknown }
interface RawAnn { id?: unknown; image_id?: unknown; category_id?: unknown; bbox?: unknown; iscrowd?: unknown }
interface RawCat { id?: unknown; name?: unknown }

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isPos = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

async function readJson(file: string): Promise<{ images?: unknown; annotations?: unknown; categories?: unknown }> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new MlctlError('DATA_NOT_FOUND', [file, (err as Error).message]);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the top level is not an object');
    return v;
  } catch (err) {
    throw new MlctlError('DATA_INVALID', [file, `is not COCO JSON (${(err as Error).message}); expected {"images": [...], "annotations": [...], "categories": [...]}`]);
  }
}

/** The categories of a file: id → name, refusing what is not a list of {id, name}. */
function readCategories(file: string, raw: unknown): Array<{ id: number; name: string }> {
  if (!Array.isArray(raw) || raw.length === 0) throw new MlctlError('DATA_INVALID', [file, 'has no "categories" list: each class needs {"id": n, "name": "..."}']);
  const cats = raw.map((c: RawCat, i) => {
    if (!c || !isInt(c.id) || typeof c.name !== 'string' || !c.name) throw new MlctlError('DATA_INVALID', [file, `categories[${i}] needs an integer "id" and a "name"`]);
    return { id: c.id, name: c.name };
  });
  const dup = cats.find((c, i) => cats.findIndex((d) => d.id === c.id || d.name === c.name) !== i);
  if (dup) throw new MlctlError('DATA_INVALID', [file, `category id ${dup.id} or name "${dup.name}" appears twice`]);
  return cats.sort((a, b) => a.id - b.id);
}

/** One annotation file's images and boxes, the boxes checked; labels index into `labels` (by category id). */
async function readSplit(file: string, labelOf: Map<number, number>, labels: string[], issues: DatasetIssue[]): Promise<DetectionSample[]> {
  const json = await readJson(file);
  if (!Array.isArray(json.images)) throw new MlctlError('DATA_INVALID', [file, 'has no "images" list']);
  if (json.annotations !== undefined && !Array.isArray(json.annotations)) throw new MlctlError('DATA_INVALID', [file, '"annotations" is not a list']);
  const rel = path.basename(file);
  const dirs = imageDirs(file);
  const samples = new Map<number, DetectionSample>();
  for (const [i, img] of (json.images as RawImage[]).entries()) {
    if (!img || !isInt(img.id) || typeof img.file_name !== 'string' || !img.file_name) {
      issues.push({ kind: 'malformed', file: rel, index: i, message: `images[${i}] needs an integer "id" and a "file_name"` });
      continue;
    }
    if (samples.has(img.id)) {
      issues.push({ kind: 'malformed', file: rel, index: i, message: `images[${i}] repeats image id ${img.id}` });
      continue;
    }
    let where: string | undefined;
    for (const d of dirs) if (await exists(path.join(d, img.file_name))) (where ??= path.join(d, img.file_name));
    if (!where) {
      issues.push({ kind: 'missing-image', file: rel, index: i, message: `image ${img.file_name} (id ${img.id}) is in none of ${dirs.map((d) => path.relative(process.cwd(), d) || '.').join(', ')}` });
      continue;
    }
    let size = isPos(img.width) && isPos(img.height) ? { width: img.width, height: img.height } : undefined;
    if (!size) {
      try {
        size = await displayedSize(where);
      } catch (err) {
        issues.push({ kind: 'unreadable-image', file: rel, index: i, message: `image ${img.file_name}: ${(err as Error).message}` });
        continue;
      }
    }
    samples.set(img.id, { id: img.id, path: where, ...size, boxes: [] });
  }
  for (const [i, a] of ((json.annotations ?? []) as RawAnn[]).entries()) {
    const where = { file: rel, index: i, source: `${rel} annotations[${i}]` };
    const bbox = a?.bbox;
    if (!a || !isInt(a.image_id) || !Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number')) {
      issues.push({ kind: 'malformed', file: rel, index: i, message: `annotations[${i}] needs "image_id" and "bbox": [x, y, width, height]` });
      continue;
    }
    const sample = samples.get(a.image_id);
    if (!sample) {
      // An image listed but missing on disk was reported already; an id never listed is its own problem.
      if (!(json.images as RawImage[]).some((img) => img?.id === a.image_id)) issues.push({ kind: 'malformed', file: rel, index: i, message: `annotations[${i}] refers to image id ${String(a.image_id)}, which "images" does not list` });
      continue;
    }
    const label = isInt(a.category_id) ? labelOf.get(a.category_id) : undefined;
    const r = checkBox({ x: bbox[0], y: bbox[1], width: bbox[2], height: bbox[3] }, sample, label, label !== undefined ? `"${labels[label]}"` : `id ${String(a.category_id)}`, where, { iscrowd: a.iscrowd === 1 || a.iscrowd === true });
    if ('issue' in r) issues.push(r.issue);
    else sample.boxes.push(r.annotation);
  }
  return [...samples.values()];
}

export async function readCocoDataset(root: string): Promise<DetectionDataset> {
  const files = await findCocoFiles(root);
  if (!files) throw new MlctlError('DATA_NOT_FOUND', [root, `no COCO annotations file (${SINGLE_FILES.join(', ')}, <split>/_annotations.coco.json or annotations/instances_<split>.json)`]);
  const entries = Object.entries(files) as Array<[DetectionSplitName, string]>;
  // Every split must name the same categories: labels and ids come from the first file.
  const first = await readJson(entries[0]![1]);
  const cats = readCategories(entries[0]![1], first.categories);
  for (const [, f] of entries.slice(1)) {
    const other = readCategories(f, (await readJson(f)).categories);
    if (JSON.stringify(other) !== JSON.stringify(cats)) throw new MlctlError('DATA_INVALID', [f, `its categories differ from ${path.basename(entries[0]![1])}'s; every split must use the same category ids and names`]);
  }
  const labels = cats.map((c) => c.name);
  const labelOf = new Map(cats.map((c, i) => [c.id, i]));
  const issues: DatasetIssue[] = [];
  const splits: DetectionDataset['splits'] = {};
  for (const [split, f] of entries) splits[split] = await readSplit(f, labelOf, labels, issues);
  return { format: 'coco', root, labels, categoryIds: cats.map((c) => c.id), splits, issues };
}

/** A COCO annotations document for samples (datasets synth, conversions): images, boxes, categories. */
export function cocoDocument(samples: readonly DetectionSample[], labels: readonly string[], categoryIds: readonly number[], relativeTo: string): Record<string, unknown> {
  let annId = 0;
  return {
    images: samples.map((s) => ({ id: s.id, file_name: path.relative(relativeTo, s.path).split(path.sep).join('/'), width: s.width, height: s.height })),
    annotations: samples.flatMap((s) =>
      s.boxes.map((b) => ({
        id: ++annId,
        image_id: s.id,
        category_id: categoryIds[b.label],
        bbox: [b.box.x, b.box.y, b.box.width, b.box.height],
        area: b.box.width * b.box.height,
        iscrowd: b.iscrowd ? 1 : 0,
      })),
    ),
    categories: labels.map((name, i) => ({ id: categoryIds[i], name })),
  };
}

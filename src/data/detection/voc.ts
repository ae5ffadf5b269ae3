// Pascal VOC detection datasets: Annotations/*.xml (annotation/{filename, size/{width, height}, object/{name,
// bndbox/{xmin, ymin, xmax, ymax}, difficult}}) with JPEGImages/ and ImageSets/Main/{train,val,test}.txt, or a folder
// of images each with its .xml beside it. Corners are 1-based inclusive pixels (the VOC devkit's convention), so a box
// spans [xmin − 1, xmax] in pixel coordinates; "difficult" objects are ignored when scoring, as the devkit does.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { MlctlError } from '../../errors.js';
import { IMAGE_EXTENSIONS } from '../imagefolder.js';
import { displayedSize } from './image-size.js';
import type { DatasetIssue, DetectionDataset, DetectionSample, DetectionSplitName } from './types.js';
import { checkBox } from './validate.js';

const exists = (p: string) => fs.stat(p).then(() => true, () => false);
const CLASS_FILES = ['labels.txt', 'classes.txt'];

interface VocObject {
  name?: unknown;
  difficult?: unknown;
  bndbox?: { xmin?: unknown; ymin?: unknown; xmax?: unknown; ymax?: unknown };
}
interface VocAnnotation {
  filename?: unknown;
  size?: { width?: unknown; height?: unknown };
  object?: VocObject[];
}

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: true, isArray: (name) => name === 'object', processEntities: true });

export async function looksLikeVocFolder(root: string): Promise<boolean> {
  if (await exists(path.join(root, 'Annotations'))) return true;
  const names = await fs.readdir(root).catch(() => [] as string[]);
  return names.some((n) => n.endsWith('.xml'));
}

/** Box in pixels from VOC's 1-based inclusive corners. */
export function vocToBox(xmin: number, ymin: number, xmax: number, ymax: number) {
  return { x: xmin - 1, y: ymin - 1, width: xmax - xmin + 1, height: ymax - ymin + 1 };
}

async function parseFile(file: string): Promise<VocAnnotation> {
  const text = await fs.readFile(file, 'utf8');
  let doc: { annotation?: VocAnnotation };
  try {
    doc = parser.parse(text, true) as { annotation?: VocAnnotation };
  } catch (err) {
    throw new Error(`is not well-formed XML (${String((err as Error).message).split('\n')[0]})`);
  }
  if (!doc.annotation || typeof doc.annotation !== 'object') throw new Error('has no <annotation> element');
  return doc.annotation;
}

interface Layout {
  annotations: string;
  images: string;
  /** Split lists (ImageSets/Main), when the dataset has them. */
  sets: Partial<Record<DetectionSplitName, string>>;
}

async function layoutOf(root: string): Promise<Layout> {
  const devkit = await exists(path.join(root, 'Annotations'));
  const sets: Layout['sets'] = {};
  if (devkit) {
    for (const s of ['train', 'val', 'test'] as const) {
      const f = path.join(root, 'ImageSets', 'Main', `${s}.txt`);
      if (await exists(f)) sets[s] = f;
    }
  }
  return { annotations: devkit ? path.join(root, 'Annotations') : root, images: devkit ? path.join(root, 'JPEGImages') : root, sets };
}

async function findImage(dir: string, filename: string | undefined, stem: string): Promise<string | undefined> {
  if (filename && (await exists(path.join(dir, filename)))) return path.join(dir, filename);
  for (const ext of IMAGE_EXTENSIONS) if (await exists(path.join(dir, stem + ext))) return path.join(dir, stem + ext);
  return undefined;
}

export async function readVocDataset(root: string): Promise<DetectionDataset> {
  const layout = await layoutOf(root);
  const files = (await fs.readdir(layout.annotations)).filter((n) => n.endsWith('.xml')).sort();
  if (!files.length) throw new MlctlError('DATA_NOT_FOUND', [root, 'no VOC annotation files (Annotations/*.xml, or image.xml beside each image)']);
  const issues: DatasetIssue[] = [];
  // The class list: labels.txt / classes.txt when given (then other names are unknown classes), else every name used.
  let labels: string[] | undefined;
  for (const f of CLASS_FILES) {
    const text = await fs.readFile(path.join(root, f), 'utf8').catch(() => undefined);
    if (text !== undefined) {
      labels = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
      break;
    }
  }
  const parsed: Array<{ file: string; ann: VocAnnotation }> = [];
  for (const f of files) {
    const rel = path.relative(root, path.join(layout.annotations, f));
    try {
      parsed.push({ file: f, ann: await parseFile(path.join(layout.annotations, f)) });
    } catch (err) {
      issues.push({ kind: 'malformed', file: rel, message: `${rel} ${(err as Error).message}` });
    }
  }
  labels ??= [...new Set(parsed.flatMap(({ ann }) => (ann.object ?? []).map((o) => String(o.name ?? '')).filter(Boolean)))].sort();
  const labelOf = new Map(labels.map((l, i) => [l, i]));
  const byStem = new Map<string, DetectionSample>();
  let nextId = 1;
  for (const { file, ann } of parsed) {
    const rel = path.relative(root, path.join(layout.annotations, file));
    const stem = file.slice(0, -4);
    const image = await findImage(layout.images, typeof ann.filename === 'string' ? ann.filename : undefined, stem);
    if (!image) {
      issues.push({ kind: 'missing-image', file: rel, message: `${rel}: image ${String(ann.filename ?? stem)} is not in ${path.relative(root, layout.images) || '.'}` });
      continue;
    }
    const w = Number(ann.size?.width);
    const h = Number(ann.size?.height);
    let size = w > 0 && h > 0 ? { width: w, height: h } : undefined;
    try {
      size ??= await displayedSize(image);
    } catch (err) {
      issues.push({ kind: 'unreadable-image', file: rel, message: `${rel}: image ${path.basename(image)}: ${(err as Error).message}` });
      continue;
    }
    const sample: DetectionSample = { id: nextId++, path: image, ...size, boxes: [] };
    (ann.object ?? []).forEach((o, i) => {
      const where = { file: rel, index: i, source: `${rel} object ${i}` };
      const b = o.bndbox ?? {};
      const corners = [b.xmin, b.ymin, b.xmax, b.ymax].map(Number);
      if (typeof o.name !== 'string' && typeof o.name !== 'number') {
        issues.push({ kind: 'malformed', file: rel, index: i, message: `object ${i} has no <name>` });
        return;
      }
      if (corners.some((v) => !Number.isFinite(v))) {
        issues.push({ kind: 'malformed', file: rel, index: i, message: `object ${i} (${String(o.name)}) needs <bndbox> with numeric xmin, ymin, xmax, ymax` });
        return;
      }
      const name = String(o.name);
      const r = checkBox(vocToBox(corners[0]!, corners[1]!, corners[2]!, corners[3]!), sample, labelOf.get(name), `"${name}"`, where, { iscrowd: Number(o.difficult) === 1 });
      if ('issue' in r) issues.push(r.issue);
      else sample.boxes.push(r.annotation);
    });
    byStem.set(stem, sample);
  }
  const splits: DetectionDataset['splits'] = {};
  const sets = Object.entries(layout.sets) as Array<[DetectionSplitName, string]>;
  if (!sets.length) splits.train = [...byStem.values()];
  for (const [s, f] of sets) {
    const ids = (await fs.readFile(f, 'utf8')).split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
    const listed: DetectionSample[] = [];
    for (const id of ids) {
      const sample = byStem.get(id);
      if (sample) listed.push(sample);
      else if (!issues.some((i) => path.basename(i.file, '.xml') === id)) issues.push({ kind: 'missing-image', file: path.relative(root, f), message: `${path.relative(root, f)} lists ${id}, which has no annotation file` });
    }
    splits[s] = listed;
  }
  return { format: 'voc', root, labels, categoryIds: labels.map((_, i) => i + 1), splits, issues };
}

/** A VOC annotation document for one sample (datasets synth --format voc). */
export function vocDocument(sample: DetectionSample, labels: readonly string[]): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const objects = sample.boxes.map((b) => {
    const [xmin, ymin] = [Math.round(b.box.x) + 1, Math.round(b.box.y) + 1];
    const [xmax, ymax] = [Math.round(b.box.x + b.box.width), Math.round(b.box.y + b.box.height)];
    return `  <object>\n    <name>${esc(labels[b.label]!)}</name>\n    <difficult>${b.iscrowd ? 1 : 0}</difficult>\n    <bndbox><xmin>${xmin}</xmin><ymin>${ymin}</ymin><xmax>${xmax}</xmax><ymax>${ymax}</ymax></bndbox>\n  </object>`;
  });
  return `<annotation>\n  <filename>${esc(path.basename(sample.path))}</filename>\n  <size><width>${sample.width}</width><height>${sample.height}</height><depth>3</depth></size>\n${objects.join('\n')}\n</annotation>\n`;
}

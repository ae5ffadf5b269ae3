// YOLO detection datasets as Ultralytics lays them out (docs "datasets/detect"): images/<split>/*.jpg with
// labels/<split>/*.txt beside them (one line per box: class cx cy w h, normalised 0–1), and a data.yaml with path,
// train, val, test (folders, lists of folders, or .txt lists of images) and names (a list or {index: name}).
// Without data.yaml, a classes.txt (one name per line) names the classes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MlctlError } from '../../errors.js';
import { IMAGE_EXTENSIONS } from '../imagefolder.js';
import { displayedSize } from './image-size.js';
import type { DatasetIssue, DetectionDataset, DetectionSample, DetectionSplitName } from './types.js';
import { checkBox } from './validate.js';

const YAML_FILES = ['data.yaml', 'dataset.yaml', 'data.yml'];
const SPLITS: DetectionSplitName[] = ['train', 'val', 'test'];

const exists = (p: string) => fs.stat(p).then(() => true, () => false);
const isImage = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());

/** Ultralytics' img2label_paths: the last /images/ becomes /labels/, the extension .txt. */
export function labelPathFor(image: string): string {
  const parts = image.split(path.sep);
  const i = parts.lastIndexOf('images');
  if (i >= 0) parts[i] = 'labels';
  const p = parts.join(path.sep);
  return p.slice(0, p.length - path.extname(p).length) + '.txt';
}

export async function findYoloConfig(root: string): Promise<string | undefined> {
  if (/\.ya?ml$/i.test(root)) return root;
  for (const f of YAML_FILES) if (await exists(path.join(root, f))) return path.join(root, f);
  return undefined;
}

/** A folder is a YOLO dataset without data.yaml when it has images/ and labels/ side by side. */
export async function looksLikeYoloFolder(root: string): Promise<boolean> {
  return (await exists(path.join(root, 'images'))) && (await exists(path.join(root, 'labels')));
}

async function listImages(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => path.join(e.parentPath, e.name)).sort();
}

/** The images of a split entry: a folder, a .txt list of image paths (relative to the dataset root), or a list of either. */
async function splitImages(entry: unknown, base: string, yamlFile: string): Promise<string[]> {
  const items = Array.isArray(entry) ? entry : [entry];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') throw new MlctlError('DATA_INVALID', [yamlFile, `has a split entry ${JSON.stringify(item)}; each is a folder or a .txt list of images`]);
    const p = path.resolve(base, item);
    if (p.endsWith('.txt')) {
      const text = await fs.readFile(p, 'utf8').catch((err: Error) => {
        throw new MlctlError('DATA_NOT_FOUND', [p, err.message]);
      });
      out.push(...text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).map((l) => path.resolve(base, l)));
    } else {
      if (!(await exists(p))) throw new MlctlError('DATA_NOT_FOUND', [p, `the folder ${yamlFile} names for a split does not exist`]);
      out.push(...(await listImages(p)));
    }
  }
  return out;
}

function namesFrom(raw: unknown, yamlFile: string): string[] {
  if (Array.isArray(raw) && raw.length && raw.every((n) => typeof n === 'string' || typeof n === 'number')) return raw.map(String);
  if (raw && typeof raw === 'object') {
    const entries = Object.entries(raw as Record<string, unknown>).map(([k, v]) => [Number(k), v] as const);
    const n = entries.length;
    if (n && entries.every(([k, v]) => Number.isInteger(k) && k >= 0 && k < n && (typeof v === 'string' || typeof v === 'number'))) {
      const names: string[] = new Array(n);
      for (const [k, v] of entries) names[k] = String(v);
      if (names.every((x) => x !== undefined)) return names;
    }
  }
  throw new MlctlError('DATA_INVALID', [yamlFile, 'has no usable "names": give a list of class names, or {0: name, 1: name, …} with every index from 0']);
}

/** One label file's boxes, each line checked; a missing file is an image without objects. */
async function readLabels(sample: DetectionSample, labels: string[], root: string, issues: DatasetIssue[]): Promise<void> {
  const file = labelPathFor(sample.path);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return;
  }
  const rel = path.relative(root, file);
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = { file: rel, line: i + 1, source: `${rel}:${i + 1}` };
    const parts = line.split(/\s+/);
    const v = parts.map(Number);
    if (parts.length !== 5 || v.some((x) => !Number.isFinite(x))) {
      issues.push({ kind: 'malformed', file: rel, line: i + 1, message: `"${line.slice(0, 80)}" is not "class cx cy w h" (5 numbers)` });
      return;
    }
    const [c, cx, cy, w, h] = v as [number, number, number, number, number];
    if (!Number.isInteger(c)) {
      issues.push({ kind: 'malformed', file: rel, line: i + 1, message: `class "${parts[0]}" is not a whole number` });
      return;
    }
    if ([cx, cy, w, h].some((x) => x < 0 || x > 1)) {
      issues.push({ kind: 'outside-image', file: rel, line: i + 1, message: `"${line.slice(0, 80)}" has a coordinate outside 0–1 (YOLO boxes are normalised to the image size)` });
      return;
    }
    const box = { x: (cx - w / 2) * sample.width, y: (cy - h / 2) * sample.height, width: w * sample.width, height: h * sample.height };
    const r = checkBox(box, sample, c >= 0 && c < labels.length ? c : undefined, c >= 0 && c < labels.length ? `"${labels[c]}"` : String(c), where);
    if ('issue' in r) issues.push(r.issue);
    else sample.boxes.push(r.annotation);
  });
}

async function samplesOf(images: string[], labels: string[], root: string, issues: DatasetIssue[], nextId: { v: number }): Promise<DetectionSample[]> {
  const out: DetectionSample[] = [];
  for (const p of images) {
    let size: { width: number; height: number };
    try {
      size = await displayedSize(p);
    } catch (err) {
      issues.push({ kind: (await exists(p)) ? 'unreadable-image' : 'missing-image', file: path.relative(root, p), message: `image ${path.relative(root, p)}: ${(err as Error).message}` });
      continue;
    }
    const sample: DetectionSample = { id: nextId.v++, path: p, ...size, boxes: [] };
    await readLabels(sample, labels, root, issues);
    out.push(sample);
  }
  return out;
}

export async function readYoloDataset(root: string): Promise<DetectionDataset> {
  const yamlFile = await findYoloConfig(root);
  const issues: DatasetIssue[] = [];
  const splits: DetectionDataset['splits'] = {};
  const nextId = { v: 1 };
  if (yamlFile) {
    let cfg: Record<string, unknown>;
    try {
      cfg = (parseYaml(await fs.readFile(yamlFile, 'utf8')) ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new MlctlError('DATA_INVALID', [yamlFile, `is not valid YAML (${(err as Error).message})`]);
    }
    const labels = namesFrom(cfg.names, yamlFile);
    const base = typeof cfg.path === 'string' ? path.resolve(path.dirname(yamlFile), cfg.path) : path.dirname(yamlFile);
    if (cfg.train === undefined) throw new MlctlError('DATA_INVALID', [yamlFile, 'has no "train" entry (the folder or list of training images)']);
    for (const s of SPLITS) if (cfg[s] !== undefined && cfg[s] !== null) splits[s] = await samplesOf(await splitImages(cfg[s], base, yamlFile), labels, base, issues, nextId);
    return { format: 'yolo', root: yamlFile, labels, categoryIds: labels.map((_, i) => i + 1), splits, issues };
  }
  const classesFile = path.join(root, 'classes.txt');
  const text = await fs.readFile(classesFile, 'utf8').catch(() => undefined);
  if (text === undefined) throw new MlctlError('DATA_NOT_FOUND', [root, 'a YOLO folder needs data.yaml (names, train, val) or classes.txt (one class name per line) beside images/ and labels/']);
  const labels = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const imagesDir = path.join(root, 'images');
  const sub = new Set((await fs.readdir(imagesDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name));
  const declared = SPLITS.filter((s) => sub.has(s) || (s === 'val' && sub.has('valid')));
  if (!declared.length) splits.train = await samplesOf(await listImages(imagesDir), labels, root, issues, nextId);
  for (const s of declared) splits[s] = await samplesOf(await listImages(path.join(imagesDir, sub.has(s) ? s : 'valid')), labels, root, issues, nextId);
  return { format: 'yolo', root, labels, categoryIds: labels.map((_, i) => i + 1), splits, issues };
}

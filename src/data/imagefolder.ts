// Keras-style image folders: one subfolder per class, or explicit train/ val/ test/ subfolders.
// Produces sample lists and deterministic stratified splits; decoding happens later, streamed (data/batches.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff'];

export interface Sample {
  path: string;
  label: number;
}

export type SplitName = 'train' | 'val' | 'test';

export interface ImageFolder {
  root: string;
  classes: string[];
  /** 'explicit' when the folder has train/ (and val/, test/) subfolders, else 'flat'. */
  layout: 'flat' | 'explicit';
  /** All samples (flat layout) — split with splitSamples(). */
  samples: Sample[];
  /** Pre-split samples (explicit layout). */
  explicit?: Partial<Record<SplitName, Sample[]>>;
}

const SPLIT_DIRS: Record<string, SplitName> = { train: 'train', val: 'val', validation: 'val', test: 'test' };

function isImage(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

async function imagesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory() && !e.name.startsWith('.')) out.push(...(await imagesIn(full)));
    else if ((e.isFile() || e.isSymbolicLink()) && isImage(e.name)) out.push(full);
  }
  return out.sort();
}

async function readClassDirs(root: string, classes: string[], requireNonEmpty: boolean): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let label = 0; label < classes.length; label++) {
    const dir = path.join(root, classes[label]!);
    const files = await imagesIn(dir).catch(() => []);
    if (files.length === 0 && requireNonEmpty) throw new MlctlError('DATA_EMPTY_CLASS', [dir]);
    for (const f of files) samples.push({ path: f, label });
  }
  return samples;
}

export async function scanImageFolder(root: string): Promise<ImageFolder> {
  const abs = path.resolve(root);
  const stat = await fs.stat(abs).catch(() => undefined);
  if (!stat) throw new MlctlError('DATA_DIR_MISSING', [root]);
  if (!stat.isDirectory()) throw new MlctlError('DATA_NOT_DIR', [root]);
  const dirs = await subdirs(abs);
  const splitDirs = dirs.filter((d) => d.toLowerCase() in SPLIT_DIRS);
  if (splitDirs.some((d) => SPLIT_DIRS[d.toLowerCase()] === 'train') || (splitDirs.length > 0 && splitDirs.length === dirs.length)) {
    // Explicit layout: classes come from the union of class folders across splits (train's define the order).
    const classSet = new Set<string>();
    for (const d of splitDirs) for (const c of await subdirs(path.join(abs, d))) classSet.add(c);
    const classes = [...classSet].sort();
    if (classes.length < 2) throw new MlctlError('DATA_TOO_FEW_CLASSES', [root, classes.length]);
    const explicit: Partial<Record<SplitName, Sample[]>> = {};
    for (const d of splitDirs) {
      const split = SPLIT_DIRS[d.toLowerCase()]!;
      explicit[split] = await readClassDirs(path.join(abs, d), classes, split === 'train');
    }
    return { root: abs, classes, layout: 'explicit', samples: Object.values(explicit).flat(), explicit };
  }
  const candidates = dirs;
  const withImages: string[] = [];
  for (const c of candidates) {
    const files = await imagesIn(path.join(abs, c));
    if (files.length > 0) withImages.push(c);
  }
  if (withImages.length < 2) {
    throw new MlctlError('DATA_TOO_FEW_CLASSES', [root, withImages.length]);
  }
  const empty = candidates.filter((c) => !withImages.includes(c));
  if (empty.length > 0) throw new MlctlError('DATA_EMPTY_CLASS', [path.join(abs, empty[0]!)]);
  const classes = candidates;
  return { root: abs, classes, layout: 'flat', samples: await readClassDirs(abs, classes, true) };
}

export interface SplitOptions {
  validationSplit: number;
  testSplit?: number;
  seed: number;
}

/**
 * Deterministic stratified split: within each class, files are ordered by path, shuffled with a seed derived
 * from --seed and the class, and cut into test / val / train. The same inputs always give the same split.
 */
export function splitSamples(samples: Sample[], classes: string[], opts: SplitOptions): Record<SplitName, Sample[]> {
  const { validationSplit: v, testSplit: t = 0, seed } = opts;
  if (!(v >= 0 && t >= 0 && v + t < 1)) {
    throw new MlctlError('DATA_BAD_SPLIT', [`--validation-split (${v}) and --test-split (${t}) must be ≥ 0 and add up to less than 1`]);
  }
  const out: Record<SplitName, Sample[]> = { train: [], val: [], test: [] };
  for (let label = 0; label < classes.length; label++) {
    const items = samples.filter((s) => s.label === label).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    shuffleInPlace(items, createRng(deriveSeed(seed, classes[label]!)));
    const n = items.length;
    // Every class with enough images gets at least one held-out example when a split is asked for.
    const nt = t > 0 && n >= 3 ? Math.max(1, Math.round(n * t)) : 0;
    const nv = v > 0 && n - nt >= 2 ? Math.max(1, Math.round(n * v)) : 0;
    out.test.push(...items.slice(0, nt));
    out.val.push(...items.slice(nt, nt + nv));
    out.train.push(...items.slice(nt + nv));
  }
  return out;
}

/** Splits for a folder: explicit subfolders when present, else the deterministic stratified split. */
export function datasetSplits(folder: ImageFolder, opts: SplitOptions): Record<SplitName, Sample[]> {
  if (folder.layout === 'explicit') {
    const e = folder.explicit!;
    if (e.val || e.test) return { train: e.train ?? [], val: e.val ?? [], test: e.test ?? [] };
    // Only train/ given: carve validation out of it.
    const split = splitSamples(e.train ?? [], folder.classes, { ...opts, testSplit: 0 });
    return { train: split.train, val: split.val, test: [] };
  }
  return splitSamples(folder.samples, folder.classes, opts);
}

/** Images per class in a list of samples. */
export function countBy(samples: readonly Sample[], classes: number): number[] {
  const c = new Array<number>(classes).fill(0);
  for (const s of samples) c[s.label]!++;
  return c;
}

/** Scan a dataset folder and split it, checking every class has training images; throws clear MlctlErrors. */
export async function loadTrainingData(opts: SplitOptions & { data: string }): Promise<{ folder: ImageFolder; splits: Record<SplitName, Sample[]> }> {
  const folder = await scanImageFolder(opts.data);
  const splits = datasetSplits(folder, opts);
  if (splits.train.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `${folder.root} has no training images`]);
  const empty = countBy(splits.train, folder.classes.length).findIndex((c) => c === 0);
  if (empty >= 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `class ${folder.classes[empty]} has no training images; add images or lower --validation-split/--test-split`]);
  return { folder, splits };
}

// Keras-style image folders: one subfolder per class, or explicit train/ val/ test/ subfolders.
// Produces sample lists (data/splits.ts splits them); decoding happens later, streamed (data/batches.ts).
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';

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

/**
 * What an entry is with symbolic links followed: a class or split folder may be a link (datasets assembled from
 * elsewhere). A link that leads nowhere counts as a file, so an image behind it is reported unreadable, not lost.
 */
async function kindOf(dir: string, e: Dirent): Promise<'dir' | 'file' | undefined> {
  if (e.isDirectory()) return 'dir';
  if (e.isFile()) return 'file';
  if (!e.isSymbolicLink()) return undefined;
  const st = await fs.stat(path.join(dir, e.name)).catch(() => undefined);
  return !st || st.isFile() ? 'file' : st.isDirectory() ? 'dir' : undefined;
}

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) if (!e.name.startsWith('.') && (await kindOf(dir, e)) === 'dir') out.push(e.name);
  return out.sort();
}

/**
 * Image files under `dir`, links followed. `seen` holds the real paths of the folders walked for this class, so a
 * link back to an ancestor (a loop) or to a folder already read is walked once.
 */
async function imagesIn(dir: string, seen = new Set<string>()): Promise<string[]> {
  const real = await fs.realpath(dir);
  if (seen.has(real)) return [];
  seen.add(real);
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    const kind = await kindOf(dir, e);
    if (kind === 'dir' && !e.name.startsWith('.')) out.push(...(await imagesIn(full, seen)));
    else if (kind === 'file' && isImage(e.name)) out.push(full);
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

/** Images per class in a list of samples. */
export function countBy(samples: readonly Sample[], classes: number): number[] {
  const c = new Array<number>(classes).fill(0);
  for (const s of samples) c[s.label]!++;
  return c;
}

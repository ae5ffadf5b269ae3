// Image-folder reader: layouts, deterministic stratified splits, bad layouts and unreadable files.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile, copyFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { datasetSplits, describeSplits, planSplits, resolveSplitParams, splitSamples, unusedSplitOptions } from '../src/data/splits.js';
import { imageBatches } from '../src/data/batches.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { MlctlError } from '../src/errors.js';
import { synthDataset, tempDir } from './helpers/fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

async function expectCode(p: Promise<unknown>, code: string): Promise<MlctlError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(MlctlError);
  expect((err as MlctlError).code).toBe(code);
  return err as MlctlError;
}

describe('scanImageFolder', () => {
  it('reads one subfolder per class in alphabetical order', async () => {
    await synthDataset(dir, { classes: 3, perClass: 5, size: 16 });
    const folder = await scanImageFolder(dir);
    expect(folder.layout).toBe('flat');
    expect(folder.classes).toEqual(['circle', 'square', 'triangle']);
    expect(folder.samples).toHaveLength(15);
    for (const s of folder.samples) expect(path.basename(path.dirname(s.path))).toBe(folder.classes[s.label]);
  });

  it('ignores non-image and hidden files', async () => {
    await synthDataset(dir, { classes: 2, perClass: 3, size: 16 });
    await writeFile(path.join(dir, 'circle', 'notes.txt'), 'hello');
    await writeFile(path.join(dir, 'circle', '.hidden.jpg'), 'x');
    const folder = await scanImageFolder(dir);
    expect(folder.samples).toHaveLength(6);
  });

  it('rejects a missing folder, a file, one class and an empty class with clear errors', async () => {
    const missing = await expectCode(scanImageFolder(path.join(dir, 'nope')), 'DATA_DIR_MISSING');
    expect(missing.message).toContain('--data');
    await writeFile(path.join(dir, 'file.txt'), 'x');
    await expectCode(scanImageFolder(path.join(dir, 'file.txt')), 'DATA_NOT_DIR');
    await synthDataset(path.join(dir, 'one'), { classes: 2, perClass: 2, size: 16 });
    const one = path.join(dir, 'one');
    const { rm } = await import('node:fs/promises');
    await rm(path.join(one, 'square'), { recursive: true });
    const few = await expectCode(scanImageFolder(one), 'DATA_TOO_FEW_CLASSES');
    expect(few.message).toMatch(/at least 2/);
    await mkdir(path.join(one, 'emptyclass'));
    await mkdir(path.join(one, 'third'));
    await copyFile(path.join(one, 'circle', 'circle_00000.jpg'), path.join(one, 'third', 'a.jpg'));
    const empty = await expectCode(scanImageFolder(one), 'DATA_EMPTY_CLASS');
    expect(empty.message).toContain('emptyclass');
  });

  it('uses explicit train/val/test subfolders when present', async () => {
    for (const split of ['train', 'val', 'test']) await synthDataset(path.join(dir, split), { classes: 2, perClass: 3, size: 16, seed: split.length });
    const folder = await scanImageFolder(dir);
    expect(folder.layout).toBe('explicit');
    expect(folder.classes).toEqual(['circle', 'square']);
    const splits = datasetSplits(folder, { validationSplit: 0.5, seed: 1 });
    expect(splits.train).toHaveLength(6);
    expect(splits.val).toHaveLength(6);
    expect(splits.test).toHaveLength(6);
    expect(splits.val.every((s) => s.path.includes(`${path.sep}val${path.sep}`))).toBe(true);
  });
});

describe('symbolic links', () => {
  it('follows symlinked class folders and split folders', async () => {
    const store = path.join(dir, 'store');
    await synthDataset(store, { classes: 3, perClass: 4, size: 16 });
    const flat = path.join(dir, 'flat');
    await mkdir(flat);
    for (const c of ['circle', 'square', 'triangle']) await symlink(path.join(store, c), path.join(flat, c));
    const f = await scanImageFolder(flat);
    expect(f.classes).toEqual(['circle', 'square', 'triangle']);
    expect(f.samples).toHaveLength(12);
    // Paths stay under the folder given (the links), not where they point.
    expect(f.samples.every((x) => x.path.startsWith(flat + path.sep))).toBe(true);
    const split = path.join(dir, 'split');
    await mkdir(split);
    await symlink(store, path.join(split, 'train'));
    await symlink(flat, path.join(split, 'test'));
    const e = await scanImageFolder(split);
    expect(e.layout).toBe('explicit');
    expect(e.explicit?.train).toHaveLength(12);
    expect(e.explicit?.test).toHaveLength(12);
  });

  it('walks a link loop once, and keeps a dangling image link to report it unreadable', async () => {
    await synthDataset(dir, { classes: 2, perClass: 3, size: 16 });
    await mkdir(path.join(dir, 'circle', 'more'));
    await symlink(path.join(dir, 'circle'), path.join(dir, 'circle', 'more', 'loop'));
    await symlink(path.join(dir, 'nowhere.jpg'), path.join(dir, 'square', 'gone.jpg'));
    const f = await scanImageFolder(dir);
    expect(f.samples.filter((x) => x.label === 0)).toHaveLength(3);
    expect(f.samples.filter((x) => x.label === 1).map((x) => path.basename(x.path))).toContain('gone.jpg');
  });
});

describe('planSplits (one split for every --data command)', () => {
  it('train/ + test/ without val/: validation carved from train/, seeded and stratified, test/ as it is', async () => {
    await synthDataset(path.join(dir, 'train'), { classes: 3, perClass: 10, size: 16, seed: 1 });
    await synthDataset(path.join(dir, 'test'), { classes: 3, perClass: 4, size: 16, seed: 2 });
    const folder = await scanImageFolder(dir);
    const plan = planSplits(folder, { seed: 42, validationSplit: 0.2, testSplit: 0 });
    expect(plan.source).toEqual({ train: 'folder', val: 'carved', test: 'folder' });
    for (let label = 0; label < 3; label++) expect(plan.splits.val.filter((x) => x.label === label)).toHaveLength(2);
    expect(plan.splits.train).toHaveLength(24);
    expect(plan.splits.test).toHaveLength(12);
    expect(plan.splits.val.every((x) => x.path.includes(`${path.sep}train${path.sep}`))).toBe(true);
    expect(new Set([...plan.splits.train, ...plan.splits.val].map((x) => x.path)).size).toBe(30);
    expect(describeSplits(plan)).toBe('24 train / 6 val / 12 test images (train/ + test/; val: 0.2 of each class of train/, seed 42)');
    // Same seed, same split; another seed, another one.
    const again = planSplits(await scanImageFolder(dir), { seed: 42, validationSplit: 0.2, testSplit: 0 });
    expect(again.splits.val.map((x) => x.path)).toEqual(plan.splits.val.map((x) => x.path));
    const other = planSplits(folder, { seed: 7, validationSplit: 0.2, testSplit: 0 });
    expect(other.splits.val.map((x) => x.path).sort()).not.toEqual(plan.splits.val.map((x) => x.path).sort());
    // A given --test-split has nothing to do with a test/ folder: it is said, not silently ignored.
    const given = resolveSplitParams({ testSplit: 0.1 });
    expect(unusedSplitOptions(planSplits(folder, given.params), given.from)).toEqual(['--test-split 0.1 is not used: the data has a test/ folder']);
  });

  it('a folder of class folders names the split it made; a fraction that yields nothing is said', async () => {
    await synthDataset(dir, { classes: 2, perClass: 10, size: 16 });
    const plan = planSplits(await scanImageFolder(dir), { seed: 42, validationSplit: 0.2, testSplit: 0.1 });
    expect(describeSplits(plan)).toBe('14 train / 4 val / 2 test images (each class split: validation 0.2, test 0.1, seed 42)');
    const none = planSplits(await scanImageFolder(dir), { seed: 42, validationSplit: 0, testSplit: 0 });
    expect(describeSplits(none)).toBe('20 train / 0 val / 0 test images (each class split: validation 0, test 0, seed 42)');
  });

  it('resolves options given, else the model\'s recorded split, else 42 / 0.2 / 0', () => {
    expect(resolveSplitParams({})).toEqual({ params: { seed: 42, validationSplit: 0.2, testSplit: 0 }, from: { seed: 'default', validationSplit: 'default', testSplit: 'default' } });
    const r = resolveSplitParams({ seed: 3 }, { seed: 9, validationSplit: 0.1, testSplit: 0.05 });
    expect(r.params).toEqual({ seed: 3, validationSplit: 0.1, testSplit: 0.05 });
    expect(r.from).toEqual({ seed: 'option', validationSplit: 'model', testSplit: 'model' });
    expect(() => resolveSplitParams({ validationSplit: 0.6, testSplit: 0.5 })).toThrow(/add up to less than 1/);
  });
});

describe('splitSamples', () => {
  const classes = ['a', 'b', 'c'];
  const samples = classes.flatMap((c, label) => Array.from({ length: 20 + label * 10 }, (_, i) => ({ path: `/d/${c}/${String(i).padStart(3, '0')}.jpg`, label })));

  it('is deterministic for a seed and differs across seeds', () => {
    const a = splitSamples(samples, classes, { validationSplit: 0.2, testSplit: 0.1, seed: 42 });
    const b = splitSamples([...samples].reverse(), classes, { validationSplit: 0.2, testSplit: 0.1, seed: 42 });
    const c = splitSamples(samples, classes, { validationSplit: 0.2, testSplit: 0.1, seed: 43 });
    expect(b.val.map((s) => s.path).sort()).toEqual(a.val.map((s) => s.path).sort());
    expect(c.val.map((s) => s.path).sort()).not.toEqual(a.val.map((s) => s.path).sort());
  });

  it('is stratified, disjoint and complete', () => {
    const s = splitSamples(samples, classes, { validationSplit: 0.2, testSplit: 0.1, seed: 7 });
    for (let label = 0; label < 3; label++) {
      const n = samples.filter((x) => x.label === label).length;
      expect(s.val.filter((x) => x.label === label)).toHaveLength(Math.round(n * 0.2));
      expect(s.test.filter((x) => x.label === label)).toHaveLength(Math.round(n * 0.1));
    }
    const all = [...s.train, ...s.val, ...s.test].map((x) => x.path);
    expect(new Set(all).size).toBe(samples.length);
  });

  it('rejects split fractions that leave nothing to train on', () => {
    expect(() => splitSamples(samples, classes, { validationSplit: 0.6, testSplit: 0.5, seed: 1 })).toThrow(/add up to less than 1/);
  });
});

describe('imageBatches', () => {
  it('streams fixed-size batches, skipping and reporting corrupt files', async () => {
    await synthDataset(dir, { classes: 2, perClass: 5, size: 16 });
    await writeFile(path.join(dir, 'circle', 'broken.jpg'), Buffer.from('definitely not a jpeg'));
    await writeFile(path.join(dir, 'square', 'truncated.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    const folder = await scanImageFolder(dir);
    expect(folder.samples).toHaveLength(12);
    const skipped: string[] = [];
    const spec = imageInputSpec(8, 'caffe');
    const sizes: number[] = [];
    let seen = 0;
    for await (const batch of imageBatches(folder.samples, { spec, batchSize: 4, concurrency: 3, onSkip: (s) => skipped.push(path.basename(s.path)) })) {
      sizes.push(batch.count);
      expect(batch.x.length).toBe(batch.count * 8 * 8 * 3);
      expect(batch.paths).toHaveLength(batch.count);
      seen += batch.count;
    }
    expect(skipped.sort()).toEqual(['broken.jpg', 'truncated.png']);
    expect(seen).toBe(10);
    expect(sizes).toEqual([4, 4, 2]);
  });
});

// `mlctl train` when a class cannot be read: all its images corrupt (feature path and augmentation path), only its
// validation images corrupt, or too few images in a split — exit 1 with DATA_CLASS_UNREADABLE naming the class and
// the skipped files, and no package written.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { datasetSplits } from '../src/data/splits.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;
let artifacts: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-unreadable-');
  data = path.join(tmp.dir, 'data');
  artifacts = tmp.artifacts;
  await synthDataset(data, { classes: 3, perClass: 6, size: 32, seed: 3 });
  await selectBackend('cpu');
});
afterAll(async () => {
  await tmp.cleanup();
});

const cli = (...args: string[]) => runCli([...args, '--json', '--quiet', '--backend', 'cpu']);

const COMMON = ['--weights', 'none', '--image-size', '32', '--batch-size', '8', '--engine', 'tfjs', '--seed', '5', '--epochs', '1'];

/** A copy of the dataset with the given files of `cls` replaced by bytes that are no image. */
async function corrupted(name: string, cls: string, which: (files: string[]) => string[]): Promise<{ dir: string; broken: string[] }> {
  const dir = path.join(tmp.dir, name);
  await fs.cp(data, dir, { recursive: true });
  const files = (await fs.readdir(path.join(dir, cls))).sort().map((f) => path.join(dir, cls, f));
  const broken = which(files);
  for (const f of broken) await fs.writeFile(f, 'not an image at all');
  return { dir, broken };
}

describe('classes that cannot be read', () => {
  it('fails (feature path and augmentation path) when every image of a class fails to decode, naming class and files', async () => {
    const { dir, broken } = await corrupted('all-bad', 'circle', (f) => f);
    for (const extra of [[], ['--augment', 'flip']]) {
      const r = await cli('train', '--data', dir, '--name', 'unreadable', ...COMMON, ...extra);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.json.error.code).toBe('DATA_CLASS_UNREADABLE');
      expect(r.json.error.message).toMatch(/class circle has 0 readable image\(s\) in the train split, fewer than the 2 it needs/);
      expect(r.json.error.message).toContain(path.basename(broken[0]!));
    }
    await expect(fs.stat(path.join(artifacts, 'unreadable'))).rejects.toThrow();
  });

  it("fails when a class's validation images all fail to decode", async () => {
    const folder = await scanImageFolder(data);
    const val = datasetSplits(folder, { validationSplit: 0.2, testSplit: 0, seed: 5 }).val.filter((s) => folder.classes[s.label] === 'square');
    expect(val.length).toBeGreaterThan(0);
    const names = new Set(val.map((s) => path.basename(s.path)));
    const { dir } = await corrupted('val-bad', 'square', (f) => f.filter((p) => names.has(path.basename(p))));
    const r = await cli('train', '--data', dir, '--name', 'unreadable-val', ...COMMON);
    expect(r.code).toBe(1);
    expect(r.json.error.message).toMatch(/class square has 0 readable image\(s\) in the validation split/);
    expect(r.json.error.message).toContain([...names][0]!);
  });

  it('fails when a class has fewer than the minimum readable training images', async () => {
    const cls = (await fs.readdir(data)).sort()[0]!;
    const { dir } = await corrupted('few', cls, (f) => f.slice(0, f.length - 1));
    const r = await cli('train', '--data', dir, '--name', 'unreadable-few', ...COMMON, '--validation-split', '0');
    expect(r.code).toBe(1);
    expect(r.json.error.message).toMatch(new RegExp(`class ${cls} has 1 readable image\\(s\\) in the train split, fewer than the 2 it needs`));
  });
});

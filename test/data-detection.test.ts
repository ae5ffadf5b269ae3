// Detection datasets: the three formats people have (COCO JSON, YOLO txt, Pascal VOC XML) read into one shape from
// files written here, every malformed or invalid annotation reported with its file and line/index, splits carved
// deterministically, and `mlctl datasets synth --task detection` / `inspect` end to end.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFormat, detectionSplits, detectionStats, readDetectionDataset, type DetectionDataset } from '../src/data/detection/index.js';
import { generateDetectionDataset } from '../src/data/detection/synth.js';
import { vocToBox } from '../src/data/detection/voc.js';
import { MlctlError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('mlctl-detdata-');
});
afterAll(async () => {
  await tmp.cleanup();
});

const synth = (name: string, layout: 'coco' | 'yolo' | 'voc', images = 12) => generateDetectionDataset({ out: path.join(tmp.dir, name), layout, images, size: 64, classes: 3, seed: 9 });
const allBoxes = (ds: DetectionDataset) =>
  (ds.splits.train ?? []).map((s) => ({ file: path.basename(s.path), boxes: s.boxes.map((b) => ({ label: ds.labels[b.label], ...b.box })) })).sort((a, b) => a.file.localeCompare(b.file));

async function rejects(p: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(MlctlError);
  expect((err as MlctlError).code).toBe(code);
  expect((err as Error).message).toMatch(text);
}

describe('reading the three formats', () => {
  it('reads back the same pictures, classes and boxes whichever layout synth wrote', async () => {
    const read = {} as Record<string, DetectionDataset>;
    for (const layout of ['coco', 'yolo', 'voc'] as const) {
      const res = await synth(`same-${layout}`, layout);
      expect(await detectFormat(res.out)).toBe(layout);
      read[layout] = await readDetectionDataset(res.out);
      expect(read[layout]!.issues).toEqual([]);
      expect(read[layout]!.labels).toEqual(['circle', 'square', 'triangle']);
    }
    const coco = allBoxes(read.coco!);
    expect(coco.reduce((a, s) => a + s.boxes.length, 0)).toBeGreaterThan(10);
    expect(coco.some((s) => s.boxes.length === 0)).toBe(true);
    // Synth boxes are whole pixels: VOC's 1-based corners round-trip exactly, YOLO's 6 decimals to 1e-4 px.
    expect(allBoxes(read.voc!)).toEqual(coco);
    const yolo = allBoxes(read.yolo!);
    yolo.forEach((s, i) => s.boxes.forEach((b, j) => {
      const c = coco[i]!.boxes[j]!;
      expect(b.label).toBe(c.label);
      for (const k of ['x', 'y', 'width', 'height'] as const) expect(b[k]).toBeCloseTo(c[k], 3);
    }));
  });

  it('takes VOC corners as 1-based inclusive pixels', () => {
    expect(vocToBox(1, 1, 10, 20)).toEqual({ x: 0, y: 0, width: 10, height: 20 });
  });

  it('COCO: malformed files are refused; bad annotations are listed by index, kept out of the samples', async () => {
    const res = await synth('coco-bad', 'coco', 4);
    const file = path.join(res.out, 'annotations.json');
    const doc = JSON.parse(await fs.readFile(file, 'utf8'));
    const img = doc.images[0];
    doc.annotations.push(
      { id: 901, image_id: img.id, category_id: 99, bbox: [1, 1, 5, 5] },
      { id: 902, image_id: img.id, category_id: 1, bbox: [60, 60, 30, 30] },
      { id: 903, image_id: img.id, category_id: 1, bbox: [5, 5, 0, 4] },
      { id: 904, image_id: 4242, category_id: 1, bbox: [1, 1, 2, 2] },
      { id: 905, image_id: img.id, category_id: 1, bbox: [1, 2, 3] },
    );
    doc.images.push({ id: 77, file_name: 'nowhere.jpg', width: 64, height: 64 });
    await fs.writeFile(file, JSON.stringify(doc));
    const ds = await readDetectionDataset(res.out);
    const n = doc.annotations.length;
    expect(ds.issues.map((i) => [i.kind, i.index])).toEqual([
      ['missing-image', doc.images.length - 1],
      ['unknown-class', n - 5],
      ['outside-image', n - 4],
      ['zero-area', n - 3],
      ['malformed', n - 2],
      ['malformed', n - 1],
    ]);
    expect(ds.issues[1]!.message).toMatch(/class id 99/);
    const kept = ds.splits.train!.reduce((a, s) => a + s.boxes.length, 0);
    expect(kept).toBe(n - 5);
    await rejects(Promise.resolve().then(() => detectionSplits(ds, { validationSplit: 0.2, seed: 1 })), 'DATA_INVALID_BOXES', /6 invalid annotation\(s\).*annotations\.json \[\d+\].*--skip-invalid/);
    expect(detectionSplits(ds, { validationSplit: 0, seed: 1, skipInvalid: true }).train).toHaveLength(4);

    await fs.writeFile(file, '{"images": [');
    await rejects(readDetectionDataset(res.out), 'DATA_INVALID', /is not COCO JSON/);
    await fs.writeFile(file, JSON.stringify({ images: [], annotations: [] }));
    await rejects(readDetectionDataset(res.out), 'DATA_INVALID', /no "categories" list/);
  });

  it('YOLO: each bad line is reported with file:line; names as a dict; a data.yaml with a list of folders and a .txt list', async () => {
    const res = await synth('yolo-bad', 'yolo', 4);
    const labels = path.join(res.out, 'labels');
    const first = (await fs.readdir(labels)).sort()[0]!;
    await fs.appendFile(path.join(labels, first), ['0 0.5 0.5 0.2', '7 0.5 0.5 0.1 0.1', '1 1.5 0.5 0.1 0.1', 'x 0.5 0.5 0.1 0.1', '2 0.5 0.5 0 0.1', ''].join('\n'));
    const before = (await fs.readFile(path.join(labels, first), 'utf8')).split('\n').filter(Boolean).length - 5;
    const ds = await readDetectionDataset(res.out);
    expect(ds.issues.map((i) => [i.kind, i.file, i.line])).toEqual([
      ['malformed', path.join('labels', first), before + 1],
      ['unknown-class', path.join('labels', first), before + 2],
      ['outside-image', path.join('labels', first), before + 3],
      ['malformed', path.join('labels', first), before + 4],
      ['zero-area', path.join('labels', first), before + 5],
    ]);

    // The Ultralytics layout: images/{train,val} + labels/{train,val}, data.yaml with names as a dict.
    const root = path.join(tmp.dir, 'yolo-split');
    for (const split of ['train', 'val']) {
      await fs.mkdir(path.join(root, 'images', split), { recursive: true });
      await fs.mkdir(path.join(root, 'labels', split), { recursive: true });
    }
    const imgs = (await fs.readdir(path.join(res.out, 'images'))).sort();
    for (const [i, f] of imgs.entries()) {
      const split = i < 3 ? 'train' : 'val';
      await fs.copyFile(path.join(res.out, 'images', f), path.join(root, 'images', split, f));
      const txt = f.replace('.jpg', '.txt');
      await fs.copyFile(path.join(labels, txt), path.join(root, 'labels', split, txt)).catch(() => undefined);
    }
    await fs.writeFile(path.join(root, 'data.yaml'), 'path: .\ntrain: images/train\nval: [images/val]\nnames:\n  0: circle\n  1: square\n  2: triangle\n');
    const split = await readDetectionDataset(root);
    expect(split.format).toBe('yolo');
    expect(split.labels).toEqual(['circle', 'square', 'triangle']);
    expect([split.splits.train!.length, split.splits.val!.length, split.splits.test]).toEqual([3, 1, undefined]);
    // An image list in a .txt file, relative to path:.
    await fs.writeFile(path.join(root, 'train.txt'), imgs.slice(0, 2).map((f) => `images/train/${f}`).join('\n') + '\n');
    await fs.writeFile(path.join(root, 'data.yaml'), 'train: train.txt\nval: images/val\nnames: [circle, square, triangle]\n');
    expect((await readDetectionDataset(root)).splits.train!.map((s) => path.basename(s.path))).toEqual(imgs.slice(0, 2));
    await fs.writeFile(path.join(root, 'data.yaml'), 'train: images/train\nnames: {0: a, 2: c}\n');
    await rejects(readDetectionDataset(root), 'DATA_INVALID', /no usable "names"/);
  });

  it('VOC: a broken XML file and bad objects are listed; difficult objects are kept as ignored regions', async () => {
    const res = await synth('voc-bad', 'voc', 4);
    const ann = path.join(res.out, 'Annotations');
    const files = (await fs.readdir(ann)).sort();
    await fs.writeFile(path.join(ann, files[0]!), '<annotation><filename>x.jpg</filename><object><name>circle</object></annotation>');
    const doc = await fs.readFile(path.join(ann, files[1]!), 'utf8');
    await fs.writeFile(
      path.join(ann, files[1]!),
      doc.replace(
        '</annotation>',
        '<object><name>hexagon</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>' +
          '<object><name>circle</name></object>' +
          '<object><name>square</name><difficult>1</difficult><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>11</xmax><ymax>13</ymax></bndbox></object></annotation>',
      ),
    );
    const ds = await readDetectionDataset(res.out);
    expect(ds.issues.map((i) => [i.kind, path.basename(i.file)])).toEqual([
      ['malformed', files[0]],
      ['unknown-class', files[1]],
      ['malformed', files[1]],
    ]);
    expect(ds.issues[1]!.message).toMatch(/"hexagon"/);
    const sample = ds.splits.train!.find((s) => path.basename(s.path) === files[1]!.replace('.xml', '.jpg'))!;
    expect(sample.boxes.at(-1)).toMatchObject({ iscrowd: true, box: { x: 1, y: 2, width: 10, height: 11 } });
  });

  it('says which formats it knows when a folder is none of them', async () => {
    const empty = path.join(tmp.dir, 'nothing');
    await fs.mkdir(empty);
    await rejects(readDetectionDataset(empty), 'DATA_NOT_FOUND', /COCO .*YOLO .*VOC/);
  });
});

describe('splits and statistics', () => {
  it('carves val (and test) from train by image with the seed; declared splits stay as given', async () => {
    const ds = await readDetectionDataset((await synth('split', 'coco', 30)).out);
    const a = detectionSplits(ds, { validationSplit: 0.2, testSplit: 0.1, seed: 3 });
    const b = detectionSplits(ds, { validationSplit: 0.2, testSplit: 0.1, seed: 3 });
    const c = detectionSplits(ds, { validationSplit: 0.2, testSplit: 0.1, seed: 4 });
    expect([a.train.length, a.val.length, a.test.length]).toEqual([21, 6, 3]);
    expect(a.val.map((s) => s.id)).toEqual(b.val.map((s) => s.id));
    expect(a.val.map((s) => s.id)).not.toEqual(c.val.map((s) => s.id));
    const declared = { ...ds, splits: { train: ds.splits.train!.slice(0, 20), val: ds.splits.train!.slice(20) } };
    expect(detectionSplits(declared, { validationSplit: 0.5, seed: 3 }).val).toHaveLength(10);
  });

  it('counts boxes per class and COCO size class, and images without boxes', () => {
    const sample = (boxes: Array<[number, number]>) => ({ id: 1, path: 'x', width: 500, height: 500, boxes: boxes.map(([label, side]) => ({ label, box: { x: 0, y: 0, width: side, height: side }, source: '' })) });
    const s = detectionStats([sample([[0, 10], [0, 40], [1, 100]]), sample([]), sample([[1, 31.9]])], ['a', 'b']);
    expect(s).toEqual({
      images: 3,
      emptyImages: 1,
      boxes: 4,
      sizes: { small: 2, medium: 1, large: 1 },
      perClass: [
        { label: 'a', boxes: 2, images: 1, small: 1, medium: 1, large: 0 },
        { label: 'b', boxes: 2, images: 2, small: 1, medium: 0, large: 1 },
      ],
    });
  });
});

describe('mlctl datasets synth --task detection / inspect', () => {
  it('writes a set and inspects it: per-class boxes, size classes, splits, invalid lines by file:line', async () => {
    const out = path.join(tmp.dir, 'cli-yolo');
    const made = await runCli(['datasets', 'synth', '--task', 'detection', '--layout', 'yolo', '--images', '10', '--size', '64', '--out', out, '--json']);
    expect(made.code).toBe(0);
    expect(made.json).toMatchObject({ task: 'detection', layout: 'yolo', images: 10, classes: ['circle', 'square', 'triangle'] });
    const seen = await runCli(['datasets', 'inspect', out, '--json']);
    expect(seen.code).toBe(0);
    expect(seen.json).toMatchObject({ task: 'detection', format: 'yolo', images: 10, boxes: made.json.boxes, splits: { train: 8, val: 2, test: 0 }, issues: [] });
    const first = (await fs.readdir(path.join(out, 'labels'))).sort()[0]!;
    await fs.appendFile(path.join(out, 'labels', first), '9 0.5 0.5 0.1 0.1\n');
    const text = await runCli(['datasets', 'inspect', out]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/invalid annotations: 1/);
    expect(text.stdout).toContain(`${path.join('labels', first)}:`);
    expect(text.stdout).toMatch(/unknown-class: class 9/);
  });
});

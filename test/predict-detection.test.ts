// `mlctl predict` with a detection package (a hand-built CenterNet map in ONNX Runtime): one row per box in each
// image's own pixels through the one CSV writer and as JSON Lines, --min-score / --max-detections, COCO results
// files (ids from the listing or an annotations file), resuming an interrupted run and merging shards.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { mergeShards, predict, type PredictOptions } from '../src/predict/index.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { detectionPackage } from './helpers/detection-models.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
let images: string;

// a.png 128x64 (letterbox: scale 0.5, 16 rows above), b.png 32x32 (scale 0.5), c.png 64x64 (as is), d.txt unreadable.
const FILES: Array<[string, number, number]> = [['a.png', 128, 64], ['b.png', 32, 32], ['c.png', 64, 64]];

beforeAll(async () => {
  tmp = await tempDir('mlctl-predict-det-');
  pkg = await detectionPackage(tmp.dir, { name: 'det', resize: 'contain' });
  images = path.join(tmp.dir, 'images');
  await fs.mkdir(images);
  for (const [name, w, h] of FILES) await sharp({ create: { width: w, height: h, channels: 3, background: 'gray' } }).png().toFile(path.join(images, name));
  await fs.writeFile(path.join(images, 'd.png'), 'not an image');
}, 60_000);
afterAll(async () => tmp?.cleanup());

const options = (over: Partial<PredictOptions> = {}): PredictOptions => ({ inputs: [images], format: 'csv', topK: 5, batchSize: 2, engine: 'onnx', logger: createMemoryLogger(), ...over });
const read = (f: string) => fs.readFile(f, 'utf8');

describe('predict rows for a detection model', () => {
  it('CSV: one row per box in the image\'s pixels, an empty row for an image without boxes, the error row for an unreadable one', async () => {
    const out = path.join(tmp.dir, 'boxes.csv');
    const res = await predict(pkg, options({ out }));
    expect(res).toMatchObject({ rows: 4, errors: 1, format: 'csv' });
    const lines = (await read(out)).trim().split('\n');
    expect(lines[0]).toBe('index,input,label,score,x,y,width,height,error');
    const rel = (n: string) => path.join(images, n);
    expect(lines.slice(1, 6)).toEqual([
      `0,${rel('a.png')},cat,0.9,56,0,48,32,`,
      `0,${rel('a.png')},dog,0.5,0,16,32,48,`,
      `1,${rel('b.png')},cat,0.9,14,8,12,8,`,
      `1,${rel('b.png')},dog,0.5,0,12,8,16,`,
      `2,${rel('c.png')},cat,0.9,28,16,24,16,`,
    ]);
    expect(lines[7]).toMatch(new RegExp(`^3,${rel('d.png').replace(/[.\\/]/g, '\\$&')},,,,,,,.+`));
  });

  it('JSON Lines with --min-score and --max-detections', async () => {
    const out = path.join(tmp.dir, 'boxes.jsonl');
    await predict(pkg, options({ out, format: 'jsonl', detection: { minScore: 0.1, maxDetections: 3 } }));
    const docs = (await read(out)).trim().split('\n').map((l) => JSON.parse(l));
    // c.png keeps its third (0.2) box; in a.png it lies in the letterbox padding, nothing of the picture left.
    expect(docs.filter((d) => d.index === 2).map((d) => [d.label, d.score, d.x, d.y, d.width, d.height])).toEqual([
      ['cat', 0.9, 28, 16, 24, 16],
      ['dog', 0.5, 0, 24, 16, 32],
      ['cat', 0.2, 52, 52, 8, 8],
    ]);
    expect(docs.filter((d) => d.index === 0)).toHaveLength(2);
    const one = path.join(tmp.dir, 'one.jsonl');
    await predict(pkg, options({ out: one, format: 'jsonl', detection: { maxDetections: 1 } }));
    expect((await read(one)).trim().split('\n').filter((l) => JSON.parse(l).label)).toHaveLength(3);
  });

  it('--resume after an interruption counts inputs, not lines, and ends with the rows of one whole run', async () => {
    const whole = path.join(tmp.dir, 'whole.csv');
    await predict(pkg, options({ out: whole, batchSize: 1 }));
    const out = path.join(tmp.dir, 'resumed.csv');
    let chunks = 0;
    const first = await predict(pkg, options({ out, batchSize: 1, shouldStop: () => ++chunks >= 2 }));
    expect(first.interrupted).toBe(true);
    expect(first.rows).toBeGreaterThan(0);
    expect(first.rows).toBeLessThan(4);
    const second = await predict(pkg, options({ out, batchSize: 1, resume: true }));
    // a.png alone wrote two lines: the resumed count is of inputs.
    expect(second).toMatchObject({ rows: 4 - first.rows, resumed: { rows: first.rows, errors: 0 } });
    expect(await read(out)).toBe(await read(whole));
    // Another threshold would mix two runs' boxes in one file.
    await expect(predict(pkg, options({ out, resume: true, detection: { minScore: 0.1 } }))).rejects.toMatchObject({ code: 'PREDICT_RESUME' });
  });

  it('shards merge into the rows of one run, several lines per input included', async () => {
    const whole = path.join(tmp.dir, 'whole.jsonl');
    await predict(pkg, options({ out: whole, format: 'jsonl' }));
    const parts = [0, 1].map((i) => path.join(tmp.dir, `part-${i}.jsonl`));
    for (const [i, out] of parts.entries()) await predict(pkg, options({ out, format: 'jsonl', shard: { index: i, count: 2 } }));
    const merged = path.join(tmp.dir, 'merged.jsonl');
    const res = await mergeShards(parts, merged, { logger: createMemoryLogger() });
    expect(res.rows).toBe(4);
    expect(await read(merged)).toBe(await read(whole));
  });
});

describe('predict --format coco', () => {
  it('writes COCO results with the manifest\'s category ids and listing positions as image ids', async () => {
    const out = path.join(tmp.dir, 'results.json');
    const res = await predict(pkg, options({ out, format: 'coco' }));
    expect(res).toMatchObject({ format: 'coco', out, coco: { detections: 6, images: 3 } });
    const results = JSON.parse(await read(out));
    expect(results[0]).toEqual({ image_id: 1, category_id: 3, bbox: [56, 0, 48, 32], score: 0.9 });
    expect(results.map((r: { image_id: number; category_id: number }) => [r.image_id, r.category_id])).toEqual([[1, 3], [1, 7], [2, 3], [2, 7], [3, 3], [3, 7]]);
    // Its rows stay beside it; an existing results file is not overwritten without --resume or --force.
    expect((await read(`${out}.rows.jsonl`)).split('\n').length).toBeGreaterThan(6);
    await expect(predict(pkg, options({ out, format: 'coco' }))).rejects.toMatchObject({ code: 'PREDICT_OUTPUT' });
  });

  it('takes image ids from --coco-images by file name, and refuses inputs the annotations lack', async () => {
    const ann = path.join(tmp.dir, 'annotations.json');
    await fs.writeFile(ann, JSON.stringify({ images: [{ id: 42, file_name: 'images/a.png' }, { id: 7, file_name: 'b.png' }, { id: 9, file_name: 'c.png' }], annotations: [], categories: [] }));
    const out = path.join(tmp.dir, 'ids.json');
    await predict(pkg, options({ out, format: 'coco', cocoImages: ann }));
    const ids = JSON.parse(await read(out)).map((r: { image_id: number }) => r.image_id);
    expect(ids).toEqual([42, 42, 7, 7, 9, 9]);
    await fs.writeFile(ann, JSON.stringify({ images: [{ id: 1, file_name: 'a.png' }] }));
    const err = await predict(pkg, options({ out: path.join(tmp.dir, 'missing.json'), format: 'coco', cocoImages: ann })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'OPTION_CONFLICT' });
    expect(String((err as Error).message)).toMatch(/2 input\(s\).*b\.png/);
  });
});

describe('mlctl predict (the CLI) on a detection model', () => {
  it('passes --format coco, --coco-images, --min-score and --max-detections through, and refuses --coco-images without coco', async () => {
    const out = path.join(tmp.dir, 'cli.json');
    const run = await runCli(['predict', pkg.dir, images, '--format', 'coco', '--out', out, '--min-score', '0.1', '--max-detections', '3', '--engine', 'onnx', '--json']);
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ format: 'coco', out, coco: { detections: 8, images: 3 } }); // 2 + 3 + 3: a.png's third box lies in its padding
    const bad = await runCli(['predict', pkg.dir, images, '--coco-images', 'a.json', '--out', path.join(tmp.dir, 'x.csv'), '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json.error.code).toBe('OPTION_CONFLICT');
    const range = await runCli(['predict', pkg.dir, images, '--min-score', '1.5', '--out', path.join(tmp.dir, 'y.csv'), '--json']);
    expect(range.code).toBe(2);
  });
});

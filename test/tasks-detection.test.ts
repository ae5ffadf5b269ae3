// The detection task: where a picture lands in the model input (sharp's fill, letterbox and crop, measured on real
// pixels), CenterNet maps decoded through decodeDetections and mapped back to each picture's pixels, the score and box
// limits (request, manifest, defaults), predict's per-box rows and the COCO metrics accumulator.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/artifacts/manifest.js';
import { boxToPicture, decodeRgbPlaced, resizeGeometry } from '../src/data/preprocess.js';
import { decodeDetections } from '../src/models/detection/outputs.js';
import { formatRow } from '../src/predict/rows.js';
import { DEFAULT_MIN_SCORE, detection, detectionResults } from '../src/tasks/detection/index.js';
import { requireTask, taskNamed } from '../src/tasks/index.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { DET, detectionMap, detectionPackage, PEAKS } from './helpers/detection-models.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let letterbox: Manifest;
let fill: Manifest;

beforeAll(async () => {
  tmp = await tempDir('mlctl-det-task-');
  letterbox = (await detectionPackage(tmp.dir, { resize: 'contain' })).manifest;
  fill = (await detectionPackage(tmp.dir, { resize: 'fill' })).manifest;
});
afterAll(async () => tmp?.cleanup());

/** The fixed map for `n` images, as an engine returns it. */
const fetches = (n: number): Tensor[] => {
  const one = detectionMap();
  const data = new Float32Array(n * one.length);
  for (let i = 0; i < n; i++) data.set(one, i * one.length);
  return [{ name: 'detections', datatype: 'FP32', shape: [n, DET.grid, DET.grid, DET.labels.length + 4], data }];
};

/** A black picture with one white rectangle. */
async function pictureWithRect(width: number, height: number, r: { x: number; y: number; width: number; height: number }): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = r.y; y < r.y + r.height; y++) raw.fill(255, (y * width + r.x) * 3, (y * width + r.x + r.width) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** The white pixels' bounding box in HWC RGB of `width` columns. */
function whiteBox(rgb: Uint8Array, width: number, height: number) {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (rgb[(y * width + x) * 3]! > 127) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

describe('where a picture lands in the input (data/preprocess.ts)', () => {
  it.each(['fill', 'contain', 'cover'] as const)('%s: a rectangle found in the resized pixels maps back onto the picture within a pixel', async (fit) => {
    const rect = { x: 100, y: 40, width: 60, height: 50 };
    const [W, H] = [200, 120];
    const { rgb, geometry } = await decodeRgbPlaced(await pictureWithRect(W, H, rect), 64, 64, fit);
    expect(geometry).toMatchObject({ width: W, height: H, left: 0, top: 0 });
    const back = boxToPicture(whiteBox(rgb, 64, 64), geometry);
    const tol = 1 / Math.min(geometry.scaleX, geometry.scaleY) + 0.5;
    for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(back[k] - rect[k])).toBeLessThanOrEqual(tol);
  });

  it('letterbox geometry is sharp\'s: round(size · scale), centred with floor((input − size) / 2)', () => {
    // 100x37 to 64x64: 23.68 rows → 24, padded 20 above.
    expect(resizeGeometry(100, 37, 64, 64, 'contain')).toMatchObject({ scaleX: 0.64, offsetX: 0, offsetY: 20 });
    expect(resizeGeometry(100, 37, 64, 64, 'contain').scaleY).toBeCloseTo(24 / 37, 12);
    // cover 103x64 to 64x64: 103 columns, 20 cropped from the left.
    expect(resizeGeometry(103, 64, 64, 64, 'cover')).toMatchObject({ scaleX: 1, scaleY: 1, offsetX: -20, offsetY: 0 });
  });

  it('EXIF orientation 6 swaps the picture\'s width and height', async () => {
    const png = await sharp({ create: { width: 40, height: 20, channels: 3, background: 'white' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const { geometry } = await decodeRgbPlaced(png, 64, 64, 'fill');
    expect([geometry.width, geometry.height]).toEqual([20, 40]);
  });

  it('a region of interest places boxes in the full frame', async () => {
    const { geometry } = await decodeRgbPlaced(await pictureWithRect(200, 120, { x: 0, y: 0, width: 1, height: 1 }), 64, 64, 'fill', { region: { left: 50, top: 20, width: 100, height: 64 } });
    expect(boxToPicture({ x: 0, y: 0, width: 64, height: 64 }, geometry)).toEqual({ x: 50, y: 20, width: 100, height: 64 });
  });
});

describe('the detection task', () => {
  it('is registered and checks its manifest', () => {
    expect(taskNamed('detection')).toBe(detection);
    expect(requireTask(letterbox, 'predict')).toBe(detection);
    expect(() => detection.check({ ...letterbox, detection: { ...letterbox.detection!, minScore: 2 } }, 'x')).toThrow(/minScore 2/);
  });

  it('decodeDetections gives each image its peaks in input pixels, best first', () => {
    const [a, b] = decodeDetections(letterbox.detection!, fetches(2), { outputName: 'detections' });
    expect(a).toEqual(b);
    expect(a!.map((d) => [d.label, d.score])).toEqual(PEAKS.map((p) => [p.label, expect.closeTo(p.score, 6)]));
    a!.forEach((d, i) => expect({ x: d.x, y: d.y, width: d.width, height: d.height }).toEqual(PEAKS[i]!.box));
  });

  it('letterbox: boxes come back in the original picture\'s pixels, clipped to it', () => {
    // 128x64 letterboxed into 64x64: scale 0.5, 16 rows of padding above.
    const g = resizeGeometry(128, 64, 64, 64, 'contain');
    const [r] = detectionResults(fetches(1), letterbox, { images: [g] });
    expect(r!.detections.map((d) => ({ label: d.label, box: d.box }))).toEqual([
      { label: 'cat', box: { x: 56, y: 0, width: 48, height: 32 } },
      // (0, 24, 16, 32) in the input: y 16..80 in the picture, cut at its bottom edge (64).
      { label: 'dog', box: { x: 0, y: 16, width: 32, height: 48 } },
    ]);
  });

  it('fill: boxes scale by each axis on its own; without geometry they stay in input pixels', () => {
    const [stretched, asIs] = detectionResults(fetches(2), fill, { images: [resizeGeometry(128, 64, 64, 64, 'fill')] });
    expect(stretched!.detections[0]!.box).toEqual({ x: 56, y: 16, width: 48, height: 16 });
    expect(asIs!.detections[0]!.box).toEqual(PEAKS[0].box);
  });

  it('minScore and maxDetections: the caller\'s, else the manifest\'s, else the defaults', () => {
    const count = (m: Manifest, ctx = {}) => detectionResults(fetches(1), m, ctx)[0]!.detections.length;
    expect(DEFAULT_MIN_SCORE).toBe(0.3);
    expect(count(letterbox)).toBe(2); // 0.2 is under the default
    expect(count(letterbox, { minScore: 0.1 })).toBe(3);
    expect(count(letterbox, { minScore: 0.6 })).toBe(1);
    expect(count(letterbox, { minScore: 0, maxDetections: 1 })).toBe(1);
    expect(count({ ...letterbox, detection: { ...letterbox.detection!, minScore: 0.1 } })).toBe(3);
    expect(count({ ...letterbox, detection: { ...letterbox.detection!, maxDetections: 2 } }, { minScore: 0 })).toBe(2);
  });

  it('serve, audit and watch render the boxes', () => {
    const rs = detectionResults(fetches(2), letterbox);
    const body = detection.serve.predict(rs, letterbox, { topK: 5 }) as { detections: unknown[][] };
    expect(body.detections).toHaveLength(2);
    expect(body.detections[0]![0]).toEqual({ label: 'cat', score: expect.closeTo(0.9, 6), box: PEAKS[0].box });
    expect(Object.keys(body.detections[0]![0]!)).toEqual(['label', 'score', 'box']);
    expect(detection.audit(rs[0]!, letterbox)).toEqual({ detections: 2, label: 'cat', score: 0.9 });
    expect(Array.from(detection.watch!.scores(rs[0]!, letterbox))).toEqual([expect.closeTo(0.9, 6), expect.closeTo(0.5, 6)]);
  });

  it('predict rows: one line per box in CSV and JSON Lines, one empty line for an image without boxes', () => {
    const [r] = detectionResults(fetches(1), letterbox);
    const task = detection.rows(letterbox, { topK: 5 });
    const none = { detections: [] };
    const csv = formatRow({ index: 0, input: 'a.jpg', result: r }, { format: 'csv', task }) + formatRow({ index: 1, input: 'b.jpg', result: none }, { format: 'csv', task });
    expect(task.columns).toEqual(['label', 'score', 'x', 'y', 'width', 'height']);
    expect(csv).toBe('0,a.jpg,cat,0.9,28,16,24,16,\n0,a.jpg,dog,0.5,0,24,16,32,\n1,b.jpg,,,,,,,\n');
    const jsonl = formatRow({ index: 0, input: 'a.jpg', result: r }, { format: 'jsonl', task }).trim().split('\n').map((l) => JSON.parse(l));
    expect(jsonl).toEqual([
      { index: 0, input: 'a.jpg', label: 'cat', score: 0.9, x: 28, y: 16, width: 24, height: 16 },
      { index: 0, input: 'a.jpg', label: 'dog', score: 0.5, x: 0, y: 24, width: 16, height: 32 },
    ]);
    expect(JSON.parse(formatRow({ index: 2, input: 'c.jpg', error: 'unreadable' }, { format: 'jsonl', task }))).toEqual({ index: 2, input: 'c.jpg', error: 'unreadable' });
  });
});

describe('the metrics accumulator (metrics/coco.ts)', () => {
  it('scores detections against ground truth in picture pixels: a perfect image, a missed box, a false positive', () => {
    const acc = detection.metrics(letterbox);
    const rs = detectionResults(fetches(2), letterbox, { minScore: 0 });
    const truth = PEAKS.map((p) => ({ label: p.label, box: p.box }));
    // Image 1: every box true. Image 2: the cat at 0.9 is true; the dog is elsewhere (a miss and a false positive).
    acc.add(rs, [{ boxes: truth }, { boxes: [truth[0]!, { label: 1, box: { x: 30, y: 30, width: 10, height: 10 } }] }]);
    expect(acc.count).toBe(2);
    const m = acc.finish();
    expect(m).toMatchObject({ count: 2, boxes: 5, detections: 6 });
    const cat = m.perClass.find((c) => c.label === 'cat')!;
    expect(cat).toMatchObject({ categoryId: 3, AP: 1, AP50: 1 });
    const dog = m.perClass.find((c) => c.label === 'dog')!;
    expect(dog.categoryId).toBe(7);
    // dog: one of two found, with the best score: precision 1 up to recall 0.5 → 51 of 101 recall points.
    expect(dog.AP50).toBeCloseTo(51 / 101, 10);
    expect(m.stats.AP50).toBeCloseTo((1 + 51 / 101) / 2, 10);
    expect(m.prCurve50).toHaveLength(101);
    expect(detection.report.summary(m)[0]![0]).toMatch(/AP/);
  });
});

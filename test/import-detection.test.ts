// Detectors exported elsewhere: `mlctl import --task detection --layout yolo|torchvision`. The decoders on hand-made
// heads (NMS semantics, both YOLO layouts, torchvision's label numbering); then real files made by python3-torch — a
// small module producing Ultralytics' YOLOv8 and YOLOv5 layouts with known candidates, and torchvision's
// ssdlite320_mobilenet_v3_large — imported, run through the package's engine and decoded.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import type { TorchvisionSection, YoloSection } from '../src/artifacts/manifest.js';
import { loadPackage } from '../src/artifacts/package.js';
import type { DecodedBox } from '../src/models/detection/decode.js';
import { decodeDetections } from '../src/models/detection/outputs.js';
import { decodeTorchvision, decodeTorchvisionOutputs } from '../src/models/detection/torchvision.js';
import { decodeYolo, decodeYoloOutputs, iou } from '../src/models/detection/yolo.js';
import { openEngine } from '../src/runtime/engine.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { pythonFixture } from './helpers/python-fixtures.js';
import { tools } from './helpers/tools.js';


let home: MlctlHome;

beforeAll(async () => {
  home = await mlctlHome('mlctl-import-det-');
});

afterAll(async () => {
  await home?.cleanup();
});

/** The candidates test/fixtures/python/import_torch.py puts in its YOLO heads: cx, cy, w, h, class 0, class 1. */
const CANDIDATES = [
  [32, 32, 20, 20, 0.9, 0.05],
  [33, 32, 20, 20, 0.8, 0.1],
  [33, 32, 20, 20, 0.05, 0.7],
  [50, 50, 10, 10, 0.2, 0.1],
  [10, 12, 8, 6, 0.1, 0.6],
  [45, 20, 12, 12, 0.55, 0.3],
  ...[0, 1, 2, 3].map((i) => [8 * i, 60, 4, 4, 0, 0]),
];

/** What Ultralytics' NMS keeps of them (conf 0.25, IoU 0.7, best class per anchor), best first, as x, y, w, h. */
const KEPT: Array<Omit<DecodedBox, 'score'> & { score: number }> = [
  { label: 0, score: 0.9, x: 22, y: 22, width: 20, height: 20 },
  { label: 1, score: 0.7, x: 23, y: 22, width: 20, height: 20 },
  { label: 1, score: 0.6, x: 6, y: 9, width: 8, height: 6 },
  { label: 0, score: 0.55, x: 39, y: 14, width: 12, height: 12 },
];

const expectBoxes = (got: DecodedBox[], want: typeof KEPT) => {
  expect(got).toHaveLength(want.length);
  got.forEach((b, i) => {
    expect(b.label).toBe(want[i]!.label);
    for (const k of ['score', 'x', 'y', 'width', 'height'] as const) expect(b[k]).toBeCloseTo(want[i]![k], 5);
  });
};

const yoloLayout = { classes: 2, anchors: CANDIDATES.length, objectness: false, transposed: false, iouThreshold: 0.7, scoreThreshold: 0.25, maxDetections: 300 };

describe('YOLO and torchvision decoding', () => {
  it('decodes a YOLOv8 head ([4 + classes, anchors]): best class, score threshold, NMS per class', () => {
    const n = CANDIDATES.length;
    const v8 = new Float32Array(6 * n);
    CANDIDATES.forEach((c, a) => c.forEach((v, k) => (v8[k * n + a] = v)));
    expectBoxes(decodeYolo(v8, yoloLayout), KEPT);
    // A stricter IoU suppresses nothing more here; a lower one lets no overlapping same-class box through either.
    expect(decodeYolo(v8, { ...yoloLayout, maxDetections: 2 })).toHaveLength(2);
    expect(decodeYolo(v8, yoloLayout, { minScore: 0.65 }).map((b) => b.score)).toEqual([expect.closeTo(0.9, 5), expect.closeTo(0.7, 5)]);
  });

  it('decodes a YOLOv5 head ([anchors, 5 + classes]) with objectness multiplied into the class score', () => {
    const rows = CANDIDATES.map(([cx, cy, w, h, a, b]) => [cx!, cy!, w!, h!, 0.5, a!, b!]);
    const v5 = Float32Array.from(rows.flat());
    const got = decodeYolo(v5, { ...yoloLayout, objectness: true, transposed: true, scoreThreshold: 0.2 });
    // 0.5 x: 0.45, 0.35, 0.3 pass 0.2; 0.275 (class 0 at 45,20) too.
    expect(got.map((b) => [b.label, Number(b.score.toFixed(3))])).toEqual([[0, 0.45], [1, 0.35], [1, 0.3], [0, 0.275]]);
  });

  it('is what decodeDetections (the detection task\'s one entry point) answers for yolo and torchvision sections', () => {
    const n = CANDIDATES.length;
    const v8 = new Float32Array(6 * n);
    CANDIDATES.forEach((c, a) => c.forEach((v, k) => (v8[k * n + a] = v)));
    const yolo: YoloSection = { head: 'yolo', categoryIds: [1, 2], resize: 'fill', output: 'output0', ...yoloLayout };
    expectBoxes(decodeDetections(yolo, [{ name: 'output0', datatype: 'FP32', shape: [1, 6, n], data: v8 }])[0]!, KEPT);
    const tv: TorchvisionSection = { head: 'torchvision', classes: 2, categoryIds: [1, 2], maxDetections: 100, resize: 'fill', outputs: { boxes: 'boxes', scores: 'scores', labels: 'labels' }, labelOffset: 1 };
    const got = decodeDetections(tv, [
      { name: 'boxes', datatype: 'FP32', shape: [2, 4], data: Float32Array.from([10, 20, 30, 60, 0, 0, 5, 5]) },
      { name: 'scores', datatype: 'FP32', shape: [2], data: Float32Array.from([0.4, 0.9]) },
      { name: 'labels', datatype: 'INT64', shape: [2], data: BigInt64Array.from([2n, 1n]) },
    ], { minScore: 0.5 });
    expect(got).toEqual([[{ label: 0, score: expect.closeTo(0.9, 6), x: 0, y: 0, width: 5, height: 5 }]]);
  });

  it('suppresses by IoU only within a class', () => {
    const a = { label: 0, score: 0.9, x: 0, y: 0, width: 10, height: 10 };
    expect(iou(a, { ...a, x: 5 })).toBeCloseTo(50 / 150, 10);
    expect(iou(a, { ...a, x: 10 })).toBe(0);
  });

  it("maps torchvision's labels (0 the background) onto the labels given, best first", () => {
    const boxes = [10, 20, 30, 60, 0, 0, 5, 5, 1, 1, 2, 2];
    const got = decodeTorchvision(boxes, [0.4, 0.9, 0.5], [2, 1, 0], { classes: 2, labelOffset: 1, maxDetections: 100 });
    expect(got).toEqual([
      { label: 0, score: 0.9, x: 0, y: 0, width: 5, height: 5 },
      { label: 1, score: 0.4, x: 10, y: 20, width: 20, height: 40 },
    ]);
    // Labels that include "__background__" index them directly.
    expect(decodeTorchvision(boxes, [0.4, 0.9, 0.5], [2, 1, 0], { classes: 3, labelOffset: 0, maxDetections: 1 }).map((b) => b.label)).toEqual([1]);
  });
});

describe.skipIf(!tools.pythonTorch)('imported detectors (PyTorch exports)', () => {
  let dir: string;
  let ssd: string;

  beforeAll(() => {
    dir = pythonFixture('import_torch.py');
    // torchvision's SSDLite export takes about a minute: made once per machine (node_modules/.cache/mlctl-fixtures).
    ssd = pythonFixture('import_ssdlite.py', 400_000);
  }, 600_000);

  /** The package's engine on zeros of its input (the YOLO heads ignore the picture by design), decoded. */
  async function decodeYoloPackage(name: string): Promise<DecodedBox[][]> {
    const pkg = await loadPackage(name);
    const engine = await openEngine(pkg, { engine: 'onnx' });
    try {
      const input = engine.inputs[0]!;
      const shape = input.shape.map((d) => (d < 0 ? 1 : d));
      const out = await engine.run([{ name: input.name, datatype: 'FP32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) }]);
      return decodeYoloOutputs(pkg.manifest.detection as YoloSection, out);
    } finally {
      await engine.dispose();
    }
  }

  it('imports a YOLOv8-layout head [1, 4 + classes, anchors]: its layout read from the output, its boxes after NMS', async () => {
    const r = await runCli(['import', path.join(dir, 'yolov8.onnx'), '--name', 'yolo8', '--task', 'detection', '--layout', 'yolo', '--labels', 'cat,dog', '--preprocessing', 'unit', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.detection).toMatchObject({ head: 'yolo', output: 'output0', anchors: 10, transposed: false, objectness: false, classes: 2, iouThreshold: 0.7, scoreThreshold: 0.25 });
    const m = (await loadPackage('yolo8')).manifest;
    expect(m.task).toBe('detection');
    expect(m.input).toMatchObject({ kind: 'image', height: 64, width: 64, layout: 'NCHW', preprocessing: { mode: 'unit' } });
    expect(m.output).toEqual({ name: 'output0', kind: 'detection', size: 60 });
    expectBoxes((await decodeYoloPackage('yolo8'))[0]!, KEPT);
  });

  it('imports a YOLOv5-layout head [1, anchors, 5 + classes] with objectness', async () => {
    const r = await runCli(['import', path.join(dir, 'yolov5.onnx'), '--name', 'yolo5', '--task', 'detection', '--layout', 'yolo', '--labels', 'cat,dog', '--preprocessing', 'unit', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.detection).toMatchObject({ head: 'yolo', anchors: 10, transposed: true, objectness: true, iouThreshold: 0.45 });
    // Objectness 1 in the fixture: the same boxes, except the second class-0 box now overlaps the first by IoU 0.9 > 0.45 (still suppressed).
    expectBoxes((await decodeYoloPackage('yolo5'))[0]!, KEPT);
  });

  it('refuses a YOLO head whose values do not fit the labels, and a detector without --layout', async () => {
    const bad = await runCli(['import', path.join(dir, 'yolov8.onnx'), '--name', 'yolo-bad', '--task', 'detection', '--layout', 'yolo', '--labels', 'a,b,c', '--preprocessing', 'unit', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json!.error).toMatchObject({ code: 'IMPORT_TASK_MISMATCH' });
    expect(bad.json!.error.message).toMatch(/4 \+ 3/);
    const noLayout = await runCli(['import', path.join(dir, 'yolov8.onnx'), '--name', 'yolo-bad', '--task', 'detection', '--labels', 'a,b', '--preprocessing', 'unit', '--json']);
    expect(noLayout.json!.error).toMatchObject({ code: 'OPTION_REQUIRED' });
  });

  it("imports torchvision's SSDLite and decodes the boxes torch itself gives for the same picture", async () => {
    const r = await runCli(['import', path.join(ssd, 'ssdlite.onnx'), '--name', 'ssd', '--task', 'detection', '--layout', 'torchvision', '--labels', 'a,b,c', '--preprocessing', 'unit', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.detection).toMatchObject({ head: 'torchvision', outputs: { boxes: 'boxes', scores: 'scores', labels: 'labels' }, labelOffset: 1, classes: 3 });
    const pkg = await loadPackage('ssd');
    expect(pkg.manifest.input).toMatchObject({ kind: 'image', height: 320, width: 320, layout: 'NCHW' });
    const image = new Float32Array((await fs.readFile(path.join(ssd, 'image.f32'))).buffer.slice(0));
    const want = JSON.parse(await fs.readFile(path.join(ssd, 'torch.json'), 'utf8')) as { boxes: number[][]; scores: number[]; labels: number[] };
    const engine = await openEngine(pkg, { engine: 'onnx' });
    let got: DecodedBox[];
    try {
      const out = await engine.run([{ name: 'image', datatype: 'FP32', shape: [3, 320, 320], data: image }]);
      got = decodeTorchvisionOutputs(pkg.manifest.detection as TorchvisionSection, out)[0]!;
    } finally {
      await engine.dispose();
    }
    expect(want.scores.length).toBeGreaterThan(0);
    expect(got).toHaveLength(Math.min(want.scores.length, 100));
    // The best boxes torch gives, each found among the decoded ones: same label, same place, same score. Anchors
    // scoring alike (within 1e-4, here or in torch) may be kept or suppressed either way by NMS and top-k, so only
    // boxes whose score no other box comes near are compared.
    let worstScore = 0;
    let worstPixel = 0;
    const near = (list: ArrayLike<number>, s: number) => Array.from(list).filter((v) => Math.abs(v - s) < 1e-4).length;
    const untied = want.scores.map((_, i) => i).filter((i) => near(want.scores, want.scores[i]!) === 1 && near(got.map((b) => b.score), want.scores[i]!) === 1).slice(0, 10);
    expect(untied.length).toBeGreaterThanOrEqual(4);
    for (const i of untied) {
      const [x1, y1, x2, y2] = want.boxes[i]!;
      const t = { label: want.labels[i]! - 1, score: want.scores[i]!, x: x1!, y: y1!, width: x2! - x1!, height: y2! - y1! };
      const match = got.find((b) => Math.abs(b.score - t.score) < 1e-4)!;
      expect(match.label).toBe(t.label);
      expect(iou(match, t)).toBeGreaterThan(0.999);
      worstScore = Math.max(worstScore, Math.abs(match.score - t.score));
      worstPixel = Math.max(worstPixel, Math.abs(match.x - t.x), Math.abs(match.y - t.y), Math.abs(match.width - t.width), Math.abs(match.height - t.height));
    }
    console.log(`ssdlite320 vs torch: top-10 boxes within ${worstPixel.toExponential(2)} px, scores within ${worstScore.toExponential(2)}`);
    expect(worstScore).toBeLessThan(1e-4);
    expect(worstPixel).toBeLessThan(1e-2);
  });
});

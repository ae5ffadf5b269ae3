// Detection exports: decoding + NonMaxSuppression inside the ONNX graph agree in ONNX Runtime with decode.ts and a
// reference NMS on the same input (batch of two, boxes big enough to overlap so NMS has work); the export command
// writes that graph and the raw map beside it (checker-clean), and a Triton entry describing the decoded outputs.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectionSection } from '../src/artifacts/manifest.js';
import { appendCenterNetDecode } from '../src/export/onnx-detection.js';
import { buildModelProto, encodeModel } from '../src/onnx/index.js';
import { decodeCenterNet, type DecodedBox } from '../src/models/detection/decode.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createRng } from '../src/util/random.js';
import { tinyDetector } from './helpers/detection-fixtures.js';

const INPUT = 128;
const IOU = 0.3;

/** Greedy per-class NMS (torchvision.ops.batched_nms's rule): a box is dropped when its IoU with a kept one of its class exceeds `iou`. */
function nmsReference(boxes: DecodedBox[], iou: number): DecodedBox[] {
  const area = (b: DecodedBox) => b.width * b.height;
  const overlap = (a: DecodedBox, b: DecodedBox) => {
    const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
    const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
    const inter = w * h;
    return inter / (area(a) + area(b) - inter);
  };
  const kept: DecodedBox[] = [];
  for (const b of [...boxes].sort((p, q) => q.score - p.score)) if (!kept.some((k) => k.label === b.label && overlap(k, b) > iou)) kept.push(b);
  return kept;
}

let model: tf.LayersModel;
let section: DetectionSection;

beforeAll(async () => {
  await selectBackend('cpu');
  ({ model, section } = tinyDetector(11, { input: INPUT, boxCells: 4, maxDetections: 20 }));
});

afterAll(() => model?.dispose());

describe('CenterNet decoding + NonMaxSuppression in the ONNX graph', () => {
  it('gives decode.ts + reference NMS boxes, scores and labels for each picture of a batch', async () => {
    const proto = buildModelProto(model, { inputName: 'image', outputName: 'detections' });
    const info = appendCenterNetDecode(proto, section, { iouThreshold: IOU });
    expect(info).toEqual({ iouThreshold: IOU, topK: 20 });
    const session = await ort.InferenceSession.create(encodeModel(proto), { logSeverityLevel: 3 });
    const rng = createRng(3);
    const per = INPUT * INPUT * 3;
    const x = Float32Array.from({ length: 2 * per }, () => rng());
    const out = await session.run({ image: new ort.Tensor('float32', x, [2, INPUT, INPUT, 3]) });
    await session.release();
    const boxes = out.boxes!.data as Float32Array;
    const scores = out.scores!.data as Float32Array;
    const labels = Array.from(out.labels!.data as BigInt64Array, Number);
    const batch = Array.from(out.batch_index!.data as BigInt64Array, Number);
    expect(out.boxes!.dims).toEqual([scores.length, 4]);
    let suppressed = 0;
    for (const b of [0, 1]) {
      const map = tf.tidy(() => (model.predict(tf.tensor4d(x.subarray(b * per, (b + 1) * per), [1, INPUT, INPUT, 3])) as tf.Tensor).dataSync());
      const candidates = decodeCenterNet(map, section.grid, section.classes, [INPUT, INPUT], { maxDetections: section.maxDetections });
      const want = nmsReference(candidates, IOU);
      suppressed += candidates.length - want.length;
      const got = batch.flatMap((bi, i) => (bi === b ? [i] : []));
      expect(got.length, `picture ${b}`).toBe(want.length);
      got.forEach((i, j) => {
        const w = want[j]!;
        expect(labels[i]).toBe(w.label);
        expect(scores[i]).toBeCloseTo(w.score, 5);
        const [x1, y1, x2, y2] = boxes.subarray(i * 4, i * 4 + 4);
        expect([x1, y1, x2, y2].map((v) => Number(v!.toFixed(3)))).toEqual([w.x, w.y, w.x + w.width, w.y + w.height].map((v) => Number(v.toFixed(3))));
      });
    }
    // The boxes overlap: NonMaxSuppression did remove some (else the test would not test it).
    expect(suppressed).toBeGreaterThan(0);
    // Picture by picture, best first.
    expect(batch).toEqual([...batch].sort((a, b) => a - b));
  });
});

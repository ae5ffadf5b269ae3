// The CenterNet pieces against the reference's definitions: CornerNet's Gaussian radius, targets that decode back to
// the boxes they were made from, the max-pool peak rule, the focal and L1 losses against their formulas, and the head
// converting to ONNX with the same numbers as TF.js.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCenterNetHead, outputChannels } from '../src/models/detection/centernet.js';
import { decodeCenterNet } from '../src/models/detection/decode.js';
import { centerNetLoss, focalLoss } from '../src/models/detection/loss.js';
import { drawGaussian, encodeTargets, gaussianRadius } from '../src/models/detection/targets.js';
import { convertLayersModel } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('targets', () => {
  it('gaussianRadius is the smallest of CornerNet\'s three cases (10x10 box, overlap 0.7 → 0.8167)', () => {
    // r2 = (40 − √(40² − 16·30)) / 8 for a 10x10 box.
    expect(gaussianRadius(10, 10)).toBeCloseTo((40 - Math.sqrt(1600 - 480)) / 8, 12);
    expect(gaussianRadius(4, 40)).toBeLessThan(gaussianRadius(40, 40));
  });

  it('drawGaussian peaks at 1 on the centre, falls off with σ = d/6 and keeps the maximum where two overlap', () => {
    const hm = new Float32Array(9 * 9);
    drawGaussian(hm, [9, 9], 1, 0, 4, 4, 3);
    const sigma = 7 / 6;
    expect(hm[4 * 9 + 4]).toBe(1);
    expect(hm[4 * 9 + 5]).toBeCloseTo(Math.exp(-1 / (2 * sigma * sigma)), 6);
    expect(hm[0]).toBe(0); // outside the radius
    drawGaussian(hm, [9, 9], 1, 0, 5, 4, 1);
    expect(hm[4 * 9 + 5]).toBe(1);
    expect(hm[4 * 9 + 4]).toBe(1);
  });

  it('decoding the targets gives back the boxes they were made from', () => {
    const boxes = [
      { label: 0, x: 10, y: 20, width: 40, height: 30 },
      { label: 2, x: 100, y: 60, width: 25, height: 70 },
    ];
    const grid: [number, number] = [10, 10];
    const t = encodeTargets(boxes, [160, 160], grid, 3);
    expect(t.objects).toBe(2);
    // Heatmap and regression side by side, as the head's output lays them out.
    const out = new Float32Array(100 * 7);
    for (let i = 0; i < 100; i++) {
      out.set(t.heatmap.subarray(i * 3, i * 3 + 3), i * 7);
      out.set(t.regression.subarray(i * 4, i * 4 + 4), i * 7 + 3);
    }
    const dets = decodeCenterNet(out, grid, 3, [160, 160], { minScore: 0.999 });
    expect(dets).toHaveLength(2);
    const byLabel = Object.fromEntries(dets.map((d) => [d.label, d]));
    for (const b of boxes) {
      const d = byLabel[b.label]!;
      expect(d.score).toBe(1);
      for (const k of ['x', 'y', 'width', 'height'] as const) expect(d[k]).toBeCloseTo(b[k], 4);
    }
  });

  it('keeps a cell only when no 3x3 neighbour in its class scores higher, then the top K by score', () => {
    const grid: [number, number] = [3, 4];
    const out = new Float32Array(12 * 6);
    const put = (y: number, x: number, c: number, v: number) => (out[(y * 4 + x) * 6 + c] = v);
    put(0, 0, 0, 0.9);
    put(0, 1, 0, 0.8); // beside a higher cell: suppressed
    put(2, 3, 0, 0.7);
    put(0, 1, 1, 0.6); // another class at the same cell: kept
    put(2, 2, 0, 0.7); // ties with its neighbour (2,3): both kept, the lower cell index first
    const dets = decodeCenterNet(out, grid, 2, [30, 40]);
    expect(dets.map((d) => [d.label, d.score])).toEqual([[0, expect.closeTo(0.9, 6)], [0, expect.closeTo(0.7, 6)], [0, expect.closeTo(0.7, 6)], [1, expect.closeTo(0.6, 6)]]);
    expect(dets[1]!.x).toBe(20); // cell x 2 at stride 10
    expect(decodeCenterNet(out, grid, 2, [30, 40], { maxDetections: 2 })).toHaveLength(2);
  });
});

describe('loss', () => {
  it('focal loss follows −Σ[(1−p)²log p · pos + p²(1−y)⁴ log(1−p) · neg] / #pos', () => {
    const p = [0.9, 0.2, 0.5, 1];
    const y = [1, 0.5, 0, 0];
    const clamp = (v: number) => Math.min(Math.max(v, 1e-4), 1 - 1e-4);
    let want = 0;
    p.forEach((pv, i) => {
      const q = clamp(pv);
      want += y[i] === 1 ? (1 - q) ** 2 * Math.log(q) : q ** 2 * (1 - y[i]!) ** 4 * Math.log(1 - q);
    });
    const got = focalLoss(tf.tensor(p), tf.tensor(y)).dataSync()[0]!;
    // float32 arithmetic: 1 − (1 − 1e-4) is not 1e-4 exactly, hence a relative 1e-5.
    expect(Math.abs(got + want) / want).toBeLessThan(1e-4);
  });

  it('adds 0.1 × size L1 and 1 × offset L1 at the centre cells, each over 2 × objects', () => {
    const out = tf.tensor4d([0.5, 3, 4, 0.2, 0.1, 0.5, 0, 0, 0, 0], [1, 1, 2, 5]);
    const targets = {
      heatmap: tf.tensor4d([1, 0], [1, 1, 2, 1]),
      regression: tf.tensor4d([2, 4, 0.5, 0.5, 9, 9, 9, 9], [1, 1, 2, 4]),
      mask: tf.tensor4d([1, 0], [1, 1, 2, 1]),
    };
    const l = centerNetLoss(out, targets, 1);
    const size = (Math.abs(3 - 2) + Math.abs(4 - 4)) / (2 + 1e-4);
    const offset = (Math.abs(0.2 - 0.5) + Math.abs(0.1 - 0.5)) / (2 + 1e-4);
    expect(l.size.dataSync()[0]).toBeCloseTo(size, 5);
    expect(l.offset.dataSync()[0]).toBeCloseTo(offset, 5);
    expect(l.total.dataSync()[0]).toBeCloseTo(l.heatmap.dataSync()[0]! + 0.1 * size + offset, 5);
  });
});

describe('the head', () => {
  it('has the heatmap, size and offset channels, starts near the 0.1 prior, and runs the same in ONNX Runtime', async () => {
    const head = buildCenterNetHead([4, 4, 16], { classes: 3, upsample: 1, channels: 8 });
    expect(head.outputs[0]!.shape).toEqual([null, 8, 8, outputChannels({ classes: 3 })]);
    const x = tf.randomNormal([2, 4, 4, 16], 0, 1, 'float32', 7);
    const y = head.predict(x) as tf.Tensor;
    const hm = tf.slice(y, [0, 0, 0, 0], [-1, -1, -1, 3]);
    expect(Math.abs(tf.mean(hm).dataSync()[0]! - 0.1)).toBeLessThan(0.1);
    const session = await ort.InferenceSession.create(convertLayersModel(head, { inputName: 'features', outputName: 'detections' }));
    const res = await session.run({ features: new ort.Tensor('float32', x.dataSync() as Float32Array, [2, 4, 4, 16]) });
    const got = res.detections!.data as Float32Array;
    const want = y.dataSync();
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
    expect(max).toBeLessThan(1e-4);
    head.dispose();
  });
});

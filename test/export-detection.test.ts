// Detection exports: decoding + NonMaxSuppression inside the ONNX graph agree in ONNX Runtime with decode.ts and a
// reference NMS on the same input (batch of two, boxes big enough to overlap so NMS has work); the export command
// writes that graph and the raw map beside it (checker-clean), and a Triton entry describing the decoded outputs.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CenterNetSection as DetectionSection } from '../src/artifacts/manifest.js';
import { appendCenterNetDecode } from '../src/export/onnx-detection.js';
import { buildModelProto, decodeModel, encodeModel } from '../src/onnx/index.js';
import { decodeCenterNet, type DecodedBox } from '../src/models/detection/decode.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createRng } from '../src/util/random.js';
import { noisePictures, oracleBoxes, tinyDetectionPackage, tinyDetector, writeCocoDataset } from './helpers/detection-fixtures.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';

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
let home: MlctlHome;
let pkgDir: string;
let oracleData: string;

beforeAll(async () => {
  await selectBackend('cpu');
  ({ model, section } = tinyDetector(11, { input: INPUT, boxCells: 4, maxDetections: 20 }));
  home = await mlctlHome('mlctl-exportdet-');
  const made = await tinyDetectionPackage(home.artifacts);
  // A COCO dataset whose boxes are the float32 model's own: mAP 1 before quantization.
  oracleData = path.join(home.dir, 'oracle');
  const size = { width: 80, height: 80 };
  const files = await noisePictures(oracleData, 16, size.width, size.height, 21);
  await writeCocoDataset(oracleData, files, size, await oracleBoxes(made.model, made.section, files, size));
  made.model.dispose();
  pkgDir = made.pkg.dir;
});

afterAll(async () => {
  model?.dispose();
  await home?.cleanup();
});

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

describe('mlctl export of a detection package', () => {
  let onnxDir: string;
  beforeAll(async () => {
    onnxDir = path.join(home.dir, 'onnx');
    const r = await runCli(['export', pkgDir, '--format', 'onnx', '--nms-iou', '0.4', '--out', onnxDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('writes model.onnx with boxes, scores, labels, batch_index and model-raw.onnx with the map', async () => {
    const meta = JSON.parse(await readFile(path.join(onnxDir, 'metadata.json'), 'utf8'));
    expect(meta.details.outputs.map((o: { name: string }) => o.name)).toEqual(['boxes', 'scores', 'labels', 'batch_index']);
    expect(meta.details.outputs[0].dims).toEqual(['detections', 4]);
    expect(meta.details.raw.outputs).toEqual([{ name: 'detections', elemType: 1, dims: ['batch', 4, 4, 6] }]);
    const decoded = await ort.InferenceSession.create(path.join(onnxDir, 'model.onnx'), { logSeverityLevel: 3 });
    const raw = await ort.InferenceSession.create(path.join(onnxDir, 'model-raw.onnx'), { logSeverityLevel: 3 });
    const rng = createRng(9);
    const x = new ort.Tensor('float32', Float32Array.from({ length: 64 * 64 * 3 }, () => rng()), [1, 64, 64, 3]);
    const got = await decoded.run({ image: x });
    const map = (await raw.run({ image: x })).detections!.data as Float32Array;
    await decoded.release();
    await raw.release();
    // The package's K = 3 and IoU 0.4 from --nms-iou, recorded in metadata_props for whoever reads the file.
    const want = nmsReference(decodeCenterNet(map, [4, 4], 2, [64, 64], { maxDetections: 3 }), 0.4);
    expect(Array.from(got.scores!.data as Float32Array).map((v) => v.toFixed(5))).toEqual(want.map((b) => b.score.toFixed(5)));
    expect(Array.from(got.labels!.data as BigInt64Array, Number)).toEqual(want.map((b) => b.label));
    const props = JSON.parse((await import('../src/onnx/index.js')).decodeModel(await readFile(path.join(onnxDir, 'model.onnx'))).metadataProps!.find((p) => p.key === 'mlctl.detection')!.value!);
    expect(props.outputs).toMatchObject({ boxes: 'boxes', nmsIou: 0.4, topK: 3, boxFormat: 'x1,y1,x2,y2 in input pixels' });
  });

  it.skipIf(!tools.pythonOnnx)('both graphs pass onnx.checker full_check', () => {
    for (const f of ['model.onnx', 'model-raw.onnx']) expect(onnxCheck(path.join(onnxDir, f)), f).toMatchObject({ status: 0 });
  });

  it('writes a Triton entry describing the decoded outputs (no batching dimension: M boxes span the batch)', async () => {
    const repo = path.join(home.dir, 'triton');
    const r = await runCli(['export', pkgDir, '--format', 'triton', '--out', repo, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.details.config).toMatchObject({
      max_batch_size: 0,
      // Without batching the dims hold the batch too: 4 dims, so no image format (Triton takes one only with 3).
      input: [{ name: 'image', data_type: 'TYPE_FP32', dims: [-1, 64, 64, 3] }],
      output: [
        { name: 'boxes', data_type: 'TYPE_FP32', dims: [-1, 4] },
        { name: 'scores', data_type: 'TYPE_FP32', dims: [-1] },
        { name: 'labels', data_type: 'TYPE_INT64', dims: [-1] },
        { name: 'batch_index', data_type: 'TYPE_INT64', dims: [-1] },
      ],
    });
    expect(r.json.details.config.dynamic_batching).toBeUndefined();
    expect(r.json.details.config.input[0].format).toBeUndefined();
    const pbtxt = await readFile(path.join(repo, 'det', 'config.pbtxt'), 'utf8');
    expect(pbtxt).toContain('key: "mlctl.detection"');
    expect(pbtxt).not.toContain('label_filename');
  });

  it('exports TF.js as for any model (the raw map; decoding as docs/detection-evaluate.md says)', async () => {
    const out = path.join(home.dir, 'tfjs');
    const r = await runCli(['export', pkgDir, '--format', 'tfjs', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.json.files)).toEqual(expect.arrayContaining(['model.json']));
  });
});

describe('mlctl quantize of a detection package', () => {
  it('gates on validation mAP: --max-map-drop in points, exit 3 and the package marked rejected beyond it', async () => {
    const args = ['quantize', pkgDir, '--dtype', 'uint8', '--data', oracleData, '--validation-split', '0.5', '--latency-runs', '0', '--json'];
    const ok = await runCli([...args, '--max-map-drop', '100']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json.status).toBe('ok');
    const before = ok.json.before.accuracy;
    const after = ok.json.after.accuracy;
    expect(before).toBeCloseTo(1, 6);
    const drop = (before - after) * 100;
    expect(drop, 'uint8 weights move some peaks: the oracle boxes are no longer all found').toBeGreaterThan(0.5);
    const saved = JSON.parse(await readFile(path.join(ok.json.package.dir, 'mlctl.json'), 'utf8'));
    expect(saved.metrics.valMap).toBeCloseTo(after, 9);
    expect(saved.lineage.at(-1).params).toMatchObject({ dtype: 'uint8', valMapBefore: before, valMapAfter: after });
    // The terminal table names the score it shows: mAP for a detector, not a classifier's accuracy.
    const text = await runCli(args.filter((a) => a !== '--json').concat('--max-map-drop', '100'));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/val mAP/);
    expect(text.stdout).not.toMatch(/val accuracy/);

    const strict = await runCli([...args, '--max-map-drop', (drop / 2).toFixed(3)]);
    expect(strict.code).toBe(3);
    expect(strict.json.error.code).toBe('GATE_FAILED');
    expect(strict.json.error.message).toMatch(new RegExp(`validation mAP@\\[\\.50:\\.95\\] dropped from 100\\.00 to ${(after * 100).toFixed(2)}, ${drop.toFixed(2)} points; --max-map-drop ${(drop / 2).toFixed(3)} allows`));
    const rejected = JSON.parse(await readFile(path.join(strict.json.package.dir, 'mlctl.json'), 'utf8'));
    expect(rejected.status).toBe('rejected');
  });

  it('int8: calibrates on the dataset\'s train pictures and compares fp32 and int8 ONNX on the validation ones', async () => {
    const r = await runCli(['quantize', pkgDir, '--dtype', 'int8', '--data', oracleData, '--validation-split', '0.5', '--max-map-drop', '100', '--latency-runs', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ dtype: 'int8', calibrationImages: 8, before: { label: 'det v1 (fp32 ONNX)' }, after: { label: expect.stringMatching(/int8 ONNX/) } });
    // The fp32 ONNX conversion finds every oracle box (the same boxes as TF.js); the int8 model is scored alike.
    expect(r.json.before.accuracy).toBeCloseTo(1, 6);
    expect(r.json.after.accuracy).toBeGreaterThan(0);
    expect(r.json.after.accuracy).toBeLessThanOrEqual(1);
    expect(r.stderr).toMatch(/mAP gate: 8 validation pictures/);
  });

  it('int8 keeps the first conv and the head\'s output convs float (float weights, no Q/DQ after them) and passes an mAP gate', async () => {
    // Squares on black, every peak of the 4x4 grid an oracle box (32 detections kept): the gate asks for the same
    // peaks and the same boxes, not the same order of near-tied scores of a random model on noise among the top 3.
    // This random toy's near-tied peaks still move under any int8 (every conv int8 with min/max ranges: 2.5 points
    // of mAP@[.5:.95] here), hence a 5-point gate; the trained detector's figure is bench/detection.ts's.
    const made = await tinyDetectionPackage(home.artifacts, { name: 'det-all', maxDetections: 32 });
    const data = path.join(home.dir, 'oracle-all');
    const size = { width: 80, height: 80 };
    const files = await noisePictures(data, 16, size.width, size.height, 21, true);
    await writeCocoDataset(data, files, size, await oracleBoxes(made.model, made.section, files, size));
    made.model.dispose();
    const r = await runCli(['quantize', made.pkg.dir, '--dtype', 'int8', '--data', data, '--validation-split', '0.5', '--max-map-drop', '5', '--latency-runs', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.status).toBe('ok');
    expect(r.json.after.accuracy).toBeGreaterThan(0.95);
    expect(r.json.before.accuracy).toBeCloseTo(1, 6);
    expect(r.json.activationRange).toBe('99.999 percentile');
    const kept = ['bb_conv', 'det_heatmap', 'det_size', 'det_offset'].map((l) => `${l}/conv_node`);
    expect(r.json.floatNodes.map((f: { node: string }) => f.node)).toEqual(kept);
    expect(r.json.floatNodes[1].reason).toMatch(/output layer/);
    const proto = decodeModel(await readFile(path.join(r.json.package.dir, 'model.onnx')));
    const floatWeights = new Set(proto.graph.initializer.filter((t) => t.dataType === 1 && t.dims?.length === 4).map((t) => t.name));
    const convs = proto.graph.node.filter((n) => n.opType === 'Conv');
    for (const c of convs) {
      const isFloat = kept.includes(c.name!);
      expect(floatWeights.has(c.input[1]!), `${c.name} weights`).toBe(isFloat);
      if (isFloat) expect(proto.graph.node.some((n) => n.opType === 'QuantizeLinear' && n.input[0] === c.output[0])).toBe(false);
    }
    expect(convs.filter((c) => !kept.includes(c.name!)).length).toBe(r.json.quantizedNodes); // the rest are int8
    // The heatmap's sigmoid reads the float conv's output directly: scores are never rounded to a uint8 step.
    const sigmoid = proto.graph.node.find((n) => n.opType === 'Sigmoid')!;
    expect(sigmoid.input[0]).toBe(convs.find((c) => c.name === 'det_heatmap/conv_node')!.output[0]);
    const manifest = JSON.parse(await readFile(path.join(r.json.package.dir, 'mlctl.json'), 'utf8'));
    expect(manifest.architecture.int8).toMatchObject({ activations: 'uint8 99.999 percentile calibrated', floatNodes: r.json.floatNodes });
  });
});

// Every backbone (tiny random variants) converts to ONNX with BatchNorm folded into its convs, passes the reference
// checker, and gives TF.js's numbers in onnxruntime-node at batch 1 and 5 — base features and the full classifier.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackboneDef, BackboneOptions } from '../src/models/backbones/types.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { KerasNormalization } from '../src/models/backbones/efficientnet.js';
import { buildFullModel } from '../src/models/head.js';
import { convertLayersModel, decodeModel } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';

/** Input ranges each backbone's preprocessing produces (caffe: BGR minus mean; tf: -1..1; raw: 0..255). */
const RANGE: Record<string, [number, number]> = { caffe: [-124, 152], tf: [-1, 1], raw: [0, 255] };

export const TINY: Array<[string, BackboneOptions]> = [
  ['mobilenet_v2', { imageSize: 32, alpha: 0.35, seed: 3 }],
  ['resnet50', { imageSize: 32, seed: 3 }],
  ['efficientnet_b0', { imageSize: 40, seed: 3 }],
];

/** Give BatchNormalization layers (and EfficientNet's Normalization) plausible non-trivial statistics. */
export function randomizeStatistics(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer instanceof KerasNormalization) {
      layer.setKerasWeights([
        { name: 'mean', shape: [3], values: Float32Array.of(0.485, 0.456, 0.406) },
        { name: 'variance', shape: [3], values: Float32Array.of(0.229, 0.224, 0.225) },
        { name: 'count', shape: [], values: Float32Array.of(1) },
      ]);
    }
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const [lo, hi] = [[0.5, 1.5], [-0.1, 0.1], [-0.1, 0.1], [0.5, 1.5]] as const;
    layer.setWeights(layer.weights.map((w, i) => tf.randomUniform(w.shape as number[], [lo, hi, hi, lo][i]![0], [lo, hi, hi, lo][i]![1], 'float32', s++)));
  }
}

async function runOnnx(session: ort.InferenceSession, x: tf.Tensor): Promise<Float32Array> {
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
  return out[session.outputNames[0]!]!.data as Float32Array;
}

/** Worst |a − b| relative to the largest |a| (features), or absolute (probabilities). */
function worst(a: Float32Array | Int32Array | Uint8Array, b: Float32Array, relative: boolean): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(a[i]!));
  }
  return relative ? d / Math.max(m, 1e-6) : d;
}

let dirs: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  await selectBackend('cpu');
  dirs = await tempDir('mlctl-bb-onnx-');
});
afterAll(() => dirs.cleanup());

describe.each(TINY)('%s → ONNX', (id, opts) => {
  const def: BackboneDef = BACKBONES[id]!;
  let base: tf.LayersModel;
  let full: tf.LayersModel;
  beforeAll(() => {
    base = def.build(opts);
    randomizeStatistics(base, 11);
    full = buildFullModel(base, { pooling: 'gap', units: 16, dropout: 0.2, classes: 3 });
  });
  afterAll(() => full.dispose());

  it('folds every BatchNormalization into a Conv and matches TF.js (features relative ≤ 1e-4, probabilities ≤ 1e-4) at batch 1 and 5', async () => {
    const bytes = convertLayersModel(base);
    const proto = decodeModel(bytes);
    const ops = proto.graph.node.map((n) => n.opType);
    expect(ops).not.toContain('BatchNormalization');
    expect(ops.filter((o) => o === 'Conv').length).toBe(base.layers.filter((l) => ['Conv2D', 'DepthwiseConv2D'].includes(l.getClassName())).length);
    const fullBytes = convertLayersModel(full);
    const s1 = await ort.InferenceSession.create(bytes);
    const s2 = await ort.InferenceSession.create(fullBytes);
    try {
      for (const batch of [1, 5]) {
        const [lo, hi] = RANGE[def.preprocessing]!;
        const x = tf.randomUniform([batch, opts.imageSize, opts.imageSize, 3], lo, hi, 'float32', batch);
        const feats = base.predict(x) as tf.Tensor;
        const probs = full.predict(x) as tf.Tensor;
        expect(feats.shape).toEqual([batch, ...def.featureShape(opts)]);
        expect(worst(feats.dataSync() as Float32Array, await runOnnx(s1, x), true)).toBeLessThanOrEqual(1e-4);
        expect(worst(probs.dataSync() as Float32Array, await runOnnx(s2, x), false)).toBeLessThanOrEqual(1e-4);
        tf.dispose([x, feats, probs]);
      }
    } finally {
      await s1.release();
      await s2.release();
    }
  }, 120_000);

  it.skipIf(!tools.pythonOnnx)('passes the reference checker (python3-onnx full_check)', async () => {
    const file = path.join(dirs.dir, `${id}.onnx`);
    await writeFile(file, convertLayersModel(full, { inputName: def.inputName, outputName: 'predictions' }));
    expect(onnxCheck(file)).toMatchObject({ stderr: '', status: 0 });
  }, 120_000);
});

// Static QDQ int8 quantization: the quantized model runs in onnxruntime-node, ORT fuses it into QLinearConv /
// QLinearMatMul, weights shrink to int8, the reference checker accepts it, and top-1 mostly agrees with fp32.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { convertLayersModel, decodeModel } from '../src/onnx/index.js';
import { edgeLayerNodes, quantizeOnnxQdq } from '../src/optimize/onnx-qdq.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';

const hasPythonOnnx = tools.pythonOnnx;
const SIZE = 32;
const CLASSES = 5;

let tmp: { dir: string; cleanup: () => Promise<void> };
let fp32: Uint8Array;

/** Smooth random images (blurred noise) so conv features carry signal, as real pictures do. */
function images(n: number, seed: number): Float32Array {
  return tf.tidy(() => {
    const noise = tf.randomUniform([n, SIZE / 4, SIZE / 4, 3], -100, 100, 'float32', seed);
    return tf.image.resizeBilinear(noise as tf.Tensor4D, [SIZE, SIZE]).dataSync() as Float32Array;
  });
}

function classifier(): tf.LayersModel {
  let s = 50;
  const init = () => tf.initializers.heNormal({ seed: s++ });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(), biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: s++ }) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init() }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', kernelInitializer: init() }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init() }));
  m.add(tf.layers.dense({ units: CLASSES, kernelInitializer: init(), name: 'logits' }));
  m.add(tf.layers.activation({ activation: 'softmax' }));
  // Random weights favour one class for every input; centre and scale the logits (as training would) so top-1
  // agreement is measured over varied predictions, not a constant answer.
  const logits = tf.model({ inputs: m.inputs, outputs: m.getLayer('logits').output as tf.SymbolicTensor });
  const sample = tf.tensor(images(64, 999), [64, SIZE, SIZE, 3]);
  const z = logits.predict(sample) as tf.Tensor;
  const { mean, variance } = tf.moments(z, 0);
  const std = tf.sqrt(variance).mean().add(1e-6);
  const [k, b] = m.getLayer('logits').getWeights();
  m.getLayer('logits').setWeights([k!.div(std), b!.sub(mean).div(std)]);
  tf.dispose([sample, z, mean, variance, std]);
  return m;
}

async function predict(bytes: Uint8Array | string, x: Float32Array, n: number, optimizedModelFilePath?: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes as Uint8Array, { graphOptimizationLevel: 'all', ...(optimizedModelFilePath ? { optimizedModelFilePath } : {}) });
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [n, SIZE, SIZE, 3]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const argmax = (v: Float32Array, row: number) => {
  let best = 0;
  for (let c = 1; c < CLASSES; c++) if (v[row * CLASSES + c]! > v[row * CLASSES + best]!) best = c;
  return best;
};

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-qdq-');
  const model = classifier();
  fp32 = convertLayersModel(model, { inputName: 'input', outputName: 'predictions' });
  model.dispose();
});

afterAll(async () => {
  await tmp.cleanup();
});

describe('quantizeOnnxQdq', () => {
  it('quantizes Conv/MatMul weights to int8, ORT fuses QLinear ops, and top-1 agrees with fp32 on most inputs', async () => {
    const calibration = [0, 1].map((i) => ({ data: images(8, 100 + i), batch: 8 }));
    const progress: number[] = [];
    const result = await quantizeOnnxQdq(fp32, { calibration, onProgress: (done, total) => progress.push(done / total) });
    expect(progress).toEqual([0.25, 0.5, 0.75, 1]); // batches of 8 run as chunks of 4 to bound calibration memory
    expect(result.quantizedNodes).toBe(5); // 3 Conv + 2 MatMul
    expect(result.quantizedTensors).toBeGreaterThan(5);
    expect(result.bytes.length).toBeLessThan(fp32.length * 0.45); // float32 weights → int8 (+ scales)

    const q = decodeModel(result.bytes);
    const ops = q.graph.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'QuantizeLinear').length).toBe(result.quantizedTensors);
    expect(q.graph.initializer.filter((t) => t.dataType === 3).length).toBe(10); // int8 weights + their zero points
    expect(q.graph.input[0]!.type!.tensorType!.elemType).toBe(1); // callers still feed float32
    expect(q.metadataProps!.some((p) => p.key === 'mlctl.quantization')).toBe(true);

    const optimized = path.join(tmp.dir, 'optimized.onnx');
    const n = 48;
    const x = images(n, 7);
    const [a, b] = [await predict(fp32, x, n), await predict(result.bytes, x, n, optimized)];
    const fused = decodeModel(await readFile(optimized)).graph.node.map((nd) => nd.opType);
    expect(fused).toContain('QLinearConv');
    expect(fused.some((o) => o === 'QLinearMatMul' || o === 'MatMulIntegerToFloat' || o === 'QGemm')).toBe(true);
    let agree = 0;
    let worst = 0;
    for (let i = 0; i < n; i++) if (argmax(a, i) === argmax(b, i)) agree++;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    const counts = new Array<number>(CLASSES).fill(0);
    for (let i = 0; i < n; i++) counts[argmax(a, i)]!++;
    expect(Math.max(...counts) / n).toBeLessThan(0.6); // the fp32 answers vary: agreement is not a constant's
    expect(agree / n).toBeGreaterThanOrEqual(0.85);
    expect(worst).toBeLessThan(0.5); // probabilities move, but stay close
    expect(worst).toBeGreaterThan(0); // it really is a different (quantized) computation
  }, 60_000);

  it.skipIf(!hasPythonOnnx)('per-channel and per-tensor models pass the reference checker', async () => {
    for (const perChannel of [true, false]) {
      const result = await quantizeOnnxQdq(fp32, { calibration: [{ data: images(4, 3), batch: 4 }], perChannel });
      const file = path.join(tmp.dir, `int8-${perChannel}.onnx`);
      await writeFile(file, result.bytes);
      expect(onnxCheck(file)).toMatchObject({ stderr: '', status: 0 });
      expect((await predict(result.bytes, images(2, 4), 2)).length).toBe(2 * CLASSES);
    }
  }, 60_000);

  it('floatLayers keeps the first conv and the output layer float (plain weights, no Q/DQ on their output); a percentile narrows ranges', async () => {
    const calibration = [{ data: images(8, 100), batch: 8 }];
    const proto = decodeModel(fp32);
    const [first] = edgeLayerNodes(proto, 'input');
    const [last] = edgeLayerNodes(proto, 'output');
    expect([first!.opType, edgeLayerNodes(proto, 'input').length]).toEqual(['Conv', 1]);
    expect([last!.opType, last!.input[1]]).toEqual(['MatMul', expect.stringMatching(/^logits\//)]); // Softmax follows it
    const minmax = await quantizeOnnxQdq(fp32, { calibration });
    const result = await quantizeOnnxQdq(fp32, { calibration, floatLayers: { input: true, output: true }, activationRange: { percentile: 99 } });
    expect(result.floatNodes.map((f) => f.node)).toEqual([first!.name, last!.name]);
    expect(result.quantizedNodes).toBe(3);
    const q = decodeModel(result.bytes);
    const floatInits = new Set(q.graph.initializer.filter((t) => t.dataType === 1 && (t.dims?.length ?? 0) >= 2).map((t) => t.name));
    for (const name of [first!.name, last!.name]) {
      const node = q.graph.node.find((n) => n.name === name)!;
      expect(floatInits.has(node.input[1]!), `${name} reads float weights`).toBe(true);
      expect(q.graph.node.some((n) => n.opType === 'QuantizeLinear' && n.input[0] === node.output[0])).toBe(false);
    }
    // The percentile cuts the tail a min/max range stretches to: some upper bound is lower, none is higher.
    const shared = Object.keys(result.ranges).filter((t) => minmax.ranges[t]);
    expect(shared.some((t) => result.ranges[t]![1] < minmax.ranges[t]![1])).toBe(true);
    expect(shared.every((t) => result.ranges[t]![1] <= minmax.ranges[t]![1])).toBe(true);
    expect((await predict(result.bytes, images(2, 4), 2)).length).toBe(2 * CLASSES);
  }, 60_000);

  it('refuses to run without calibration data or with wrongly shaped batches', async () => {
    await expect(quantizeOnnxQdq(fp32, { calibration: [] })).rejects.toThrow(MlctlError);
    await expect(quantizeOnnxQdq(fp32, { calibration: [{ data: new Float32Array(5), batch: 1 }] })).rejects.toThrow(/expected 1 x \[32, 32, 3\]/);
  });
});

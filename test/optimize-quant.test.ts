// Weight quantization: encodings checked against TF.js's own decoder (tf.io.decodeWeights) and the converter's
// formula written out independently here, and quantized packages loading and predicting through stock TF.js.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createMemoryLogger } from '../src/util/log.js';
import { modelSize } from '../src/optimize/measure.js';
import { quantizePackage } from '../src/optimize/quantize.js';
import { finishStep, modelArtifacts } from '../src/optimize/step.js';
import { float32ToFloat16Bits, quantizeWeightData } from '../src/artifacts/weight-quant.js';
import { createRng, gaussian } from '../src/util/random.js';
import { modelPackage, synthDataset, tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';

/** The converter's uint quantization (quantization.py), written independently of the implementation. */
function converterExpectation(values: Float32Array, qmax: number) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  let scale = (hi - lo) / qmax;
  let min = lo;
  let max = hi;
  if (lo <= 0 && hi >= 0) {
    const raw = -lo / scale;
    let zp = Math.round(raw);
    if (Math.abs(raw % 1) === 0.5 && zp % 2 !== 0) zp -= 1;
    min = -zp * scale;
    max = qmax * scale + min;
  }
  const codes = Array.from(values, (v) => {
    const t = (Math.min(max, Math.max(min, v)) - min) / scale;
    let r = Math.round(t);
    if (Math.abs(t % 1) === 0.5 && r % 2 !== 0) r -= 1;
    return r;
  });
  return { min, scale, codes };
}

function spec(name: string, n: number): tf.io.WeightsManifestEntry {
  return { name, shape: [n], dtype: 'float32' };
}

function randomWeights(n: number, seed: number, std = 0.1, shift = 0): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => gaussian(rng) * std + shift);
}

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('uint8 / uint16 affine encoding', () => {
  for (const [dtype, qmax] of [['uint8', 255], ['uint16', 65535]] as const) {
    it(`${dtype}: bytes, min and scale match the converter; tf.io.decodeWeights gives q*scale+min; 0.0 stays exact`, () => {
      const a = randomWeights(500, 3);
      a[7] = 0;
      a[100] = 0;
      const b = randomWeights(300, 5, 0.05, 0.5); // all positive: no nudging
      const q = quantizeWeightData(new Float32Array([...a, ...b]).buffer, [spec('a', 500), spec('b', 300)], dtype);
      expect(q.specs.map((s) => s.dtype)).toEqual(['float32', 'float32']);
      expect(q.bytesAfter).toBe(800 * (qmax === 255 ? 1 : 2));

      const decoded = tf.io.decodeWeights(q.weightData, q.specs);
      let offset = 0;
      for (const [name, values] of [['a', a], ['b', b]] as const) {
        const s = q.specs.find((x) => x.name === name)!;
        const exp = converterExpectation(values, qmax);
        expect(s.quantization).toMatchObject({ dtype, original_dtype: 'float32' });
        expect(s.quantization!.min).toBe(exp.min);
        expect(s.quantization!.scale).toBe(exp.scale);
        const bytes = new Uint8Array(q.weightData, offset, values.length * (qmax === 255 ? 1 : 2)).slice();
        const codes = qmax === 255 ? bytes : new Uint16Array(bytes.buffer);
        expect(Array.from(codes)).toEqual(exp.codes);
        offset += bytes.byteLength;
        const got = decoded[name]!.dataSync();
        for (let i = 0; i < values.length; i++) {
          expect(got[i]).toBe(Math.fround(exp.codes[i]! * exp.scale + exp.min));
          expect(Math.abs(got[i]! - values[i]!)).toBeLessThanOrEqual(exp.scale * 0.5 + 1e-6);
        }
      }
      const da = decoded.a!.dataSync();
      expect(da[7]).toBe(0);
      expect(da[100]).toBe(0);
      // The nudged zero point is an integer code.
      const sa = q.specs[0]!.quantization!;
      expect(Number.isInteger(-sa.min! / sa.scale!) || Math.abs(-sa.min! / sa.scale! - Math.round(-sa.min! / sa.scale!)) < 1e-9).toBe(true);
    });
  }

  it('a constant tensor encodes as zeros with min = the value (converter special case)', () => {
    const q = quantizeWeightData(new Float32Array([0.25, 0.25, 0.25]).buffer, [spec('c', 3)], 'uint8');
    expect(Array.from(new Uint8Array(q.weightData))).toEqual([0, 0, 0]);
    expect(q.specs[0]!.quantization).toMatchObject({ min: 0.25, scale: 1 });
    expect(Array.from(tf.io.decodeWeights(q.weightData, q.specs).c!.dataSync())).toEqual([0.25, 0.25, 0.25]);
  });

  it('int32 weights are copied unchanged and only float32 weights are quantized', () => {
    const buf = new Uint8Array(3 * 4 + 2 * 4);
    new Float32Array(buf.buffer, 0, 3).set([1, -1, 0.5]);
    new Int32Array(buf.buffer, 12, 2).set([7, -9]);
    const q = quantizeWeightData(buf.buffer, [spec('f', 3), { name: 'i', shape: [2], dtype: 'int32' }], 'uint8');
    expect(q.quantized).toEqual(['f']);
    expect(q.kept).toEqual(['i']);
    expect(q.specs[1]).toEqual({ name: 'i', shape: [2], dtype: 'int32' });
    expect(Array.from(tf.io.decodeWeights(q.weightData, q.specs).i!.dataSync())).toEqual([7, -9]);
  });
});

describe('float16 encoding', () => {
  it('every finite half value round-trips through tf.io.decodeWeights bit for bit', () => {
    const bits = new Uint16Array(0x10000);
    for (let i = 0; i < bits.length; i++) bits[i] = i;
    const finite = Array.from(bits).filter((h) => (h & 0x7c00) !== 0x7c00);
    const halves = Uint16Array.from(finite);
    const decoded = tf.io.decodeWeights(halves.buffer, [{ name: 'h', shape: [halves.length], dtype: 'float32', quantization: { dtype: 'float16' } }]).h!.dataSync();
    const encoded = Array.from(decoded, (v) => float32ToFloat16Bits(v));
    // ±0 are distinct bit patterns; everything else must come back exactly.
    expect(encoded).toEqual(finite);
  });

  it('rounds to nearest even, overflows to Inf and underflows to signed zero like numpy', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even (1.0)
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie → up
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // rounds past the largest half
    expect(float32ToFloat16Bits(-1e6)).toBe(0xfc00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie with 0 → even
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16Bits(-1e-10)).toBe(0x8000);
    expect(float32ToFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });

  it('float16 weights decode through TF.js within half precision', () => {
    const a = randomWeights(1000, 9, 0.2);
    const q = quantizeWeightData(a.buffer as ArrayBuffer, [spec('a', 1000)], 'float16');
    expect(q.specs[0]!.quantization).toEqual({ dtype: 'float16', original_dtype: 'float32' });
    expect(q.bytesAfter).toBe(2000);
    const got = tf.io.decodeWeights(q.weightData, q.specs).a!.dataSync();
    for (let i = 0; i < a.length; i++) expect(Math.abs(got[i]! - a[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * 2 ** -11 + 2 ** -25);
  });
});

describe('quantizePackage', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('mlctl-quant-'));
  });
  afterAll(async () => cleanup());

  for (const dtype of ['uint8', 'float16', 'uint16'] as const) {
    it(`${dtype}: the new version loads with stock tf.loadLayersModel and predicts like the original`, async () => {
      const source = await tinyPackage(root, { name: `tiny-${dtype}` });
      const report = await quantizePackage(source, dtype, { logger: createMemoryLogger(), root, latencyRuns: 0 });
      expect(report.package.manifest.version).toBe(source.manifest.version + 1);
      expect(report.package.manifest.lineage.at(-1)).toMatchObject({ op: 'quantize', from: { name: source.manifest.name, version: 1, manifestSha256: source.manifestSha256 }, params: { dtype } });
      expect(report.package.manifest.architecture).toMatchObject({ weightQuantization: { dtype } });
      const json = JSON.parse(await fs.readFile(path.join(report.package.dir, 'model.json'), 'utf8'));
      for (const w of json.weightsManifest[0].weights) expect(w).toMatchObject({ dtype: 'float32', quantization: { dtype } });

      const reloaded = await loadPackage(report.package.dir);
      const a = await loadTfjsModel(source);
      const b = await loadTfjsModel(reloaded);
      const x = tf.randomUniform([4, 32, 32, 3], -120, 120, 'float32', 11);
      const pa = (a.predict(x) as tf.Tensor).dataSync();
      const pb = (b.predict(x) as tf.Tensor).dataSync();
      const tol = dtype === 'uint8' ? 0.05 : 0.002;
      for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i]! - pb[i]!)).toBeLessThan(tol);
      // …and the weights really are the quantized ones, not the originals.
      if (dtype === 'uint8') expect(Array.from(b.getWeights()[0]!.dataSync())).not.toEqual(Array.from(a.getWeights()[0]!.dataSync()));
      tf.dispose([x, a, b] as never);
    });
  }

  it('uint8 weights take at most 26% of the float32 size on a model with realistic weight counts', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 32, kernelSize: 3, activation: 'relu', name: 'block1_conv1' }),
        tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
        tf.layers.flatten({ name: 'flatten' }),
        tf.layers.dense({ units: 64, activation: 'relu', name: 'fc1' }),
        tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' }),
      ],
    });
    const source = await modelPackage(root, model, { name: 'realistic', labels: ['a', 'b', 'c'] });
    const report = await quantizePackage(source, 'uint8', { logger: createMemoryLogger(), root, latencyRuns: 0 });
    expect(report.weightBytesAfter / report.weightBytesBefore).toBeLessThanOrEqual(0.26);
    const before = await modelSize(source);
    const after = await modelSize(report.package);
    // Including model.json (a few KB of topology) the whole model is still about a quarter.
    expect(after.raw / before.raw).toBeLessThanOrEqual(0.26);
    expect(report.before.size.raw).toBe(before.raw);
    model.dispose();
  });

  it('the accuracy gate keeps a package that dropped too much but marks it rejected (exit 3)', async () => {
    const data = path.join(root, 'data');
    await synthDataset(data, { classes: 3, perClass: 10 });
    const source = await tinyPackage(root, { name: 'gated', labels: ['circle', 'square', 'triangle'] });
    // A candidate that always predicts one class: 1/3 on the balanced split, against a source said to score 100%.
    const flat = tinyModel(32, 3, 5);
    flat.setWeights(flat.getWeights().map((w) => tf.zerosLike(w)));
    const report = await finishStep(
      { source, op: 'quantize', params: { dtype: 'uint8' }, artifacts: await modelArtifacts(flat), accuracyBefore: 1 },
      { logger: createMemoryLogger(), root, data, maxAccuracyDrop: 0.01, latencyRuns: 0 },
    );
    expect(report.exitCode).toBe(3);
    expect(report.status).toBe('rejected');
    expect(report.after.accuracy).toBeCloseTo(1 / 3, 5);
    const saved = await loadPackage(report.package.dir);
    expect(saved.manifest.status).toBe('rejected');
    expect(saved.manifest.statusReason).toMatch(/dropped from 100\.00% to 33\.33%/);
    expect(saved.manifest.metrics).toMatchObject({ valAccuracy: report.after.accuracy, valExamples: 6 });

    // The same candidate passes when the allowed drop is large enough.
    const ok = await finishStep(
      { source, op: 'quantize', params: {}, artifacts: await modelArtifacts(flat), accuracyBefore: 1 },
      { logger: createMemoryLogger(), root, data, maxAccuracyDrop: 0.7, latencyRuns: 0 },
    );
    expect(ok.exitCode).toBe(0);
    expect((await loadPackage(ok.package.dir)).manifest.status).toBe('ok');
    flat.dispose();
  });
});

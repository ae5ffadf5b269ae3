// ONNX/Triton export variants as their owners' tools see them: quantized packages (float16, uint8) exported at their
// size with the package's own dequantized numerics, and --embed-preprocessing graphs that take UINT8 RGB pixels and
// match the FP32 variant for every preprocessing mode. onnxruntime-node runs them; onnx.checker full_check checks them.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreprocessingSpec } from '../src/artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { imageInputSpec, pixelsToInput, preprocessingFor } from '../src/data/preprocess.js';
import { MlctlError } from '../src/errors.js';
import { exportModel } from '../src/export/index.js';
import { parseTextFormat } from '../src/triton/pbtxt.js';
import { tritonModelConfigType } from '../src/triton/model-config-proto.js';
import { decodeModel, encodeModel, DataType } from '../src/onnx/index.js';
import { quantizePackage } from '../src/optimize/quantize.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine } from '../src/runtime/engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir } from './helpers/fixtures.js';
import { PYTHON, tools } from './helpers/tools.js';
import { runFloat } from '../src/runtime/float.js';

const SIZE = 32;
const LABELS = ['cat', 'dog', 'bird'];
let root: string;
let cleanup: () => Promise<void>;
let fp32: LoadedPackage;

/** A functional conv net whose Dense layer dominates the weights (≈0.5M parameters), so file sizes measure weights. */
function model(seed = 3): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'input' });
  let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: tf.initializers.randomUniform({ minval: 0.05, maxval: 0.2, seed }), name: 'conv' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 256, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed }), name: 'fc1' }).apply(x) as tf.SymbolicTensor;
  const y = tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }), name: 'predictions' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y, name: 'variants' });
}

async function imagePackage(name: string, mode: PreprocessingSpec['mode'] = 'caffe'): Promise<LoadedPackage> {
  const m = model();
  try {
    return await savePackage({
      root: path.join(root, 'artifacts'),
      name,
      draft: {
        task: 'image-classification',
        labels: LABELS,
        input: imageInputSpec(SIZE, mode),
        output: { name: 'predictions', kind: 'probabilities', size: LABELS.length },
        architecture: { type: 'test-variants' },
        formats: { tfjs: 'model.json' },
        lineage: [],
      },
      write: (dir) => writeTfjsModel(dir, m),
    });
  } finally {
    m.dispose();
  }
}

/** Deterministic RGB pixels covering 0..255. */
function pixels(batch: number, seed = 11): Uint8Array {
  const p = new Uint8Array(batch * SIZE * SIZE * 3);
  let s = seed;
  for (let i = 0; i < p.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 1;
    p[i] = s % 256;
  }
  return p;
}

async function run(file: string | Uint8Array, input: ort.Tensor, options: ort.InferenceSession.SessionOptions = {}, output?: string): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(file as Uint8Array, { logSeverityLevel: 3, ...options });
  try {
    const y = (await session.run({ [session.inputNames[0]!]: input }))[output ?? session.outputNames[0]!]!;
    return { data: y.data as Float32Array, dims: y.dims };
  } finally {
    await session.release();
  }
}

/** What the package itself predicts (mlctl's TF.js engine over its dequantized weights). */
async function packagePredicts(pkg: LoadedPackage, x: Float32Array, batch: number): Promise<Float32Array> {
  const engine = await openEngine(pkg, { engine: 'tfjs' });
  try {
    return await runFloat(engine, x, batch);
  } finally {
    await engine.dispose();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const weightBytes = (pkg: LoadedPackage) => Object.entries(pkg.manifest.files).filter(([f]) => f.endsWith('.bin')).reduce((a, [, e]) => a + e.bytes, 0);
const props = (bytes: Uint8Array) => Object.fromEntries((decodeModel(bytes).metadataProps ?? []).map((p) => [p.key, p.value]));

function fullCheck(file: string): string {
  const script = 'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(m.doc_string)';
  return execFileSync(PYTHON, ['-c', script, file], { encoding: 'utf8' }).trim();
}

beforeAll(async () => {
  await selectBackend('cpu');
  ({ dir: root, cleanup } = await tempDir('mlctl-export-variants-'));
  fp32 = await imagePackage('variants');
});
afterAll(() => cleanup());

describe('quantized packages export at their size', () => {
  const cases = [
    { dtype: 'float16' as const, weights: 'fp16', initType: DataType.FLOAT16, op: 'Cast' },
    { dtype: 'uint8' as const, weights: 'uint8', initType: DataType.UINT8, op: 'DequantizeLinear' },
  ];
  for (const c of cases) {
    describe(c.dtype, () => {
      let pkg: LoadedPackage;
      let file: string;
      beforeAll(async () => {
        const q = await quantizePackage(fp32, c.dtype, { logger: createMemoryLogger(), latencyRuns: 0, root: path.join(root, 'artifacts'), name: `variants-${c.dtype}` });
        pkg = q.package;
        const out = path.join(root, `onnx-${c.dtype}`);
        await exportModel(pkg, { format: 'onnx', out });
        file = path.join(out, 'model.onnx');
      });

      it(`stores the weights as ${c.weights} (${c.op}) within 5% of the package's weight bytes`, async () => {
        const bytes = await fs.readFile(file);
        const pkgBytes = weightBytes(pkg);
        expect(Math.abs(bytes.byteLength - pkgBytes) / pkgBytes).toBeLessThan(0.05);
        // and a quarter / half of what an fp32 export of the same network weighs
        const fp32Out = path.join(root, `onnx-fp32-for-${c.dtype}`);
        await exportModel(fp32, { format: 'onnx', out: fp32Out });
        const fp32Bytes = (await fs.stat(path.join(fp32Out, 'model.onnx'))).size;
        expect(bytes.byteLength / fp32Bytes).toBeLessThan(c.dtype === 'uint8' ? 0.27 : 0.52);

        const proto = decodeModel(bytes);
        const big = proto.graph.initializer.filter((t) => (t.dims ?? []).reduce((a, d) => a * d, 1) >= 16);
        expect(big.length).toBeGreaterThanOrEqual(4);
        for (const t of big.filter((t) => t.dataType !== DataType.FLOAT)) expect(t.dataType).toBe(c.initType);
        // Every weight of 16+ values (conv/bias has 8: a Cast would cost more than it saves).
        expect(big.filter((t) => t.dataType === c.initType).map((t) => t.name).sort()).toEqual(['conv/kernel', 'fc1/bias', 'fc1/kernel', 'predictions/kernel'].map((n) => `${n}_${c.dtype === 'uint8' ? 'quantized' : 'fp16'}`).sort());
        expect(proto.graph.node.filter((n) => n.opType === c.op).length).toBe(4);
        expect(props(bytes)['mlctl.weights']).toBe(c.weights);
        expect(proto.docString).toContain(c.dtype === 'uint8' ? 'uint8 weight-only' : 'float16 weights');
      });

      it("predicts what the package predicts (its dequantized weights), not what the fp32 source did", async () => {
        const batch = 3;
        // Small inputs keep the random network's softmax off saturation, so differences show.
        const x = pixelsToInput(pixels(batch), { ...preprocessingFor('caffe'), scale: 0.004, mean: [0.5, 0.5, 0.5] });
        const tensor = new ort.Tensor('float32', x, [batch, SIZE, SIZE, 3]);
        const ours = await packagePredicts(pkg, x, batch);
        // The graph's arithmetic (no fusions), and ONNX Runtime's full optimisation with float32 MatMulNBits.
        const exact = await run(file, tensor, { graphOptimizationLevel: 'basic' });
        expect(maxDiff(exact.data, ours)).toBeLessThan(1e-6);
        const fused = await run(file, tensor, { graphOptimizationLevel: 'all', extra: { session: { qdq_matmulnbits_accuracy_level: '0' } } });
        expect(maxDiff(fused.data, ours)).toBeLessThan(1e-6);
        // ORT's default fuses DequantizeLinear → MatMul into MatMulNBits with int8 activations (accuracy level 4): close, not equal.
        const dflt = await run(file, tensor);
        expect(maxDiff(dflt.data, ours)).toBeLessThan(2e-2);
        const source = await packagePredicts(fp32, x, batch);
        expect(maxDiff(ours, source)).toBeGreaterThan(1e-6); // quantization changed something the test can see
      });

      it.skipIf(!tools.pythonOnnx)('passes onnx.checker full_check', () => {
        expect(fullCheck(file)).toContain(`variants-${c.dtype} v${pkg.manifest.version}`);
      });
    });
  }
});

describe('quantized packages with BatchNormalization', () => {
  it('keep BatchNormalization unfolded so every weight stays at the package precision (fp32 exports still fold)', async () => {
    const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'input' });
    let h = tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }), name: 'conv' }).apply(input) as tf.SymbolicTensor;
    h = tf.layers.batchNormalization({ name: 'bn', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 2 }), movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 2, seed: 3 }), movingMeanInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: 4 }) }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tf.SymbolicTensor;
    const y = tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }), name: 'predictions' }).apply(h) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: y });
    const base = await savePackage({
      root: path.join(root, 'artifacts'),
      name: 'bn',
      draft: { task: 'image-classification', labels: LABELS, input: imageInputSpec(SIZE, 'caffe'), output: { name: 'predictions', kind: 'probabilities', size: 3 }, architecture: {}, formats: { tfjs: 'model.json' }, lineage: [] },
      write: (dir) => writeTfjsModel(dir, m),
    });
    m.dispose();
    const fp32Out = path.join(root, 'bn-fp32');
    await exportModel(base, { format: 'onnx', out: fp32Out });
    expect(decodeModel(await fs.readFile(path.join(fp32Out, 'model.onnx'))).graph.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);

    const q = await quantizePackage(base, 'uint8', { logger: createMemoryLogger(), latencyRuns: 0, root: path.join(root, 'artifacts'), name: 'bn-q8' });
    const out = path.join(root, 'bn-q8-onnx');
    const res = await exportModel(q.package, { format: 'onnx', out });
    expect((res.details.storage as { keptFp32: Record<string, string> }).keptFp32).toEqual({});
    const proto = decodeModel(await fs.readFile(path.join(out, 'model.onnx')));
    expect(proto.graph.node.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(1);
    expect(proto.graph.initializer.filter((t) => t.dataType === DataType.FLOAT && (t.dims ?? []).reduce((a, d) => a * d, 1) >= 16).map((t) => t.name)).toEqual([]);
    const x = pixelsToInput(pixels(2), { ...preprocessingFor('caffe'), scale: 0.004, mean: [0.5, 0.5, 0.5] });
    const got = await run(path.join(out, 'model.onnx'), new ort.Tensor('float32', x, [2, SIZE, SIZE, 3]), { graphOptimizationLevel: 'basic' });
    expect(maxDiff(got.data, await packagePredicts(q.package, x, 2))).toBeLessThan(1e-6);
  });
});

describe('--embed-preprocessing', () => {
  const modes: Array<PreprocessingSpec['mode']> = ['caffe', 'tf', 'torch', 'unit', 'raw'];
  for (const mode of modes) {
    it(`${mode}: UINT8 RGB pixels in, the FP32 variant's predictions out (1e-4)`, async () => {
      const pkg = await imagePackage(`pre-${mode}`, mode);
      const plain = path.join(root, `pre-${mode}-fp32`);
      const embedded = path.join(root, `pre-${mode}-pixels`);
      await exportModel(pkg, { format: 'onnx', out: plain });
      const res = await exportModel(pkg, { format: 'onnx', out: embedded, embedPreprocessing: true });
      expect(res.details).toMatchObject({ inputVariant: 'pixels', inputs: [{ name: 'input', elemType: DataType.UINT8, dims: ['batch', SIZE, SIZE, 3] }] });

      const batch = 2;
      const px = pixels(batch, 5 + modes.indexOf(mode));
      const spec = pkg.manifest.input.kind === 'image' ? pkg.manifest.input.preprocessing : preprocessingFor(mode);
      const pixelTensor = new ort.Tensor('uint8', px, [batch, SIZE, SIZE, 3]);
      const floats = pixelsToInput(px, spec);
      const viaPixels = await run(path.join(embedded, 'model.onnx'), pixelTensor);
      const viaFloats = await run(path.join(plain, 'model.onnx'), new ort.Tensor('float32', floats, [batch, SIZE, SIZE, 3]));
      expect(viaPixels.dims).toEqual([batch, LABELS.length]);
      expect(maxDiff(viaPixels.data, viaFloats.data)).toBeLessThan(1e-4);
      // The in-graph preprocessing itself, read out of the graph, against pixelsToInput (data/preprocess.ts).
      const proto = decodeModel(await fs.readFile(path.join(embedded, 'model.onnx')));
      const steps = proto.graph.node.filter((n) => n.name?.startsWith('input/preprocess/'));
      expect(steps.map((n) => n.opType)).toEqual(
        [spec.channelOrder === 'BGR' && 'Gather', 'Cast', spec.scale !== 1 && 'Mul', spec.mean.some((m) => m !== 0) && 'Sub', spec.std.some((d) => d !== 1) && 'Div'].filter(Boolean),
      );
      const last = steps[steps.length - 1]!.output[0]!;
      proto.graph.output.push({ name: last, type: { tensorType: { elemType: DataType.FLOAT } } });
      const inGraph = await run(encodeModel(proto), pixelTensor, {}, last);
      expect(inGraph.dims).toEqual([batch, SIZE, SIZE, 3]);
      expect(maxDiff(inGraph.data, floats)).toBeLessThan(1e-4);
      if (spec.channelOrder === 'BGR') {
        // Channel 0 is blue: the swapped order would be caught.
        expect(Math.abs(inGraph.data[0]! - (px[2]! * spec.scale - spec.mean[0]!) / spec.std[0]!)).toBeLessThan(1e-4);
      }
      const p = props(await fs.readFile(path.join(embedded, 'model.onnx')));
      expect(p['mlctl.input_variant']).toBe('pixels');
      expect(JSON.parse(p['mlctl.preprocessing']!)).toEqual(spec);
      // How the caller must resize before feeding pixels: the kernel the model was trained with.
      expect(JSON.parse(p['mlctl.resize']!)).toEqual({ width: SIZE, height: SIZE, fit: 'fill', interpolation: 'bilinear', antialias: true });
      expect(props(await fs.readFile(path.join(plain, 'model.onnx')))['mlctl.input_variant']).toBe('preprocessed');
    });
  }

  it.skipIf(!tools.pythonOnnx)('the pixel variant passes onnx.checker full_check and says what it takes in doc_string', () => {
    const doc = fullCheck(path.join(root, 'pre-caffe-pixels', 'model.onnx'));
    expect(doc).toMatch(/UINT8 RGB NHWC pixels/);
  });

  it('triton: TYPE_UINT8 NHWC input, and the variant in the config parameters', async () => {
    const repo = path.join(root, 'triton-repo');
    const q = await quantizePackage(fp32, 'uint8', { logger: createMemoryLogger(), latencyRuns: 0, root: path.join(root, 'artifacts'), name: 'variants-tq' });
    await exportModel(q.package, { format: 'triton', out: repo, name: 'pixels', embedPreprocessing: true });
    const text = await fs.readFile(path.join(repo, 'pixels', 'config.pbtxt'), 'utf8');
    expect(text).toMatch(/parameters \{\n {2}key: "mlctl.input_variant"\n {2}value \{\n {4}string_value: "pixels"\n {2}\}\n\}/);
    const type = tritonModelConfigType();
    const cfg = parseTextFormat(type, text) as { input: unknown[]; parameters: Record<string, { string_value: string }> };
    // A valid ModelConfig message: the map survives a binary round trip.
    expect(type.toObject(type.decode(type.encode(type.fromObject(cfg)).finish()), { enums: String, longs: Number })).toEqual(cfg);
    expect(cfg.input).toEqual([{ name: 'input', data_type: 'TYPE_UINT8', format: 'FORMAT_NHWC', dims: [SIZE, SIZE, 3] }]);
    expect(cfg.parameters['mlctl.input_variant']!.string_value).toBe('pixels');
    expect(cfg.parameters['mlctl.weights']!.string_value).toBe('uint8');
    expect(JSON.parse(cfg.parameters['mlctl.preprocessing']!.string_value)).toMatchObject({ mode: 'caffe', channelOrder: 'BGR', interpolation: 'bilinear', antialias: true });
    expect(JSON.parse(cfg.parameters['mlctl.resize']!.string_value)).toEqual({ width: SIZE, height: SIZE, fit: 'fill', interpolation: 'bilinear', antialias: true });
    const y = await run(path.join(repo, 'pixels', String(q.package.manifest.version), 'model.onnx'), new ort.Tensor('uint8', pixels(4), [4, SIZE, SIZE, 3]));
    expect(y.dims).toEqual([4, LABELS.length]);
  });

  it('is refused for tfjs and bundle exports and for tabular models, with nothing written', async () => {
    const out = path.join(root, 'refused');
    for (const format of ['tfjs', 'bundle'] as const) {
      const err = await exportModel(fp32, { format, out, embedPreprocessing: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlctlError);
      expect((err as MlctlError).code).toBe('OPTION_CONFLICT');
    }
    const dense = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2, activation: 'softmax', name: 'predictions' })] });
    const tabular = await savePackage({
      root: path.join(root, 'artifacts'),
      name: 'tabular',
      draft: { task: 'tabular-classification', labels: ['a', 'b'], input: { kind: 'tabular', name: 'input', features: ['w', 'x', 'y', 'z'], dtype: 'float32' }, output: { name: 'predictions', kind: 'probabilities', size: 2 }, architecture: {}, formats: { tfjs: 'model.json' }, lineage: [] },
      write: (dir) => writeTfjsModel(dir, dense),
    });
    dense.dispose();
    const err = await exportModel(tabular, { format: 'onnx', out, embedPreprocessing: true }).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('EXPORT_UNSUPPORTED');
    expect((err as Error).message).toMatch(/image models/);
    await expect(fs.stat(out)).rejects.toThrow();
  });
});

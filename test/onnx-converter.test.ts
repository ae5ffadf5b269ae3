// TF.js → ONNX converter: every supported layer type (and a VGG16-shaped network with the seed's head) must give
// the same numbers in onnxruntime-node as in TF.js (cpu backend) at batch 1 and 5; files must pass onnx.checker.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { BATCH_DIM, buildModelProto, convertLayersModel, decodeModel, encodeModel, tensorFloats } from '../src/onnx/index.js';
import { ONNX_SCHEMA } from '../src/onnx/schema.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';
import { onnxCheck, tools } from './helpers/tools.js';

const hasPythonOnnx = tools.pythonOnnx;

let seed = 100;
const init = () => tf.initializers.glorotUniform({ seed: seed++ });
const biasInit = () => tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed++ });

async function runOnnx(bytes: Uint8Array, x: tf.Tensor): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
  try {
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) };
    const out = (await session.run(feeds))[session.outputNames[0]!]!;
    return { data: out.data as Float32Array, dims: out.dims };
  } finally {
    await session.release();
  }
}

/** Convert `model`, run both engines on the same random input at batch 1 and 5, return the worst abs diff. */
async function maxDiff(model: tf.LayersModel, opts: { lo?: number; hi?: number } = {}): Promise<number> {
  const bytes = convertLayersModel(model);
  let worst = 0;
  for (const batch of [1, 5]) {
    const shape = [batch, ...(model.inputs[0]!.shape.slice(1) as number[])];
    const x = tf.randomUniform(shape, opts.lo ?? -1, opts.hi ?? 1, 'float32', seed++);
    const expected = model.predict(x) as tf.Tensor;
    const got = await runOnnx(bytes, x);
    expect(got.dims).toEqual(expected.shape);
    const e = expected.dataSync();
    for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(e[i]! - got.data[i]!));
    expect(Number.isFinite(worst)).toBe(true);
    tf.dispose([x, expected]);
  }
  return worst;
}

function seq(inputShape: number[], layers: tf.layers.Layer[]): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape }));
  for (const l of layers) m.add(l);
  return m;
}

/** Give BatchNormalization layers non-trivial statistics (fresh ones are the identity). */
function randomizeBatchNorms(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    layer.setWeights(layer.weights.map((w) => (w.name.includes('variance') ? tf.randomUniform(w.shape as number[], 0.5, 2, 'float32', seed++) : tf.randomUniform(w.shape as number[], -1, 1, 'float32', seed++))));
  }
}

const conv = (args: Partial<Parameters<typeof tf.layers.conv2d>[0]>) =>
  tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init(), biasInitializer: biasInit(), ...args } as Parameters<typeof tf.layers.conv2d>[0]);

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('convertLayersModel: per-layer numerics vs TF.js (batch 1 and 5, max abs diff <= 1e-4)', () => {
  const cases: Array<[string, () => tf.LayersModel]> = [
    ['Conv2D same stride 1, relu, bias', () => seq([8, 8, 3], [conv({ padding: 'same', activation: 'relu' })])],
    ['Conv2D same stride 2 (TF asymmetric pads), odd and even sizes', () => seq([9, 8, 3], [conv({ padding: 'same', strides: 2, kernelSize: [3, 4] })])],
    ['Conv2D valid stride 2, no bias, tanh', () => seq([9, 9, 2], [conv({ padding: 'valid', strides: [2, 1], useBias: false, activation: 'tanh' })])],
    ['Conv2D dilation 2 same, sigmoid', () => seq([10, 10, 3], [conv({ padding: 'same', dilationRate: 2, activation: 'sigmoid' })])],
    ['Conv2D 1x1, softmax activation over channels', () => seq([5, 5, 3], [conv({ kernelSize: 1, activation: 'softmax' })])],
    ['DepthwiseConv2D multiplier 2, stride 2 same, relu6', () => seq([8, 8, 3], [tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', activation: 'relu6', depthwiseInitializer: init(), biasInitializer: biasInit(), useBias: true })])],
    ['SeparableConv2D multiplier 2, same, relu', () => seq([7, 7, 3], [tf.layers.separableConv2d({ filters: 5, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu', depthwiseInitializer: init(), pointwiseInitializer: init(), biasInitializer: biasInit() })])],
    ['Dense after Flatten of a conv map (NHWC element order), softmax', () => seq([6, 5, 3], [conv({ padding: 'valid' }), tf.layers.flatten(), tf.layers.dense({ units: 7, activation: 'softmax', kernelInitializer: init(), biasInitializer: biasInit() })])],
    ['Dense on rank-3 input', () => seq([4, 6], [tf.layers.dense({ units: 3, kernelInitializer: init(), biasInitializer: biasInit() })])],
    ['MaxPooling2D same pool 3 stride 2', () => seq([9, 8, 3], [tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' })])],
    ['MaxPooling2D valid default strides', () => seq([9, 8, 3], [tf.layers.maxPooling2d({ poolSize: 2 })])],
    ['AveragePooling2D same (padding excluded from the mean)', () => seq([9, 8, 3], [tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })])],
    ['AveragePooling2D valid', () => seq([8, 8, 3], [tf.layers.averagePooling2d({ poolSize: [2, 3], strides: [2, 1] })])],
    ['GlobalAveragePooling2D', () => seq([6, 5, 3], [conv({}), tf.layers.globalAveragePooling2d({})])],
    ['GlobalMaxPooling2D', () => seq([6, 5, 3], [conv({}), tf.layers.globalMaxPooling2d({})])],
    ['Reshape to a feature map then Conv2D and Flatten', () => seq([24], [tf.layers.reshape({ targetShape: [2, 3, 4] }), conv({ padding: 'same', kernelSize: 2 }), tf.layers.reshape({ targetShape: [-1, 4] })])],
    ['Dropout is the identity at inference', () => seq([4, 4, 3], [conv({}), tf.layers.dropout({ rate: 0.5 }), tf.layers.flatten()])],
    ['BatchNormalization on conv maps and on dense features', () => {
      const m = seq([6, 6, 3], [conv({}), tf.layers.batchNormalization({ epsilon: 0.01 }), tf.layers.flatten(), tf.layers.dense({ units: 5, kernelInitializer: init() }), tf.layers.batchNormalization({ center: false })]);
      randomizeBatchNorms(m);
      return m;
    }],
    ['BatchNormalization on rank-3 input', () => {
      const m = seq([4, 6], [tf.layers.batchNormalization({})]);
      randomizeBatchNorms(m);
      return m;
    }],
    ...(['relu', 'relu6', 'softmax', 'sigmoid', 'tanh', 'linear', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid', 'swish'] as const).map(
      (a): [string, () => tf.LayersModel] => [`Activation ${a} on a conv map`, () => seq([5, 5, 3], [conv({ padding: 'same' }), tf.layers.activation({ activation: a })])],
    ),
    ['Activation softmax on dense output', () => seq([6], [tf.layers.dense({ units: 4, kernelInitializer: init() }), tf.layers.activation({ activation: 'softmax' })])],
    ['ReLU(maxValue), LeakyReLU, ELU, Softmax layers', () => seq([5, 5, 3], [conv({}), tf.layers.reLU({ maxValue: 0.5 }), conv({}), tf.layers.leakyReLU({ alpha: 0.2 }), tf.layers.elu({}), tf.layers.softmax({ axis: -1 })])],
    ['ZeroPadding2D asymmetric then Conv2D', () => seq([5, 6, 3], [tf.layers.zeroPadding2d({ padding: [[1, 2], [0, 3]] }), conv({ strides: 2 })])],
    ['UpSampling2D nearest (size 2 and [3, 2]) between convs', () => seq([4, 5, 3], [conv({ padding: 'same' }), tf.layers.upSampling2d({ size: [2, 2] }), conv({ padding: 'same' }), tf.layers.upSampling2d({ size: [3, 2] })])],
    ['UpSampling2D bilinear', () => seq([4, 5, 3], [conv({ padding: 'same' }), tf.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' })])],
    ['Cropping2D', () => seq([7, 6, 3], [conv({ padding: 'same' }), tf.layers.cropping2D({ cropping: [[1, 2], [2, 1]] })])],
    ['Rescaling at the input', () => seq([6, 6, 3], [tf.layers.rescaling({ scale: 1 / 127.5, offset: -1 }), conv({})])],
    ['Rescaling with per-channel scale and offset, before and after a conv', () => seq([6, 6, 3], [tf.layers.rescaling({ scale: [0.5, 2, -1] as unknown as number, offset: [1, 0, -3] as unknown as number }), conv({ filters: 3 }), tf.layers.rescaling({ scale: [1, 0.25, 3] as unknown as number })])],
    ['Conv2D (no bias) → BatchNormalization and DepthwiseConv2D → BatchNormalization (folded), residual Add', () => {
      const x = tf.input({ shape: [7, 7, 4] });
      const a = tf.layers.batchNormalization({ epsilon: 1.001e-5 }).apply(conv({ padding: 'same', useBias: false }).apply(x)) as tf.SymbolicTensor;
      const d = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init() }).apply(a) as tf.SymbolicTensor;
      const b = tf.layers.batchNormalization({}).apply(d) as tf.SymbolicTensor;
      const m = tf.model({ inputs: x, outputs: tf.layers.add().apply([b, x]) as tf.SymbolicTensor });
      randomizeBatchNorms(m);
      return m;
    }],
    ['BatchNormalization after a conv whose output is also used elsewhere (not folded)', () => {
      const x = tf.input({ shape: [5, 5, 3] });
      const c = conv({ padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const b = tf.layers.batchNormalization({}).apply(c) as tf.SymbolicTensor;
      const m = tf.model({ inputs: x, outputs: tf.layers.concatenate().apply([b, c]) as tf.SymbolicTensor });
      randomizeBatchNorms(m);
      return m;
    }],
    ['squeeze-and-excitation: GAP → Reshape(1,1,C) → 1x1 convs → Multiply broadcast over the map', () => {
      const x = tf.input({ shape: [6, 6, 4] });
      const se = tf.layers.reshape({ targetShape: [1, 1, 4] }).apply(tf.layers.globalAveragePooling2d({}).apply(x)) as tf.SymbolicTensor;
      const e = conv({ filters: 4, kernelSize: 1, activation: 'sigmoid' }).apply(conv({ filters: 2, kernelSize: 1, activation: 'swish' }).apply(se)) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: tf.layers.multiply().apply([x, e]) as tf.SymbolicTensor });
    }],
    ['Add / Concatenate / Multiply / Average / Maximum / Minimum (functional)', () => {
      const x = tf.input({ shape: [6, 6, 3] });
      const a = conv({ padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const b = conv({ padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const c = conv({ padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const sum = tf.layers.add().apply([a, b, c]) as tf.SymbolicTensor;
      const cat = tf.layers.concatenate({ axis: -1 }).apply([sum, tf.layers.multiply().apply([a, b]) as tf.SymbolicTensor]) as tf.SymbolicTensor;
      const catH = tf.layers.concatenate({ axis: 1 }).apply([a, tf.layers.average().apply([b, c]) as tf.SymbolicTensor]) as tf.SymbolicTensor;
      const mx = tf.layers.maximum().apply([a, c]) as tf.SymbolicTensor;
      const mn = tf.layers.minimum().apply([b, c]) as tf.SymbolicTensor;
      const diff = tf.layers.flatten().apply(conv({ padding: 'same' }).apply(tf.layers.concatenate({ axis: 2 }).apply([mx, mn]) as tf.SymbolicTensor)) as tf.SymbolicTensor;
      const f = tf.layers.concatenate().apply([tf.layers.flatten().apply(cat) as tf.SymbolicTensor, tf.layers.flatten().apply(catH) as tf.SymbolicTensor, diff]) as tf.SymbolicTensor;
      const d1 = tf.layers.dense({ units: 3, kernelInitializer: init() }).apply(f) as tf.SymbolicTensor;
      const d2 = tf.layers.dense({ units: 3, kernelInitializer: init() }).apply(f) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: tf.layers.maximum().apply([d1, d2]) as tf.SymbolicTensor });
    }],
    ['nested Sequential backbone inside a functional model', () => {
      const backbone = seq([8, 8, 3], [conv({ padding: 'same', activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 })]);
      const x = tf.input({ shape: [8, 8, 3] });
      const y = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init() }).apply(tf.layers.flatten().apply(backbone.apply(x))) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y });
    }],
  ];

  for (const [name, build] of cases) {
    it(name, async () => {
      const model = build();
      try {
        expect(await maxDiff(model)).toBeLessThanOrEqual(1e-4);
      } finally {
        model.dispose();
      }
    });
  }
});

/** VGG16's 13-conv backbone (Keras layer names) at a small input, random weights, plus the seed's head. */
function vgg16WithHead(size: number, classes: number): tf.LayersModel {
  const m = tf.sequential({ name: 'vgg16_head' });
  m.add(tf.layers.inputLayer({ inputShape: [size, size, 3], name: 'input_1' }));
  const blocks = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]] as const;
  blocks.forEach(([filters, convs], b) => {
    for (let i = 1; i <= convs; i++) {
      m.add(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${i}`, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }), biasInitializer: biasInit() }));
    }
    m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }));
  });
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 1024, activation: 'relu', name: 'fc1', kernelInitializer: init() }));
  m.add(tf.layers.dropout({ rate: 0.5, name: 'dropout' }));
  m.add(tf.layers.dense({ units: 5, activation: 'softmax', name: 'predictions', kernelInitializer: init() }));
  return m;
}

describe('convertLayersModel: whole networks', () => {
  let dirs: { dir: string; cleanup: () => Promise<void> };
  let vgg: tf.LayersModel;
  beforeAll(async () => {
    dirs = await tempDir('mlctl-onnx-');
    vgg = vgg16WithHead(32, 5);
  }, 120_000);
  afterAll(async () => {
    vgg?.dispose();
    await dirs.cleanup();
  });

  it('VGG16 backbone (32x32, random weights) + Flatten→Dense(1024, relu)→Dense(5, softmax) matches TF.js', async () => {
    // Both the backbone features and the head's probabilities, from one run per batch size.
    const both = tf.model({ inputs: vgg.inputs, outputs: [vgg.outputs[0]!, vgg.getLayer('flatten').output as tf.SymbolicTensor] });
    const session = await ort.InferenceSession.create(convertLayersModel(both), { graphOptimizationLevel: 'all' });
    try {
      for (const batch of [1, 5]) {
        // Caffe-preprocessed pixels are roughly -124..152.
        const x = tf.randomUniform([batch, 32, 32, 3], -124, 152, 'float32', seed++);
        const [probs, feats] = both.predict(x) as tf.Tensor[];
        const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
        const gotProbs = out[session.outputNames[0]!]!.data as Float32Array;
        const gotFeats = out[session.outputNames[1]!]!.data as Float32Array;
        const p = probs!.dataSync();
        const f = feats!.dataSync();
        expect(gotProbs.length).toBe(p.length);
        expect(gotFeats.length).toBe(f.length);
        let worstP = 0;
        for (let i = 0; i < p.length; i++) worstP = Math.max(worstP, Math.abs(p[i]! - gotProbs[i]!));
        expect(worstP).toBeLessThanOrEqual(1e-4);
        // Features are unbounded ReLU outputs: compare relative to their magnitude.
        const scale = Math.max(1, ...Array.from(f, Math.abs));
        let worstF = 0;
        for (let i = 0; i < f.length; i++) worstF = Math.max(worstF, Math.abs(f[i]! - gotFeats[i]!));
        expect(worstF / scale).toBeLessThanOrEqual(1e-5);
        tf.dispose([x, probs!, feats!]);
      }
    } finally {
      await session.release();
    }
  }, 180_000);

  it('records names, metadata, a symbolic batch dimension and keeps one NHWC→NCHW transpose for a conv stack', () => {
    const proto = decodeModel(convertLayersModel(vgg, { inputName: 'image', outputName: 'probs', metadata: { labels: '["a","b"]' }, docString: 'test model' }));
    expect(proto.opsetImport[0]!.version).toBe(17);
    expect(proto.docString).toBe('test model');
    expect(proto.metadataProps).toContainEqual({ key: 'labels', value: '["a","b"]' });
    const input = proto.graph.input[0]!;
    expect(input.name).toBe('image');
    expect(input.type!.tensorType!.shape!.dim!.map((d) => d.dimParam ?? d.dimValue)).toEqual([BATCH_DIM, 32, 32, 3]);
    expect(proto.graph.output[0]!.name).toBe('probs');
    expect(proto.graph.output[0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam ?? d.dimValue)).toEqual([BATCH_DIM, 5]);
    const ops = proto.graph.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(13);
    expect(ops.filter((o) => o === 'Transpose')).toHaveLength(2); // into NCHW once, back to NHWC before Flatten
    // Dense weights are stored as-is ([in, out]); conv kernels are OIHW.
    const fc1 = proto.graph.initializer.find((t) => t.name === 'fc1/kernel')!;
    expect(fc1.dims).toEqual([512, 1024]);
    expect(Array.from(tensorFloats(fc1).slice(0, 4))).toEqual(Array.from((vgg.getLayer('fc1').getWeights()[0]!.dataSync() as Float32Array).slice(0, 4)));
    const k = proto.graph.initializer.find((t) => t.name === 'block1_conv1/kernel')!;
    expect(k.dims).toEqual([64, 3, 3, 3]);
    // OIHW[o=1][i=2][h=0][w=1] is TF's HWIO[0][1][2][1].
    const tfKernel = vgg.getLayer('block1_conv1').getWeights()[0]!.dataSync();
    expect(tensorFloats(k)[1 * 27 + 2 * 9 + 0 * 3 + 1]).toBe(tfKernel[0 * 576 + 1 * 192 + 2 * 64 + 1]);
  });

  it.skipIf(!hasPythonOnnx)('passes the reference checker (python3-onnx check_model, full_check)', async () => {
    const file = path.join(dirs.dir, 'vgg16.onnx');
    await writeFile(file, convertLayersModel(vgg, { inputName: 'input_1', outputName: 'predictions', metadata: { labels: 'a,b,c,d,e' } }));
    expect(onnxCheck(file)).toMatchObject({ stderr: '', status: 0 });
  }, 120_000);

  it.skipIf(!hasPythonOnnx)('the checker also accepts a graph using every layer converter', async () => {
    const x = tf.input({ shape: [9, 8, 3] });
    let y = tf.layers.rescaling({ scale: 0.5, offset: 1 }).apply(x) as tf.SymbolicTensor;
    y = tf.layers.zeroPadding2d({ padding: 1 }).apply(y) as tf.SymbolicTensor;
    const a = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu6' }).apply(y) as tf.SymbolicTensor;
    const b = tf.layers.separableConv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'swish' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization().apply(tf.layers.add().apply([a, b])) as tf.SymbolicTensor;
    y = tf.layers.concatenate().apply([y, tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(y) as tf.SymbolicTensor]) as tf.SymbolicTensor;
    y = tf.layers.cropping2D({ cropping: 1 }).apply(tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }).apply(y)) as tf.SymbolicTensor;
    const g = tf.layers.globalMaxPooling2d({}).apply(y) as tf.SymbolicTensor;
    const r = tf.layers.reshape({ targetShape: [6] }).apply(tf.layers.globalAveragePooling2d({}).apply(y)) as tf.SymbolicTensor;
    y = tf.layers.dense({ units: 4, activation: 'elu' }).apply(tf.layers.concatenate().apply([g, r])) as tf.SymbolicTensor;
    y = tf.layers.activation({ activation: 'softmax' }).apply(tf.layers.leakyReLU().apply(tf.layers.dropout({ rate: 0.1 }).apply(y))) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: y });
    const file = path.join(dirs.dir, 'all.onnx');
    await writeFile(file, convertLayersModel(model));
    model.dispose();
    expect(onnxCheck(file)).toMatchObject({ stderr: '', status: 0 });
  }, 60_000);
});

describe('convertLayersModel: BatchNorm folding', () => {
  it('folds Conv→BN pairs (no BatchNormalization left, a bias added where the conv had none) but keeps a BN whose conv output is shared', () => {
    const x = tf.input({ shape: [5, 5, 3] });
    const c1 = conv({ padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
    const b1 = tf.layers.batchNormalization({}).apply(c1) as tf.SymbolicTensor;
    const c2 = conv({ padding: 'same' }).apply(b1) as tf.SymbolicTensor;
    const b2 = tf.layers.batchNormalization({}).apply(c2) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: tf.layers.concatenate().apply([b2, c2]) as tf.SymbolicTensor });
    try {
      const g = buildModelProto(m).graph;
      expect(g.node.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(1);
      const convs = g.node.filter((n) => n.opType === 'Conv');
      expect(convs.map((n) => n.input.length)).toEqual([3, 3]);
      const names = new Set(g.initializer.map((t) => t.name));
      for (const n of g.node) for (const i of n.input.slice(1)) expect(names.has(i) || g.node.some((p) => p.output.includes(i))).toBe(true);
    } finally {
      m.dispose();
    }
  });
});

describe('convertLayersModel: errors and encoding', () => {
  it('names the unsupported layer, its class and what to do', () => {
    const model = seq([5, 4], [tf.layers.lstm({ units: 3, name: 'my_lstm' })]);
    try {
      let err: unknown;
      try {
        convertLayersModel(model);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MlctlError);
      expect((err as MlctlError).code).toBe('UNSUPPORTED_LAYER');
      expect((err as MlctlError).message).toMatch(/my_lstm \(LSTM\).*supported layers: .*Conv2D/);
    } finally {
      model.dispose();
    }
  });

  it('rejects unsupported layer options (channelsFirst) and out-of-range opsets', () => {
    const cf = seq([3, 8, 8], [tf.layers.maxPooling2d({ poolSize: 2, dataFormat: 'channelsFirst' })]);
    expect(() => convertLayersModel(cf)).toThrow(/channelsFirst/);
    cf.dispose();
    const m = seq([4], [tf.layers.dense({ units: 2 })]);
    expect(() => convertLayersModel(m, { opset: 11 })).toThrow(MlctlError);
    m.dispose();
  });

  it('opset 13 (the minimum) and 21 (the maximum) both run with the same numbers', async () => {
    const m = seq([7, 6, 3], [tf.layers.zeroPadding2d({ padding: 1 }), conv({ strides: 2, activation: 'relu6' }), tf.layers.batchNormalization({}), tf.layers.flatten(), tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init() })]);
    randomizeBatchNorms(m);
    const x = tf.randomUniform([2, 7, 6, 3], -1, 1, 'float32', seed++);
    const expected = (m.predict(x) as tf.Tensor).dataSync();
    for (const opset of [13, 21]) {
      const proto = decodeModel(convertLayersModel(m, { opset }));
      expect(proto.opsetImport[0]!.version).toBe(opset);
      const got = await runOnnx(convertLayersModel(m, { opset }), x);
      for (let i = 0; i < expected.length; i++) expect(Math.abs(got.data[i]! - expected[i]!)).toBeLessThanOrEqual(1e-4);
    }
    tf.dispose(x);
    m.dispose();
  });

  it('decodeModel/encodeModel round-trip, and the bundled schema matches onnx.proto', () => {
    const m = seq([4], [tf.layers.dense({ units: 2, kernelInitializer: init() })]);
    const proto = buildModelProto(m, { opset: 13 });
    m.dispose();
    const bytes = encodeModel(proto);
    const back = decodeModel(bytes);
    expect(back.irVersion).toBe(7);
    expect(back.graph.node.map((n) => n.opType)).toEqual(proto.graph.node.map((n) => n.opType));
    expect(Buffer.from(encodeModel(back))).toEqual(Buffer.from(bytes));
    const here = path.dirname(fileURLToPath(import.meta.url));
    const fromProto = protobuf.loadSync(path.join(here, '../src/onnx/onnx.proto')).toJSON();
    expect(JSON.parse(JSON.stringify(fromProto))).toEqual(ONNX_SCHEMA);
  });
});

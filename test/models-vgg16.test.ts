// VGG16 base: Keras layer names, shapes and parameter count at several input sizes; size validation.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { buildFullModel, getHeadWeights, headParamCount } from '../src/models/head.js';
import { assertVggImageSize, buildVgg16, VGG16_NOTOP_PARAMS, vggConvLayerNames } from '../src/models/backbones/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';

const KERAS_LAYERS = [
  'input_1',
  'block1_conv1', 'block1_conv2', 'block1_pool',
  'block2_conv1', 'block2_conv2', 'block2_pool',
  'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_pool',
  'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_pool',
  'block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool',
];

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('buildVgg16', () => {
  it.each([32, 96])('has Keras layer names, kernel shapes and 14,714,688 parameters at %i px', (size) => {
    const m = buildVgg16({ imageSize: size, seed: 1 });
    try {
      expect(m.layers.map((l) => l.name)).toEqual(KERAS_LAYERS);
      expect(m.countParams()).toBe(VGG16_NOTOP_PARAMS);
      expect(m.countParams()).toBe(14_714_688);
      expect(m.outputs[0]!.shape).toEqual([null, size / 32, size / 32, 512]);
      const shapes = Object.fromEntries(m.layers.filter((l) => l.weights.length).map((l) => [l.name, l.weights.map((w) => w.shape)]));
      expect(shapes.block1_conv1).toEqual([[3, 3, 3, 64], [64]]);
      expect(shapes.block3_conv1).toEqual([[3, 3, 128, 256], [256]]);
      expect(shapes.block5_conv3).toEqual([[3, 3, 512, 512], [512]]);
      expect(Object.keys(shapes)).toEqual(vggConvLayerNames());
      const pool = m.getLayer('block3_pool').outputShape as number[];
      expect(pool).toEqual([null, size / 8, size / 8, 256]);
    } finally {
      m.dispose();
    }
  });

  it('rejects sizes below 32 or not a multiple of 32 with a usage error', () => {
    for (const bad of [0, 16, 48, 100, 33.5]) {
      expect(() => assertVggImageSize(bad)).toThrow(MlctlError);
      expect(() => buildVgg16({ imageSize: bad })).toThrow(/multiple of 32/);
    }
    expect(() => assertVggImageSize(224)).not.toThrow();
  });

  it('builds the full model with the head and round-trips head weights', () => {
    const base = buildVgg16({ imageSize: 32, seed: 3 });
    const spec = { pooling: 'flatten' as const, units: 1024, dropout: 0.5, classes: 4 };
    const model = buildFullModel(base, spec);
    try {
      expect(model.layers.slice(-4).map((l) => l.name)).toEqual(['flatten', 'fc1', 'dropout', 'predictions']);
      expect(model.countParams()).toBe(VGG16_NOTOP_PARAMS + headParamCount(spec, 512));
      const out = model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor;
      expect(out.shape).toEqual([2, 4]);
      const sums = tf.sum(out, 1).dataSync();
      for (const s of sums) expect(s).toBeCloseTo(1, 5);
      out.dispose();
      const w = getHeadWeights(model);
      expect(w.w1.shape).toEqual([512, 1024]);
      expect(w.w2.shape).toEqual([1024, 4]);
      tf.dispose([w.w1, w.b1, w.w2, w.b2]);
    } finally {
      model.dispose();
    }
  });
});

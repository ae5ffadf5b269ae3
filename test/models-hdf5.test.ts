// Keras HDF5 weights: generated files in both naming styles (Keras 1 block1_conv1_W_1:0, Keras 2 kernel:0), split
// layer_names, value-for-value placement, and clear errors for a missing layer, a wrong shape and a non-HDF5 file.
import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { loadKerasH5Weights, readKerasH5, writeKerasH5, type H5WriteLayer } from '../src/models/hdf5.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-h5-');
});
afterAll(() => tmp.cleanup());

/** A small model with VGG-style layer names: two convs, a pool and a dense layer. */
function smallModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3], name: 'input_1' });
  let x = tf.layers.conv2d({ name: 'block1_conv1', filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'block1_conv2', filters: 5, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'block1_pool', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc1', units: 3 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

function values(n: number, offset: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + offset) * 0.5 + offset);
}

/** Keras-layout layers for smallModel with distinct values per tensor, in either naming style. */
function layersFor(style: 'keras1' | 'keras2', shapes: Record<string, number[][]>): H5WriteLayer[] {
  const names = ['input_1', 'block1_conv1', 'block1_conv2', 'block1_pool', 'flatten', 'fc1'];
  return names.map((name, li) => ({
    name,
    weights: (shapes[name] ?? []).map((shape, wi) => ({
      name: style === 'keras1' ? `${name}_${wi === 0 ? 'W' : 'b'}_1:0` : `${name}/${wi === 0 ? 'kernel' : 'bias'}:0`,
      shape,
      values: values(shape.reduce((a, b) => a * b, 1), li * 10 + wi),
    })),
  }));
}

const SHAPES = { block1_conv1: [[3, 3, 3, 4], [4]], block1_conv2: [[3, 3, 4, 5], [5]], fc1: [[80, 3], [3]] };

describe('Keras HDF5 weights', () => {
  it.each(['keras1', 'keras2'] as const)('loads %s-named datasets into the right layers, value for value', async (style) => {
    const file = path.join(tmp.dir, `${style}.h5`);
    const layers = layersFor(style, SHAPES);
    await writeKerasH5(file, layers, { splitLayerNames: style === 'keras1' ? 2 : 0 });
    const read = await readKerasH5(file);
    expect(read.map((l) => l.name)).toEqual(layers.map((l) => l.name));
    const model = smallModel();
    try {
      const r = await loadKerasH5Weights(file, model);
      expect(r.layers).toEqual(['block1_conv1', 'block1_conv2', 'fc1']);
      expect(r.tensors).toBe(6);
      for (const layer of layers.filter((l) => l.weights.length)) {
        const got = model.getLayer(layer.name).getWeights();
        layer.weights.forEach((w, i) => {
          expect(got[i]!.shape).toEqual(w.shape);
          expect(Array.from(got[i]!.dataSync())).toEqual(Array.from(w.values));
        });
      }
    } finally {
      model.dispose();
    }
  });

  it('fails clearly on a missing layer and assigns nothing', async () => {
    const file = path.join(tmp.dir, 'missing.h5');
    await writeKerasH5(file, layersFor('keras2', SHAPES).filter((l) => l.name !== 'block1_conv2'));
    const model = smallModel();
    const before = Array.from(model.getLayer('block1_conv1').getWeights()[0]!.dataSync());
    try {
      const err = await loadKerasH5Weights(file, model).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlctlError);
      expect((err as MlctlError).code).toBe('WEIGHTS_INVALID');
      expect((err as Error).message).toMatch(/no weights for layer block1_conv2/);
      expect(Array.from(model.getLayer('block1_conv1').getWeights()[0]!.dataSync())).toEqual(before);
    } finally {
      model.dispose();
    }
  });

  it('fails clearly on a shape mismatch, naming the weight and both shapes', async () => {
    const file = path.join(tmp.dir, 'shape.h5');
    await writeKerasH5(file, layersFor('keras1', { ...SHAPES, block1_conv2: [[3, 3, 4, 6], [6]] }));
    const model = smallModel();
    try {
      await expect(loadKerasH5Weights(file, model)).rejects.toThrow(/block1_conv2\/block1_conv2_W_1:0 has shape \[3, 3, 4, 6\], the model expects \[3, 3, 4, 5\]/);
    } finally {
      model.dispose();
    }
  });

  it('rejects a file that is not HDF5, and an HDF5 file without layer_names', async () => {
    const text = path.join(tmp.dir, 'not.h5');
    await writeFile(text, 'this is not hdf5');
    await expect(readKerasH5(text)).rejects.toMatchObject({ code: 'WEIGHTS_INVALID' });
    await expect(readKerasH5(path.join(tmp.dir, 'absent.h5'))).rejects.toThrow(/no such file/);
  });
});

describe('VGG16 from a Keras no-top file', () => {
  it('loadBackbone maps every kernel and bias of a published-layout file onto the VGG16 base', async () => {
    const { buildVgg16, vggConvLayerNames, vgg16 } = await import('../src/models/backbones/vgg16.js');
    const { loadBackbone } = await import('../src/models/backbones/load.js');
    const { createMemoryLogger } = await import('../src/util/log.js');
    // The published file's layout: input_1, convs with Keras-1 names, pools without weights.
    const ref = buildVgg16({ imageSize: 32 });
    const layers: H5WriteLayer[] = ref.layers.map((l, li) => ({
      name: l.name,
      weights: l.weights.map((w, wi) => {
        const n = w.shape.reduce((a: number, b) => a * (b as number), 1);
        const data = new Float32Array(n);
        for (let i = 0; i < n; i += 97) data[i] = li + wi / 10 + i * 1e-7;
        return { name: `${l.name}_${wi === 0 ? 'W' : 'b'}_1:0`, shape: w.shape as number[], values: data };
      }),
    }));
    ref.dispose();
    const file = path.join(tmp.dir, 'vgg16_notop.h5');
    await writeKerasH5(file, layers);
    const loaded = await loadBackbone({ backbone: vgg16, options: { imageSize: 64 }, weights: file, seed: 1 }, 'none', createMemoryLogger());
    const { base, weights: source } = loaded;
    try {
      expect(source.kind).toBe('file');
      for (const name of vggConvLayerNames()) {
        const want = layers.find((l) => l.name === name)!;
        const got = base.getLayer(name).getWeights();
        for (let k = 0; k < 2; k++) {
          const a = got[k]!.dataSync();
          const b = want.weights[k]!.values;
          expect(a.length).toBe(b.length);
          for (let i = 0; i < b.length; i += 97) expect(a[i]).toBe(b[i]);
        }
      }
    } finally {
      loaded.dispose();
    }
  });
});

// Keras .h5 weights for every backbone: a generated file in Keras's layout (layer_names / weight_names, "layer/w:0"
// datasets, weightless layers listed, file order unlike model order) loads by name into the right layer, value for
// value — BatchNormalization's gamma, beta, moving_mean, moving_variance included — and EfficientNet's Normalization
// statistics (int64 count) become its in-graph rescaling.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import type { BackboneOptions } from '../src/models/backbones/types.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { KerasNormalization } from '../src/models/backbones/efficientnet.js';
import { loadKerasH5Weights, writeKerasH5, type H5WriteLayer } from '../src/models/hdf5.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';

const CASES: Array<[string, BackboneOptions]> = [
  ['mobilenet_v2', { imageSize: 32, alpha: 0.35 }],
  ['resnet50', { imageSize: 32 }],
  ['efficientnet_b0', { imageSize: 32 }],
];

/** Keras's weight names per TF.js weight (BatchNormalization's order is gamma, beta, moving_mean, moving_variance). */
function kerasWeightName(layer: string, tfName: string): string {
  return `${layer}/${tfName.split('/').pop()!.replace(/_\d+$/, '')}:0`;
}

/** Distinct value bands per weight position, so a swapped order (e.g. mean ↔ variance) cannot pass. */
function values(n: number, band: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = band * 10 + s / 2 ** 32;
  }
  return out;
}

/** A Keras-layout file for `model`: every layer listed (weightless ones with no weights), in reverse model order. */
function kerasLayers(model: tf.LayersModel): H5WriteLayer[] {
  let seed = 1;
  const layers = model.layers.map((l): H5WriteLayer => {
    if (l instanceof KerasNormalization) {
      return {
        name: l.name,
        weights: [
          { name: `${l.name}/mean:0`, shape: [3], values: Float32Array.of(123.675, 116.28, 103.53) },
          { name: `${l.name}/variance:0`, shape: [3], values: Float32Array.of(3409.976, 3262.6944, 3291.890625) },
          { name: `${l.name}/count:0`, shape: [], values: Float32Array.of(1_281_167), dtype: 'int64' },
        ],
      };
    }
    return { name: l.name, weights: l.weights.map((w, i) => ({ name: kerasWeightName(l.name, w.originalName ?? w.name), shape: w.shape as number[], values: values(w.shape.reduce((a, d) => a! * d!, 1)!, i, seed++) })) };
  });
  return layers.reverse();
}

let dirs: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  await selectBackend('cpu');
  dirs = await tempDir('mlctl-bb-h5-');
});
afterAll(() => dirs.cleanup());

describe.each(CASES)('%s from a Keras-layout .h5', (id, opts) => {
  it('puts every stored array in its layer, value-exact, BatchNorm moving statistics included', async () => {
    const def = BACKBONES[id]!;
    const reference = def.build({ ...opts, seed: 1 });
    const model = def.build({ ...opts, seed: 99 });
    try {
      const layers = kerasLayers(reference);
      const file = path.join(dirs.dir, `${id}.h5`);
      await writeKerasH5(file, layers);
      const result = await loadKerasH5Weights(file, model);
      const byName = new Map(layers.map((l) => [l.name, l]));
      const weighted = model.layers.filter((l) => l.weights.length > 0);
      expect(result.tensors).toBe(weighted.reduce((n, l) => n + l.weights.length, 0));
      expect(result.unused).toEqual([]);
      let bn = 0;
      for (const layer of weighted) {
        const stored = byName.get(layer.name)!.weights;
        const got = layer.getWeights();
        expect(got.length).toBe(stored.length);
        got.forEach((t, i) => {
          const a = t.dataSync() as Float32Array;
          const b = stored[i]!.values;
          // Byte-for-byte (fast on ResNet50's 23.6M values); the message names the weight that differs.
          expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${layer.name} weight ${i}`).toBe(true);
        });
        if (layer.getClassName() === 'BatchNormalization') {
          bn++;
          // gamma, beta, moving_mean, moving_variance: the bands 0..3 in that order.
          expect(got.map((t) => Math.floor(t.dataSync()[0]! / 10))).toEqual([0, 1, 2, 3]);
        }
      }
      expect(bn).toBeGreaterThan(10);
      if (id === 'efficientnet_b0') {
        const norm = model.getLayer('normalization') as KerasNormalization;
        expect(result.layers).toContain('normalization');
        const cfg = norm.getConfig() as { scale: number[]; offset: number[] };
        const [mean, variance] = [[123.675, 116.28, 103.53], [3409.976, 3262.6944, 3291.890625]].map((a) => Float32Array.from(a));
        cfg.scale.forEach((s, c) => expect(s).toBe(1 / Math.sqrt(variance![c]!)));
        cfg.offset.forEach((o, c) => expect(o).toBe(-mean![c]! / Math.sqrt(variance![c]!)));
        // Through the graph: pixel p → p/255 → (·-mean)/sd → ·/sqrt(stddev), as Keras computes it.
        const probe = tf.model({ inputs: model.inputs, outputs: model.getLayer('rescaling_1').output as tf.SymbolicTensor });
        const y = (probe.predict(tf.fill([1, 32, 32, 3], 200)) as tf.Tensor).dataSync();
        [0.229, 0.224, 0.225].forEach((std, c) => expect(y[c]!).toBeCloseTo((200 / 255 - mean![c]!) / Math.sqrt(variance![c]!) / Math.sqrt(std), 5));
      }
    } finally {
      reference.dispose();
      model.dispose();
    }
  }, 120_000);

  it('names the layer when a BatchNormalization lacks its moving statistics', async () => {
    const def = BACKBONES[id]!;
    const model = def.build({ ...opts, seed: 5 });
    try {
      const layers = kerasLayers(model).map((l) => (l.weights.length === 4 ? { ...l, weights: l.weights.slice(0, 2) } : l));
      const file = path.join(dirs.dir, `${id}-bad.h5`);
      await writeKerasH5(file, layers);
      const err = await loadKerasH5Weights(file, model).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlctlError);
      expect((err as MlctlError).code).toBe('WEIGHTS_INVALID');
      expect((err as Error).message).toMatch(/has 2 weight\(s\) in the file, the model expects 4/);
    } finally {
      model.dispose();
    }
  }, 60_000);
});

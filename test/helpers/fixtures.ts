// Test fixtures shared across suites: temporary dirs, a generated synthetic dataset and a tiny trained-shape
// image-classification package (small conv net, random weights) so tests never need large models.
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../../src/artifacts/package.js';
import { imageInputSpec } from '../../src/data/preprocess.js';
import { generateSynthDataset } from '../../src/data/synth.js';
import { selectBackend } from '../../src/runtime/backend.js';

export async function tempDir(prefix = 'mlctl-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function synthDataset(dir: string, opts: { classes?: number; perClass?: number; size?: number; seed?: number } = {}) {
  return generateSynthDataset({ out: dir, classes: opts.classes ?? 3, perClass: opts.perClass ?? 12, size: opts.size ?? 32, seed: opts.seed ?? 7 });
}

/** A small conv classifier with the input spec mlctl records for image models. */
export function tinyModel(size: number, classes: number, seed = 1): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [size, size, 3], filters: 4, kernelSize: 3, activation: 'relu', padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed }), name: 'conv' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), name: 'predictions' }));
  return model;
}

/** Save a tiny random-weight image classifier as a real mlctl package under `root`. */
export async function tinyPackage(root: string, opts: { name?: string; size?: number; labels?: string[]; seed?: number } = {}): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const size = opts.size ?? 32;
  const labels = opts.labels ?? ['checker', 'circle', 'square'];
  const model = tinyModel(size, labels.length, opts.seed ?? 1);
  try {
    return await savePackage({
      root,
      name: opts.name ?? 'tiny',
      draft: {
        task: 'image-classification',
        labels,
        input: imageInputSpec(size, 'caffe'),
        output: { name: 'predictions', kind: 'probabilities', size: labels.length },
        architecture: { type: 'test-tiny-cnn' },
        formats: { tfjs: 'model.json' },
        lineage: [{ op: 'test-fixture', at: new Date().toISOString(), tool: 'mlctl-tests' }],
      },
      write: (dir) => writeTfjsModel(dir, model),
    });
  } finally {
    model.dispose();
  }
}

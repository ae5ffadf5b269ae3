// `mlctl import` of Keras-side models, no Python needed: a TF.js layers model.json and a whole-model Keras .h5
// (model_config + weights, written with h5wasm as Keras 2 lays it out), both converted to ONNX by mlctl's converter
// and checked against TF.js's own predictions of the same model.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import { loadPackage, writeTfjsModel } from '../src/artifacts/package.js';
import { writeKerasH5 } from '../src/models/hdf5.js';
import { openEngine } from '../src/runtime/engine.js';
import { runFloat } from '../src/runtime/float.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, tinyModel, type MlctlHome } from './helpers/fixtures.js';
import { selectBackend } from '../src/runtime/backend.js';

let home: MlctlHome;
let model: tf.LayersModel;
const x = Float32Array.from({ length: 2 * 16 * 16 * 3 }, (_, i) => Math.sin(i * 0.37) * 50);

beforeAll(async () => {
  home = await mlctlHome('mlctl-import-keras-');
  await selectBackend('cpu');
  model = tinyModel(16, 3, 5);
});

afterAll(async () => {
  model?.dispose();
  await home?.cleanup();
});

/** The imported package's engine on `x` against TF.js's predict on the same values. */
async function parity(name: string): Promise<number> {
  const engine = await openEngine(await loadPackage(name), { engine: 'onnx' });
  try {
    const got = await runFloat(engine, x, 2);
    const want = (model.predict(tf.tensor4d(x, [2, 16, 16, 3])) as tf.Tensor).dataSync();
    return Math.max(...Array.from(want, (w, i) => Math.abs(got[i]! - w) / Math.max(Math.abs(w), 1e-6)));
  } finally {
    await engine.dispose();
  }
}

describe('Keras-side models', () => {
  it('imports a TF.js layers model.json as a classifier (NHWC, read from its input) with TF.js\'s outputs', async () => {
    const dir = path.join(home.dir, 'web_model');
    await fs.mkdir(dir, { recursive: true });
    await writeTfjsModel(dir, model);
    const r = await runCli(['import', path.join(dir, 'model.json'), '--name', 'web', '--task', 'image-classification', '--labels', 'a,b,c', '--preprocessing', 'caffe', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.source.format).toBe('tfjs-layers');
    expect(r.json!.input).toMatchObject({ height: 16, width: 16, layout: 'NHWC', preprocessing: { mode: 'caffe', channelOrder: 'BGR' } });
    expect(await parity('web')).toBeLessThanOrEqual(1e-5);
  });

  it('imports a whole-model Keras .h5 (model_config + model weights) with TF.js\'s outputs', async () => {
    const file = path.join(home.dir, 'model.h5');
    await writeKerasH5(
      file,
      model.layers.map((l) => ({ name: l.name, weights: l.weights.map((w) => ({ name: `${l.name}/${w.name.split('/').pop()}`, shape: w.shape as number[], values: w.read().dataSync() as Float32Array })) })),
    );
    const h5 = (await import('h5wasm/node')) as any;
    const lib = h5.default && 'File' in h5.default ? h5.default : h5;
    await lib.ready;
    const f = new lib.File(file, 'a');
    f.create_attribute('model_config', JSON.stringify(model.toJSON(null, false)));
    f.close();
    const r = await runCli(['import', file, '--name', 'keras', '--task', 'image-classification', '--labels', 'a,b,c', '--preprocessing', 'tf', '--json']);
    expect(r.code).toBe(0);
    expect(r.json!.source.format).toBe('keras-h5');
    expect(await parity('keras')).toBeLessThanOrEqual(1e-5);
    // A weights-only file says what import needs instead.
    const weightsOnly = path.join(home.dir, 'weights.h5');
    await writeKerasH5(weightsOnly, [{ name: 'conv', weights: [] }]);
    const w = await runCli(['import', weightsOnly, '--name', 'w', '--json']);
    expect(w.json!.error).toMatchObject({ code: 'IMPORT_UNREADABLE' });
    expect(w.json!.error.message).toMatch(/model\.save/);
  });
});

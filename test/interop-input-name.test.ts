// One input name everywhere: the TF.js layers model, the ONNX graph, Triton's config and V2 metadata all call the
// input what the manifest calls it ("input"). Keras-style "input_1" models are renamed when saved; packages written
// before that still load, serve and export (the TF.js export renames their input, weights byte for byte).
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE } from '../src/artifacts/manifest.js';
import { hashFiles, loadPackage, savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { loadLayersModelFromDir, modelInputName, nameModelInput, type ModelJson } from '../src/artifacts/tfjs-io.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { exportModel } from '../src/export/index.js';
import { parseTextFormat } from '../src/triton/pbtxt.js';
import { tritonModelConfigType } from '../src/triton/model-config-proto.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine } from '../src/runtime/engine.js';
import { tempDir } from './helpers/fixtures.js';
import { runFloat } from '../src/runtime/float.js';

const SIZE = 32;
let root: string;
let cleanup: () => Promise<void>;

/** A functional model named the way Keras names it: input_1 → conv → dense. */
function kerasStyle(seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'input_1' });
  const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), name: 'block1_conv1' }).apply(input) as tf.SymbolicTensor;
  const f = tf.layers.flatten({ name: 'flatten' }).apply(c) as tf.SymbolicTensor;
  const y = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), name: 'predictions' }).apply(f) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y, name: 'keras_style' });
}

const draft = () => ({
  task: 'image-classification' as const,
  labels: ['a', 'b', 'c'],
  input: imageInputSpec(SIZE, 'caffe'),
  output: { name: 'predictions', kind: 'probabilities' as const, size: 3 },
  architecture: { type: 'test' },
  formats: { tfjs: 'model.json' },
  lineage: [],
});

const x = Float32Array.from({ length: 2 * SIZE * SIZE * 3 }, (_, i) => ((i * 7919) % 255) - 120);
const predict = (m: tf.LayersModel) => tf.tidy(() => Array.from((m.predict(tf.tensor(x, [2, SIZE, SIZE, 3])) as tf.Tensor).dataSync()));
const readJson = async <T>(f: string) => JSON.parse(await fs.readFile(f, 'utf8')) as T;

beforeAll(async () => {
  await selectBackend('cpu');
  ({ dir: root, cleanup } = await tempDir('mlctl-input-name-'));
});
afterAll(() => cleanup());

describe('one input name', () => {
  let pkg: LoadedPackage;
  let expected: number[];

  beforeAll(async () => {
    const m = kerasStyle();
    expected = predict(m);
    pkg = await savePackage({ root: path.join(root, 'artifacts'), name: 'named', draft: draft(), write: (dir) => writeTfjsModel(dir, m) });
    m.dispose();
  });

  it('a saved package names its TF.js input as the manifest does; stock TF.js loads it and predicts the same', async () => {
    const json = await readJson<ModelJson>(path.join(pkg.dir, 'model.json'));
    expect(modelInputName(json.modelTopology)).toBe('input');
    expect(JSON.stringify(json.modelTopology)).not.toContain('input_1');
    const loaded = await loadLayersModelFromDir(pkg.dir);
    expect(loaded.inputLayers.map((l) => l.name)).toEqual(['input']);
    expect(predict(loaded)).toEqual(expected);
    loaded.dispose();
  });

  it('ONNX, Triton and the TF.js export all say "input"', async () => {
    const onnxOut = path.join(root, 'onnx');
    await exportModel(pkg, { format: 'onnx', out: onnxOut });
    const session = await ort.InferenceSession.create(path.join(onnxOut, 'model.onnx'));
    expect(session.inputNames).toEqual(['input']);
    await session.release();
    const repo = path.join(root, 'triton');
    await exportModel(pkg, { format: 'triton', out: repo });
    const cfg = parseTextFormat(tritonModelConfigType(), await fs.readFile(path.join(repo, 'named', 'config.pbtxt'), 'utf8')) as { input: Array<{ name: string }> };
    expect(cfg.input.map((i) => i.name)).toEqual(['input']);
    const web = path.join(root, 'web');
    const res = await exportModel(pkg, { format: 'tfjs', out: web });
    expect(res.details).toMatchObject({ inputName: 'input' });
    expect(res.details.renamedInput).toBeUndefined();
    expect(res.files['model.json']!.sha256).toBe(pkg.manifest.files['model.json']!.sha256); // nothing to rename: byte for byte
  });

  it('Sequential models get an explicit InputLayer of that name', async () => {
    const seq = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [SIZE, SIZE, 3], name: 'flat' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) })] });
    const before = predict(seq);
    const p = await savePackage({ root: path.join(root, 'artifacts'), name: 'seq', draft: draft(), write: (dir) => writeTfjsModel(dir, seq) });
    seq.dispose();
    const loaded = await loadLayersModelFromDir(p.dir);
    // TF.js would have called it "flat_input".
    expect(loaded.inputs.map((t) => t.sourceLayer.name)).toEqual(['input']);
    expect(predict(loaded)).toEqual(before);
    loaded.dispose();
  });

  it('leaves a topology alone when another layer already has the name', () => {
    const topo = { class_name: 'Model', config: { layers: [{ name: 'input_1', class_name: 'InputLayer', config: { name: 'input_1' }, inbound_nodes: [] }, { name: 'input', class_name: 'Dense', config: { name: 'input' }, inbound_nodes: [[['input_1', 0, 0, {}]]] }], input_layers: [['input_1', 0, 0]] } };
    expect(nameModelInput(topo, 'input')).toBe(false);
    expect(modelInputName(topo)).toBe('input_1');
  });
});

describe('packages written before (TF.js input "input_1")', () => {
  let old: LoadedPackage;

  beforeAll(async () => {
    // Write the package as mlctl used to: the model's own topology, hashed as is.
    const m = kerasStyle(7);
    const p = await savePackage({ root: path.join(root, 'artifacts'), name: 'old', draft: draft(), write: (dir) => writeTfjsModel(dir, m) });
    const json = await readJson<ModelJson>(path.join(p.dir, 'model.json'));
    let captured: unknown;
    await m.save(tf.io.withSaveHandler(async (a) => ((captured = a.modelTopology), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    m.dispose();
    await fs.writeFile(path.join(p.dir, 'model.json'), JSON.stringify({ ...json, modelTopology: captured }));
    const manifest = { ...p.manifest, files: await hashFiles(p.dir) };
    await fs.writeFile(path.join(p.dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    old = await loadPackage(p.dir);
    expect(modelInputName((await readJson<ModelJson>(path.join(old.dir, 'model.json'))).modelTopology)).toBe('input_1');
  });

  it('still load and run (TF.js and ONNX Runtime engines)', async () => {
    for (const engine of ['tfjs', 'onnx'] as const) {
      const e = await openEngine(old, { engine });
      const y = await runFloat(e, x, 2);
      expect(y.length).toBe(6);
      await e.dispose();
    }
  });

  it('export --format tfjs renames the input in model.json only; the weights stay byte for byte', async () => {
    const out = path.join(root, 'old-web');
    const res = await exportModel(old, { format: 'tfjs', out });
    expect(res.details).toMatchObject({ inputName: 'input', renamedInput: { from: 'input_1', to: 'input' } });
    expect(res.files['group1-shard1of1.bin']!.sha256).toBe(old.manifest.files['group1-shard1of1.bin']!.sha256);
    const before = await loadLayersModelFromDir(old.dir);
    const after = await loadLayersModelFromDir(out);
    expect(after.inputLayers[0]!.name).toBe('input');
    expect(predict(after)).toEqual(predict(before));
    before.dispose();
    after.dispose();
  });
});

// `mlctl quantize|prune|optimize|tune` in-process through main(argv): the prune → quantize pipeline's lineage chain,
// JSON results, int8 QDQ packages run by ONNX Runtime, and usage exits.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { zeroFraction } from '../src/optimize/schedule.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, modelPackage, synthDataset, type MlctlHome } from './helpers/fixtures.js';

const run = (...args: string[]) => runCli([...args, '--backend', 'cpu']);

let tmp: MlctlHome;
let data: string;
let source: LoadedPackage;

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await mlctlHome('mlctl-optcli-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 10 });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'block1_conv1', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: 32, activation: 'relu', name: 'fc1', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  source = await modelPackage(tmp.artifacts, model, { name: 'net', labels: ['circle', 'square', 'triangle'] });
  model.dispose();
});

afterAll(() => tmp.cleanup());

describe('mlctl optimize', () => {
  it('prune → uint8 writes two versions chained by lineage, with a table row per version', async () => {
    const r = await run('optimize', 'net', '--prune', '0.5', '--epochs', '1', '--batch-size', '8', '--quantize', 'uint8', '--data', data, '--max-accuracy-drop', '1', '--engine', 'tfjs', '--latency-runs', '3', '--json');
    expect(r.code).toBe(0);
    expect(r.json.steps.map((s: { op: string }) => s.op)).toEqual(['prune', 'quantize']);
    expect(r.json.rows).toHaveLength(3);
    expect(r.json.package).toMatchObject({ name: 'net', version: 3 });
    const v2 = await loadPackage('net@2');
    const v3 = await loadPackage('net@3');
    expect(v2.manifest.lineage.at(-1)).toMatchObject({ op: 'prune', from: { version: 1, manifestSha256: source.manifestSha256 } });
    expect(v3.manifest.lineage.at(-1)).toMatchObject({ op: 'quantize', from: { version: 2, manifestSha256: v2.manifestSha256 } });
    expect(v3.manifest.lineage.map((l) => l.op)).toEqual(['prune', 'quantize']);
    // uint8 with a zero-exact nudged min keeps the pruned weights exactly zero.
    const m = await loadTfjsModel(v3);
    expect(zeroFraction(m.getLayer('fc1').getWeights()[0]!.dataSync())).toBeGreaterThanOrEqual(0.5);
    m.dispose();
    const json = JSON.parse(await fs.readFile(path.join(v3.dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'uint8')).toBe(true);
    for (const row of r.json.rows) expect(row.latencyMs).toBeGreaterThan(0);
  });

  it('prints the before/after table for quantize', async () => {
    const r = await run('quantize', 'net@1', '--dtype', 'float16', '--data', data, '--engine', 'tfjs', '--latency-runs', '2', '--max-accuracy-drop', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/net v1/);
    expect(r.stdout).toMatch(/net v\d+ \(quantize\)/);
    expect(r.stdout).toMatch(/val accuracy/);
    expect(r.stdout).toMatch(/tfjs cpu/);
  });

  it('int8: an ONNX QDQ model calibrated on training images, stored as formats.onnx and run by ONNX Runtime', async () => {
    const r = await run('quantize', 'net@1', '--dtype', 'int8', '--calibration', '6', '--data', data, '--max-accuracy-drop', '1', '--latency-runs', '2', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ dtype: 'int8', calibrationImages: 6 });
    // A classifier keeps the plain recipe (only detectors keep layers float and cut outliers): every layer int8, min/max.
    expect(r.json).toMatchObject({ floatNodes: [], activationRange: 'min/max' });
    expect(r.json.quantizedNodes).toBeGreaterThanOrEqual(3);
    // int8 weights: about a quarter of the fp32 ONNX bytes.
    expect(r.json.int8OnnxBytes / r.json.fp32OnnxBytes).toBeLessThan(0.4);
    const pkg = await loadPackage(r.json.package.dir);
    expect(pkg.manifest.formats).toEqual({ tfjs: 'model.json', onnx: 'model.onnx' });
    expect(pkg.manifest.lineage.at(-1)).toMatchObject({ op: 'quantize', params: { dtype: 'int8', calibration: 6 } });
    const ops = await import('../src/onnx/index.js').then(async (onnx) => onnx.decodeModel(await fs.readFile(path.join(pkg.dir, 'model.onnx'))).graph.node.map((n) => n.opType));
    expect(ops).toContain('QuantizeLinear');
    expect(ops).toContain('DequantizeLinear');
    expect(r.json.after.engine).toMatch(/onnxruntime/);
    // The float TF.js model is carried over unchanged for TF.js consumers.
    expect(pkg.manifest.files['model.json']!.sha256).toBe(source.manifest.files['model.json']!.sha256);
    expect(r.json.before.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.json.after.accuracy).toBeGreaterThanOrEqual(r.json.before.accuracy - 0.34);
  });

  it('exit codes: nothing to do → 2, int8 without --data → 2, tune without --data → 2, bad --layers → 2', async () => {
    expect((await run('optimize', 'net')).code).toBe(2);
    const int8 = await run('quantize', 'net', '--dtype', 'int8');
    expect(int8.code).toBe(2);
    expect(int8.stderr).toMatch(/calibrates on training images: pass --data/);
    expect((await run('tune', '--trials', '1')).code).toBe(2);
    const bad = await run('prune', 'net@1', '--layers', 'flatten', '--epochs', '0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/only Dense\/Conv2D/);
  });
});

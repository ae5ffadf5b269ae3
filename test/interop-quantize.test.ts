// `mlctl quantize NAME` names the version it starts from, refuses to quantize an already quantized package (a float16
// copy of a uint8 model) unless --force, and records the chain in lineage; optimize refuses before pruning anything.
// The int8 model's doc_string describes the int8 model. In-process through main(argv), on real packages.
import * as tf from '@tensorflow/tfjs';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listVersions, loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { decodeModel } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { modelPackage, synthDataset, tempDir } from './helpers/fixtures.js';

/** mlctl ARGS in this process (test/helpers/cli.ts), on the cpu backend. */
const run = (...args: string[]) => runCli([...args, '--backend', 'cpu']);

let tmp: { dir: string; cleanup: () => Promise<void> };
let data: string;
let source: LoadedPackage;
const saved: Record<string, string | undefined> = {};
const versions = () => listVersions(path.join(tmp.dir, 'artifacts', 'q'));

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-interop-quantize-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 6 });
  for (const k of ['MLCTL_ARTIFACTS', 'MLCTL_CACHE']) saved[k] = process.env[k];
  process.env.MLCTL_ARTIFACTS = path.join(tmp.dir, 'artifacts');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  source = await modelPackage(path.join(tmp.dir, 'artifacts'), model, { name: 'q', labels: ['circle', 'square', 'triangle'] });
  model.dispose();
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  await tmp.cleanup();
});

describe('mlctl quantize NAME', () => {
  it('says which version it starts from and records it', async () => {
    const r = await run('quantize', 'q', '--dtype', 'uint8', '--latency-runs', '0', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/quantizing q v1 \(.*artifacts\/q\/1; weights float32\) to uint8/);
    expect(r.json.source).toEqual({ name: 'q', version: 1, manifestSha256: source.manifestSha256 });
    expect(r.json.package).toMatchObject({ name: 'q', version: 2 });
    expect(r.json.lineage).toBe('q v1 → q v2 (quantize uint8)');
  });

  it('refuses a float16 copy of the uint8 model (exit 2, ALREADY_QUANTIZED), naming the float32 version to use', async () => {
    const before = await versions();
    const r = await run('quantize', 'q', '--dtype', 'float16', '--latency-runs', '0', '--json');
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({ ok: false, error: { code: 'ALREADY_QUANTIZED' } });
    expect(r.json.error.message).toMatch(/q v2 is already quantized: its weights are stored as uint8 \(quantize uint8 of q v1\)/);
    expect(r.json.error.message).toContain('mlctl quantize q@1 --dtype float16');
    expect(await versions()).toEqual(before); // nothing written
    // int8 (after its --data check) and optimize (before it prunes anything) refuse alike.
    const int8 = await run('quantize', 'q', '--dtype', 'int8', '--data', data, '--latency-runs', '0', '--json');
    expect(int8.json.error.code).toBe('ALREADY_QUANTIZED');
    const opt = await run('optimize', 'q', '--prune', '0.5', '--epochs', '0', '--quantize', 'float16', '--latency-runs', '0', '--json');
    expect(opt.code).toBe(2);
    expect(opt.json.error.code).toBe('ALREADY_QUANTIZED');
    expect(await versions()).toEqual(before);
  });

  it('--force quantizes it anyway and lineage shows the chain', async () => {
    const r = await run('quantize', 'q', '--dtype', 'float16', '--force', '--latency-runs', '0');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--force: q v2 is already quantized/);
    expect(r.stdout).toContain('lineage: q v1 → q v2 (quantize uint8) → q v3 (quantize float16, --force)');
    const v3 = await loadPackage('q@3');
    const v2 = await loadPackage('q@2');
    expect(v3.manifest.lineage).toMatchObject([
      { op: 'quantize', from: { name: 'q', version: 1, manifestSha256: source.manifestSha256 }, params: { dtype: 'uint8', sourceWeights: 'float32' } },
      { op: 'quantize', from: { name: 'q', version: 2, manifestSha256: v2.manifestSha256 }, params: { dtype: 'float16', sourceWeights: 'uint8', force: true } },
    ]);
  });

  it('int8 from the float32 version: the doc_string describes the int8 model, not its fp32 source', async () => {
    const r = await run('quantize', 'q@1', '--dtype', 'int8', '--calibration', '4', '--data', data, '--max-accuracy-drop', '1', '--latency-runs', '0', '--json');
    expect(r.code).toBe(0);
    const pkg = await loadPackage(r.json.package.dir);
    const proto = decodeModel(await fs.readFile(path.join(pkg.dir, 'model.onnx')));
    expect(proto.docString).toMatch(/^q: int8 QDQ model \(int8 symmetric per-channel weights, uint8 activations calibrated on 4 training images\), quantized by mlctl from q v1/);
    expect(proto.docString).not.toMatch(/fp32/);
    // Its export keeps saying so, with the variant.
    const out = path.join(tmp.dir, 'int8-export');
    expect((await run('export', r.json.package.dir, '--format', 'onnx', '--out', out)).code).toBe(0);
    const exported = decodeModel(await fs.readFile(path.join(out, 'model.onnx')));
    expect(exported.docString).toMatch(/Weights: int8 QDQ/);
    expect(Object.fromEntries((exported.metadataProps ?? []).map((p) => [p.key, p.value]))['mlctl.weights']).toBe('int8-qdq');
    expect(existsSync(path.join(out, 'metadata.json'))).toBe(true);
  });
});

// train → quantize (float16, uint8, int8 QDQ) → prune → evaluate → export (tfjs, onnx, triton, bundle) → serve, for
// every backbone beyond VGG16 at 32 px: weights from a generated Keras-layout .h5 (--weights PATH), the head trained
// on ONNX Runtime features, one block fine-tuned on wasm, and each backbone's own preprocessing carried to serve.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { loadPackage } from '../src/artifacts/package.js';
import { imageToInput } from '../src/data/preprocess.js';
import type { BackboneOptions } from '../src/models/backbones/types.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { KerasNormalization } from '../src/models/backbones/efficientnet.js';
import { writeKerasH5 } from '../src/models/hdf5.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createRepository } from '../src/serve/repository.js';
import { startServer } from '../src/serve/start.js';
import { calibrateBatchNorms } from './helpers/backbones.js';
import { runCli, type CliRun } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

async function cli(...args: string[]): Promise<CliRun> {
  const t0 = Date.now();
  try {
    return await runCli([...args, '--json', '--quiet', '--backend', 'wasm']);
  } finally {
    if (process.env.MLCTL_TEST_TIMINGS) console.log(args.slice(0, 3).join(' '), Date.now() - t0, 'ms');
  }
}

/** A Keras-layout weights file for a backbone: random weights, BatchNorm statistics calibrated on real images. */
async function kerasWeightsFile(file: string, id: string, opts: BackboneOptions, images: tf.Tensor4D): Promise<void> {
  const model = BACKBONES[id]!.build({ ...opts, seed: 7 });
  try {
    calibrateBatchNorms(model, images);
    await writeKerasH5(
      file,
      model.layers.map((l) => ({
        name: l.name,
        weights:
          l instanceof KerasNormalization
            ? [
                { name: `${l.name}/mean:0`, shape: [3], values: Float32Array.of(0.485, 0.456, 0.406) },
                { name: `${l.name}/variance:0`, shape: [3], values: Float32Array.of(0.229, 0.224, 0.225) },
                { name: `${l.name}/count:0`, shape: [], values: Float32Array.of(0), dtype: 'int64' as const },
              ]
            : l.weights.map((w) => ({ name: `${l.name}/${w.originalName.split('/').pop()}:0`, shape: w.shape as number[], values: w.read().dataSync() as Float32Array })),
      })),
    );
  } finally {
    model.dispose();
  }
}

let tmp: MlctlHome;
let data: string;
let images: tf.Tensor4D;
let jpeg: Buffer;
let sampleFiles: string[];

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-bb-e2e-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 8, size: 32, seed: 4 });
  await selectBackend('wasm');
  // Calibration images in each backbone's input range are made per backbone below from these pixels.
  const cls = (await fs.readdir(data)).sort()[0]!;
  const files = (await fs.readdir(path.join(data, cls))).sort().slice(0, 4).map((f) => path.join(data, cls, f));
  jpeg = await sharp(files[0]!).jpeg().toBuffer();
  sampleFiles = files;
  const pixels = await Promise.all(files.map((f) => sharp(f).removeAlpha().resize(32, 32).raw().toBuffer()));
  images = tf.tensor4d(Float32Array.from(Buffer.concat(pixels)), [4, 32, 32, 3]);
});
afterAll(async () => {
  images?.dispose();
  await tmp.cleanup();
});

/** id, options, train flags, preprocessing, prune flags (prune takes the head by default; ResNet50 names it). */
const CASES: Array<[string, BackboneOptions, string[], string, string[]]> = [
  ['mobilenet_v2', { imageSize: 32, alpha: 0.35 }, ['--alpha', '0.35'], 'tf', []],
  ['resnet50', { imageSize: 32 }, [], 'caffe', ['--layers', 'fc1']],
  ['efficientnet_b0', { imageSize: 32 }, [], 'raw', []],
];

describe.each(CASES)('%s: train → quantize → prune → evaluate → export → serve', (id, opts, extra, mode, pruneFlags) => {
  it('runs the whole pipeline', async () => {
    const name = `e2e-${id.replace(/_/g, '-')}`;
    const weights = path.join(tmp.dir, `${id}.h5`);
    // The calibration batch in the range this backbone's preprocessing feeds it.
    const x = tf.tidy(() => (mode === 'tf' ? images.div(127.5).sub(1) : mode === 'caffe' ? images.reverse(3).sub([103.939, 116.779, 123.68]) : images.clone())) as tf.Tensor4D;
    await kerasWeightsFile(weights, id, opts, x);
    x.dispose();

    const train = await cli('train', '--data', data, '--name', name, '--backbone', id, ...extra, '--weights', weights, '--image-size', '32', '--epochs', '2', '--batch-size', '8', '--head', 'gap', '--fine-tune', '1', '--fine-tune-epochs', '1', '--engine', 'onnx', '--seed', '3');
    expect(train.code, train.stderr).toBe(0);
    const pkg = await loadPackage(train.json.package);
    const arch = pkg.manifest.architecture as Record<string, any>;
    expect((pkg.manifest.input as { preprocessing: { mode: string } }).preprocessing.mode).toBe(mode);
    expect(arch).toMatchObject({ type: `${id}-transfer`, backbone: id, trainableBlocks: [BACKBONES[id]!.blockNames(opts).at(-1)] });
    expect(arch.params.backbone).toBe(BACKBONES[id]!.build({ ...opts }).countParams());
    expect(arch.weights.kind).toBe('file');
    expect(train.json.timings.fineTuneSeconds).toBeGreaterThan(0);

    for (const dtype of ['float16', 'uint8']) {
      // Without --data: the weight encoding alone (int8 below is calibrated and compared on images).
      const q = await cli('quantize', `${name}@1`, '--dtype', dtype, '--latency-runs', '1', '--engine', 'tfjs');
      expect(q.code, q.stderr).toBe(0);
      expect((await loadPackage(q.json.package.dir)).manifest.lineage.at(-1)).toMatchObject({ op: 'quantize', params: { dtype } });
    }
    const int8 = await cli('quantize', `${name}@1`, '--dtype', 'int8', '--calibration', '4', '--data', data, '--max-accuracy-drop', '1', '--latency-runs', '1');
    expect(int8.code, int8.stderr).toBe(0);
    expect(int8.json.quantizedNodes).toBeGreaterThan(10);
    const pruned = await cli('prune', `${name}@1`, '--sparsity', '0.5', '--epochs', '1', ...pruneFlags, '--data', data, '--max-accuracy-drop', '1', '--latency-runs', '1', '--engine', 'tfjs');
    expect(pruned.code, pruned.stderr).toBe(0);

    const fp32 = await cli('evaluate', `${name}@1`, '--data', data, '--engine', 'onnx');
    const q8 = await cli('evaluate', int8.json.package.dir, '--data', data);
    expect(fp32.code, fp32.stderr).toBe(0);
    expect(q8.code, q8.stderr).toBe(0);

    for (const format of ['tfjs', 'onnx', 'triton', 'bundle']) {
      const e = await cli('export', `${name}@1`, '--format', format, '--out', path.join(tmp.dir, 'exports', `${id}-${format}`));
      expect(e.code, `${format}: ${e.stderr}`).toBe(0);
    }

    // int8 QDQ against the fp32 ONNX export, image by image through each backbone's preprocessing.
    const spec = pkg.manifest.input as ImageInputSpec;
    const fp32Onnx = await ort.InferenceSession.create(path.join(tmp.dir, 'exports', `${id}-onnx`, 'model.onnx'));
    const fp32Probabilities = async (image: string | Uint8Array) => {
      const input = await imageToInput(image, spec);
      const out = await fp32Onnx.run({ [fp32Onnx.inputNames[0]!]: new ort.Tensor('float32', input, [1, 32, 32, 3]) });
      return out[fp32Onnx.outputNames[0]!]!.data as Float32Array;
    };
    const int8Onnx = await ort.InferenceSession.create(path.join(int8.json.package.dir, 'model.onnx'));
    try {
      let worst = 0;
      for (const file of sampleFiles) {
        const input = await imageToInput(file, spec);
        const feed = (s: ort.InferenceSession) => s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', input, [1, 32, 32, 3]) }).then((o) => o[s.outputNames[0]!]!.data as Float32Array);
        const [a, b] = [await feed(fp32Onnx), await feed(int8Onnx)];
        for (const p of [a, b]) expect(p.reduce((t, v) => t + v, 0)).toBeCloseTo(1, 4);
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      }
      // Both are probability distributions over the labels; how close int8 stays to fp32 is measured by bench/backbones.ts
      // on full-size networks (random 32 px networks compound quantization noise layer by layer, unlike trained ones).
      expect(worst).toBeLessThanOrEqual(1);
    } finally {
      await int8Onnx.release();
    }

    const root = path.join(tmp.dir, 'artifacts');
    const repo = createRepository({ engine: 'onnx', maxBatch: 4, maxDelayMs: 2, maxQueue: 16 });
    await repo.load(path.join(root, name));
    const server = await startServer(repo, { port: 0, logger: false, drainTimeoutMs: 2000 });
    try {
      const fd = new FormData();
      fd.append('data', new Blob([jpeg], { type: 'image/jpeg' }), 'x.jpg');
      const res = await fetch(`${server.url}/predict?model=${name}&version=1`, { method: 'POST', body: fd });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { predictions: number[][]; labels: Array<Array<{ label: string; score: number }>> };
      // serve applies the backbone's preprocessing from the manifest: its answer is the fp32 ONNX export's on the same image.
      const want = await fp32Probabilities(jpeg);
      body.predictions[0]!.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 4));
      expect(pkg.manifest.labels).toContain(body.labels[0]![0]!.label);
    } finally {
      await server.shutdown('test done');
      await fp32Onnx.release();
    }
  }, 600_000);
});

describe('train --backbone/--alpha usage errors (exit 2, one JSON document)', () => {
  it.each([
    [['--backbone', 'resnet50', '--alpha', '0.5'], 'OPTION_CONFLICT', /--alpha applies to mobilenet_v2 only/],
    [['--backbone', 'mobilenet_v2', '--alpha', '0.6'], 'OPTION_INVALID', /choose one of 0.35, 0.5, 0.75, 1, 1.3, 1.4/],
    [['--backbone', 'vgg16', '--fine-tune', '6'], 'OPTION_INVALID', /between 0 and 5/],
    [['--backbone', 'efficientnet_b0', '--image-size', '33', '--alpha', '1'], 'OPTION_CONFLICT', /no width multiplier/],
    [['--backbone', 'inception_v3'], 'OPTION_INVALID', /vgg16, mobilenet_v2, resnet50, efficientnet_b0/],
  ])('%j', async (flags, code, message) => {
    const r = await cli('train', '--data', data, '--name', 'bad', '--weights', 'none', '--image-size', '32', ...flags);
    expect(r.code).toBe(2);
    expect(r.json.ok).toBe(false);
    expect(JSON.stringify(r.json)).toMatch(message);
    expect(JSON.stringify(r.json)).toContain(code);
  });
});

describe('tune --backbone', () => {
  it('searches heads on a MobileNetV2 base and saves the best as a mobilenet_v2 package with tf preprocessing', async () => {
    const r = await cli('tune', '--data', data, '--name', 'tuned-mobile', '--backbone', 'mobilenet_v2', '--alpha', '0.35', '--weights', 'none', '--image-size', '32', '--trials', '2', '--epochs', '2', '--head', 'gap', '--engine', 'onnx', '--seed', '2');
    expect(r.code, r.stderr).toBe(0);
    const pkg = await loadPackage(r.json.package.dir ?? r.json.package);
    expect(pkg.manifest.architecture).toMatchObject({ type: 'mobilenet_v2-transfer', backbone: 'mobilenet_v2', variant: 'alpha0.35', alpha: 0.35, featureShape: [1, 1, 1280] });
    expect((pkg.manifest.input as { preprocessing: { mode: string } }).preprocessing.mode).toBe('tf');
  }, 300_000);
});

// `mlctl train` end to end on a small synthetic dataset with --weights none (32 px): a real package that beats
// chance and runs on raw images, the feature cache on rerun, --seed determinism, interrupt + --resume, bad inputs.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel } from '../src/artifacts/package.js';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { imageToInput } from '../src/data/preprocess.js';
import { writeKerasH5 } from '../src/models/hdf5.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runTrain, type TrainOptions } from '../src/train/run.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;
let artifacts: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-');
  data = path.join(tmp.dir, 'data');
  artifacts = tmp.artifacts;
  await synthDataset(data, { classes: 3, perClass: 14, size: 32, seed: 3 });
  await selectBackend('wasm');
});
afterAll(async () => {
  await tmp.cleanup();
});

/** Run the CLI with --json: the exit code and the parsed JSON document. */
const cli = (...args: string[]) => runCli([...args, '--json', '--quiet', '--backend', 'wasm']);

const COMMON = ['--weights', 'none', '--image-size', '32', '--batch-size', '8', '--lr', '0.001', '--engine', 'tfjs', '--seed', '5'];

describe('mlctl train (vgg16, --weights none)', () => {
  let first: Record<string, any>;

  it('trains clearly better than chance and writes a complete package', async () => {
    const r = await cli('train', '--data', data, '--name', 'synth', '--epochs', '8', ...COMMON);
    expect(r.code).toBe(0);
    first = r.json;
    expect(first.version).toBe(1);
    expect(first.metrics.valAccuracy).toBeGreaterThan(0.6); // 3 classes: chance is 1/3
    expect(first.features.train.computed).toBeGreaterThan(0);
    const pkg = await loadPackage(first.package as string);
    const m = pkg.manifest;
    expect(m.task).toBe('image-classification');
    expect(m.labels).toEqual((await scanImageFolder(data)).classes);
    expect(m.input).toMatchObject({ kind: 'image', height: 32, width: 32, preprocessing: { mode: 'caffe', channelOrder: 'BGR' } });
    expect(m.architecture).toMatchObject({ backbone: 'vgg16', head: { pooling: 'flatten', dense: [1024, 3] }, trainableBlocks: [] });
    expect((m.architecture.params as { backbone: number }).backbone).toBe(14_714_688);
    expect(m.formats.tfjs).toBe('model.json');
    expect(m.lineage[0]!.op).toBe('train');
    for (const f of ['model.json', 'history.json', 'history.csv', 'history.png', 'history.html']) expect(m.files[f]).toBeDefined();
    const csv = await fs.readFile(path.join(pkg.dir, 'history.csv'), 'utf8');
    expect(csv.trim().split('\n')).toHaveLength(1 + (m.metrics!.epochsRun as number));
    const png = await fs.readFile(path.join(pkg.dir, 'history.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // The stored model is the whole network: raw images in, class probabilities out.
    const model = await loadTfjsModel(pkg);
    const folder = await scanImageFolder(data);
    const x = await imageToInput(folder.samples[0]!.path, m.input as never);
    const p = model.predict(tf.tensor4d(x, [1, 32, 32, 3])) as tf.Tensor;
    const probs = p.dataSync();
    expect(probs).toHaveLength(3);
    expect(Array.from(probs).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    model.dispose();
    p.dispose();
  });

  it('reruns from the feature cache with identical metrics (same --seed)', async () => {
    const r = await cli('train', '--data', data, '--name', 'synth', '--epochs', '8', ...COMMON);
    expect(r.code).toBe(0);
    expect(r.json.version).toBe(2);
    expect(r.json.features.train.computed).toBe(0);
    expect(r.json.features.train.cached).toBe(first.features.train.computed);
    expect(r.json.metrics).toEqual(first.metrics);
  });

  it('still accepts the old --model vgg16 as the neural network, with a deprecation line naming --model nn', async () => {
    const r = await cli('train', '--model', 'vgg16', '--data', data, '--name', 'synth', '--epochs', '8', ...COMMON);
    expect(r.code).toBe(0);
    expect(r.json.metrics).toEqual(first.metrics);
    expect(r.stderr).toMatch(/--model vgg16 is deprecated.*--model nn/);
  });

  it('resumes an interrupted run and ends exactly where an uninterrupted run ends', async () => {
    const logger = createMemoryLogger();
    const opts: TrainOptions = {
      data, name: 'resumable', epochs: 4, batchSize: 8, imageSize: 32, lr: 0.001, head: 'flatten', dropout: 0.2, fineTune: 0, weights: 'none',
      augment: [], seed: 5, resume: false, validationSplit: 0.2, testSplit: 0, engine: 'tfjs', classWeights: 'auto', logger, artifacts,
      // Stop once epoch 2 has been logged (so inside epoch 3), as SIGINT would.
      shouldStop: () => logger.lines.some((l) => /^epoch 2\/4 /.test(l.msg)),
    };
    const stopped = await runTrain(opts);
    expect(stopped.interrupted).toBe(true);
    expect(stopped.package).toBeUndefined();
    expect(stopped.history).toHaveLength(2);
    await expect(fs.stat(path.join(artifacts, 'resumable'))).rejects.toThrow();
    const resumed = await runTrain({ ...opts, resume: true, shouldStop: undefined });
    const straight = await runTrain({ ...opts, name: 'straight', shouldStop: undefined });
    expect(resumed.history.map((h) => h.valLoss)).toEqual(straight.history.map((h) => h.valLoss));
    expect(resumed.metrics).toEqual(straight.metrics);
    expect(logger.lines.some((l) => /resuming "resumable" \(run \d{8}T\d{6}-\d+, started [^)]+ by pid \d+\) from the head checkpoint after epoch 2/.test(l.msg))).toBe(true);
    // A changed setting makes --resume refuse rather than mix runs.
    await expect(runTrain({ ...opts, resume: true, lr: 0.01, shouldStop: undefined })).rejects.toThrow(/different settings \(lr\)/);
  });

  it('fine-tunes the last block on wasm (GAP head, augmentation) and records both phases', async () => {
    const logger = createMemoryLogger();
    const r = await runTrain({
      data, name: 'finetuned', epochs: 1, batchSize: 8, imageSize: 32, lr: 0.001, head: 'gap', dropout: 0, fineTune: 1, fineTuneEpochs: 1, weights: 'none',
      augment: ['flip', 'shift'], seed: 5, resume: false, validationSplit: 0.2, testSplit: 0, engine: 'tfjs', classWeights: 'auto', logger, artifacts,
    });
    expect(r.history.map((h) => h.phase)).toEqual(['head', 'fine-tune']);
    expect(r.features.train).toBeUndefined(); // augmentation: no cached train features
    // With augmentation the frozen part (up to block4_pool) runs on every batch, and the log says so.
    expect(logger.lines.some((l) => /fine-tune: the frozen part \(up to block4_pool\) runs in tfjs .* on every batch \(--augment/.test(l.msg))).toBe(true);
    const pkg = await loadPackage(r.package!.dir);
    expect(pkg.manifest.architecture).toMatchObject({ head: { pooling: 'gap' }, trainableBlocks: ['block5'] });
    const params = pkg.manifest.architecture.params as { trainable: number; head: number };
    expect(params.trainable).toBeGreaterThan(params.head);
    expect(pkg.manifest.training).toMatchObject({ augment: ['flip', 'shift'], fineTune: { blocks: 1, epochs: 1, epochsRun: 1 } });
  });

  it('fails clearly on bad input and writes no package', async () => {
    const one = path.join(tmp.dir, 'one-class');
    await fs.mkdir(path.join(one, 'only'), { recursive: true });
    await fs.copyFile((await scanImageFolder(data)).samples[0]!.path, path.join(one, 'only', 'a.png'));
    const emptyClass = path.join(tmp.dir, 'empty-class');
    await fs.cp(data, emptyClass, { recursive: true });
    await fs.mkdir(path.join(emptyClass, 'zzz-empty'));
    const badWeights = path.join(tmp.dir, 'bad.h5');
    await writeKerasH5(badWeights, [{ name: 'block1_conv1', weights: [{ name: 'block1_conv1_W_1:0', shape: [3, 3, 3, 8], values: new Float32Array(216) }, { name: 'block1_conv1_b_1:0', shape: [8], values: new Float32Array(8) }] }]);
    const notH5 = path.join(tmp.dir, 'not.h5');
    await fs.writeFile(notH5, 'nope');
    const cases: Array<[string[], RegExp]> = [
      [['--data', path.join(tmp.dir, 'absent')], /does not exist/],
      [['--data', one], /at least 2 are needed/],
      [['--data', emptyClass], /zzz-empty has no images/],
      [['--data', data, '--image-size', '48'], /multiple of 32/],
      [['--data', data, '--weights', badWeights], /block1_conv1\/block1_conv1_W_1:0 has shape \[3, 3, 3, 8\], the model expects \[3, 3, 3, 64\]/],
      [['--data', data, '--weights', notH5], /not an HDF5 file/],
      [['--data', data, '--augment', 'flip,wobble'], /unknown augmentation "wobble"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('train', '--name', 'bad', '--epochs', '1', ...COMMON, ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.json.error.message).toMatch(message);
    }
    await expect(fs.stat(path.join(artifacts, 'bad'))).rejects.toThrow();
  });
});

// The fast fine-tune path on tiny nets: the model cut before its first unfrozen block (the tail shares the model's
// weights), the fused wasm Adam (tf.train.adam's numbers, weights never stale in XNNPACK's operator cache), and the
// loss parity the issue asks for — 5 steps of mlctl's path (frozen part in ONNX Runtime, stored; tail in TF.js on
// mlctl's wasm kernels and Adam) against the plain TF.js path (the whole model on images, wasm's stock kernels,
// tf.train.adam) from the same weights on the same batches: the same losses within 1e-4.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelModuleText, KERNELS } from '../scripts/build-kernels.js';
import { imageBatches } from '../src/data/batches.js';
import { scanImageFolder, type Sample } from '../src/data/imagefolder.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { buildFullModel } from '../src/models/head.js';
import { splitBefore } from '../src/models/split.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tfjsAdam } from '../src/train/adam-kernel.js';
import { prepareFineTune, tailTrainer, unfreezeLastBlocks, weightSnapshot } from '../src/train/finetune.js';
import { ensureWasmGradients } from '../src/train/wasm-grads.js';
import { createMemoryLogger } from '../src/util/log.js';
import { createRng, gaussian } from '../src/util/random.js';
import '../src/engines/index.js';
import { calibrateBatchNorms } from './helpers/backbones.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let home: MlctlHome;
let samples: Sample[];

beforeAll(async () => {
  home = await mlctlHome('mlctl-finetune-');
  await synthDataset(path.join(home.dir, 'data'), { classes: 3, perClass: 6, size: 32, seed: 4 });
  // Interleave the classes so every batch mixes them.
  const all = (await scanImageFolder(path.join(home.dir, 'data'))).samples;
  samples = Array.from({ length: all.length }, (_, i) => all[(i * 7) % all.length]!);
  await selectBackend('wasm');
});
afterAll(async () => {
  ensureWasmGradients({ fast: true });
  await home.cleanup();
});

describe('fused Adam on the wasm heap', () => {
  it('is the assembled WAT source (run npx tsx scripts/build-kernels.ts after editing adam-kernel.ts)', async () => {
    expect(await fs.readFile(KERNELS.adam.file, 'utf8')).toBe(await kernelModuleText(KERNELS.adam));
  });

  it('matches tf.train.adam over steps with changing rates, and the next conv sees the new weights', async () => {
    const rng = createRng(3);
    const shapes = [[7], [1030], [3, 3, 2, 5]];
    const init = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => gaussian(rng)));
    const grads = [0, 1, 2].map(() => init.map((w) => Float32Array.from(w, () => gaussian(rng))));
    const run = (fused: boolean) => {
      const vars = init.map((w, i) => tf.variable(tf.tensor(w, shapes[i]), true, `adam_${fused}_${i}`));
      const adam = tfjsAdam(vars, { fused });
      expect(adam.kind).toBe(fused ? 'fused wasm' : 'tf.train.adam');
      const x = tf.tensor4d(Float32Array.from({ length: 2 * 6 * 6 * 2 }, () => gaussian(rng)), [2, 6, 6, 2]);
      const convs: Float32Array[] = [];
      grads.forEach((g, step) => {
        // A conv with the variable as its filter before each update: XNNPACK caches an operator for those weights.
        convs.push(tf.tidy(() => tf.conv2d(x, vars[2] as unknown as tf.Tensor4D, 1, 'same').dataSync() as Float32Array).slice());
        const named = Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(g[i]!, shapes[i])]));
        adam.apply(named, [1e-2, 3e-3, 1e-3][step]!);
        tf.dispose(Object.values(named));
      });
      convs.push(tf.tidy(() => tf.conv2d(x, vars[2] as unknown as tf.Tensor4D, 1, 'same').dataSync() as Float32Array).slice());
      const fresh = tf.tidy(() => tf.conv2d(x, tf.tensor4d(vars[2]!.dataSync(), [3, 3, 2, 5]), 1, 'same').dataSync() as Float32Array).slice();
      const out = vars.map((v) => (v.dataSync() as Float32Array).slice());
      adam.dispose();
      tf.dispose([...vars, x]);
      return { out, convs, fresh };
    };
    const ref = run(false);
    const got = run(true);
    got.out.forEach((w, i) => {
      for (let j = 0; j < w.length; j++) expect(Math.abs(w[j]! - ref.out[i]![j]!)).toBeLessThan(1e-6);
      expect(Array.from(w)).not.toEqual(Array.from(init[i]!)); // it did move
    });
    // The conv after the last update computes with the updated weights, not a cached copy of the old ones.
    for (let j = 0; j < got.fresh.length; j++) expect(Math.abs(got.convs[3]![j]! - got.fresh[j]!)).toBeLessThan(1e-5);
  });
});

describe('the model cut before its first unfrozen block', () => {
  it.each([
    ['mobilenet_v2', { imageSize: 32, alpha: 0.35 }, 3, 'block_14_add'],
    ['resnet50', { imageSize: 32 }, 2, 'conv5_block1_out'],
    ['efficientnet_b0', { imageSize: 32 }, 3, 'block6c_add'],
    ['vgg16', { imageSize: 32 }, 1, 'block4_pool'],
    ['vgg16', { imageSize: 32 }, 5, 'input_1'],
  ] as const)('%s: tail(prefix(x)) is the model, and the tail trains the model\'s own weights (%s, %d blocks)', (id, opts, blocks, cut) => {
    const def = BACKBONES[id]!;
    const model = buildFullModel(def.build({ ...opts, seed: 2 }), { pooling: 'gap', units: 8, dropout: 0.3, classes: 3 });
    const units = def.blocks(opts);
    const split = splitBefore(model, units[units.length - blocks]![0]!);
    expect(split.cutLayer).toBe(cut);
    expect(Boolean(split.prefix)).toBe(blocks < units.length);
    tf.tidy(() => {
      const x = tf.randomNormal([2, 32, 32, 3], 0, 30, 'float32', 1);
      const mid = split.prefix ? (split.prefix.predict(x) as tf.Tensor) : x;
      expect(mid.shape.slice(1)).toEqual(split.cutShape);
      const a = (model.predict(x) as tf.Tensor).dataSync();
      const b = (split.tail.predict(mid) as tf.Tensor).dataSync();
      expect(Array.from(b)).toEqual(Array.from(a));
      // Every trainable layer of the unfrozen blocks and the head is a layer of the tail, the very same object.
      const unfrozen = unfreezeLastBlocks(model, blocks, units);
      for (const name of unfrozen.trainable) expect(split.tail.getLayer(name)).toBe(model.getLayer(name));
      unfrozen.restore();
    });
    model.dispose();
  });
});

describe('loss parity with the plain TF.js path', () => {
  it.each([
    ['mobilenet_v2', { imageSize: 32, alpha: 0.35 }, 3],
    ['vgg16', { imageSize: 32 }, 1],
  ] as const)('%s: 5 steps of the split path give the plain path\'s losses within 1e-4', async (id, opts, blocks) => {
    const def = BACKBONES[id]!;
    const units = def.blocks(opts);
    const spec = imageInputSpec(32, def.preprocessing);
    const model = buildFullModel(def.build({ ...opts, seed: 3 }), { pooling: 'flatten', units: 16, dropout: 0, classes: 3 });
    for (const [name, seed] of [['fc1', 11], ['predictions', 12]] as const) {
      const [k, b] = model.getLayer(name).getWeights();
      const w = [tf.initializers.glorotUniform({ seed }).apply(k!.shape) as tf.Tensor, tf.zerosLike(b!)];
      model.getLayer(name).setWeights(w);
      tf.dispose(w);
    }
    // Real images, decoded once: BatchNorm statistics calibrated on them and the plain path's batches.
    const batches: Array<{ x: Float32Array; labels: Int32Array }> = [];
    for await (const b of imageBatches(samples.slice(0, 15), { spec, batchSize: 3 })) batches.push({ x: b.x.slice(0, b.count * 32 * 32 * 3), labels: b.labels.slice(0, b.count) });
    const calib = tf.tensor4d(Float32Array.from(batches.flatMap((b) => Array.from(b.x))), [15, 32, 32, 3]);
    calibrateBatchNorms(model, calib);
    calib.dispose();
    const setup = await prepareFineTune(model, samples.slice(0, 15), [], {
      blocks,
      units,
      spec,
      augment: [],
      seed: 1,
      frozen: { engine: 'onnx', baseIdentity: `parity-${id}`, useStore: false, cacheRoot: home.cache },
      logger: createMemoryLogger(),
    });
    const saved = weightSnapshot(model);
    const losses = async (split: boolean) => {
      ensureWasmGradients({ fast: split });
      const unfrozen = unfreezeLastBlocks(model, blocks, units);
      const trainer = split ? tailTrainer(model, setup.split.tail, setup.split.cutShape, 3) : tailTrainer(model, model, [32, 32, 3], 3, { fusedAdam: false });
      expect(trainer.optimizer).toBe(split ? 'fused wasm' : 'tf.train.adam');
      const rows = setup.trainRows(1);
      const out: number[] = [];
      try {
        for (let s = 0; s < 5; s++) {
          const order = [3 * s, 3 * s + 1, 3 * s + 2];
          const x = split ? await rows.read(order, 0, 3, new Float32Array(3 * rows.dim)) : batches[s]!.x;
          out.push(trainer.step(x, batches[s]!.labels, 3, 2e-3).loss);
        }
        return out;
      } finally {
        trainer.dispose();
        unfrozen.restore();
        saved.restore();
      }
    };
    try {
      expect(setup.split.prefix).toBeDefined();
      const plain = await losses(false);
      const fast = await losses(true);
      // The steps did train (the loss moved), and both paths moved it the same way.
      expect(Math.abs(plain[4]! - plain[0]!)).toBeGreaterThan(1e-3);
      for (let s = 0; s < 5; s++) expect(Math.abs(fast[s]! - plain[s]!), `step ${s + 1}: ${fast[s]} vs ${plain[s]}`).toBeLessThanOrEqual(1e-4);
    } finally {
      saved.dispose();
      await setup.dispose();
      model.dispose();
    }
  }, 120_000);
});

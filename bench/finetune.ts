// `npm run bench -- finetune`: fine-tune throughput (train images per second over an epoch) of the path before this
// change — the whole model in TF.js on decoded images, wasm's stock kernels (naive Conv2DBackpropInput, transposed
// BatchMatMul) — against mlctl's: the frozen part in the feature session's engine (ONNX Runtime), stored once, and
// only the unfrozen blocks + head forward/backward in TF.js on mlctl's wasm gradient kernels; also the same with
// --augment (the frozen part computed on every batch). Old and new epochs alternate (the machine is shared: ratios
// within one run are what count), best of --rounds each. Then the loss parity: 5 steps of both paths from the same
// weights on the same batches must give the same losses within 1e-4.
// Options: --only mobilenet_v2|vgg16 --rounds 2 --images N --batch B (defaults per model below).
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import path from 'node:path';
import { imageBatches } from '../src/data/batches.js';
import { scanImageFolder, type Sample } from '../src/data/imagefolder.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { buildFullModel } from '../src/models/head.js';
import { selectBackend } from '../src/runtime/backend.js';
import { fineTune, prepareFineTune, tailTrainer, unfreezeLastBlocks, weightSnapshot, type FineTuneSetup } from '../src/train/finetune.js';
import { ensureWasmGradients } from '../src/train/wasm-grads.js';
import { createLogger } from '../src/util/log.js';
import { calibrateBatchNorms } from '../test/helpers/backbones.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';

const TARGET = 3;
const PARITY = 1e-4;
const CLASSES = 8;

interface Config {
  id: 'mobilenet_v2' | 'vgg16';
  imageSize: number;
  alpha?: number;
  blocks: number;
  images: number;
  batch: number;
}

// The cases: MobileNetV2 (alpha 1.0) at 96 px with --fine-tune 3, VGG16 at 224 px with --fine-tune 1; Flatten head.
const CONFIGS: Config[] = [
  { id: 'mobilenet_v2', imageSize: 96, alpha: 1.0, blocks: 3, images: 128, batch: 32 },
  { id: 'vgg16', imageSize: 224, blocks: 1, images: 24, batch: 8 },
];

/** Today's loop: decode a batch, the whole model forward and backward in TF.js (stock wasm kernels), Adam. */
async function oldEpoch(model: tf.LayersModel, samples: Sample[], c: Config, units: string[][]): Promise<number> {
  ensureWasmGradients({ fast: false });
  const spec = imageInputSpec(c.imageSize, BACKBONES[c.id]!.preprocessing);
  const unfrozen = unfreezeLastBlocks(model, c.blocks, units);
  const trainer = tailTrainer(model, model, [c.imageSize, c.imageSize, 3], CLASSES, { fusedAdam: false });
  const saved = weightSnapshot(model);
  try {
    const t0 = performance.now();
    let n = 0;
    for await (const b of imageBatches(samples, { spec, batchSize: c.batch })) {
      trainer.step(b.x, b.labels, b.count, 1e-4);
      n += b.count;
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    trainer.dispose();
    unfrozen.restore();
    saved.restore();
    saved.dispose();
  }
}

/** mlctl's fine-tune epoch (train/finetune.ts as `mlctl train --fine-tune` runs it) on a prepared setup. */
async function newEpoch(model: tf.LayersModel, setup: FineTuneSetup, c: Config, units: string[][]): Promise<number> {
  ensureWasmGradients({ fast: true });
  const saved = weightSnapshot(model);
  try {
    const r = await fineTune(model, setup, { blocks: c.blocks, units, epochs: 1, batchSize: c.batch, lr: 1e-4, seed: 1, classes: CLASSES, logger: createLogger({ level: 'warn' }) });
    return setup.trainRows(1).count / r.history[0]!.seconds;
  } finally {
    saved.restore();
    saved.dispose();
  }
}

/** 5 steps of each path from the same weights on the same batches (constant lr, no shuffle): the losses. */
async function parity(model: tf.LayersModel, samples: Sample[], setup: FineTuneSetup, c: Config, units: string[][]): Promise<{ old: number[]; new: number[]; maxDiff: number }> {
  const spec = imageInputSpec(c.imageSize, BACKBONES[c.id]!.preprocessing);
  const n = Math.min(c.batch, 8);
  const steps = 5;
  const order = Array.from({ length: steps * n }, (_, i) => i % samples.length);
  const saved = weightSnapshot(model);
  const run = async (fast: boolean) => {
    ensureWasmGradients({ fast });
    const unfrozen = unfreezeLastBlocks(model, c.blocks, units);
    const trainer = fast ? tailTrainer(model, setup.split.tail, setup.split.cutShape, CLASSES) : tailTrainer(model, model, [c.imageSize, c.imageSize, 3], CLASSES, { fusedAdam: false });
    const losses: number[] = [];
    try {
      const rows = setup.trainRows(1);
      for (let s = 0; s < steps; s++) {
        const idx = order.slice(s * n, (s + 1) * n);
        const labels = Int32Array.from(idx, (i) => samples[i]!.label);
        let x: Float32Array;
        if (fast) x = await rows.read(idx, 0, n, new Float32Array(n * rows.dim));
        else {
          x = new Float32Array(0);
          for await (const b of imageBatches(idx.map((i) => samples[i]!), { spec, batchSize: n })) x = b.x.slice(0, n * c.imageSize * c.imageSize * 3);
        }
        losses.push(trainer.step(x, labels, n, 1e-5).loss);
      }
      return losses;
    } finally {
      trainer.dispose();
      unfrozen.restore();
      saved.restore();
    }
  };
  const before = await run(false);
  const after = await run(true);
  saved.dispose();
  return { old: before, new: after, maxDiff: Math.max(...before.map((l, i) => Math.abs(l - after[i]!))) };
}

async function benchConfig(c: Config, rounds: number, dir: string) {
  const def = BACKBONES[c.id]!;
  const opts = { imageSize: c.imageSize, seed: 1, ...(c.alpha !== undefined ? { alpha: c.alpha } : {}) };
  const units = def.blocks(opts);
  const data = path.join(dir, `${c.id}-${c.imageSize}`);
  await generateSynthDataset({ out: data, classes: CLASSES, perClass: Math.ceil(c.images / CLASSES), size: c.imageSize, seed: 2 });
  // Sorted by label, the rows of a synthetic set are one class per batch; shuffle once (fixed) so batches mix.
  const all = (await scanImageFolder(data)).samples;
  const samples = Array.from({ length: c.images }, (_, i) => all[(i * 7) % all.length]!);
  const model = buildFullModel(def.build(opts), { pooling: 'flatten', units: 1024, dropout: 0, classes: CLASSES });
  // Keras builds the head's Dense layers unseeded: seeded here, so every run starts from the same model.
  for (const [name, seed] of [['fc1', 11], ['predictions', 12]] as const) {
    const [k, b] = model.getLayer(name).getWeights();
    const w = [tf.initializers.glorotUniform({ seed }).apply(k!.shape) as tf.Tensor, tf.zerosLike(b!)];
    model.getLayer(name).setWeights(w);
    tf.dispose(w);
  }
  const spec = imageInputSpec(c.imageSize, def.preprocessing);
  // BatchNorm statistics from a batch of the images, so the random network behaves like a trained one.
  for await (const b of imageBatches(samples.slice(0, 8), { spec, batchSize: 8 })) {
    const calib = tf.tensor4d(b.x, [b.count, c.imageSize, c.imageSize, 3]);
    calibrateBatchNorms(model, calib);
    calib.dispose();
  }
  const logger = createLogger({ level: 'warn' });
  const frozen = { engine: 'onnx' as const, baseIdentity: `bench-finetune-${c.id}-${c.imageSize}`, useStore: false, cacheRoot: path.join(dir, 'cache') };
  const t0 = performance.now();
  const stored = await prepareFineTune(model, samples, [], { blocks: c.blocks, units, spec, augment: [], seed: 1, frozen, logger });
  const extractImgPerSec = samples.length / ((performance.now() - t0) / 1000);
  const augmented = await prepareFineTune(model, samples, [], { blocks: c.blocks, units, spec, augment: ['flip'], seed: 1, frozen, logger });
  try {
    const old: number[] = [];
    const cached: number[] = [];
    const live: number[] = [];
    await newEpoch(model, stored, c, units); // warm-up: first-run allocations and kernel setup of both paths
    for (let r = 0; r < rounds; r++) {
      old.push(await oldEpoch(model, samples, c, units));
      cached.push(await newEpoch(model, stored, c, units));
      live.push(await newEpoch(model, augmented, c, units));
    }
    const p = await parity(model, samples, stored, c, units);
    const best = (xs: number[]) => Math.max(...xs);
    return { config: c, cut: stored.split.cutLayer, oldImgPerSec: best(old), storedImgPerSec: best(cached), augmentedImgPerSec: best(live), extractImgPerSec, all: { old, cached, live }, parity: p };
  } finally {
    await stored.dispose();
    await augmented.dispose();
    model.dispose();
  }
}

export async function main(args: string[]): Promise<void> {
  await selectBackend('wasm');
  const rounds = Number(arg(args, '--rounds', '2'));
  const only = arg(args, '--only', 'all');
  const f = (v: number, d = 1) => v.toFixed(d);
  const { dir, cleanup } = await tempDir('mlctl-bench-finetune-');
  const results: Array<Awaited<ReturnType<typeof benchConfig>>> = [];
  try {
    for (const base of CONFIGS.filter((c) => only === 'all' || c.id === only)) {
      const c = { ...base, images: Number(arg(args, '--images', String(base.images))), batch: Number(arg(args, '--batch', String(base.batch))) };
      console.log(`${c.id} ${c.imageSize} px, --fine-tune ${c.blocks}, Flatten head, ${c.images} images, batch ${c.batch}: old and new epochs interleaved, ${rounds} rounds…`);
      const r = await benchConfig(c, rounds, dir);
      results.push(r);
      const speed = r.storedImgPerSec / r.oldImgPerSec;
      const speedAug = r.augmentedImgPerSec / r.oldImgPerSec;
      console.log(`  before: whole model in TF.js, stock wasm kernels        ${f(r.oldImgPerSec)} img/s`);
      console.log(`  mlctl: frozen part (to ${r.cut}) stored, tail in TF.js   ${f(r.storedImgPerSec)} img/s = ${f(speed)}x (target ≥ ${TARGET}x) ${speed >= TARGET ? 'PASS' : 'FAIL'}`);
      console.log(`  mlctl with --augment (frozen part in ORT every batch)   ${f(r.augmentedImgPerSec)} img/s = ${f(speedAug)}x`);
      console.log(`  one-time extraction of the frozen part (ORT)            ${f(r.extractImgPerSec)} img/s`);
      console.log(`  loss parity, 5 steps: max |Δloss| ${r.parity.maxDiff.toExponential(2)} (target ≤ ${PARITY}) ${r.parity.maxDiff <= PARITY ? 'PASS' : 'FAIL'}  old ${r.parity.old.map((l) => l.toFixed(5)).join(' ')} / new ${r.parity.new.map((l) => l.toFixed(5)).join(' ')}`);
    }
  } finally {
    await cleanup();
  }
  console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores (shared machine: compare the ratios, measured interleaved)`);
  await writeBenchResult('finetune', { results, loadavg: os.loadavg() });
}

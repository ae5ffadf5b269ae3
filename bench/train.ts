// `npm run bench -- train`: (1) feature-extraction img/s of mlctl's pipeline (decode + preprocess + store write,
// streamed) vs the raw engine on pre-decoded inputs, same VGG16 base; (2) one head epoch over 1,000 cached 7x7x512
// features at batch 32: mlctl's ONNX Runtime trainer vs its TF.js (wasm) trainer, interleaved, compared per epoch and
// per one-epoch call with each trainer's start-up included (--naive adds tf.layers fit); (3) --only cli: a real
// `mlctl train --json` on N images whose features are already stored, checkpoints on: the head phase per epoch per
// 1,000 images, then the same command with --engine tfjs for the ratio (--no-tfjs skips); (4) with --memory, peak RSS of a whole `mlctl train` (224 px, Flatten
// head) on N and 8N images whose features are already stored: bounded memory means the ratio stays ≤ 1.2.
// Options: --size 224 --images 48 --features 1000 --engine auto|onnx|tfjs --only all|features|head|cli --rounds 2
// --naive --memory [--n 2000] (cli: --n 1000 --epochs 5 --no-tfjs).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File } from '../src/artifacts/hash.js';
import { openFeatureStore } from '../src/features/store.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { imageToInput } from '../src/data/preprocess.js';
import { memoryRows, type FeatureRows } from '../src/features/rows.js';
import { openFeatureSession, type FeatureSession } from '../src/features/session.js';
import { vgg16 } from '../src/models/backbones/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';
import type { EngineChoice } from '../src/runtime/engine.js';
import { disposeHead, trainHead } from '../src/heads/head.js';
import { createLogger } from '../src/util/log.js';
import { createRng } from '../src/util/random.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';
import { runFloat } from '../src/runtime/float.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Issue 30.3: the head phase through the CLI per epoch per 1,000 images, and its speed over the TF.js trainer's. */
const CLI_TARGETS = { perEpochPer1000: 2.5, vsTfjs: 4 } as const;

async function featureBench(size: number, images: number, engineChoice: EngineChoice, rounds: number) {
  const logger = createLogger({ level: 'warn' });
  const { dir, cleanup } = await tempDir('mlctl-bench-train-');
  const base = { backbone: vgg16, options: { imageSize: size }, weights: 'none', seed: 1 };
  const sessions: FeatureSession[] = [];
  try {
    await generateSynthDataset({ out: path.join(dir, 'data'), classes: 4, perClass: Math.ceil(images / 4), size, seed: 1, format: 'jpg' });
    const samples = (await scanImageFolder(path.join(dir, 'data'))).samples.slice(0, images);
    // One session per round, each with a fresh store: every round computes every image.
    for (let round = 0; round <= rounds; round++) sessions.push(await openFeatureSession({ base, engine: engineChoice, cacheRoot: path.join(dir, `cache-${round}`), logger }));
    const engine = sessions[0]!.engine;
    const spec = sessions[0]!.spec;
    const per = size * size * 3;
    const batch = 16;
    // Warm-up (first-run allocations, ONNX session start) outside both timings.
    for (const s of sessions) await s.run(new Float32Array(batch * per), batch);
    // Raw engine: inputs decoded beforehand, only engine.run timed.
    const inputs = new Float32Array(images * per);
    for (let i = 0; i < images; i++) await imageToInput(samples[i]!.path, spec, inputs, i * per);
    const raw = async () => {
      const t = performance.now();
      for (let i = 0; i < images; i += batch) {
        const n = Math.min(batch, images - i);
        await runFloat(engine, inputs.subarray(i * per, (i + n) * per), n);
      }
      return (performance.now() - t) / 1000;
    };
    // mlctl: the feature session from files (hashing, streamed decode, engine, store write).
    let computed = 0;
    const pipeline = async (round: number) => {
      const t = performance.now();
      const r = await sessions[round + 1]!.extract(samples, { batchSize: batch });
      computed = r.stats.computed;
      return (performance.now() - t) / 1000;
    };
    // Interleaved rounds, best of each: the machine is shared, so load swings between measurements.
    const rawTimes: number[] = [];
    const pipeTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      rawTimes.push(await raw());
      pipeTimes.push(await pipeline(round));
    }
    const rawSeconds = Math.min(...rawTimes);
    const pipeSeconds = Math.min(...pipeTimes);
    // And a rerun served from the store.
    const t = performance.now();
    const again = await sessions[1]!.extract(samples, { batchSize: batch });
    const cachedSeconds = (performance.now() - t) / 1000;
    if (again.stats.cached !== computed) throw new Error('the feature store did not serve the rerun');
    return { engine: engine.description, size, images, rounds, rawSeconds: rawTimes, pipelineSeconds: pipeTimes, rawImgPerSec: images / rawSeconds, pipelineImgPerSec: images / pipeSeconds, cachedImgPerSec: images / cachedSeconds, ratio: rawSeconds / pipeSeconds };
  } finally {
    for (const s of sessions) await s.dispose();
    await cleanup();
  }
}

interface EpochRun {
  /** Wall seconds of the epoch itself (as the trainer reports it) and of everything around it (start-up, shutdown). */
  epochSeconds: number;
  overheadSeconds: number;
  /** Process CPU seconds (every thread) of the whole call, and of the epoch's steps alone (batches 2..N, scaled to N). */
  cpuSeconds: number;
  epochCpuSeconds: number;
  engine: string;
}

/** One head epoch of mlctl's trainer on `engine` over in-memory rows, with wall and CPU time. */
async function headEpoch(rows: FeatureRows, engine: 'onnx' | 'tfjs'): Promise<EpochRun> {
  const cpu = () => {
    const r = process.resourceUsage();
    return (r.userCPUTime + r.systemCPUTime) / 1e6;
  };
  const [t0, c0] = [performance.now(), cpu()];
  let [first, last, batches] = [0, 0, 0];
  const onBatch = (b: number, n: number) => {
    if (b === 1) first = cpu();
    if (b === n) [last, batches] = [cpu(), n];
  };
  const r = await trainHead(rows, undefined, { spec: { pooling: 'flatten', units: 1024, dropout: 0, classes: 5 }, epochs: 1, batchSize: 32, lr: 1e-3, seed: 1, engine, onBatch });
  const [total, cpuSeconds] = [(performance.now() - t0) / 1000, cpu() - c0];
  disposeHead(r.weights);
  const epochSeconds = r.history[0]!.seconds;
  return { epochSeconds, overheadSeconds: total - epochSeconds, cpuSeconds, epochCpuSeconds: ((last - first) * batches) / (batches - 1), engine: r.engine ?? engine };
}

/** 1,000 Flatten rows (7x7x512, half zeros like ReLU features) → Dense(1024) → Dense(5), batch 32: ONNX vs TF.js, interleaved. */
async function headBench(count: number, rounds: number, naive: boolean) {
  await selectBackend('wasm');
  const [h, w, c] = [7, 7, 512];
  const dim = h * w * c;
  const rng = createRng(3);
  const x = new Float32Array(count * dim);
  for (let i = 0; i < x.length; i++) x[i] = rng() < 0.5 ? 0 : rng();
  const labels = Int32Array.from({ length: count }, (_, i) => i % 5);
  const rows = memoryRows({ x, labels, count, dim, paths: [] });
  const onnx: EpochRun[] = [];
  const tfjs: EpochRun[] = [];
  // Interleaved rounds, best of each: the machine is shared, so load swings between measurements.
  for (let round = 0; round < rounds; round++) {
    onnx.push(await headEpoch(rows, 'onnx'));
    tfjs.push(await headEpoch(rows, 'tfjs'));
  }
  const best = (runs: EpochRun[]) => runs.reduce((a, b) => (b.epochSeconds < a.epochSeconds ? b : a));
  let naiveEpochSeconds: number | undefined;
  if (naive) {
    // The Keras-equivalent tf.layers model and model.fit (autodiff → matMul with transposeA on wasm).
    const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [h, w, c] }), tf.layers.dense({ units: 1024, activation: 'relu' }), tf.layers.dense({ units: 5, activation: 'softmax' })] });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const xs = tf.tensor4d(x, [count, h, w, c]);
    const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 5);
    const t = performance.now();
    await model.fit(xs, ys, { epochs: 1, batchSize: 32, shuffle: true, verbose: 0 });
    naiveEpochSeconds = (performance.now() - t) / 1000;
    tf.dispose([xs, ys]);
    model.dispose();
  }
  const call = (r: EpochRun) => r.epochSeconds + r.overheadSeconds;
  const bestCall = (runs: EpochRun[]) => Math.min(...runs.map(call));
  return {
    features: count,
    shape: [h, w, c],
    batchSize: 32,
    rounds,
    onnx: best(onnx),
    tfjs: best(tfjs),
    all: { onnx, tfjs },
    naiveEpochSeconds,
    /** Epoch alone (each trainer's start-up and shutdown excluded), best round of each. */
    speedup: best(tfjs).epochSeconds / best(onnx).epochSeconds,
    /** A whole one-epoch trainHead call, start-up and shutdown included, best round of each. */
    speedupWithStartup: bestCall(tfjs) / bestCall(onnx),
    callSeconds: { onnx: bestCall(onnx), tfjs: bestCall(tfjs) },
  };
}

/** N small distinct JPEGs in 5 class folders (decoded to 224 by training; content differs so each has its own row). */
async function tinyJpegs(dir: string, n: number): Promise<void> {
  const { default: sharp } = await import('sharp');
  const rng = createRng(11);
  for (let c = 0; c < 5; c++) await fs.mkdir(path.join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(16 * 16 * 3);
    for (let k = 0; k < px.length; k++) px[k] = Math.floor(rng() * 256);
    await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(dir, `class${i % 5}`, `${i}.jpg`));
  }
}

/** Fill the feature store of the VGG16 224 base (weights none, seed 1) with random rows for every image, as if extracted. */
async function prefillStore(data: string, cacheRoot: string): Promise<string> {
  const logger = createLogger({ level: 'warn' });
  const session = await openFeatureSession({ base: { backbone: vgg16, options: { imageSize: 224 }, weights: 'none', seed: 1 }, engine: 'onnx', cacheRoot, logger });
  try {
    const dim = session.featureShape.reduce((a, b) => a * b, 1);
    const store = await openFeatureStore(session.storeDir!, dim);
    const writer = await store.writer();
    const rng = createRng(5);
    const row = new Float32Array(dim);
    for (const s of (await scanImageFolder(data)).samples) {
      for (let i = 0; i < dim; i++) row[i] = rng() < 0.6 ? 0 : rng() * 4;
      await writer.append(await sha256File(s.path), row);
    }
    await writer.close();
    return session.identity;
  } finally {
    await session.dispose();
  }
}

/** Peak RSS (KiB) of `mlctl train` in a child process on `data`, and its exit code. */
function trainPeakRss(data: string, cacheRoot: string, artifacts: string): { kb: number; seconds: number; code: number | null } {
  const t = performance.now();
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, '_mlctl.ts'), 'train', '--data', data, '--name', 'mem', '--image-size', '224', '--weights', 'none', '--seed', '1', '--epochs', '1', '--head', 'flatten', '--validation-split', '0.1', '--engine', 'onnx', '--quiet'], {
    env: { ...process.env, MLCTL_CACHE: cacheRoot, MLCTL_ARTIFACTS: artifacts, MLCTL_BACKEND: 'wasm' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const m = /mlctl-peak-rss-kb (\d+)/.exec(child.stderr);
  if (child.status !== 0 || !m) throw new Error(`mlctl train failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
  return { kb: Number(m[1]), seconds: (performance.now() - t) / 1000, code: child.status };
}

/** N images whose VGG16 224 features are already in a feature store: what cliRun trains on. */
async function cliData(n: number) {
  const { dir, cleanup } = await tempDir('mlctl-bench-cli-');
  const data = path.join(dir, 'data');
  const cacheRoot = path.join(dir, 'cache');
  console.log(`  ${n} images: generating, filling the feature store…`);
  await tinyJpegs(data, n);
  await prefillStore(data, cacheRoot);
  return { dir, data, cacheRoot, n, cleanup };
}

/** `mlctl train --json` (VGG16 224, Flatten head, checkpoints on) on stored features: head timings. */
async function cliRun(d: Awaited<ReturnType<typeof cliData>>, epochs: number, engine: string) {
  console.log(`  mlctl train --epochs ${epochs} --engine ${engine} --json …`);
  const t = performance.now();
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, '_mlctl.ts'), 'train', '--data', d.data, '--name', `cli-${engine}`, '--image-size', '224', '--weights', 'none', '--seed', '1', '--epochs', String(epochs), '--head', 'flatten', '--validation-split', '0.1', '--engine', engine, '--json'], {
    env: { ...process.env, MLCTL_CACHE: d.cacheRoot, MLCTL_ARTIFACTS: path.join(d.dir, `artifacts-${engine}`), MLCTL_BACKEND: 'wasm' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wall = (performance.now() - t) / 1000;
  if (child.status !== 0) throw new Error(`mlctl train failed (exit ${child.status}): ${child.stdout.slice(-1000)} ${child.stderr.slice(-2000)}`);
  const parsed = JSON.parse(child.stdout) as { result?: unknown };
  const doc = (parsed.result ?? parsed) as { timings: Record<string, number>; features: { train?: { images: number } }; engine?: string };
  const trainImages = doc.features.train?.images ?? d.n;
  const headSeconds = doc.timings.headSeconds!;
  const perEpoch = headSeconds / epochs;
  const cpu = Number(/mlctl-cpu-ms (\d+)/.exec(child.stderr)?.[1] ?? NaN) / 1000;
  // The epoch lines on stderr carry each epoch's own seconds (batches only: validation and checkpoints come after).
  const epochSeconds = [...child.stderr.matchAll(/epoch \d+\/\d+ .*\(([\d.]+)s\)/g)].map((m) => Number(m[1]));
  return { images: d.n, trainImages, epochs, engine, headSeconds, perEpochSeconds: perEpoch, perEpochPer1000: (perEpoch * 1000) / trainImages, epochSeconds, timings: doc.timings, wallSeconds: wall, processCpuSeconds: cpu };
}

async function memoryBench(n: number) {
  const { dir, cleanup } = await tempDir('mlctl-bench-memory-');
  try {
    const rows: Array<{ images: number; peakRssMb: number; seconds: number }> = [];
    for (const images of [n, 8 * n]) {
      const data = path.join(dir, `data-${images}`);
      const cacheRoot = path.join(dir, `cache-${images}`);
      console.log(`  ${images} images: generating, filling the feature store, training one epoch…`);
      await tinyJpegs(data, images);
      await prefillStore(data, cacheRoot);
      const r = trainPeakRss(data, cacheRoot, path.join(dir, `artifacts-${images}`));
      rows.push({ images, peakRssMb: r.kb / 1024, seconds: r.seconds });
      await fs.rm(cacheRoot, { recursive: true, force: true });
    }
    return { rows, ratio: rows[1]!.peakRssMb / rows[0]!.peakRssMb };
  } finally {
    await cleanup();
  }
}

export async function main(args: string[]): Promise<void> {
  if (args.includes('--memory')) {
    const n = Number(arg(args, '--n', '2000'));
    console.log(`peak RSS of mlctl train (VGG16 224, Flatten head → ${7 * 7 * 512} features per image, 1 epoch, features already stored):`);
    const mem = await memoryBench(n);
    for (const r of mem.rows) console.log(`  ${String(r.images).padStart(6)} images   peak RSS ${r.peakRssMb.toFixed(0)} MB   (${r.seconds.toFixed(0)} s)`);
    console.log(`  ratio 8N / N = ${mem.ratio.toFixed(2)}   (target ≤ 1.2; in memory the features alone would be ${((8 * n * 7 * 7 * 512 * 4) / 1e9).toFixed(1)} GB at 8N)`);
    console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
    await writeBenchResult('train-memory', { ...mem, loadavg: os.loadavg() });
    return;
  }
  const size = Number(arg(args, '--size', '224'));
  const images = Number(arg(args, '--images', '48'));
  const features = Number(arg(args, '--features', '1000'));
  const engine = arg(args, '--engine', 'auto') as EngineChoice;
  const only = arg(args, '--only', 'all');
  const f = (n: number, d = 2) => n.toFixed(d);
  if (only === 'cli') {
    const n = Number(arg(args, '--n', '1000'));
    const epochs = Number(arg(args, '--epochs', '5'));
    const withTfjs = !args.includes('--no-tfjs');
    console.log(`mlctl train end to end (VGG16 224, Flatten head, features already stored, checkpoint every epoch):`);
    const d = await cliData(n);
    try {
      const cli = await cliRun(d, epochs, engine === 'auto' ? 'onnx' : engine);
      const line = (r: typeof cli) => `${r.engine}: head phase ${f(r.headSeconds)} s for ${r.epochs} epochs of ${r.trainImages} train images (trainer start-up, validation and checkpoints included; epochs alone ${r.epochSeconds.map((e) => f(e, 1)).join(', ')} s) = ${f(r.perEpochPer1000)} s per epoch per 1,000 images`;
      console.log(`  ${line(cli)}   (target ≤ ${CLI_TARGETS.perEpochPer1000} s: ${cli.perEpochPer1000 <= CLI_TARGETS.perEpochPer1000 ? 'met' : 'NOT met'})`);
      console.log(`  outside the epochs' batches: ${f(cli.headSeconds - cli.epochSeconds.reduce((a, b) => a + b, 0))} s in all; whole command ${f(cli.wallSeconds, 1)} s wall, ${f(cli.processCpuSeconds, 1)} s CPU; timings ${JSON.stringify(cli.timings)}`);
      let tfjs: typeof cli | undefined;
      if (withTfjs) {
        // The same command on the TF.js trainer, same data and epochs, right after: the ratio of the same run.
        tfjs = await cliRun(d, epochs, 'tfjs');
        const ratio = tfjs.perEpochPer1000 / cli.perEpochPer1000;
        console.log(`  ${line(tfjs)}`);
        console.log(`  ${cli.engine} / tfjs = ${f(ratio, 1)}x faster per epoch through the CLI   (target ≥ ${CLI_TARGETS.vsTfjs}x: ${ratio >= CLI_TARGETS.vsTfjs ? 'met' : 'NOT met'})`);
      }
      console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
      await writeBenchResult('train-cli', { ...cli, tfjs, targets: CLI_TARGETS, loadavg: os.loadavg() });
    } finally {
      await d.cleanup();
    }
    return;
  }
  await selectBackend('wasm');
  const out: Record<string, unknown> = {};
  if (only !== 'head') {
    console.log(`feature extraction: VGG16 ${size}x${size}, ${images} images…`);
    const fx = await featureBench(size, images, engine, Number(arg(args, '--rounds', '2')));
    out.featureExtraction = fx;
    console.log(`feature extraction (${fx.engine}, ${fx.size}px, ${fx.images} images, best of ${fx.rounds} interleaved rounds)`);
    console.log(`  raw engine (pre-decoded)      ${f(fx.rawImgPerSec)} img/s`);
    console.log(`  mlctl pipeline (from files)   ${f(fx.pipelineImgPerSec)} img/s   = ${f(fx.ratio * 100, 0)}% of raw (target ≥ 80%)`);
    console.log(`  mlctl rerun (feature cache)   ${f(fx.cachedImgPerSec, 0)} img/s`);
  }
  if (only !== 'features') {
    const rounds = Number(arg(args, '--rounds', '2'));
    console.log(`head epoch: ${features} features of 7x7x512, batch 32, ONNX Runtime vs TF.js (wasm), ${rounds} interleaved rounds…`);
    const head = await headBench(features, rounds, args.includes('--naive'));
    out.headEpoch = head;
    const line = (r: EpochRun) => `${f(r.epochSeconds)} s per epoch (+${f(r.overheadSeconds, 1)} s start/stop); the epoch's steps took ${f(r.epochCpuSeconds)} CPU-s (whole call ${f(r.cpuSeconds, 1)})`;
    console.log(`head epoch (${head.features} x 7x7x512 → Dense(1024) → Dense(5), batch 32; best of ${rounds})`);
    console.log(`  ${head.onnx.engine}: ${line(head.onnx)}   (target ≤ 2 s)`);
    console.log(`  ${head.tfjs.engine}: ${line(head.tfjs)}`);
    console.log(`  ONNX / TF.js per epoch, trainer start-up excluded = ${f(head.speedup, 1)}x faster in wall time (target ≥ 6x; ${head.speedup >= 6 ? 'met' : 'NOT met'}); CPU-s per epoch ${f(head.tfjs.epochCpuSeconds / head.onnx.epochCpuSeconds, 1)}x less, over ${os.availableParallelism()} cores instead of 1`);
    console.log(`  ONNX / TF.js for a one-epoch call, start-up included = ${f(head.speedupWithStartup, 1)}x (${f(head.callSeconds.onnx)} s vs ${f(head.callSeconds.tfjs)} s; more epochs move it toward the per-epoch figure)`);
    if (head.naiveEpochSeconds !== undefined) console.log(`  naive tf.layers fit: ${f(head.naiveEpochSeconds, 1)} s`);
  }
  console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
  await writeBenchResult('train', { ...out, loadavg: os.loadavg() });
}

// Backbones side by side at 224 (random weights; speed does not depend on them): base parameters, package file sizes,
// raw ONNX Runtime img/s (fp32 and int8 QDQ, batch 8, preprocessed tensors), `mlctl serve` img/s at concurrency 8 on
// a 1024x768 JPEG, train's feature extraction img/s (feature session: decode + base), and one head epoch (Flatten
// or GAP → Dense(1024) → Dense(5), batch 32) over 1,000 cached feature rows. Target: MobileNetV2 serves ≥ 10x VGG16's img/s.
// `npm run bench -- backbones [--size 224] [--seconds 6] [--only vgg16,mobilenet_v2] [--threads N]`
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { imageInputSpec, imageToInput } from '../src/data/preprocess.js';
import { memoryRows } from '../src/features/rows.js';
import { openFeatureSession } from '../src/features/session.js';
import type { BackboneDef, BackboneOptions } from '../src/models/backbones/types.js';
import { BACKBONES } from '../src/models/backbones/index.js';
import { buildFullModel, type HeadSpec } from '../src/models/head.js';
import { convertLayersModel } from '../src/onnx/index.js';
import { quantizeOnnxQdq } from '../src/optimize/onnx-qdq.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createRepository } from '../src/serve/repository.js';
import { startServer } from '../src/serve/start.js';
import { disposeHead, trainHead } from '../src/heads/head.js';
import { createLogger } from '../src/util/log.js';
import { createRng } from '../src/util/random.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';

const LABELS = ['cat', 'dog', 'horse', 'ship', 'truck'];
/** The head each backbone is used with: VGG16's Keras-example Flatten, GAP for the 1280/2048-channel backbones (Keras's pooling='avg'). */
function headFor(def: BackboneDef): HeadSpec {
  return { pooling: def.id === 'vgg16' ? 'flatten' : 'gap', units: 1024, dropout: 0, classes: LABELS.length };
}

interface Row {
  backbone: string;
  head: string;
  preprocessing: string;
  params: number;
  tfjsMB: number;
  onnxMB: number;
  int8MB: number;
  ortFp32: number;
  ortInt8: number;
  serve8: number;
  extract: number;
  headEpochSeconds: number;
}

/** Images per second of `run` (one call = `images` images) over about `seconds`, after one warm-up call. */
async function rate(seconds: number, images: number, run: () => Promise<unknown>): Promise<number> {
  await run();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 || n === 0) {
    await run();
    n += images;
  }
  return n / ((performance.now() - t0) / 1000);
}

function packageName(def: BackboneDef): string {
  return `bench-${def.id.replace(/_/g, '-')}`;
}

async function packageFor(root: string, def: BackboneDef, opts: BackboneOptions, model: tf.LayersModel, onnx: Uint8Array): Promise<LoadedPackage> {
  return savePackage({
    root,
    name: packageName(def),
    draft: {
      task: 'image-classification',
      labels: LABELS,
      input: { ...imageInputSpec(opts.imageSize, def.preprocessing), name: def.inputName },
      output: { name: 'predictions', kind: 'probabilities', size: LABELS.length },
      architecture: { type: `${def.id}-bench`, backbone: def.id, params: model.countParams() },
      formats: { tfjs: 'model.json', onnx: 'model.onnx' },
      lineage: [{ op: 'bench-fixture', at: new Date().toISOString(), tool: 'bench/backbones.ts' }],
    },
    write: async (dir) => {
      await writeTfjsModel(dir, model);
      await fs.writeFile(path.join(dir, 'model.onnx'), onnx);
    },
  });
}

async function dirBytes(dir: string, match: (f: string) => boolean): Promise<number> {
  let n = 0;
  for (const f of await fs.readdir(dir)) if (match(f)) n += (await fs.stat(path.join(dir, f))).size;
  return n;
}

/** Concurrency-8 POST /predict load on a real server for `seconds`; returns img/s. */
async function serveRate(root: string, name: string, jpeg: Buffer, seconds: number): Promise<number> {
  const repo = createRepository({ engine: 'onnx', maxBatch: 8, maxDelayMs: 5, maxQueue: 64 });
  await repo.load(root);
  const server = await startServer(repo, { port: 0, logger: false, bodyLimit: 4 * 1024 * 1024, drainTimeoutMs: 5000 });
  try {
    const post = async () => {
      const res = await fetch(`${server.url}/predict?model=${name}`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
      if (res.status !== 200) throw new Error(`serve answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    };
    await Promise.all(Array.from({ length: 8 }, post));
    let done = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) {
          await post();
          done++;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1000);
  } finally {
    await server.shutdown('bench done');
  }
}

async function measure(def: BackboneDef, opts: BackboneOptions, ctx: { dir: string; jpeg: Buffer; data: string; seconds: number; threads: number }): Promise<Row> {
  const logger = createLogger({ level: 'warn' });
  const base = def.build({ ...opts, seed: 1 });
  const model = buildFullModel(base, headFor(def));
  const params = base.countParams();
  const onnx = convertLayersModel(model, { inputName: def.inputName, outputName: 'predictions' });
  const spec = { ...imageInputSpec(opts.imageSize, def.preprocessing), name: def.inputName };
  const samples = (await scanImageFolder(ctx.data)).samples;
  const inputs = new Float32Array(8 * opts.imageSize * opts.imageSize * 3);
  for (let i = 0; i < 8; i++) await imageToInput(samples[i]!.path, spec, inputs, i * opts.imageSize * opts.imageSize * 3);
  const int8 = await quantizeOnnxQdq(onnx, { calibration: [{ data: inputs.slice(0, 4 * opts.imageSize * opts.imageSize * 3), batch: 4 }] });
  const root = path.join(ctx.dir, 'models', def.id);
  const pkg = await packageFor(root, def, opts, model, onnx);
  model.dispose();

  const ortRate = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: ctx.threads });
    try {
      const feed = { [session.inputNames[0]!]: new ort.Tensor('float32', inputs, [8, opts.imageSize, opts.imageSize, 3]) };
      return await rate(ctx.seconds, 8, () => session.run(feed));
    } finally {
      await session.release();
    }
  };
  console.log(`  ${def.id}: ONNX Runtime fp32 / int8…`);
  const ortFp32 = await ortRate(onnx);
  const ortInt8 = await ortRate(int8.bytes);
  console.log(`  ${def.id}: serve at concurrency 8…`);
  const serve8 = await serveRate(root, packageName(def), ctx.jpeg, ctx.seconds);

  console.log(`  ${def.id}: feature extraction (train's feature session, onnx)…`);
  const session = await openFeatureSession({ base: { backbone: def, options: opts, weights: 'none', seed: 1 }, engine: 'onnx', useStore: false, cacheRoot: path.join(ctx.dir, 'cache'), logger });
  let extract: number;
  let featureDim: number;
  try {
    await session.extract(samples.slice(0, 8), { batchSize: 8 });
    const r = await session.extract(samples.slice(8), { batchSize: 16 });
    extract = r.stats.imagesPerSecond;
    featureDim = headFor(def).pooling === 'gap' ? session.featureShape.at(-1)! : session.featureShape.reduce((a, b) => a * b, 1);
  } finally {
    await session.dispose();
  }

  console.log(`  ${def.id}: head epoch on 1,000 cached rows of ${featureDim}…`);
  const count = 1000;
  const rng = createRng(5);
  const x = new Float32Array(count * featureDim);
  for (let i = 0; i < x.length; i++) x[i] = rng() < 0.6 ? 0 : rng() * 4;
  const labels = Int32Array.from({ length: count }, (_, i) => i % LABELS.length);
  const t0 = performance.now();
  const head = await trainHead(memoryRows({ x, labels, count, dim: featureDim, paths: [] }), undefined, { spec: headFor(def), epochs: 1, batchSize: 32, lr: 1e-3, seed: 1 });
  const headEpochSeconds = (performance.now() - t0) / 1000;
  disposeHead(head.weights);

  return {
    backbone: def.id,
    head: headFor(def).pooling,
    preprocessing: def.preprocessing,
    params,
    tfjsMB: (await dirBytes(pkg.dir, (f) => f.endsWith('.bin') || f === 'model.json')) / 1e6,
    onnxMB: onnx.byteLength / 1e6,
    int8MB: int8.bytes.byteLength / 1e6,
    ortFp32,
    ortInt8,
    serve8,
    extract,
    headEpochSeconds,
  };
}

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '224'));
  const seconds = Number(arg(args, '--seconds', '6'));
  const threads = Number(arg(args, '--threads', String(Math.max(1, os.availableParallelism()))));
  const only = arg(args, '--only', Object.keys(BACKBONES).join(',')).split(',');
  await selectBackend('wasm');
  const tmp = await tempDir('mlctl-bench-backbones-');
  try {
    const data = path.join(tmp.dir, 'data');
    await generateSynthDataset({ out: data, classes: 5, perClass: 8, size: 256, seed: 3 });
    const big = path.join(tmp.dir, 'big.jpg');
    await sharp(Buffer.alloc(1024 * 768 * 3, 0).map((_, i) => (i * 7919) % 251), { raw: { width: 1024, height: 768, channels: 3 } }).jpeg({ quality: 90 }).toFile(big);
    const jpeg = await fs.readFile(big);
    const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    console.log(`backbones at ${size} px, ${os.availableParallelism()} cores, ORT threads ${threads}, ${seconds} s per rate; load average ${load}`);
    const rows: Row[] = [];
    for (const id of only) {
      const def = BACKBONES[id];
      if (!def) throw new Error(`unknown backbone ${id}`);
      rows.push(await measure(def, { imageSize: size }, { dir: tmp.dir, jpeg, data, seconds, threads }));
    }
    const vgg = rows.find((r) => r.backbone === 'vgg16');
    const f = (v: number, d = 1) => v.toFixed(d).padStart(8);
    console.log(`\nbackbone         head    preproc    params  tfjs MB  onnx MB  int8 MB  ORT fp32  ORT int8  serve c8  extract  head epoch s  serve vs vgg16`);
    for (const r of rows) {
      const ratio = vgg ? `${(r.serve8 / vgg.serve8).toFixed(1)}x` : 'n/a';
      console.log(`${r.backbone.padEnd(16)} ${r.head.padEnd(7)} ${r.preprocessing.padEnd(6)} ${(r.params / 1e6).toFixed(1).padStart(8)}M ${f(r.tfjsMB)} ${f(r.onnxMB)} ${f(r.int8MB)} ${f(r.ortFp32)}  ${f(r.ortInt8)}  ${f(r.serve8)} ${f(r.extract)} ${f(r.headEpochSeconds, 2)}       ${ratio}`);
    }
    const mobile = rows.find((r) => r.backbone === 'mobilenet_v2');
    if (vgg && mobile) console.log(`\nMobileNetV2 serves ${(mobile.serve8 / vgg.serve8).toFixed(1)}x VGG16's img/s at concurrency 8 (target ≥ 10x)`);
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (img/s are images per second; rates share the machine with whatever else runs)`);
    await writeBenchResult('backbones', { size, seconds, threads, loadAverage: { start: load, end: os.loadavg() }, rows });
  } finally {
    await tmp.cleanup();
  }
}

// Test fixtures shared across suites: temporary dirs, a generated synthetic dataset and a tiny trained-shape
// image-classification package (small conv net, random weights) so tests never need large models.
import * as tf from '@tensorflow/tfjs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Manifest } from '../../src/artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../../src/artifacts/package.js';
import { imageInputSpec } from '../../src/data/preprocess.js';
import { generateSynthDataset } from '../../src/data/synth.js';
import { selectBackend } from '../../src/runtime/backend.js';

export async function tempDir(prefix = 'mlctl-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface MlctlHome {
  dir: string;
  /** `dir`/artifacts, which MLCTL_ARTIFACTS now names. */
  artifacts: string;
  /** `dir`/cache, which MLCTL_CACHE now names. */
  cache: string;
  /** Put the whole environment back as it was before mlctlHome() (whatever the tests set since) and remove `dir`. */
  cleanup: () => Promise<void>;
}

/**
 * A temporary folder for one test file, with MLCTL_ARTIFACTS and MLCTL_CACHE pointed into it so the CLI (in this
 * process or a child that inherits the environment) writes nowhere else. Call in beforeAll, cleanup in afterAll.
 */
export async function mlctlHome(prefix = 'mlctl-test-'): Promise<MlctlHome> {
  const saved = { ...process.env };
  const tmp = await tempDir(prefix);
  const artifacts = path.join(tmp.dir, 'artifacts');
  const cache = path.join(tmp.dir, 'cache');
  process.env.MLCTL_ARTIFACTS = artifacts;
  process.env.MLCTL_CACHE = cache;
  const restoreEnv = () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  };
  return { dir: tmp.dir, artifacts, cache, cleanup: () => (restoreEnv(), tmp.cleanup()) };
}

export async function synthDataset(dir: string, opts: { classes?: number; perClass?: number; size?: number; seed?: number } = {}) {
  return generateSynthDataset({ out: dir, classes: opts.classes ?? 3, perClass: opts.perClass ?? 12, size: opts.size ?? 32, seed: opts.seed ?? 7 });
}

/** A small conv classifier with the input spec mlctl records for image models. */
export function tinyModel(size: number, classes: number, seed = 1): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [size, size, 3], filters: 4, kernelSize: 3, activation: 'relu', padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed }), name: 'conv' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), name: 'predictions' }));
  return model;
}

/**
 * Save any image-classifier model as a real mlctl package under `root` (caffe preprocessing, TF.js format,
 * plus `extraFiles` such as a model.onnx listed in formats). Tests use it for models shaped to what they check.
 */
export async function modelPackage(
  root: string,
  model: tf.LayersModel,
  opts: { name: string; labels: string[]; size?: number; architecture?: Record<string, unknown>; formats?: Manifest['formats']; extraFiles?: Record<string, Uint8Array> },
): Promise<LoadedPackage> {
  const size = opts.size ?? (model.inputs[0]!.shape[1] as number);
  return savePackage({
    root,
    name: opts.name,
    draft: {
      task: 'image-classification',
      labels: opts.labels,
      input: imageInputSpec(size, 'caffe'),
      output: { name: 'predictions', kind: 'probabilities', size: opts.labels.length },
      architecture: opts.architecture ?? { type: 'test-model' },
      formats: opts.formats ?? { tfjs: 'model.json' },
      lineage: [],
    },
    write: async (dir) => {
      await writeTfjsModel(dir, model);
      for (const [file, bytes] of Object.entries(opts.extraFiles ?? {})) await writeFile(path.join(dir, file), bytes);
    },
  });
}

/** Save a tiny random-weight image classifier as a real mlctl package under `root`. */
export async function tinyPackage(root: string, opts: { name?: string; size?: number; labels?: string[]; seed?: number } = {}): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const size = opts.size ?? 32;
  const labels = opts.labels ?? ['checker', 'circle', 'square'];
  const model = tinyModel(size, labels.length, opts.seed ?? 1);
  try {
    return await modelPackage(root, model, { name: opts.name ?? 'tiny', labels, size, architecture: { type: 'test-tiny-cnn' } });
  } finally {
    model.dispose();
  }
}

/** Whether 127.0.0.1:`port` can be listened on right now. */
async function bindable(port: number): Promise<boolean> {
  const srv = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

/** This worker's port block: 1000 ports below the kernel's ephemeral range (32768–60999), one block per vitest fork. */
const PORT_BLOCK = 1000;
const portBase = 12_000 + (Number(process.env.VITEST_POOL_ID ?? 0) % 16) * PORT_BLOCK;
let portCursor = 0;

/**
 * `n` consecutive TCP ports on 127.0.0.1, free now, that no other test process is handed: for servers that cannot bind
 * port 0 and report it (mosquitto, rtsp-server-perl and its RTP ports) and for "nothing listens there" cases. They
 * come from this worker's own block below the ephemeral range, so neither another worker nor any port-0 bind (which
 * the kernel serves from the ephemeral range) can take them meanwhile. Servers mlctl starts bind port 0 instead
 * (see servingOn in helpers/cli.ts).
 */
export async function freePorts(n: number): Promise<number> {
  for (let tries = 0; tries < PORT_BLOCK; tries++) {
    if (portCursor + n > PORT_BLOCK) portCursor = 0;
    const start = portBase + portCursor;
    portCursor += n;
    let all = true;
    for (let i = 0; i < n && all; i++) all = await bindable(start + i);
    if (all) return start;
  }
  throw new Error(`no ${n} free consecutive ports in ${portBase}–${portBase + PORT_BLOCK - 1}`);
}

/** One such port (see freePorts). */
export function freePort(): Promise<number> {
  return freePorts(1);
}

/**
 * A colour classifier (`colours`: blue, green, red; 8x8 input) that is exact in float32 and breaks under uint8
 * weight quantization, saved under `root`, and its dataset (5 PNGs per colour) written to `data`: `mlctl quantize
 * colours --dtype uint8 --data DATA --max-accuracy-drop 0.01` really yields a version its gate rejects. Its signal
 * weights (0.01) sit in the same tensor as one outlier (100, on a hidden unit a -1e6 bias keeps off), so the affine
 * uint8 step (~0.39) rounds the signal to zero and every image lands on class 0.
 */
export async function fragileColours(root: string, data: string): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const SIZE = 8;
  const labels = ['blue', 'green', 'red'];
  const rgb: Record<string, [number, number, number]> = { blue: [0, 0, 255], green: [0, 255, 0], red: [255, 0, 0] };
  for (const label of labels) {
    await mkdir(path.join(data, label), { recursive: true });
    for (let i = 0; i < 5; i++) {
      const [r, g, b] = rgb[label]!;
      const png = await sharp({ create: { width: SIZE, height: SIZE, channels: 3, background: { r: Math.max(0, r - i * 9), g: Math.max(0, g - i * 9), b: Math.max(0, b - i * 9) } } }).png().toBuffer();
      await writeFile(path.join(data, label, `${i}.png`), png);
    }
  }
  const inputs = SIZE * SIZE * 3;
  const hidden = new Float32Array(inputs * 4);
  for (let i = 0; i < inputs; i++) hidden[i * 4 + (i % 3)] = 0.01; // unit c sums channel c (BGR after caffe)
  hidden[3] = 100;
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [SIZE, SIZE, 3], name: 'flatten' }),
      tf.layers.dense({ units: 4, activation: 'relu', name: 'fc1', weights: [tf.tensor2d(hidden, [inputs, 4]), tf.tensor1d([0, 0, 0, -1e6])] }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions', weights: [tf.tensor2d([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], [4, 3]), tf.zeros([3])] }),
    ],
  });
  try {
    return await modelPackage(root, model, { name: 'colours', labels });
  } finally {
    model.dispose();
  }
}

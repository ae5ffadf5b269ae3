// ONNX Runtime engine on real packages: conversion + cache under $MLCTL_CACHE, numerics vs the TF.js engine,
// `auto` choosing ONNX and falling back to tfjs with a warning, packages' own model.onnx, in-memory models.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel, verifyPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { MlctlError } from '../src/errors.js';
import { CONVERTER_VERSION, convertLayersModel } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine, tfjsEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { modelCacheKey, onnxCacheDir, onnxEngineFromModel, openOnnxEngine, ORT_VERSION } from '../src/runtime/onnx-engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { modelPackage, tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
const savedCache = process.env.MLCTL_CACHE;

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-onnx-engine-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  pkg = await tinyPackage(path.join(tmp.dir, 'artifacts'));
});

afterAll(async () => {
  if (savedCache === undefined) delete process.env.MLCTL_CACHE;
  else process.env.MLCTL_CACHE = savedCache;
  await tmp.cleanup();
});

function randomInput(batch: number, shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomUniform([batch, ...shape], -120, 150, 'float32', seed).dataSync() as Float32Array);
}

async function maxDiff(a: InferenceEngine, b: InferenceEngine, batches = [1, 5]): Promise<number> {
  let worst = 0;
  for (const batch of batches) {
    const x = randomInput(batch, a.inputShape, batch);
    const [ya, yb] = [await a.run(x, batch), await b.run(x, batch)];
    expect(ya.length).toBe(batch * a.outputSize);
    expect(yb.length).toBe(ya.length);
    for (let i = 0; i < ya.length; i++) worst = Math.max(worst, Math.abs(ya[i]! - yb[i]!));
  }
  return worst;
}

async function packageWith(model: tf.LayersModel, name: string, withOnnx = false): Promise<LoadedPackage> {
  return modelPackage(path.join(tmp.dir, 'artifacts'), model, {
    name,
    labels: ['a', 'b', 'c'],
    ...(withOnnx
      ? { formats: { tfjs: 'model.json', onnx: 'model.onnx' }, extraFiles: { 'model.onnx': convertLayersModel(model, { inputName: 'input', outputName: 'predictions' }) } }
      : {}),
  });
}

describe('openOnnxEngine', () => {
  it('converts the package once into the cache, matches the TF.js engine, and leaves the package untouched', async () => {
    const before = await fs.readdir(pkg.dir);
    const logger = createMemoryLogger();
    const onnx = await openOnnxEngine(pkg, { logger });
    const tfjs = tfjsEngine(await loadTfjsModel(pkg));
    try {
      expect(onnx.name).toBe('onnx');
      expect(onnx.description).toContain(`onnxruntime-node ${ORT_VERSION}`);
      expect(onnx.description).toMatch(/cpu, \d+ threads?/);
      expect(onnx.inputShape).toEqual([32, 32, 3]);
      expect(onnx.outputSize).toBe(3);
      expect(await maxDiff(onnx, tfjs)).toBeLessThanOrEqual(1e-4);
      expect(logger.lines.some((l) => l.msg.includes('converting'))).toBe(true);
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
    const cached = path.join(onnxCacheDir(), `${pkg.manifestSha256}.onnx`);
    expect(onnxCacheDir()).toBe(path.join(process.env.MLCTL_CACHE!, 'onnx'));
    const stat = await fs.stat(cached);
    expect(stat.size).toBeGreaterThan(1000);
    expect((await fs.readdir(onnxCacheDir())).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(await fs.readdir(pkg.dir)).toEqual(before);
    await verifyPackage(pkg.dir, pkg.manifest);

    // Second open: served from the cache, no conversion.
    const logger2 = createMemoryLogger();
    const again = await openOnnxEngine(await loadPackage(pkg.dir), { logger: logger2 });
    await again.dispose();
    expect(logger2.lines.some((l) => l.msg.includes('converting'))).toBe(false);
    expect((await fs.stat(cached)).mtimeMs).toBe(stat.mtimeMs);
  });

  it('reconverts a cache entry stamped by another converter version', async () => {
    const cached = path.join(onnxCacheDir(), `${pkg.manifestSha256}.onnx`);
    await (await openOnnxEngine(pkg)).dispose();
    expect((await fs.readFile(`${cached}.converter`, 'utf8')).trim()).toBe(CONVERTER_VERSION);
    await fs.writeFile(`${cached}.converter`, '0-old\n');
    const logger = createMemoryLogger();
    await (await openOnnxEngine(pkg, { logger })).dispose();
    expect(logger.lines.some((l) => l.msg.includes('another converter version'))).toBe(true);
    expect((await fs.readFile(`${cached}.converter`, 'utf8')).trim()).toBe(CONVERTER_VERSION);
  });

  it('rebuilds a corrupt cache entry with a warning', async () => {
    const cached = path.join(onnxCacheDir(), `${pkg.manifestSha256}.onnx`);
    await fs.mkdir(path.dirname(cached), { recursive: true });
    await fs.writeFile(cached, 'not an onnx model');
    const logger = createMemoryLogger();
    const engine = await openOnnxEngine(pkg, { logger });
    try {
      expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('does not load'))).toBe(true);
      const y = await engine.run(randomInput(2, [32, 32, 3], 9), 2);
      expect(y.length).toBe(6);
      expect(Math.abs(y[0]! + y[1]! + y[2]! - 1)).toBeLessThan(1e-5); // softmax rows
    } finally {
      await engine.dispose();
    }
    expect((await fs.stat(cached)).size).toBeGreaterThan(1000);
  });

  it("uses the package's own model.onnx when formats.onnx is set", async () => {
    const model = tinyModel(32, 3, 5);
    const own = await packageWith(model, 'own-onnx', true);
    const engine = await openOnnxEngine(own);
    const tfjs = tfjsEngine(model);
    try {
      expect(await maxDiff(engine, tfjs, [3])).toBeLessThanOrEqual(1e-4);
      await expect(fs.stat(path.join(onnxCacheDir(), `${own.manifestSha256}.onnx`))).rejects.toThrow();
    } finally {
      await engine.dispose();
      await tfjs.dispose();
    }
  });

  it('rejects input of the wrong size', async () => {
    const engine = await openOnnxEngine(pkg);
    try {
      await expect(engine.run(new Float32Array(10), 1)).rejects.toThrow(/expected 1 x \[32, 32, 3\]/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('openEngine', () => {
  it("'auto' runs ONNX Runtime for a convertible package", async () => {
    const engine = await openEngine(pkg, { engine: 'auto' });
    try {
      expect(engine.name).toBe('onnx');
    } finally {
      await engine.dispose();
    }
  });

  it("'auto' falls back to tfjs with a warning when conversion fails; 'onnx' fails with the reason", async () => {
    const model = tf.sequential();
    model.add(tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 2, kernelSize: 3, strides: 4, name: 'conv' }));
    model.add(tf.layers.upSampling2d({ size: [2, 2], name: 'upsample' }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 3, activation: 'softmax' }));
    const bad = await packageWith(model, 'unconvertible');
    model.dispose();
    const logger = createMemoryLogger();
    const engine = await openEngine(bad, { engine: 'auto', logger });
    try {
      expect(engine.name).toBe('tfjs');
      expect(logger.lines.find((l) => l.level === 'warn')?.msg).toMatch(/upsample \(UpSampling2D\)/);
    } finally {
      await engine.dispose();
    }
    const err = await openEngine(bad, { engine: 'onnx' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('UNSUPPORTED_LAYER');
  });
});

describe('onnxEngineFromModel', () => {
  it('matches TF.js and caches by weights and topology', async () => {
    const model = tinyModel(32, 4, 11);
    const key1 = modelCacheKey(model);
    const engine = await onnxEngineFromModel(model);
    try {
      expect(engine.inputShape).toEqual([32, 32, 3]);
      expect(engine.outputSize).toBe(4);
      expect(await maxDiff(engine, tfjsEngine(model))).toBeLessThanOrEqual(1e-4);
    } finally {
      await engine.dispose();
    }
    expect((await fs.readdir(onnxCacheDir())).filter((f) => f === `model-${key1}.onnx`)).toHaveLength(1);
    // The caller still owns the model; changing a weight changes the key.
    const [k, b] = model.getLayer('conv').getWeights();
    model.getLayer('conv').setWeights([tf.mul(k!, 2), b!]);
    expect(modelCacheKey(model)).not.toBe(key1);
    const withKey = await onnxEngineFromModel(model, { cacheKey: 'vgg16-notop-sha256:abc', threads: 1 });
    try {
      expect(withKey.description).toMatch(/1 thread\)/);
      expect(await maxDiff(withKey, tfjsEngine(model), [2])).toBeLessThanOrEqual(1e-4);
    } finally {
      await withKey.dispose();
      model.dispose();
    }
  });
});

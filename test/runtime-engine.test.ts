// openEngine on real packages and models: the engine table (classic → onnx → tfjs-thread → tfjs), ownership of
// borrowed models, ONNX numerics vs TF.js, and the rule that only verified bytes run — a package's model.onnx
// against its manifest, a cached conversion against its recorded sha256 and code (rebuilt on mismatch), a named file
// against the sha256 the caller gives; an unwritable cache converts in memory with one warning.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../src/artifacts/cache.js';
import { sha256 } from '../src/artifacts/hash.js';
import { loadPackage, verifyPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { ORT_VERSION } from '../src/runtime/ort.js';
import { MlctlError } from '../src/errors.js';
import { CONVERTER_VERSION, convertLayersModel } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';
import { engineOpeners, openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { modelPackage, tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';
import { runFloat, floatIO } from '../src/runtime/float.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
const savedCache = process.env.MLCTL_CACHE;
const cacheDir = () => path.join(process.env.MLCTL_CACHE!, 'onnx');
const conversionOf = (p: LoadedPackage) => path.join(cacheDir(), `pkg-${p.manifestSha256}-c${CONVERTER_VERSION}.onnx`);

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-engine-');
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
    const x = randomInput(batch, floatIO(a).inputShape, batch);
    const [ya, yb] = [await runFloat(a, x, batch), await runFloat(b, x, batch)];
    expect(ya.length).toBe(batch * floatIO(a).outputSize);
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

describe('the engine table', () => {
  it('lists the built-in kinds in the order auto tries them', () => {
    expect(engineOpeners().map((o) => o.name)).toEqual(['classic', 'onnx', 'tfjs-thread', 'tfjs']);
  });

  it("'auto' runs ONNX Runtime for a convertible package; 'tfjs' runs TF.js, in a worker thread when asked", async () => {
    for (const [opts, name] of [[{ engine: 'auto' }, 'onnx'], [{ engine: 'tfjs' }, 'tfjs'], [{ engine: 'tfjs', worker: true }, 'tfjs-thread']] as const) {
      const engine = await openEngine(pkg, opts);
      try {
        expect(engine.name).toBe(name);
        expect(engine.provenance.verified).toBe(true);
      } finally {
        await engine.dispose();
      }
    }
  });

  it("'auto' falls back to tfjs with a warning when conversion fails; 'onnx' fails with the reason", async () => {
    const model = tf.sequential();
    model.add(tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 2, kernelSize: 3, strides: 4, name: 'conv' }));
    model.add(tf.layers.conv2dTranspose({ filters: 2, kernelSize: 2, strides: 2, name: 'deconv' }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 3, activation: 'softmax' }));
    const bad = await packageWith(model, 'unconvertible');
    model.dispose();
    const logger = createMemoryLogger();
    const engine = await openEngine(bad, { engine: 'auto', logger });
    try {
      expect(engine.name).toBe('tfjs');
      expect(logger.lines.find((l) => l.level === 'warn')?.msg).toMatch(/deconv \(Conv2DTranspose\)/);
    } finally {
      await engine.dispose();
    }
    const err = await openEngine(bad, { engine: 'onnx' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('UNSUPPORTED_LAYER');
  });

  it('never disposes a borrowed model; an owned one goes with the engine (or with ONNX once converted)', async () => {
    const disposed = (m: tf.LayersModel) => {
      try {
        return m.weights[0]!.read().isDisposed;
      } catch {
        return true; // reading a disposed variable throws
      }
    };
    const model = tinyModel(32, 3, 21);
    for (const engine of ['tfjs', 'onnx'] as const) {
      const e = await openEngine({ kind: 'model', model }, { engine });
      await e.dispose();
      expect(disposed(model)).toBe(false);
    }
    const owned = tinyModel(32, 3, 22);
    const onnx = await openEngine({ kind: 'model', model: owned, owned: true }, { engine: 'onnx' });
    expect(disposed(owned)).toBe(true);
    expect((await runFloat(onnx, randomInput(1, [32, 32, 3], 3), 1)).length).toBe(3);
    await onnx.dispose();
    const owned2 = tinyModel(32, 3, 23);
    const tfjs = await openEngine({ kind: 'model', model: owned2, owned: true }, { engine: 'tfjs' });
    expect(disposed(owned2)).toBe(false);
    await tfjs.dispose();
    expect(disposed(owned2)).toBe(true);
    model.dispose();
  });
});

describe('ONNX conversions of packages', () => {
  it('converts the package once into the cache with a recorded sha256 and authentication code, matches TF.js, and leaves the package untouched', async () => {
    await openCache().remove('onnx', path.basename(conversionOf(pkg)));
    const before = await fs.readdir(pkg.dir);
    const logger = createMemoryLogger();
    const onnx = await openEngine(pkg, { engine: 'onnx', logger });
    const tfjs = await openEngine(pkg, { engine: 'tfjs' });
    try {
      expect(onnx.description).toContain(`onnxruntime-node ${ORT_VERSION}`);
      expect(onnx.description).toMatch(/cpu, \d+ threads?/);
      expect(floatIO(onnx).inputShape).toEqual([32, 32, 3]);
      expect(floatIO(onnx).outputSize).toBe(3);
      expect(await maxDiff(onnx, tfjs)).toBeLessThanOrEqual(1e-4);
      expect(logger.lines.some((l) => l.msg.includes('converting'))).toBe(true);
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
    const cached = conversionOf(pkg);
    const bytes = await fs.readFile(cached);
    const record = JSON.parse(await fs.readFile(`${cached}.entry.json`, 'utf8'));
    expect(record.sha256).toBe(sha256(bytes));
    expect(record.hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(record.meta).toMatchObject({ converter: CONVERTER_VERSION, manifestSha256: pkg.manifestSha256 });
    expect((await fs.readdir(cacheDir())).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(await fs.readdir(pkg.dir)).toEqual(before);
    await verifyPackage(pkg.dir, pkg.manifest);

    // Second open: served from the cache (verified), no conversion.
    const logger2 = createMemoryLogger();
    const again = await openEngine(await loadPackage(pkg.dir), { engine: 'onnx', logger: logger2 });
    expect(again.provenance).toEqual({ verified: true, source: `cache ${cached} (authenticated with the cache key)` });
    await again.dispose();
    expect(logger2.lines.some((l) => l.msg.includes('converting'))).toBe(false);
  });

  it('never runs tampered cache bytes: they are rebuilt from the verified TF.js model with one warning', async () => {
    await (await openEngine(pkg, { engine: 'onnx' })).dispose();
    const cached = conversionOf(pkg);
    const good = await fs.readFile(cached);
    // A valid ONNX model with other weights (it would load and change predictions) in place of the conversion.
    const other = tinyModel(32, 3, 99);
    await fs.writeFile(cached, convertLayersModel(other, { inputName: 'input', outputName: 'predictions' }));
    other.dispose();
    const logger = createMemoryLogger();
    const engine = await openEngine(pkg, { engine: 'onnx', logger });
    const tfjs = await openEngine(pkg, { engine: 'tfjs' });
    try {
      const warnings = logger.lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/failed verification .*sha256.*rebuilding it from tiny v1's TF.js model/);
      expect(await maxDiff(engine, tfjs, [2])).toBeLessThanOrEqual(1e-4);
    } finally {
      await engine.dispose();
      await tfjs.dispose();
    }
    expect(sha256(await fs.readFile(cached))).toBe(sha256(good));
  });

  it('rebuilds bytes that lost their record (a crash between writing the file and its record)', async () => {
    await (await openEngine(pkg, { engine: 'onnx' })).dispose();
    await fs.rm(`${conversionOf(pkg)}.entry.json`);
    const logger = createMemoryLogger();
    await (await openEngine(pkg, { engine: 'onnx', logger })).dispose();
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg).join()).toMatch(/no recorded sha256/);
    expect(JSON.parse(await fs.readFile(`${conversionOf(pkg)}.entry.json`, 'utf8')).sha256).toBe(sha256(await fs.readFile(conversionOf(pkg))));
  });

  it('an unwritable cache converts in memory with one warning (read-only root filesystem)', async () => {
    // A cache root whose parent is a file cannot be created by anyone, root included.
    const blocker = path.join(tmp.dir, 'not-a-dir');
    await fs.writeFile(blocker, '');
    const logger = createMemoryLogger();
    for (let i = 0; i < 2; i++) {
      const engine = await openEngine(pkg, { engine: 'onnx', logger, cacheRoot: path.join(blocker, 'cache') });
      expect(engine.provenance.source).toMatch(/in memory/);
      await engine.dispose();
    }
    const warnings = logger.lines.filter((l) => l.level === 'warn');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.every((w) => /cannot be written .*MLCTL_CACHE/.test(w.msg))).toBe(true);
  });

  it("runs the package's own model.onnx only when it matches the manifest", async () => {
    const model = tinyModel(32, 3, 5);
    const own = await packageWith(model, 'own-onnx', true);
    const engine = await openEngine(own, { engine: 'onnx' });
    const tfjs = await openEngine({ kind: 'model', model }, { engine: 'tfjs' });
    try {
      expect(engine.provenance).toEqual({ verified: true, source: 'package model.onnx (manifest sha256)' });
      expect(await maxDiff(engine, tfjs, [3])).toBeLessThanOrEqual(1e-4);
      await expect(fs.stat(conversionOf(own))).rejects.toThrow();
    } finally {
      await engine.dispose();
      await tfjs.dispose();
    }
    // Swapped after the package was loaded (and verified): the engine checks again and refuses.
    const other = tinyModel(32, 3, 6);
    await fs.writeFile(path.join(own.dir, 'model.onnx'), convertLayersModel(other, { inputName: 'input', outputName: 'predictions' }));
    other.dispose();
    const err = await openEngine(own, { engine: 'auto' }).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('PACKAGE_HASH_MISMATCH');
    expect((err as Error).message).toMatch(/model\.onnx has sha256/);
    model.dispose();
  });

  it('rejects input of the wrong size', async () => {
    const engine = await openEngine(pkg, { engine: 'onnx' });
    try {
      await expect(runFloat(engine, new Float32Array(10), 1)).rejects.toThrow(/expected 1 x \[32, 32, 3\]/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('ONNX files and in-memory models', () => {
  it('runs a named file only when its sha256 matches', async () => {
    const model = tinyModel(32, 3, 31);
    const bytes = convertLayersModel(model, { inputName: 'input', outputName: 'output' });
    const file = path.join(tmp.dir, 'm.onnx');
    await fs.writeFile(file, bytes);
    const ok = await openEngine({ kind: 'onnx', model: file, sha256: sha256(bytes) }, { engine: 'onnx' });
    expect(ok.provenance.verified).toBe(true);
    await ok.dispose();
    const err = await openEngine({ kind: 'onnx', model: file, sha256: 'f'.repeat(64) }).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('ONNX_UNVERIFIED');
    expect((err as Error).message).toContain(file);
    const unchecked = await openEngine({ kind: 'onnx', model: bytes });
    expect(unchecked.provenance.verified).toBe(false);
    await unchecked.dispose();
    model.dispose();
  });

  it('converts an in-memory model once per identity, matching TF.js', async () => {
    const model = tinyModel(32, 4, 11);
    const engine = await openEngine({ kind: 'model', model, identity: 'test-backbone-32' }, { engine: 'onnx', threads: 1 });
    const tfjs = await openEngine({ kind: 'model', model }, { engine: 'tfjs' });
    try {
      expect(floatIO(engine).inputShape).toEqual([32, 32, 3]);
      expect(floatIO(engine).outputSize).toBe(4);
      expect(engine.description).toMatch(/1 thread\)/);
      expect(await maxDiff(engine, tfjs)).toBeLessThanOrEqual(1e-4);
    } finally {
      await engine.dispose();
      await tfjs.dispose();
    }
    const entries = (await openCache().list()).filter((e) => e.kind === 'onnx' && e.name.startsWith('test-backbone-32-'));
    expect(entries).toHaveLength(1);
    expect(entries[0]!.name).toBe(`test-backbone-32-c${CONVERTER_VERSION}.onnx`);
    model.dispose();
  });
});

// Model package format: round trip, version increments, integrity checks and atomic writes.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readdir, readFile, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { loadPackage, loadTfjsModel, resolvePackageDir, savePackage, writeTfjsModel } from '../src/artifacts/package.js';
import { writeDirAtomic, writeFileAtomic } from '../src/artifacts/atomic.js';
import { MANIFEST_FILE } from '../src/artifacts/manifest.js';
import { sha256File } from '../src/artifacts/hash.js';
import { MlctlError } from '../src/errors.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  await selectBackend('cpu');
});
afterEach(async () => cleanup());

describe('model package', () => {
  it('round-trips a model: same predictions, manifest with hashes of every file', async () => {
    const pkg = await tinyPackage(dir, { size: 16, seed: 3 });
    expect(pkg.dir).toBe(path.join(dir, 'tiny', '1'));
    const files = (await readdir(pkg.dir)).filter((f) => f !== MANIFEST_FILE).sort();
    expect(Object.keys(pkg.manifest.files).sort()).toEqual(files);
    for (const f of files) expect(pkg.manifest.files[f]!.sha256).toBe(await sha256File(path.join(pkg.dir, f)));

    const loaded = await loadPackage(pkg.dir);
    expect(loaded.manifest).toEqual(pkg.manifest);
    expect(loaded.manifestSha256).toBe(pkg.manifestSha256);
    const model = await loadTfjsModel(loaded);
    const reference = tinyModel(16, 3, 3);
    const x = tf.randomUniform([2, 16, 16, 3], -100, 100, 'float32', 5);
    const a = (model.predict(x) as tf.Tensor).arraySync();
    const b = (reference.predict(x) as tf.Tensor).arraySync();
    expect(a).toEqual(b);
  });

  it('writes the standard TF.js layers format that stock tf.loadLayersModel reads', async () => {
    const pkg = await tinyPackage(dir, { size: 16 });
    const json = JSON.parse(await readFile(path.join(pkg.dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
    const weights = await readFile(path.join(pkg.dir, 'group1-shard1of1.bin'));
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: new Uint8Array(weights).buffer }));
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
  });

  it('auto-increments versions and resolves the latest, name@version and bare names', async () => {
    const v1 = await tinyPackage(dir, { size: 16 });
    const v2 = await tinyPackage(dir, { size: 16 });
    expect([v1.manifest.version, v2.manifest.version]).toEqual([1, 2]);
    expect(await resolvePackageDir(path.join(dir, 'tiny'))).toBe(v2.dir);
    const prev = process.env.MLCTL_ARTIFACTS;
    process.env.MLCTL_ARTIFACTS = dir;
    try {
      expect(await resolvePackageDir('tiny')).toBe(v2.dir);
      expect(await resolvePackageDir('tiny@1')).toBe(v1.dir);
    } finally {
      if (prev === undefined) delete process.env.MLCTL_ARTIFACTS;
      else process.env.MLCTL_ARTIFACTS = prev;
    }
    await expect(resolvePackageDir(path.join(dir, 'nothing'))).rejects.toThrow(/no model package/);
  });

  it('detects tampered, truncated and missing files', async () => {
    const pkg = await tinyPackage(dir, { size: 16 });
    const shard = path.join(pkg.dir, 'group1-shard1of1.bin');
    const original = await readFile(shard);
    const flipped = Buffer.from(original);
    flipped[10] = flipped[10]! ^ 0xff;
    await writeFile(shard, flipped);
    const err = await loadPackage(pkg.dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('PACKAGE_HASH_MISMATCH');
    expect((err as Error).message).toContain('group1-shard1of1.bin');

    await writeFile(shard, original);
    await appendFile(shard, 'x');
    await expect(loadPackage(pkg.dir)).rejects.toThrow(/bytes/);
    const { rm } = await import('node:fs/promises');
    await rm(shard);
    await expect(loadPackage(pkg.dir)).rejects.toThrow(/missing/);
    // Explicitly skipping verification still loads the manifest (used by tools that repair packages).
    expect((await loadPackage(pkg.dir, { verify: false })).manifest.name).toBe('tiny');
  });

  it('rejects an invalid or future manifest clearly', async () => {
    const pkg = await tinyPackage(dir, { size: 16 });
    const file = path.join(pkg.dir, MANIFEST_FILE);
    const manifest = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...manifest, schemaVersion: 99 }));
    await expect(loadPackage(pkg.dir)).rejects.toThrow(/upgrade mlctl/);
    await writeFile(file, '{ not json');
    await expect(loadPackage(pkg.dir)).rejects.toThrow(/not valid JSON/);
  });

  it('leaves nothing behind when writing a package fails half-way', async () => {
    const model = tinyModel(16, 2);
    const failing = savePackage({
      root: dir,
      name: 'broken',
      draft: {
        task: 'image-classification',
        labels: ['a', 'b'],
        input: imageInputSpec(16),
        output: { name: 'predictions', kind: 'probabilities', size: 2 },
        architecture: {},
        formats: { tfjs: 'model.json' },
        lineage: [],
      },
      write: async (tmp) => {
        await writeTfjsModel(tmp, model);
        throw new Error('disk full (simulated by the test)');
      },
    });
    await expect(failing).rejects.toThrow(/disk full/);
    const left = await readdir(path.join(dir, 'broken'));
    expect(left).toEqual([]);
  });

  it('rejects names that could escape the artifacts folder', async () => {
    await expect(tinyPackage(dir, { name: '../evil' })).rejects.toThrow(/invalid model name/);
  });
});

describe('atomic writes', () => {
  it('writeFileAtomic replaces content and leaves no temp files', async () => {
    const file = path.join(dir, 'sub', 'a.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    expect(await readdir(path.join(dir, 'sub'))).toEqual(['a.json']);
  });

  it('writeDirAtomic never overwrites a non-empty target', async () => {
    const target = path.join(dir, 'pkg');
    await writeDirAtomic(target, async (tmp) => writeFile(path.join(tmp, 'x'), '1'));
    await expect(writeDirAtomic(target, async (tmp) => writeFile(path.join(tmp, 'x'), '2'))).rejects.toThrow();
    expect(await readFile(path.join(target, 'x'), 'utf8')).toBe('1');
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

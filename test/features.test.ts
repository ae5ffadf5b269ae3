// The feature store and the feature session: rows keyed by image content in shards that several writers fill, only
// indexed shards visible, any read order exact; one identity per backbone base, so train, tune and classic share
// stored features; a run without the store streams from a temporary one; training from stored rows equals
// training from memory.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../src/artifacts/cache.js';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { MlctlError } from '../src/errors.js';
import { identityOrder, memoryRows, toMatrix } from '../src/features/rows.js';
import { backboneIdentity, openFeatureSession } from '../src/features/session.js';
import { openFeatureStore } from '../src/features/store.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { vgg16 } from '../src/models/backbones/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';
import { disposeHead, trainHead } from '../src/heads/head.js';
import { createMemoryLogger } from '../src/util/log.js';
import { synthDataset, tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const row = (dim: number, v: number) => Float32Array.from({ length: dim }, (_, i) => v + i / 1000);

beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-features-');
});
afterAll(() => tmp.cleanup());

describe('feature store', () => {
  it('shows rows of every writer once their shard is indexed, in any read order, exactly', async () => {
    const store = await openFeatureStore(path.join(tmp.dir, 'store-a'), 5);
    const [w1, w2] = [await store.writer(), await store.writer()];
    await w1.append('a', row(5, 1));
    await w2.append('b', row(5, 2));
    await w1.append('c', row(5, 3));
    expect((await store.reader()).size).toBe(0); // nothing indexed yet
    await w1.close();
    await w2.close();
    const reader = await store.reader();
    expect(reader.size).toBe(3);
    const rows = reader.rows([
      { sha: 'c', label: 2, path: 'c.jpg' },
      { sha: 'a', label: 0, path: 'a.jpg' },
      { sha: 'b', label: 1, path: 'b.jpg' },
    ]);
    expect(Array.from(rows.labels)).toEqual([2, 0, 1]);
    const out = await rows.read([2, 0, 1], 0, 3, new Float32Array(15));
    expect(Array.from(out)).toEqual([...row(5, 2), ...row(5, 3), ...row(5, 1)]);
    await reader.close();
  });

  it("ignores a killed writer's unindexed shard and sweeps it once its process is gone", async () => {
    const dir = path.join(tmp.dir, 'store-b');
    const store = await openFeatureStore(dir, 4);
    const w = await store.writer();
    await w.append('x', row(4, 7));
    // Simulate a writer on this host whose process died mid-shard (pid 2^22 - 1 is never a live pid here).
    const shards = path.join(dir, 'shards');
    const live = (await fs.readdir(shards))[0]!;
    const dead = live.replace(/-\d+-([0-9a-f]{8})-(\d+)\.f32$/, '-4194303-$1-$2.f32');
    await fs.copyFile(path.join(shards, live), path.join(shards, dead));
    expect((await store.reader()).has('x')).toBe(false);
    await openFeatureStore(dir, 4);
    const left = await fs.readdir(shards);
    expect(left).toContain(live); // a live writer's shard is left alone
    expect(left).not.toContain(dead);
    await w.close();
    expect((await store.reader()).has('x')).toBe(true);
  });

  it('refuses a store of another width with a clear error', async () => {
    await openFeatureStore(path.join(tmp.dir, 'store-c'), 8);
    const err = await openFeatureStore(path.join(tmp.dir, 'store-c'), 9).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('FEATURE_STORE_INVALID');
    expect((err as Error).message).toMatch(/rows of 8 values; this run needs .* rows of 9/);
  });
});

describe('feature session', () => {
  let data: string;
  let cacheRoot: string;
  beforeAll(async () => {
    data = path.join(tmp.dir, 'data');
    await synthDataset(data, { classes: 3, perClass: 6, size: 32 });
    cacheRoot = path.join(tmp.dir, 'cache');
  });
  const base = { backbone: vgg16, options: { imageSize: 32 }, weights: 'none', seed: 3 };

  it('computes each image once: a second session with the same base reads every row from the store', async () => {
    const samples = (await scanImageFolder(data)).samples;
    const logger = createMemoryLogger();
    const s1 = await openFeatureSession({ base, engine: 'onnx', cacheRoot, logger });
    const first = await s1.extract(samples);
    expect(first.stats).toMatchObject({ images: samples.length, cached: 0, computed: samples.length });
    const m1 = await toMatrix(first.rows);
    await s1.dispose();
    const s2 = await openFeatureSession({ base, engine: 'tfjs', cacheRoot, logger });
    expect(s2.identity).toBe(s1.identity);
    expect(s2.storeDir).toBe(path.join(cacheRoot, 'features', s1.identity));
    const again = await s2.extract(samples);
    expect(again.stats).toMatchObject({ cached: samples.length, computed: 0 });
    expect(Array.from((await toMatrix(again.rows)).x)).toEqual(Array.from(m1.x));
    await s2.dispose();
    // One conversion and one store for this base, both listed by the cache.
    const entries = await openCache({ root: cacheRoot }).list();
    expect(entries.filter((e) => e.name.startsWith(s1.identity)).map((e) => e.kind).sort()).toEqual(['features', 'onnx']);
  });

  it('names each base by backbone, size, pooling, weights and preprocessing', () => {
    const spec = imageInputSpec(32, 'caffe');
    const id = (o: Partial<typeof base>, sha = 'w1', pooling: 'none' | 'gap' = 'none') => backboneIdentity({ ...base, ...o }, sha, o.options ? imageInputSpec(o.options.imageSize, 'caffe') : spec, pooling);
    const ref = id({});
    expect(ref).toMatch(/^vgg16-32-[0-9a-f]{16}$/);
    expect(id({})).toBe(ref);
    expect(id({}, 'w2')).not.toBe(ref);
    expect(id({ options: { imageSize: 64 } })).not.toBe(ref);
    expect(id({}, 'w1', 'gap')).toMatch(/^vgg16-32-gap-/);
    expect(backboneIdentity(base, 'w1', imageInputSpec(32, 'tf'), 'none')).not.toBe(ref);
  });

  it('leaves unreadable images out, and without the store keeps rows only for the session', async () => {
    const bad = path.join(tmp.dir, 'data-bad');
    await synthDataset(bad, { classes: 2, perClass: 4, size: 32 });
    const folder = await scanImageFolder(bad);
    await fs.writeFile(folder.samples[1]!.path, 'not an image');
    const skipped: string[] = [];
    // The session's scratch store goes under the temporary folder: point it at one of this test's own.
    const scratch = path.join(tmp.dir, 'scratch');
    await fs.mkdir(scratch);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    try {
      const s = await openFeatureSession({ base, engine: 'tfjs', cacheRoot, useStore: false, logger: createMemoryLogger() });
      const r = await s.extract(folder.samples, { onSkip: (k) => skipped.push(k.path) });
      expect(skipped).toEqual([folder.samples[1]!.path]);
      expect(r.rows.count).toBe(folder.samples.length - 1);
      expect(r.rows.paths).not.toContain(folder.samples[1]!.path);
      expect(s.storeDir).toBeUndefined();
      expect(await fs.readdir(scratch)).toHaveLength(1);
      expect((await toMatrix(r.rows)).x.length).toBe(r.rows.count * r.rows.dim);
      await s.dispose();
      expect(await fs.readdir(scratch)).toEqual([]);
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
  });

  it('trains the same head from stored rows as from the same rows in memory (bounded memory, same results)', async () => {
    const samples = (await scanImageFolder(data)).samples;
    const s = await openFeatureSession({ base, engine: 'tfjs', cacheRoot, logger: createMemoryLogger() });
    const { rows } = await s.extract(samples);
    const inMemory = memoryRows(await toMatrix(rows));
    const opts = { spec: { pooling: 'flatten' as const, units: 8, dropout: 0.2, classes: 3 }, epochs: 3, batchSize: 4, lr: 0.01, seed: 5 };
    const a = await trainHead(rows, rows, opts);
    const b = await trainHead(inMemory, inMemory, opts);
    expect(a.history.map((h) => [h.loss, h.valLoss])).toEqual(b.history.map((h) => [h.loss, h.valLoss]));
    expect(Array.from(a.weights.w1.dataSync())).toEqual(Array.from(b.weights.w1.dataSync()));
    disposeHead(a.weights);
    disposeHead(b.weights);
    expect(identityOrder(3)).toEqual(Uint32Array.from([0, 1, 2]));
    await s.dispose();
    expect(tf.memory().numTensors).toBeLessThan(200);
  });
});

// `mlctl cache ls|prune` over a real cache: entries of every kind listed with sizes and last use; prune by size
// (least recently used first), by age, by kind, all, and --dry-run removing nothing. Writes past the cap evict LRU.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCache } from '../src/artifacts/cache.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const saved = process.env.MLCTL_CACHE;
const kb = (n: number) => new Uint8Array(n * 1024).fill(7);

async function used(kind: 'models' | 'onnx' | 'features', name: string, daysAgo: number) {
  const t = new Date(Date.now() - daysAgo * 86_400_000);
  await fs.utimes(path.join(process.env.MLCTL_CACHE!, kind, `${name}.entry.json`), t, t);
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-cache-cli-');
});
afterAll(async () => {
  if (saved === undefined) delete process.env.MLCTL_CACHE;
  else process.env.MLCTL_CACHE = saved;
  await tmp.cleanup();
});

beforeEach(async () => {
  process.env.MLCTL_CACHE = path.join(tmp.dir, `cache-${Math.random().toString(36).slice(2)}`);
  const cache = openCache();
  await cache.putFile('onnx', 'a.onnx', kb(40), { converter: 'x' });
  await cache.putFile('onnx', 'b.onnx', kb(20));
  const store = cache.pathOf('features', 'vgg16-32-abc');
  await fs.mkdir(path.join(store, 'shards'), { recursive: true });
  await fs.writeFile(path.join(store, 'shards', 's.f32'), kb(100));
  await cache.recordEntry('features', 'vgg16-32-abc', { identity: 'vgg16-32-abc' });
  await used('onnx', 'a.onnx', 40);
  await used('features', 'vgg16-32-abc', 10);
  await used('onnx', 'b.onnx', 1);
});

describe('mlctl cache', () => {
  it('ls lists every entry with its size and last use, and the total against the cap', async () => {
    const r = await runCli(['cache', 'ls', '--json']);
    expect(r.code).toBe(0);
    expect(r.json.root).toBe(process.env.MLCTL_CACHE);
    expect(r.json.entries.map((e: { kind: string; name: string; bytes: number }) => [e.kind, e.name, e.bytes])).toEqual([
      ['onnx', 'a.onnx', 40 * 1024],
      ['features', 'vgg16-32-abc', 100 * 1024],
      ['onnx', 'b.onnx', 20 * 1024],
    ]);
    expect(r.json.totalBytes).toBe(160 * 1024);
    expect(r.json.entries[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const text = await runCli(['cache', 'ls', '--kind', 'onnx']);
    expect(text.stdout).toMatch(/a\.onnx/);
    expect(text.stdout).not.toMatch(/vgg16-32-abc/);
    expect(text.stdout).toMatch(/2 entries, 0\.1 MB/);
  });

  it('prune --max-size removes least recently used entries first; --dry-run removes nothing', async () => {
    const dry = await runCli(['cache', 'prune', '--max-size', '130kb', '--dry-run', '--json']);
    expect(dry.json.removed.map((e: { name: string }) => e.name)).toEqual(['a.onnx']);
    expect((await openCache().list()).length).toBe(3);
    const r = await runCli(['cache', 'prune', '--max-size', '50kb', '--json']);
    expect(r.json.removed.map((e: { name: string }) => e.name)).toEqual(['a.onnx', 'vgg16-32-abc']);
    expect(r.json.freedBytes).toBe(140 * 1024);
    expect((await openCache().list()).map((e) => e.name)).toEqual(['b.onnx']);
    await expect(fs.stat(openCache().pathOf('features', 'vgg16-32-abc'))).rejects.toThrow();
  });

  it('prune --older-than and --kind --all', async () => {
    const old = await runCli(['cache', 'prune', '--older-than', '5d', '--json']);
    expect(old.json.removed.map((e: { name: string }) => e.name).sort()).toEqual(['a.onnx', 'vgg16-32-abc']);
    const all = await runCli(['cache', 'prune', '--kind', 'onnx', '--all', '--json']);
    expect(all.json.removed.map((e: { name: string }) => e.name)).toEqual(['b.onnx']);
    expect(await openCache().list()).toEqual([]);
    const bad = await runCli(['cache', 'prune', '--older-than', 'soon', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json.error.message).toMatch(/--older-than "soon" is not a duration/);
  });

  it('a write that takes the cache over its cap evicts the least recently used entries, never the new one', async () => {
    const cache = openCache({ maxBytes: 160 * 1024 });
    await cache.putFile('onnx', 'c.onnx', kb(30));
    expect((await cache.list()).map((e) => e.name)).toEqual(['vgg16-32-abc', 'b.onnx', 'c.onnx']);
  });
});

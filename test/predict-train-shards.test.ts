// `train --extract-only --shard i/n` (the training-data side of the Indexed Job): three shard runs fill the shared
// feature store with disjoint thirds of the dataset; a normal `train` afterwards computes no feature at all.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-shards-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 8, size: 32, seed: 4 });
  await selectBackend('wasm');
});
afterAll(async () => {
  await tmp.cleanup();
});

const cli = (...args: string[]) => runCli([...args, '--json', '--quiet', '--backend', 'wasm']);

const COMMON = ['--data', '', '--name', 'sharded', '--weights', 'none', '--image-size', '32', '--batch-size', '8', '--engine', 'tfjs', '--seed', '5', '--epochs', '1'];
const common = () => COMMON.map((a) => (a === '' ? data : a));

describe('train --extract-only --shard', () => {
  it('3 shards fill the store with disjoint thirds; the following train reads every feature from it', async () => {
    let images = 0;
    let total = 0;
    let store = '';
    for (let i = 0; i < 3; i++) {
      const r = await cli('train', ...common(), '--extract-only', '--shard', `${i}/3`);
      expect(r.code, r.stderr).toBe(0);
      const x = r.json.extracted;
      expect(x.shard).toBe(`${i}/3`);
      expect(x.cached).toBe(0); // disjoint: nothing another shard computed
      expect(x.computed).toBe(x.images);
      images += x.images;
      total = x.datasetImages;
      store = x.storeDir;
    }
    expect(images).toBe(total);
    expect(total).toBe(24);
    const r = await cli('train', ...common());
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.features.train.computed).toBe(0);
    expect(r.json.features.train.cached + r.json.features.val.cached).toBe(total);
    expect(r.json.features.cacheDir).toBe(store);
  }, 120_000);

  it('refuses --shard without --extract-only, and --extract-only without the store', async () => {
    const a = await cli('train', ...common(), '--shard', '0/2');
    expect(a.code).toBe(2);
    expect(a.json.error.message).toMatch(/add --extract-only/);
    const b = await cli('train', ...common(), '--extract-only', '--no-feature-cache');
    expect(b.code).toBe(2);
  });
});

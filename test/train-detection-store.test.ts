// `mlctl train --task detection` with the classifier's store and rate options: `--extract-only --shard i/n` runs
// fill the feature store with disjoint parts of a synthetic COCO set and a plain train then computes no feature map
// and trains what a one-process run trains (same seed); `--find-lr` runs the LR range test before each phase and trains
// at its suggestion; the combinations that cannot apply are refused as for classification.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { promises as fs } from 'node:fs';

let tmp: MlctlHome;
let data: string;

const BASE = ['--task', 'detection', '--backbone', 'mobilenet_v2', '--alpha', '0.35', '--weights', 'none', '--image-size', '64', '--batch-size', '8', '--upsample', '1', '--head-channels', '16', '--seed', '5', '--backend', 'wasm'];
const train = (...args: string[]) => runCli(['train', '--data', data, ...BASE, ...args, '--json']);

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-det-store-');
  data = path.join(tmp.dir, 'objects');
  const synth = await runCli(['datasets', 'synth', '--task', 'detection', '--out', data, '--images', '24', '--size', '64', '--classes', '2', '--seed', '3', '--json']);
  expect(synth.code, synth.stderr).toBe(0);
  await selectBackend('wasm');
}, 60_000);
afterAll(async () => {
  await tmp.cleanup();
});

describe('mlctl train --task detection: --extract-only --shard, --find-lr', () => {
  it('2 shards fill the store with disjoint halves; the following train reads every feature map and trains what one process trains', async () => {
    let images = 0;
    let total = 0;
    let store = '';
    for (const shard of ['0/2', '1/2']) {
      const r = await train('--name', 'sharded', '--epochs', '2', '--lr', '0.003', '--extract-only', '--shard', shard);
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      expect(r.json.task).toBe('detection');
      const x = r.json.extracted;
      expect(x.shard).toBe(shard);
      expect(x.cached).toBe(0); // disjoint: nothing the other shard computed
      expect(x.computed).toBe(x.images);
      images += x.images;
      total = x.datasetImages;
      store = x.storeDir;
    }
    expect(total).toBe(24);
    expect(images).toBe(total);
    // Nothing was trained or saved by the shard runs.
    await expect(fs.stat(path.join(tmp.artifacts, 'sharded'))).rejects.toThrow();

    const r = await train('--name', 'sharded', '--epochs', '2', '--lr', '0.003');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const f = r.json.features;
    expect(f.cacheDir).toBe(store);
    expect(f.train.computed).toBe(0);
    expect(f.val.computed).toBe(0);
    expect(f.train.cached + f.val.cached).toBe(total);

    // One process computing its own maps (none shared through the store) with the same seed: the same head.
    const one = await train('--name', 'one-process', '--epochs', '2', '--lr', '0.003', '--no-feature-cache');
    expect(one.code, one.stderr.slice(-2000)).toBe(0);
    expect(one.json.features.train.computed).toBe(f.train.cached);
    expect(r.json.metrics).toEqual(one.json.metrics);
    const history = async (dir: string) => JSON.parse(await fs.readFile(path.join(dir, 'history.json'), 'utf8')).history.map((h: { loss: number; valLoss: number }) => [h.loss, h.valLoss]);
    expect(await history(r.json.package)).toEqual(await history(one.json.package));
  }, 120_000);

  it('--extract-only with --augment stores only the pictures the trainer reads from the store (validation and test)', async () => {
    const r = await train('--name', 'aug-store', '--epochs', '1', '--augment', 'flip', '--extract-only');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/only validation and test pictures are stored/);
    expect(r.json.extracted.datasetImages).toBeLessThan(24);
    expect(r.json.extracted.images).toBe(r.json.extracted.datasetImages);
  }, 60_000);

  it('--find-lr --json returns the range test of each phase: a finite suggested rate within the range scanned, and the loss curve', async () => {
    const r = await train('--name', 'findlr', '--epochs', '1', '--find-lr', '--fine-tune', '1', '--fine-tune-epochs', '1', '--engine', 'onnx');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const tests = r.json.lrFind as Array<Record<string, any>>;
    expect(tests.map((t) => t.phase)).toEqual(['head', 'fine-tune']);
    for (const t of tests) {
      expect(t.lrs.length).toBeGreaterThan(10);
      expect(t.losses).toHaveLength(t.lrs.length);
      expect(t.lrs[0]).toBe(1e-7);
      expect(t.losses.slice(0, 10).every(Number.isFinite)).toBe(true);
      expect(Number.isFinite(t.chosen.lr)).toBe(true);
      expect(t.chosen.lr).toBeGreaterThan(t.lrs[0]);
      expect(t.chosen.lr).toBeLessThan(t.lrs[t.lrs.length - 1]);
      expect(t.chosen.lr).toBe(t.suggestions[t.chosen.rule].lr);
    }
    // Both phases trained at the suggestions, and the package says so.
    const m = (await loadPackage(r.json.package)).manifest.training as Record<string, any>;
    expect(m.optimizer.lr).toBe(tests[0]!.chosen.lr);
    expect(m.lrSchedule.lrFrom).toBe('lr-find');
    expect(m.fineTune).toMatchObject({ lr: tests[1]!.chosen.lr, lrSchedule: { lrFrom: 'lr-find' } });
    expect(m.lrFind.map((t: { phase: string }) => t.phase)).toEqual(['head', 'fine-tune']);
    expect(r.stderr).toMatch(/LR range test \(head\): \d+ steps from 1e-7.*suggested lr \S+ \(valley/);
    expect(r.stderr).toMatch(/head phase: 1 epoch\(s\), lr constant \S+ \(from the LR range test\)/);
    const html = await fs.readFile(path.join(r.json.package, 'history.html'), 'utf8');
    expect(html).toContain('LR range test (head)');
    expect(html).toContain('LR range test (fine-tune)');
  }, 120_000);

  it('refuses the combinations that cannot apply, before any work', async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['--find-lr', '--extract-only'], 'OPTION_CONFLICT', /--extract-only trains nothing, so there is no learning rate for --find-lr to find/],
      [['--shard', '0/2'], 'OPTION_CONFLICT', /--shard splits the feature extraction of --extract-only; add --extract-only/],
      [['--extract-only', '--tensorboard', path.join(tmp.dir, 'tb')], 'OPTION_CONFLICT', /--extract-only trains nothing, so there are no epochs for --tensorboard/],
      [['--extract-only', '--no-feature-cache'], 'OPTION_CONFLICT', /--extract-only fills the feature store: drop --no-feature-cache/],
      [['--extract-only', '--shard', '2/2'], 'OPTION_INVALID', /the index is 0-based, so it must be below 2/],
    ];
    for (const [args, code, message] of cases) {
      const r = await train('--name', 'refused', '--epochs', '1', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error.code, args.join(' ')).toBe(code);
      expect(r.json.error.message, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/feature maps/); // refused before extraction
    }
    await expect(fs.stat(path.join(tmp.artifacts, 'refused'))).rejects.toThrow();
  }, 60_000);
});

// Tuning: trial generation (grid/random, only searched parameters vary), trials ranked by validation accuracy with
// early stopping, and the end-to-end search on cached VGG16 features saving the best trial as a loadable package.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { memoryRows } from '../src/features/rows.js';
import { createMemoryLogger } from '../src/util/log.js';
import { createRng, gaussian } from '../src/util/random.js';
import { FIXED_DEFAULTS, generateTrials, parseSearch, rankTrials, runTrials, SEARCH_SPACE } from '../src/optimize/tune.js';
import { tunePipeline } from '../src/optimize/tune-run.js';
import { synthDataset, tempDir } from './helpers/fixtures.js';

/** Two-class blobs: 4 informative dimensions among noise ones, so a decent trial clearly beats a bad one and a fast one overfits. */
function blobs(n: number, dim: number, seed: number) {
  const rng = createRng(seed);
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let d = 0; d < dim; d++) x[i * dim + d] = gaussian(rng) + (d < 4 ? (labels[i] ? 0.9 : -0.9) : 0);
  }
  return { x, labels, count: n, dim, paths: [] as string[] };
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('trial generation', () => {
  it('grid: every combination of the searched parameters, seeded order, others at train defaults', () => {
    const all = generateTrials('grid', 100, ['lr', 'units'], 1);
    expect(all.gridSize).toBe(SEARCH_SPACE.lr.grid.length * SEARCH_SPACE.units.grid.length);
    expect(all.trials).toHaveLength(all.gridSize!);
    expect(new Set(all.trials.map((t) => `${t.lr}/${t.units}`)).size).toBe(all.gridSize);
    for (const t of all.trials) expect({ dropout: t.dropout, batchSize: t.batchSize }).toEqual({ dropout: FIXED_DEFAULTS.dropout, batchSize: FIXED_DEFAULTS.batchSize });
    const five = generateTrials('grid', 5, ['lr', 'units'], 1);
    expect(five.trials).toEqual(all.trials.slice(0, 5));
  });

  it('random: reproducible from the seed, inside the search space, distinct', () => {
    const a = generateTrials('random', 8, parseSearch(undefined), 7).trials;
    expect(generateTrials('random', 8, parseSearch(undefined), 7).trials).toEqual(a);
    expect(generateTrials('random', 8, parseSearch(undefined), 8).trials).not.toEqual(a);
    expect(new Set(a.map((t) => JSON.stringify(t))).size).toBe(8);
    for (const t of a) {
      expect(t.lr).toBeGreaterThanOrEqual(SEARCH_SPACE.lr.min * 0.999);
      expect(t.lr).toBeLessThanOrEqual(SEARCH_SPACE.lr.max * 1.001);
      expect(t.dropout).toBeGreaterThanOrEqual(0);
      expect(t.dropout).toBeLessThanOrEqual(0.5);
      expect(SEARCH_SPACE.units.grid).toContain(t.units);
      expect(SEARCH_SPACE['batch-size'].grid).toContain(t.batchSize);
    }
    expect(() => parseSearch(['lr', 'momentum'])).toThrow(/unknown parameter "momentum"/);
  });
});

describe('runTrials', () => {
  it('ranks trials by validation accuracy, stops early, keeps the best trial weights', async () => {
    const train = memoryRows(blobs(32, 64, 1));
    const val = memoryRows(blobs(64, 64, 2));
    const trials = [
      { lr: 1e-7, units: 8, dropout: 0, batchSize: 16 }, // barely moves: near chance
      { lr: 3e-2, units: 64, dropout: 0, batchSize: 8 }, // overfits fast: val_loss turns up
      { lr: 3e-3, units: 32, dropout: 0.25, batchSize: 32 },
    ];
    const out = await runTrials(train, val, trials, { classes: 2, pooling: 'flatten', epochs: 30, patience: 2, seed: 3, logger: createMemoryLogger() });
    expect(out.results.map((r) => r.trial).sort()).toEqual([1, 2, 3]);
    expect(out.results).toEqual(rankTrials(out.results));
    for (let i = 1; i < out.results.length; i++) expect(out.results[i - 1]!.valAccuracy).toBeGreaterThanOrEqual(out.results[i]!.valAccuracy);
    expect(out.results[0]!.valAccuracy).toBeGreaterThan(0.65);
    expect(out.results[0]!.trial).not.toBe(1);
    expect(out.results.some((r) => r.stoppedEarly && r.epochs < 30)).toBe(true);
    expect(out.bestWeights.w1.shape).toEqual([64, out.results[0]!.params.units]);
    expect(out.bestSpec.units).toBe(out.results[0]!.params.units);
    tf.dispose([out.bestWeights.w1, out.bestWeights.b1, out.bestWeights.w2, out.bestWeights.b2]);
  });
});

describe('tunePipeline', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('mlctl-tune-'));
    await synthDataset(path.join(root, 'data'), { classes: 2, perClass: 8 });
  });
  afterAll(async () => cleanup());

  it('searches on cached VGG16 features and saves the best trial as a package that loads and predicts', async () => {
    const opts = {
      data: path.join(root, 'data'),
      name: 'tuned',
      trials: 2,
      strategy: 'random' as const,
      search: parseSearch(['lr', 'units']),
      imageSize: 32,
      weights: 'none',
      pooling: 'flatten' as const,
      epochs: 3,
      patience: 2,
      seed: 42,
      validationSplit: 0.25,
      engine: 'tfjs' as const,
      logger: createMemoryLogger(),
      root: path.join(root, 'artifacts'),
      cacheDir: path.join(root, 'cache'),
    };
    const r = await tunePipeline(opts);
    expect(r.results).toHaveLength(2);
    expect(r.features).toMatchObject({ train: 12, val: 4, cached: 0, computed: 16 });
    const pkg = await loadPackage(r.package.dir);
    expect(pkg.manifest.labels).toEqual(['circle', 'square']);
    expect(pkg.manifest.architecture).toMatchObject({ backbone: 'vgg16', head: { pooling: 'flatten', dense: [r.results[0]!.params.units, 2] } });
    expect(pkg.manifest.metrics).toMatchObject({ valAccuracy: r.results[0]!.valAccuracy });
    expect(pkg.manifest.lineage[0]).toMatchObject({ op: 'tune' });
    const model = await loadTfjsModel(pkg);
    const y = model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor;
    expect(y.shape).toEqual([1, 2]);
    expect(y.sum().dataSync()[0]).toBeCloseTo(1, 4);
    tf.dispose([model, y] as never);
    // The second search reads every feature from the cache.
    const again = await tunePipeline({ ...opts, trials: 1 });
    expect(again.features).toMatchObject({ cached: 16, computed: 0 });
    expect(again.package.manifest.version).toBe(2);
  });
});

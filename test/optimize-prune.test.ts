// Pruning: tfmot schedule values, exact zero fractions per layer in the saved package, masks held through
// fine-tuning, the trainable head pruned by default (backbone convs only when named), one-shot pruning of convs.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { memoryRows } from '../src/features/rows.js';
import { createMemoryLogger } from '../src/util/log.js';
import { fineTuneStack, stackFromLayers, disposeStack } from '../src/optimize/dense-stack.js';
import { prunePackage, pruneTargets } from '../src/optimize/prune.js';
import { defaultSchedule, magnitudeMask, shouldUpdate, sparsityAt, zeroFraction } from '../src/optimize/schedule.js';
import { modelPackage, synthDataset, tempDir } from './helpers/fixtures.js';

const LABELS = ['circle', 'square', 'triangle'];

function headModel(seed = 3): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'block1_conv1', kernelInitializer: init(seed) }),
      tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'block1_conv2', kernelInitializer: init(seed + 1) }),
      tf.layers.maxPooling2d({ poolSize: 4, name: 'pool' }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: 24, activation: 'relu', name: 'fc1', kernelInitializer: init(seed + 2) }),
      tf.layers.dropout({ rate: 0.2, name: 'dropout' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions', kernelInitializer: init(seed + 3) }),
    ],
  });
}

async function savedHeadModel(root: string, name: string): Promise<LoadedPackage> {
  const model = headModel();
  try {
    return await modelPackage(root, model, { name, labels: LABELS });
  } finally {
    model.dispose();
  }
}

const kernelOf = (m: tf.LayersModel, layer: string) => m.getLayer(layer).getWeights()[0]!.dataSync();

describe('schedules and masks', () => {
  it('PolynomialDecay follows final + (initial - final)(1 - p)^3 and updates every `frequency` steps', () => {
    const s = { kind: 'polynomial' as const, initialSparsity: 0.1, finalSparsity: 0.8, beginStep: 10, endStep: 110, frequency: 25, power: 3 };
    expect(sparsityAt(s, 0)).toBeCloseTo(0.1, 12);
    expect(sparsityAt(s, 60)).toBeCloseTo(0.8 + (0.1 - 0.8) * 0.5 ** 3, 12);
    expect(sparsityAt(s, 110)).toBeCloseTo(0.8, 12);
    expect(sparsityAt(s, 500)).toBeCloseTo(0.8, 12);
    expect([5, 10, 20, 35, 60, 110, 135].map((step) => shouldUpdate(s, step))).toEqual([false, true, false, true, true, true, false]);
    const c = defaultSchedule('constant', 0.5, 40);
    expect(sparsityAt(c, 0)).toBe(0.5);
    expect(shouldUpdate(c, 0)).toBe(true);
    const p = defaultSchedule('polynomial', 0.5, 40);
    expect(sparsityAt(p, p.endStep)).toBeCloseTo(0.5, 12);
    expect(shouldUpdate(p, p.endStep)).toBe(true);
  });

  it('magnitude masks zero exactly round(s·n) of the smallest weights', () => {
    const w = Float32Array.from([0.5, -0.1, 0.3, 0, -0.9, 0.2, 0.05]);
    const m = magnitudeMask(w, 0.43);
    expect(Array.from(m)).toEqual([1, 0, 1, 0, 1, 1, 0]);
    expect(zeroFraction(Float32Array.from(w, (v, i) => v * m[i]!))).toBeCloseTo(3 / 7, 12);
    // Ties at the threshold: the lowest indices go first, so the count stays exact.
    expect(Array.from(magnitudeMask([0.1, -0.1, 0.1, 0.5, 0.1], 0.6))).toEqual([0, 0, 0, 1, 1]);
    // Same selection as a plain (|w|, index) sort on random weights with many ties.
    const r = Float32Array.from({ length: 5000 }, (_, i) => Math.round(Math.sin(i * 12.9898) * 50) / 50);
    const byMagnitude = Array.from(r.keys()).sort((a, b) => Math.abs(r[a]!) - Math.abs(r[b]!) || a - b);
    const expected = new Float32Array(r.length).fill(1);
    for (const i of byMagnitude.slice(0, Math.round(0.37 * r.length))) expected[i] = 0;
    expect(Array.from(magnitudeMask(r, 0.37))).toEqual(Array.from(expected));
  });
});

describe('prunePackage', () => {
  let root: string;
  let data: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    await selectBackend('cpu');
    ({ dir: root, cleanup } = await tempDir('mlctl-prune-'));
    data = path.join(root, 'data');
    await synthDataset(data, { classes: 3, perClass: 12 });
  });
  afterAll(async () => cleanup());

  it('by default prunes the trainable head only: the Dense layers before the output layer, no backbone conv', () => {
    const m = headModel();
    expect(pruneTargets(m)).toEqual(['fc1']);
    expect(pruneTargets(m, ['block1_conv2', 'fc1'])).toEqual(['block1_conv2', 'fc1']);
    expect(pruneTargets(m, ['fc1'])).toEqual(['fc1']);
    expect(() => pruneTargets(m, ['pool'])).toThrow(/only Dense\/Conv2D/);
    expect(() => pruneTargets(m, ['nope'])).toThrow(/no layer "nope"/);
    m.dispose();
  });

  it('fine-tunes fc1 on cached features to exactly 50% zeros; other layers untouched; saved zeros are exact', async () => {
    const source = await savedHeadModel(root, 'headnet');
    const logger = createMemoryLogger();
    const report = await prunePackage(source, { logger, root, data, sparsity: 0.5, layers: ['fc1'], epochs: 3, batchSize: 8, lr: 1e-3, cacheDir: path.join(root, 'cache'), latencyRuns: 0 });
    const saved = await loadPackage(report.package.dir);
    const before = await loadTfjsModel(source);
    const after = await loadTfjsModel(saved);
    const fc1 = kernelOf(after, 'fc1');
    expect(fc1.length).toBe(196 * 24);
    expect(zeroFraction(fc1)).toBe(Math.round(0.5 * fc1.length) / fc1.length);
    for (const layer of ['block1_conv1', 'block1_conv2', 'predictions']) expect(zeroFraction(kernelOf(after, layer))).toBe(0);
    // The convs are frozen (features came from them); the tail really was fine-tuned.
    expect(Array.from(kernelOf(after, 'block1_conv2'))).toEqual(Array.from(kernelOf(before, 'block1_conv2')));
    expect(Array.from(kernelOf(after, 'predictions'))).not.toEqual(Array.from(kernelOf(before, 'predictions')));
    expect(report.layers.find((l) => l.layer === 'fc1')).toMatchObject({ pruned: true, method: 'scheduled', zeros: fc1.length / 2 });
    expect(report.history).toHaveLength(3);
    expect(report.history.at(-1)!.sparsity).toBeCloseTo(0.5, 12);
    expect(report.after.size.gzip).toBeLessThan(report.before.size.gzip);
    expect(saved.manifest.lineage.at(-1)).toMatchObject({ op: 'prune', params: { sparsity: 0.5, schedule: 'polynomial', layers: ['fc1'] } });
    expect(saved.manifest.architecture).toMatchObject({ pruning: { layers: { fc1: 0.5 } } });
    expect(report.after.accuracy).toBeGreaterThanOrEqual(0);
    // Features were cached: a second run reads them instead of recomputing.
    const again = await prunePackage(source, { logger, root, data, sparsity: 0.5, layers: ['fc1'], epochs: 1, batchSize: 8, cacheDir: path.join(root, 'cache'), latencyRuns: 0 });
    expect(again.package.manifest.version).toBe(report.package.manifest.version + 1);
    tf.dispose([before, after] as never);
  });

  it('masks fixed at step 0 hold through every fine-tuning step (constant schedule, one mask update)', async () => {
    const m = headModel(9);
    const tail = m.layers.slice(4);
    const stack = stackFromLayers(tail, new Set(['fc1']));
    const initial = kernelOf(m, 'fc1');
    const expectedMask = magnitudeMask(initial, 0.7);
    const rng = tf.randomNormal([40, 196], 0, 1, 'float32', 5).dataSync() as Float32Array;
    const train = memoryRows({ x: rng, labels: Int32Array.from({ length: 40 }, (_, i) => i % 3), count: 40, dim: 196, paths: [] });
    const schedule = { kind: 'constant' as const, initialSparsity: 0.7, finalSparsity: 0.7, beginStep: 0, endStep: 0, frequency: 1000, power: 3 };
    await fineTuneStack(stack, train, undefined, { schedule, epochs: 3, batchSize: 8, lr: 1e-2, seed: 1, logger: createMemoryLogger() });
    const fc1 = stack.find((l) => l.name === 'fc1')!;
    const tuned = fc1.kind === 'dense' ? fc1.kernel.dataSync() : new Float32Array();
    let changed = 0;
    for (let i = 0; i < tuned.length; i++) {
      if (expectedMask[i] === 0) expect(tuned[i]).toBe(0);
      else if (tuned[i] !== initial[i]) changed++;
    }
    expect(changed).toBeGreaterThan(0);
    disposeStack(stack);
    m.dispose();
  });

  it('--epochs 0 prunes one-shot without data, including a named conv layer', async () => {
    const source = await savedHeadModel(root, 'oneshot');
    const report = await prunePackage(source, { logger: createMemoryLogger(), root, sparsity: 0.75, epochs: 0, layers: ['block1_conv2', 'fc1'], latencyRuns: 0 });
    const after = await loadTfjsModel(await loadPackage(report.package.dir));
    const conv = kernelOf(after, 'block1_conv2');
    expect(zeroFraction(conv)).toBe(Math.round(0.75 * conv.length) / conv.length);
    expect(zeroFraction(kernelOf(after, 'fc1'))).toBe(0.75);
    expect(zeroFraction(kernelOf(after, 'block1_conv1'))).toBe(0);
    expect(report.layers.filter((l) => l.pruned).map((l) => l.method)).toEqual(['one-shot', 'one-shot']);
    after.dispose();
  });

  it('a named backbone conv is cut one-shot and the head is then fine-tuned on the pruned base\'s features', async () => {
    const source = await savedHeadModel(root, 'convnamed');
    const report = await prunePackage(source, { logger: createMemoryLogger(), root, data, sparsity: 0.5, layers: ['block1_conv2'], epochs: 2, batchSize: 8, lr: 1e-3, cacheDir: path.join(root, 'cache'), latencyRuns: 0 });
    const before = await loadTfjsModel(source);
    const after = await loadTfjsModel(await loadPackage(report.package.dir));
    const conv = kernelOf(after, 'block1_conv2');
    expect(zeroFraction(conv)).toBe(Math.round(0.5 * conv.length) / conv.length);
    // The head adapted to the pruned base (fine-tuned), without being pruned itself.
    expect(Array.from(kernelOf(after, 'predictions'))).not.toEqual(Array.from(kernelOf(before, 'predictions')));
    expect(zeroFraction(kernelOf(after, 'fc1'))).toBe(0);
    expect(report.history).toHaveLength(2);
    expect(report.features).toMatchObject({ store: 'package' });
    expect((await loadPackage(report.package.dir)).manifest.lineage.at(-1)!.params).toMatchObject({ backbone: 'pruned' });
    tf.dispose([before, after] as never);
  });

  it('asks for --data when fine-tuning is requested without it', async () => {
    const source = await savedHeadModel(root, 'nodata');
    await expect(prunePackage(source, { logger: createMemoryLogger(), root, sparsity: 0.5, epochs: 2, latencyRuns: 0 })).rejects.toThrow(/--data/);
  });
});

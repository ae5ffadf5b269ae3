// The ONNX Runtime head trainer: its fused WebAssembly kernel is the assembled WAT and computes xᵀ·dz + Keras Adam;
// one epoch agrees with the TF.js trainer to 1e-4 (dropout, class weights, a partial last batch), in this thread and
// in worker threads; --engine picks the trainer; checkpoints (v2 and v1) resume exactly, survive a torn save, and
// write unchanged best weights once.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryRows, type FeatureMatrix } from '../src/features/rows.js';
import { selectBackend } from '../src/runtime/backend.js';
import { checkpointWriter, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../src/train/checkpoint.js';
import { FC_ADAM_WASM_BASE64 } from '../src/heads/fc-kernel-wasm.js';
import { adamUpdate, disposeHead, headParams, initHeadParams, newAdamState, transposeMatrix, trainHead, type HeadTrainState, type TrainHeadOptions, type TrainHeadResult } from '../src/heads/head.js';
import { openFcShard } from '../src/heads/onnx-shard.js';
import { createRng, gaussian } from '../src/util/random.js';
import { kernelModuleText, KERNEL_FILE } from '../scripts/build-kernels.js';
import { tempDir } from './helpers/fixtures.js';

/** Post-ReLU-like features (about half zeros), class k shifted on feature k. */
function features(n: number, dim: number, classes: number, seed: number): FeatureMatrix {
  const rng = createRng(seed);
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = (i * 7) % classes;
    for (let d = 0; d < dim; d++) x[i * dim + d] = Math.max(0, gaussian(rng) + (d % classes === labels[i] ? 1 : 0));
  }
  return { x, labels, count: n, dim, paths: [] };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

const weightsOf = (r: TrainHeadResult) => {
  const p = headParams(r.weights);
  disposeHead(r.weights);
  return p;
};

describe('fused fc1 kernel', () => {
  it('is the assembled WAT source (run npx tsx scripts/build-kernels.ts after editing fc-kernel.ts)', async () => {
    expect(await fs.readFile(KERNEL_FILE, 'utf8')).toBe(await kernelModuleText());
    expect(FC_ADAM_WASM_BASE64.length).toBeGreaterThan(100);
  });

  it('computes x·w forward, then xᵀ·dz and the Keras Adam step in place (units not a multiple of the block)', async () => {
    const [rows, units, n] = [37, 45, 5];
    const rng = createRng(2);
    const rand = (len: number, zeros = 0) => Float32Array.from({ length: len }, () => (rng() < zeros ? 0 : gaussian(rng)));
    const w = rand(rows * units);
    const m = rand(rows * units).map((a) => a * 0.01);
    const v = rand(rows * units).map((a) => a * a * 0.01);
    const shard = await openFcShard({ rows, units, maxBatch: 8, w, m, v, threads: 1 });
    try {
      const x = rand(n * rows, 0.5);
      const { z } = await shard.forward(x, n);
      const zRef = new Float32Array(n * units);
      for (let k = 0; k < n; k++) for (let i = 0; i < rows; i++) for (let j = 0; j < units; j++) zRef[k * units + j]! += x[k * rows + i]! * w[i * units + j]!;
      expect(maxDiff(z, zRef)).toBeLessThan(1e-4);
      const dz = rand(n * units);
      await shard.update(dz, n, 0.01 * Math.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3));
      const g = new Float32Array(rows * units);
      for (let k = 0; k < n; k++) for (let i = 0; i < rows; i++) for (let j = 0; j < units; j++) g[i * units + j]! += x[k * rows + i]! * dz[k * units + j]!;
      const [wRef, mRef, vRef] = [w.slice(), m.slice(), v.slice()];
      adamUpdate(wRef, g, mRef, vRef, 0.01, 3);
      // Read into rows 2.. of larger arrays (as a snapshot assembles shards).
      const full = () => new Float32Array((rows + 2) * units);
      const got = { w: full(), m: full(), v: full() };
      await shard.readInto(got, 2);
      for (const k of ['w', 'm', 'v'] as const) {
        expect(Array.from(got[k].subarray(0, 2 * units)).every((a) => a === 0)).toBe(true);
        got[k] = got[k].subarray(2 * units);
      }
      expect(maxDiff(got.m!, mRef)).toBeLessThan(1e-5);
      expect(maxDiff(got.v!, vRef)).toBeLessThan(1e-5);
      expect(maxDiff(got.w, wRef)).toBeLessThan(1e-5);
      expect(maxDiff(got.w, w)).toBeGreaterThan(1e-3);
    } finally {
      await shard.dispose();
    }
  });
});

describe('trainHead on ONNX Runtime', () => {
  const train = features(70, 40, 3, 1);
  const val = features(20, 40, 3, 2);
  const spec = { pooling: 'flatten' as const, units: 24, dropout: 0.25, classes: 3 };
  const base: TrainHeadOptions = { spec, epochs: 1, batchSize: 16, lr: 0.01, seed: 7, classWeights: [1, 2, 0.5] };

  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it.each([
    { threads: 0, label: 'in this thread' },
    { threads: 2, label: 'in 2 worker threads' },
  ])('agrees with the TF.js trainer to 1e-4 after one epoch (dropout, class weights, partial last batch; $label)', async ({ threads }) => {
    const onnx = await trainHead(memoryRows(train), memoryRows(val), { ...base, engine: 'onnx', threads });
    const tfjs = await trainHead(memoryRows(train), memoryRows(val), { ...base, engine: 'tfjs' });
    expect(onnx.engine).toMatch(threads ? /^onnxruntime-node .*\(2 worker threads\)$/ : /^onnxruntime-node .*\(in process\)$/);
    expect(tfjs.engine).toMatch(/^TF\.js cpu/);
    const [a, b] = [onnx.history[0]!, tfjs.history[0]!];
    for (const k of ['loss', 'accuracy', 'valLoss', 'valAccuracy'] as const) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(1e-4);
    const [pa, pb] = [weightsOf(onnx), weightsOf(tfjs)];
    const init = initHeadParams(spec, 40, 7);
    for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
      expect(maxDiff(pa[k], pb[k])).toBeLessThan(1e-4);
      // and training moved them (5 Adam steps of lr 0.01)
      expect(maxDiff(pa[k], init[k])).toBeGreaterThan(1e-3);
    }
  });

  it('resumes from a saved checkpoint exactly where an uninterrupted run ends (weights, Adam moments, history)', async () => {
    const tmp = await tempDir('mlctl-head-onnx-');
    try {
      const opts = { ...base, epochs: 3, engine: 'onnx' as const, threads: 0 };
      const states: HeadTrainState[] = [];
      const full = await trainHead(memoryRows(train), memoryRows(val), { ...opts, onEpochEnd: (s) => void states.push(s) });
      const config = { fingerprint: { test: 1 } };
      let first: HeadTrainState | undefined;
      await trainHead(memoryRows(train), memoryRows(val), {
        ...opts,
        epochs: 1,
        onEpochEnd: async (s) => {
          first = s;
          await saveCheckpoint(tmp.dir, config, { phase: 'head', head: s });
        },
      }).then((r) => disposeHead(r.weights));
      const ckpt = (await loadCheckpoint(tmp.dir))!;
      expect(ckpt.head.epoch).toBe(1);
      expect(maxDiff(ckpt.head.optimizer.m[0]!, first!.optimizer.m[0]!)).toBe(0);
      const resumed = await trainHead(memoryRows(train), memoryRows(val), { ...opts, resume: ckpt.head, onEpochEnd: (s) => void states.push(s) });
      expect(resumed.history.map((h) => [h.loss, h.valLoss])).toEqual(full.history.map((h) => [h.loss, h.valLoss]));
      expect(maxDiff(weightsOf(resumed).w1, weightsOf(full).w1)).toBe(0);
      expect(maxDiff(states.at(-1)!.optimizer.v[0]!, states[2]!.optimizer.v[0]!)).toBe(0);
      expect(states.at(-1)!.optimizer.step).toBe(15);
    } finally {
      await tmp.cleanup();
    }
  });

  it('reuseSnapshots: later snapshots go into earlier ones\' arrays, each state intact until the next epoch end, same results', async () => {
    const opts = { ...base, epochs: 5, engine: 'onnx' as const, threads: 2 };
    type Big = { w: Float32Array; m: Float32Array; v: Float32Array };
    const big = (s: HeadTrainState): Big => ({ w: s.weights.w1, m: s.optimizer.m[0]!, v: s.optimizer.v[0]! });
    const copy = (b: Big): Big => ({ w: b.w.slice(), m: b.m.slice(), v: b.v.slice() });
    const fresh: Big[] = [];
    const plainRun = await trainHead(memoryRows(train), memoryRows(val), { ...opts, onEpochEnd: (s) => void fresh.push(copy(big(s))) });
    const seen: Big[] = [];
    const copies: Big[] = [];
    const reused = await trainHead(memoryRows(train), memoryRows(val), {
      ...opts,
      reuseSnapshots: true,
      onEpochEnd: (s) => {
        // The previous epoch's arrays are still as they were handed out (a writer may still be reading them).
        if (seen.length) for (const k of ['w', 'm', 'v'] as const) expect(maxDiff(seen.at(-1)![k], copies.at(-1)![k])).toBe(0);
        seen.push(big(s));
        copies.push(copy(big(s)));
      },
    });
    for (let e = 0; e < 5; e++) for (const k of ['w', 'm', 'v'] as const) expect(maxDiff(copies[e]![k], fresh[e]![k])).toBe(0);
    expect(reused.history).toEqual(plainRun.history.map((h, i) => ({ ...h, seconds: reused.history[i]!.seconds })));
    expect(maxDiff(weightsOf(reused).w1, weightsOf(plainRun).w1)).toBe(0);
    // Epoch 3 wrote into arrays of epoch 1 (given back after epoch 2's end), not into fresh memory.
    const first = new Set([seen[0]!.w, seen[0]!.m, seen[0]!.v]);
    expect([seen[2]!.w, seen[2]!.m, seen[2]!.v].filter((a) => first.has(a)).length).toBeGreaterThanOrEqual(2);
  });

  it('--engine tfjs trains with TF.js, and an unknown engine name is an error before any work', async () => {
    const r = await trainHead(memoryRows(train), undefined, { ...base, engine: 'tfjs' });
    expect(r.engine).toMatch(/TF\.js/);
    disposeHead(r.weights);
    await expect(trainHead(memoryRows(train), undefined, { ...base, engine: 'gpu' as never })).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
  });
});

describe('checkpoints', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('mlctl-ckpt-');
  });
  afterAll(() => tmp.cleanup());

  const spec = { pooling: 'flatten' as const, units: 8, dropout: 0, classes: 2 };
  const state = (epoch: number, bestEpoch: number): HeadTrainState => {
    const weights = initHeadParams(spec, 6, epoch);
    const best = bestEpoch === epoch ? weights : initHeadParams(spec, 6, bestEpoch);
    const optimizer = newAdamState([48, 8, 16, 2]);
    optimizer.step = epoch * 10;
    optimizer.m[0]!.fill(epoch);
    return { epoch, weights, best: { weights: best, epoch: bestEpoch, monitor: 1 / bestEpoch }, wait: epoch - bestEpoch, history: [], optimizer };
  };
  const files = async (dir: string) => (await fs.readdir(path.join(dir, 'checkpoint'))).sort();

  it('writes unchanged best weights once, keeps only the files its state names, and loads what it saved', async () => {
    const dir = path.join(tmp.dir, 'run-a');
    const writer = checkpointWriter(dir, { fingerprint: {} });
    await writer.save({ phase: 'head', head: state(1, 1) });
    await writer.save({ phase: 'head', head: state(2, 1) });
    await writer.flush();
    // Epoch 2 did not improve: its state names epoch 1's file for the best weights instead of writing them again.
    const after2 = await files(dir);
    expect(after2.filter((f) => f.startsWith('best-'))).toEqual([]);
    expect(after2.filter((f) => f.startsWith('tensors-'))).toHaveLength(2);
    await writer.save({ phase: 'head', head: state(3, 3) });
    await writer.flush();
    expect((await files(dir)).filter((f) => f.startsWith('tensors-'))).toHaveLength(1);
    const loaded = (await loadCheckpoint(dir))!;
    const want = state(3, 3);
    expect(loaded.head.epoch).toBe(3);
    expect(loaded.head.optimizer.step).toBe(30);
    expect(Array.from(loaded.head.optimizer.m[0]!.slice(0, 3))).toEqual([3, 3, 3]);
    expect(maxDiff(loaded.head.best.weights.w1, want.weights.w1)).toBe(0);
    expect(loaded.head.best.weights.inputSize).toBe(6);
  });

  it('keeps the previous checkpoint whole when a save is torn (files written, state not replaced)', async () => {
    const dir = path.join(tmp.dir, 'run-b');
    await saveCheckpoint(dir, { fingerprint: {} }, { phase: 'head', head: state(1, 1) });
    // A crash mid-save leaves a half-written tensor file that no state.json names.
    await fs.writeFile(path.join(dir, 'checkpoint', 'tensors-0002-head-deadbeef.bin'), Buffer.alloc(100));
    const loaded = (await loadCheckpoint(dir))!;
    expect(loaded.head.epoch).toBe(1);
    expect(maxDiff(loaded.head.weights.w1, state(1, 1).weights.w1)).toBe(0);
    // The next save removes the leftover.
    await saveCheckpoint(dir, { fingerprint: {} }, { phase: 'head', head: state(2, 2) });
    expect((await files(dir)).some((f) => f.includes('deadbeef'))).toBe(false);
    // A state naming a file that is gone is reported, not loaded half.
    const st = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint', 'state.json'), 'utf8')) as { tensors: Array<{ file: string }> };
    await fs.rm(path.join(dir, 'checkpoint', st.tensors[0]!.file));
    await expect(loadCheckpoint(dir)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID' });
  });

  it('reads version 1 checkpoints (one tensors.bin, fc1 moments in the TF.js layout)', async () => {
    const dir = path.join(tmp.dir, 'run-v1');
    const s = state(4, 2);
    // fc1's first moment in the old [units, in] layout: value = 100·unit + input.
    const mT = Float32Array.from({ length: 48 }, (_, i) => 100 * Math.floor(i / 6) + (i % 6));
    const items: Array<[string, number[], Float32Array]> = [
      ...(['w1', 'b1', 'w2', 'b2'] as const).map((k) => [`weights.${k}`, k === 'w1' ? [6, 8] : k === 'w2' ? [8, 2] : [s.weights[k].length], s.weights[k]] as [string, number[], Float32Array]),
      ...(['w1', 'b1', 'w2', 'b2'] as const).map((k) => [`best.${k}`, k === 'w1' ? [6, 8] : k === 'w2' ? [8, 2] : [s.best.weights[k].length], s.best.weights[k]] as [string, number[], Float32Array]),
      ['adam.m0', [48], mT],
      ['adam.v0', [48], mT],
      ...[1, 2, 3].flatMap((i) => [[`adam.m${i}`, [s.optimizer.m[i]!.length], s.optimizer.m[i]!], [`adam.v${i}`, [s.optimizer.v[i]!.length], s.optimizer.v[i]!]] as Array<[string, number[], Float32Array]>),
    ];
    let offset = 0;
    const index = items.map(([name, shape, data]) => {
      const e = { name, shape, offset, length: data.length };
      offset += data.length;
      return e;
    });
    const all = new Float32Array(offset);
    items.forEach(([, , data], i) => all.set(data, index[i]!.offset));
    await fs.mkdir(path.join(dir, 'checkpoint'), { recursive: true });
    await fs.writeFile(path.join(dir, 'checkpoint', 'tensors.bin'), new Uint8Array(all.buffer));
    await fs.writeFile(path.join(dir, 'checkpoint', 'state.json'), JSON.stringify({ version: 1, phase: 'head', epoch: 4, wait: 2, best: { epoch: 2, monitor: 0.5 }, adamStep: 40, history: [], index }));
    const ckpt: Checkpoint = (await loadCheckpoint(dir))!;
    expect(ckpt.head.epoch).toBe(4);
    expect(maxDiff(ckpt.head.best.weights.w1, s.best.weights.w1)).toBe(0);
    // Keras layout [in, units]: element (input 1, unit 2) = 201.
    expect(ckpt.head.optimizer.m[0]![1 * 8 + 2]).toBe(201);
    expect(maxDiff(ckpt.head.optimizer.m[0]!, transposeMatrix(mT, 8, 6))).toBe(0);
  });
});

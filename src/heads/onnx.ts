// The ONNX Runtime head trainer (--engine onnx, and auto when onnxruntime-node loads). fc1 — nearly all the work and
// all the memory of a Flatten head — is split by input rows into shards, one per core (worker threads; in this
// thread for small heads): each shard's forward product runs in ONNX Runtime over weights it reads in place, and its
// gradient + Adam step in the fused WebAssembly kernel. The rest of the step (bias, ReLU, dropout, predictions, loss,
// softmax cross-entropy gradient with class weights, every small gradient) is one ONNX graph run here.
import os from 'node:os';
import { ort, onnxSessionOptions, ORT_VERSION } from '../runtime/ort.js';
import { rowBatches, type FeatureRows } from '../features/rows.js';
import { graphBuilder, valueInfo, type GraphBuilder } from '../onnx/builders.js';
import { DataType, encodeModel, irVersionForOpset } from '../onnx/proto.js';
import { argmax } from '../tasks/scores.js';
import { startWorkerClient, type WorkerClient } from '../util/worker.js';
import { fcForwardGraph } from './fc-graph.js';
import { adamStepSize, adamUpdate, initialParams, type AdamState, type HeadBatch, type HeadParams, type HeadTrainer, type HeadTrainerInit } from './trainer.js';
import { openFcShard, type FcShardApi, type FcShardInit, type FcSnapshot } from './onnx-shard.js';

/** Heads with at least this many fc1 weights train with one worker thread per core; smaller ones in this thread. */
export const WORKER_MIN_WEIGHTS = 4_000_000;
const OPSET = 17;
const F = DataType.FLOAT;

/** The head after fc1's shards: z = Σ shard partials + b1 → ReLU → [× mask] → predictions → log-softmax (+ gradients). */
function headGraph(shards: number, units: number, classes: number, dropout: boolean, train: boolean): Uint8Array {
  const parts = Array.from({ length: shards }, (_, i) => `z${i}`);
  const b = graphBuilder([...parts, 'b1', 'w2', 'b2', 'y', 'sw', 'mask', 'logp', 'dz1', 'db1', 'dw2', 'db2']);
  const z1 = b.node('Sum', [...parts, 'b1'], [b.unique('z1')]);
  const h = b.node('Relu', [z1], [b.unique('h')]);
  const hd = dropout && train ? b.node('Mul', [h, 'mask'], [b.unique('hd')]) : h;
  const logits = b.node('Gemm', [hd, 'w2', 'b2'], [b.unique('logits')]);
  b.node('LogSoftmax', [logits], ['logp'], { axis: 1 });
  const inputs = [...parts.map((p) => valueInfo(p, F, ['n', units])), valueInfo('b1', F, [units]), valueInfo('w2', F, [units, classes]), valueInfo('b2', F, [classes])];
  const outputs = [valueInfo('logp', F, ['n', classes])];
  if (train) {
    backward(b, { hd, z1, dropout });
    inputs.push(valueInfo('y', F, ['n', classes]), valueInfo('sw', F, ['n', 1]));
    if (dropout) inputs.push(valueInfo('mask', F, ['n', units]));
    outputs.push(valueInfo('dz1', F, ['n', units]), valueInfo('db1', F, [units]), valueInfo('dw2', F, [units, classes]), valueInfo('db2', F, [classes]));
  }
  return encodeModel({
    irVersion: irVersionForOpset(OPSET),
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'mlctl',
    graph: { name: train ? 'head_step' : 'head_eval', node: b.nodes, initializer: b.initializers, input: inputs, output: outputs },
  });
}

/**
 * Gradients of Σ sw·CE (sw = class weight / n): dz2 = (softmax - y)·sw, dw2 = hdᵀ·dz2, db2 = Σ dz2,
 * dz1 = (dz2·w2ᵀ [× mask]) where z1 > 0, db1 = Σ dz1. fc1's own gradient is the shards' (xᵀ·dz1, fused with Adam).
 */
function backward(b: GraphBuilder, t: { hd: string; z1: string; dropout: boolean }): void {
  const rows = b.int64Const('rows', [1], [0]);
  const zero = b.floatConst('zero', [], [0]);
  const p = b.node('Exp', ['logp'], [b.unique('p')]);
  const dz2 = b.node('Mul', [b.node('Sub', [p, 'y'], [b.unique('d')]), 'sw'], [b.unique('dz2')]);
  b.node('Gemm', [t.hd, dz2], ['dw2'], { transA: 1 });
  b.node('ReduceSum', [dz2, rows], ['db2'], { keepdims: 0 });
  let dh = b.node('Gemm', [dz2, 'w2'], [b.unique('dh')], { transB: 1 });
  if (t.dropout) dh = b.node('Mul', [dh, 'mask'], [b.unique('dhd')]);
  b.node('Where', [b.node('Greater', [t.z1, zero], [b.unique('active')]), dh, zero], ['dz1']);
  b.node('ReduceSum', ['dz1', rows], ['db1'], { keepdims: 0 });
}

/** A worker thread for a shard, started before its weights exist (modules load while they are made). */
function startShardWorker(): Promise<WorkerClient<unknown>> {
  return startWorkerClient(import.meta.url, 'onnx-worker', 'fc1 shard');
}

/** A shard in a started worker thread (the worker copies its rows into its own memory; nothing is shared). */
async function workerShard(client: WorkerClient<unknown>, init: FcShardInit): Promise<FcShardApi> {
  // The shard's rows move to the worker (transferred, not copied): the caller made them for it.
  await client.call({ op: 'open', init }, [init.w, init.m, init.v].filter((a) => a !== undefined).map((a) => a.buffer as ArrayBuffer));
  return {
    forward: (x, n) => client.call({ op: 'forward', x, n }, [x.buffer as ArrayBuffer]),
    update: (dz, n, lrT) => client.call({ op: 'update', dz, n, lrT }),
    readInto: (dst, row0) => client.call({ op: 'read', dst, row0 }),
    async dispose() {
      await client.call({ op: 'dispose' }).catch(() => undefined);
      await client.close();
    },
  };
}

/** Contiguous row ranges [from, to) of `rows` split `parts` ways. */
function splitRows(rows: number, parts: number): Array<[number, number]> {
  return Array.from({ length: parts }, (_, i) => [Math.floor((i * rows) / parts), Math.floor(((i + 1) * rows) / parts)]);
}

export async function openOnnxHeadTrainer(init: HeadTrainerInit): Promise<HeadTrainer> {
  const { spec, optimizer: o0, batchSize } = init;
  const [D, U, C] = [init.inputSize, spec.units, spec.classes];
  const cores = os.availableParallelism();
  const threads = init.threads ?? (D * U >= WORKER_MIN_WEIGHTS ? cores : 0);
  const evalBatch = Math.max(batchSize, 128);
  const ranges = splitRows(D, Math.max(1, Math.min(threads || 1, D)));
  const shards: FcShardApi[] = [];
  const sessions: ort.InferenceSession[] = [];
  // Workers start first: their modules load on the other cores while this thread makes the starting weights.
  const workers = threads ? ranges.map(() => startShardWorker()) : [];
  workers.forEach((w) => w.catch(() => undefined));
  const dispose = async () => {
    await Promise.all(shards.map((s) => s.dispose()));
    await Promise.all(sessions.map((s) => s.release()));
    // And every worker, also one that never got its shard (another failed first).
    await Promise.all(workers.map((w) => w.then((c) => c.close(), () => undefined)));
  };
  let p0: HeadParams;
  try {
    p0 = initialParams(init);
    const opened = await Promise.allSettled(
      ranges.map(async ([r0, r1], i) => {
        const part = (a: Float32Array) => a.slice(r0 * U, r1 * U);
        // Before the first step the moments are zeros, as a shard's fresh memory already is.
        const moments = o0.step > 0 ? { m: part(o0.m[0]!), v: part(o0.v[0]!) } : {};
        const shardInit: FcShardInit = { rows: r1 - r0, units: U, maxBatch: evalBatch, w: part(p0.w1), ...moments, threads: threads ? 1 : cores, graph: fcForwardGraph(r1 - r0, U) };
        return threads ? workerShard(await workers[i]!, shardInit) : openFcShard(shardInit);
      }),
    );
    for (const r of opened) if (r.status === 'fulfilled') shards.push(r.value);
    const failed = opened.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const small = onnxSessionOptions(1);
    const dropout = spec.dropout > 0;
    sessions.push(await ort.InferenceSession.create(headGraph(shards.length, U, C, dropout, true), small));
    sessions.push(await ort.InferenceSession.create(headGraph(shards.length, U, C, dropout, false), small));
  } catch (err) {
    await dispose();
    throw err;
  }
  const [stepSession, evalSession] = sessions as [ort.InferenceSession, ort.InferenceSession];
  // fc1-sized snapshot arrays: those handed out, and those handed back for the next snapshots.
  const handedOut = new WeakSet<Float32Array>();
  const spare: Float32Array[] = [];
  // The small parameters and their moments live here (slots 1..3 of the Adam state).
  const b1 = p0.b1.slice();
  const w2 = p0.w2.slice();
  const b2 = p0.b2.slice();
  const m = o0.m.slice(1).map((a) => a.slice());
  const v = o0.v.slice(1).map((a) => a.slice());
  // Per-shard input columns; a worker hands its buffer back with each result.
  const xBufs: Float32Array[] = ranges.map(([r0, r1]) => new Float32Array(evalBatch * (r1 - r0)));
  const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

  /** fc1 partials of every shard for rows x [n, D]. */
  const forward = (x: Float32Array, n: number): Promise<Float32Array[]> => {
    if (!threads) return Promise.all([shards[0]!.forward(x, n).then((r) => r.z)]);
    return Promise.all(
      shards.map(async (s, i) => {
        const [r0, r1] = ranges[i]!;
        const xs = xBufs[i]!;
        for (let k = 0; k < n; k++) xs.set(x.subarray(k * D + r0, k * D + r1), k * (r1 - r0));
        const r = await s.forward(xs, n);
        xBufs[i] = r.x;
        return r.z;
      }),
    );
  };
  const headFeeds = (zs: Float32Array[], n: number): Record<string, ort.Tensor> => {
    const feeds: Record<string, ort.Tensor> = { b1: tensor(b1, [U]), w2: tensor(w2, [U, C]), b2: tensor(b2, [C]) };
    zs.forEach((z, i) => (feeds[`z${i}`] = tensor(z, [n, U])));
    return feeds;
  };

  return {
    description: `onnxruntime-node ${ORT_VERSION} + WebAssembly Adam (${threads ? `${shards.length} worker thread${shards.length === 1 ? '' : 's'}` : 'in process'})`,
    async step(batch: HeadBatch, lr: number, step: number) {
      const { n } = batch;
      const zs = await forward(batch.x, n);
      const feeds = headFeeds(zs, n);
      feeds.y = tensor(batch.y, [n, C]);
      feeds.sw = tensor(batch.sw, [n, 1]);
      if (batch.mask) feeds.mask = tensor(batch.mask, [n, U]);
      const out = await stepSession.run(feeds);
      const logp = out.logp!.data as Float32Array;
      let loss = 0;
      let correct = 0;
      for (let k = 0; k < n; k++) {
        const label = batch.labels[k]!;
        loss -= batch.sw[k]! * logp[k * C + label]!;
        if (argmax(logp, k * C, C) === label) correct++;
      }
      const updates = Promise.all(shards.map((s) => s.update(out.dz1!.data as Float32Array, n, adamStepSize(lr, step))));
      // The small parameters update here while the shards update fc1.
      adamUpdate(b1, out.db1!.data as Float32Array, m[0]!, v[0]!, lr, step);
      adamUpdate(w2, out.dw2!.data as Float32Array, m[1]!, v[1]!, lr, step);
      adamUpdate(b2, out.db2!.data as Float32Array, m[2]!, v[2]!, lr, step);
      await updates;
      return { loss, correct };
    },
    async evaluate(rows: FeatureRows) {
      let loss = 0;
      let correct = 0;
      for await (const b of rowBatches(rows, evalBatch)) {
        const out = await evalSession.run(headFeeds(await forward(b.x, b.n), b.n));
        const logp = out.logp!.data as Float32Array;
        for (let k = 0; k < b.n; k++) {
          loss -= logp[k * C + b.labels[k]!]!;
          if (argmax(logp, k * C, C) === b.labels[k]) correct++;
        }
      }
      return { loss: rows.count ? loss / rows.count : NaN, accuracy: rows.count ? correct / rows.count : NaN };
    },
    async snapshot(withOptimizer: boolean) {
      // Shards write their rows straight into the full arrays (shared memory when they are workers): one copy, into
      // arrays handed back (recycle) when there are any.
      const full = () => {
        const a = spare.pop() ?? new Float32Array(threads ? new SharedArrayBuffer(D * U * 4) : new ArrayBuffer(D * U * 4));
        handedOut.add(a);
        return a;
      };
      const dst: FcSnapshot = withOptimizer ? { w: full(), m: full(), v: full() } : { w: full() };
      await Promise.all(shards.map((s, i) => s.readInto(dst, ranges[i]![0])));
      const params: HeadParams = { inputSize: D, units: U, classes: C, w1: dst.w, b1: b1.slice(), w2: w2.slice(), b2: b2.slice() };
      if (!withOptimizer) return { params };
      const optimizer: AdamState = { step: 0, m: [dst.m!, ...m.map((a) => a.slice())], v: [dst.v!, ...v.map((a) => a.slice())] };
      return { params, optimizer };
    },
    recycle(arrays: Float32Array[]) {
      for (const a of arrays) if (handedOut.delete(a)) spare.push(a);
    },
    dispose,
  };
}

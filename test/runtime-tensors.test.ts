// Named tensors from the engine up: ONNX Runtime declarations (names, datatypes, dynamic dims) and runs of any
// datatype in this thread and in a worker thread (BigInt64Array and BOOL across the thread boundary); the batcher
// stacking every input along the batch dimension and splitting every output back; the one-float adapter; and the
// wire encodings of every datatype (JSON, little-endian bytes, gRPC typed contents).
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import { createBatcher } from '../src/runtime/batcher.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { enginePool } from '../src/runtime/pool.js';
import { floatIO, runFloat } from '../src/runtime/float.js';
import { allocate, DATATYPES, type Datatype, type Tensor } from '../src/runtime/tensor.js';
import { bytesToData, dataToBytes, dataToContents, dataToJson, jsonToData, valuesToData, CONTENTS_FIELD } from '../src/serve/wire.js';
import { fixedModel, mixedModel } from './helpers/tensor-models.js';

const feeds = (n: number, seed = 1): Tensor[] => [
  { name: 'x', datatype: 'FP32', shape: [n, 4], data: Float32Array.from({ length: n * 4 }, (_, i) => ((i * 7 + seed) % 11) - 5) },
  { name: 'k', datatype: 'INT64', shape: [n, 1], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(((i + seed) % 5) - 2)) },
];

let direct: ort.InferenceSession;
const engines: InferenceEngine[] = [];

beforeAll(async () => {
  direct = await ort.InferenceSession.create(mixedModel());
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
  await direct.release();
});

async function reference(f: Tensor[]): Promise<{ y: Float32Array; flag: Uint8Array }> {
  const [x, k] = f;
  const out = await direct.run({ x: new ort.Tensor('float32', x!.data as Float32Array, x!.shape), k: new ort.Tensor('int64', k!.data as BigInt64Array, k!.shape) });
  return { y: out.y!.data as Float32Array, flag: out.flag!.data as Uint8Array };
}

describe('the ONNX engine with named tensors of several datatypes', () => {
  it('declares what the model declares and runs feeds into fetches, in this thread and in a worker thread', async () => {
    for (const worker of [false, true]) {
      const engine = await openEngine({ kind: 'onnx', model: mixedModel() }, { engine: 'onnx', worker, threads: 1 });
      engines.push(engine);
      expect(engine.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }, { name: 'k', datatype: 'INT64', shape: [-1, 1] }]);
      expect(engine.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 4] }, { name: 'flag', datatype: 'BOOL', shape: [-1, 4] }]);
      expect(engine.batched).toBe(true);
      const f = feeds(3);
      const want = await reference(f);
      // Feeds in any order; every output by default, in the model's order.
      const [y, flag] = await engine.run([f[1]!, f[0]!]);
      expect(y).toMatchObject({ name: 'y', datatype: 'FP32', shape: [3, 4] });
      expect(Array.from(y!.data as Float32Array)).toEqual(Array.from(want.y));
      expect(flag).toMatchObject({ name: 'flag', datatype: 'BOOL', shape: [3, 4] });
      expect(flag!.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(flag!.data as Uint8Array)).toEqual(Array.from(want.flag));
      // Fetches by name, in the order asked; the caller's arrays are left as they were.
      const only = await engine.run(f, ['flag']);
      expect(only.map((t) => t.name)).toEqual(['flag']);
      expect((f[1]!.data as BigInt64Array).length).toBe(3);
      await expect(engine.run([f[0]!])).rejects.toThrow(/1 feed\(s\) for 2 input\(s\)/);
      await expect(engine.run([f[0]!, { ...f[1]!, datatype: 'INT32', data: Int32Array.of(1, 2, 3) }])).rejects.toThrow(/input k is INT64, got INT32/);
      await expect(engine.run(f, ['nope'])).rejects.toThrow(/no output nope/);
    }
  });

  it('refuses the one-float adapter for a model with several tensors, naming them', async () => {
    const engine = await openEngine({ kind: 'onnx', model: mixedModel() }, { engine: 'onnx', threads: 1 });
    engines.push(engine);
    expect(() => floatIO(engine)).toThrow(/takes x FP32 \[-1, 4\], k INT64 \[-1, 1\] and answers y FP32 \[-1, 4\], flag BOOL \[-1, 4\]; this needs a model with one input tensor and one output tensor/);
  });

  it('marks a model without a batch dimension unbatched; runFloat then runs it one example at a time', async () => {
    const engine = await openEngine({ kind: 'onnx', model: fixedModel() }, { engine: 'onnx', threads: 1 });
    engines.push(engine);
    expect(engine.batched).toBe(false);
    expect(engine.inputs).toEqual([{ name: 'w', datatype: 'FP32', shape: [2, 3] }]);
    await expect(runFloat(engine, new Float32Array(12), 2)).rejects.toThrow(/leading batch dimension/);
  });
});

describe('the batcher over named tensors', () => {
  it('stacks every input along the batch dimension, runs once, and splits every output back as views', async () => {
    const engine = await openEngine({ kind: 'onnx', model: mixedModel() }, { engine: 'onnx', threads: 1 });
    engines.push(engine);
    const runs: number[] = [];
    const batcher = createBatcher({ batched: true, run: (f) => (runs.push(f[0]!.shape[0]!), engine.run(f)) }, { maxBatch: 8, maxDelayMs: 50, maxQueue: 64 });
    const parts = [feeds(1, 1), feeds(3, 2), feeds(2, 3)];
    const results = await Promise.all(parts.map((f, i) => batcher.submit(f, f[0]!.shape[0]!, `client-${i}`)));
    expect(runs).toEqual([6]);
    for (const [i, f] of parts.entries()) {
      const want = await reference(f);
      const [y, flag] = results[i]!.outputs;
      expect(y!.shape).toEqual([f[0]!.shape[0], 4]);
      expect(Array.from(y!.data as Float32Array)).toEqual(Array.from(want.y));
      expect(Array.from(flag!.data as Uint8Array)).toEqual(Array.from(want.flag));
      expect(results[i]!.batchSize).toBe(6);
    }
    // Views into one batch output, not copies.
    expect((results[1]!.outputs[0]!.data as Float32Array).buffer).toBe((results[2]!.outputs[0]!.data as Float32Array).buffer);
  });

  it('hands the engine the arrays it stacked itself, and a lone request\'s only when its submitter hands them over', async () => {
    const handed: Array<boolean | undefined> = [];
    const echo = async (f: readonly Tensor[], _fetches?: readonly string[], o?: { handOver?: boolean }) => (handed.push(o?.handOver), [{ ...f[0]!, name: 'out' }]);
    const b = createBatcher({ batched: true, run: echo }, { maxBatch: 8, maxDelayMs: 30, maxQueue: 64 });
    const t = (): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }];
    await Promise.all([b.submit(t(), 1, 'a'), b.submit(t(), 1, 'b')]);
    expect(handed).toEqual([true]);
    const lone = createBatcher({ batched: true, run: echo }, { maxBatch: 8, maxDelayMs: 0, maxQueue: 64 });
    await lone.submit(t(), 1, 'a', { handOver: true });
    await lone.submit(t(), 1, 'a');
    expect(handed).toEqual([true, true, false]);
    // Chunks of a request larger than a batch are views into the submitter's arrays: never handed over.
    const small = createBatcher({ batched: true, run: echo }, { maxBatch: 1, maxDelayMs: 0, maxQueue: 64 });
    await small.submit([{ name: 'x', datatype: 'FP32', shape: [2, 2], data: new Float32Array(4) }], 2, 'a', { handOver: true });
    expect(handed.slice(3)).toEqual([false, false]);
  });

  it('splits a request larger than --max-batch into chunks and joins their outputs', async () => {
    const engine = await openEngine({ kind: 'onnx', model: mixedModel() }, { engine: 'onnx', threads: 1 });
    engines.push(engine);
    const runs: number[] = [];
    const batcher = createBatcher({ batched: true, run: (f) => (runs.push(f[0]!.shape[0]!), engine.run(f)) }, { maxBatch: 2, maxDelayMs: 0, maxQueue: 64 });
    const f = feeds(5, 4);
    const r = await batcher.submit(f, 5);
    expect(runs.sort()).toEqual([1, 2, 2]);
    expect(Array.from(r.outputs[0]!.data as Float32Array)).toEqual(Array.from((await reference(f)).y));
    await expect(batcher.submit([f[0]!, { ...f[1]!, shape: [4, 1] }], 5)).rejects.toThrow(/every input needs the 5 example\(s\)/);
  });

  it('runs batches side by side on an engine pool, one per instance, with the same results as one instance', async () => {
    // Two real ONNX Runtime instances in worker threads: their runs overlap in time only when the batcher lets them.
    const members = await Promise.all([0, 1].map(() => openEngine({ kind: 'onnx', model: mixedModel() }, { engine: 'onnx', threads: 1, worker: true })));
    engines.push(...members);
    let inFlight = 0;
    let most = 0;
    const counted = members.map((e) => ({ ...e, run: async (f: readonly Tensor[], fetches?: readonly string[]) => {
      most = Math.max(most, ++inFlight);
      try {
        return await e.run(f, fetches);
      } finally {
        inFlight--;
      }
    } }));
    const pool = enginePool(counted);
    expect(pool.description).toMatch(/^2 instances of onnxruntime-node .*1 thread/);
    for (const concurrency of [1, 2]) {
      most = 0;
      const b = createBatcher(pool, { maxBatch: 1, maxDelayMs: 0, maxQueue: 64, concurrency });
      const parts = Array.from({ length: 6 }, (_, i) => feeds(1, i));
      const results = await Promise.all(parts.map((f, i) => b.submit(f, 1, `client-${i}`)));
      expect(most).toBe(concurrency);
      for (const [i, f] of parts.entries()) expect(Array.from(results[i]!.outputs[0]!.data as Float32Array)).toEqual(Array.from((await reference(f)).y));
      await b.idle();
    }
    expect(enginePool([members[0]!])).toBe(members[0]);
  });

  it('never stacks requests whose per-example shapes differ, and runs an unbatched model one request at a time', async () => {
    const seen: number[][] = [];
    const echo = async (f: readonly Tensor[]) => (seen.push(f[0]!.shape), [{ ...f[0]!, name: 'out' }]);
    const b = createBatcher({ batched: true, run: echo }, { maxBatch: 8, maxDelayMs: 30, maxQueue: 64 });
    const t = (n: number, w: number): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [n, w], data: new Float32Array(n * w).fill(w) }];
    const [a, c, d] = await Promise.all([b.submit(t(1, 3), 1, 'a'), b.submit(t(2, 5), 2, 'b'), b.submit(t(1, 3), 1, 'c')]);
    expect(seen.map((s) => s.join('x')).sort()).toEqual(['2x3', '2x5']);
    expect(Array.from(c!.outputs[0]!.data as Float32Array)).toEqual(new Array(10).fill(5));
    expect(a!.outputs[0]!.shape).toEqual([1, 3]);
    expect(d!.outputs[0]!.shape).toEqual([1, 3]);
    const unbatched: number[] = [];
    const u = createBatcher({ batched: false, run: async (f) => (unbatched.push(1), [...f]) }, { maxBatch: 8, maxDelayMs: 30, maxQueue: 64 });
    await Promise.all([u.submit(t(1, 2), 1, 'a'), u.submit(t(1, 2), 1, 'b'), u.submit(t(1, 2), 1, 'c')]);
    expect(unbatched).toHaveLength(3);
    await expect(u.submit(t(2, 2), 2)).rejects.toThrow(/no batch dimension/);
  });
});

describe('tensor data on the wire, every datatype', () => {
  const sample: Record<Exclude<Datatype, 'BYTES'>, unknown[]> = {
    BOOL: [true, false, true],
    UINT8: [0, 255, 7],
    UINT16: [0, 65535, 300],
    UINT32: [0, 4294967295, 70000],
    UINT64: [0, '18446744073709551615', 9007199254740991],
    INT8: [-128, 127, 0],
    INT16: [-32768, 32767, -1],
    INT32: [-2147483648, 2147483647, 5],
    INT64: ['-9223372036854775808', '9223372036854775807', -3],
    FP16: [1.5, -2, 65504],
    BF16: [1, -2.5, 256],
    FP32: [1.25, -3.5, 1e-3],
    FP64: [Math.PI, -1e300, 0],
  };

  it('decodes JSON values of each datatype exactly, little-endian bytes round-trip, and typed contents carry them', () => {
    for (const datatype of DATATYPES) {
      if (datatype === 'BYTES') continue;
      const data = jsonToData(datatype, sample[datatype], `input ${datatype}`);
      const t = { name: datatype, datatype, shape: [3], data } as Tensor;
      const back = bytesToData(datatype, dataToBytes(t), datatype);
      expect(Array.from(back as ArrayLike<number>), datatype).toEqual(Array.from(data as ArrayLike<number>));
      const json = dataToJson(t);
      if (datatype === 'BOOL') expect(json).toEqual([true, false, true]);
      else if (datatype === 'INT64' || datatype === 'UINT64') expect(json.map(String)).toEqual((data as BigInt64Array).length ? Array.from(data as BigInt64Array, (v) => String(Number(v))) : []);
      else if (datatype === 'FP16' || datatype === 'BF16' || datatype === 'FP64') expect(json).toEqual(sample[datatype]);
      else if (datatype !== 'FP32') expect(json).toEqual(sample[datatype]);
      const contents = dataToContents(t);
      if (datatype === 'FP16' || datatype === 'BF16') expect(contents).toBeUndefined();
      else {
        const field = CONTENTS_FIELD[datatype]!;
        const values = contents![field] as unknown[];
        expect(Array.from(valuesToData(datatype, values, 'contents') as ArrayLike<number>), datatype).toEqual(Array.from(data as ArrayLike<number>));
      }
    }
    expect((jsonToData('INT64', ['9223372036854775807'], 'k') as BigInt64Array)[0]).toBe(9223372036854775807n);
    expect(dataToContents({ name: 'k', datatype: 'INT64', shape: [1], data: BigInt64Array.of(9223372036854775807n) })).toEqual({ int64_contents: ['9223372036854775807'] });
  });

  it('refuses values outside a datatype with a 400 naming the element', () => {
    expect(() => jsonToData('INT8', [1, 200], 'input a')).toThrow(/input a: element 1 is 200, not within the INT8 range -128\.\.127/);
    expect(() => jsonToData('UINT64', [-1], 'input a')).toThrow(/not within the UINT64 range/);
    expect(() => jsonToData('INT32', [1.5], 'input a')).toThrow(/not an integer/);
    expect(() => jsonToData('BOOL', ['yes'], 'input a')).toThrow(/not true or false/);
    expect(() => jsonToData('INT64', [2 ** 60], 'input a')).toThrow(/a decimal string/);
    expect(() => bytesToData('INT32', new Uint8Array(6), 'input a')).toThrow(/6 bytes is not a whole number of INT32 values/);
  });

  it('writes BYTES length-prefixed, and BOOL as one byte per element', () => {
    const t: Tensor = { name: 's', datatype: 'BYTES', shape: [2], data: [Buffer.from('ab'), Buffer.from('')] };
    expect(Array.from(dataToBytes(t))).toEqual([2, 0, 0, 0, 97, 98, 0, 0, 0, 0]);
    expect(dataToJson(t)).toEqual(['ab', '']);
    expect(Array.from(dataToBytes({ name: 'b', datatype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) }))).toEqual([1, 0]);
    expect(Array.from(bytesToData('BOOL', Uint8Array.of(0, 5), 'b') as Uint8Array)).toEqual([0, 1]);
    expect(allocate('BYTES', 2)).toEqual([new Uint8Array(0), new Uint8Array(0)]);
  });
});

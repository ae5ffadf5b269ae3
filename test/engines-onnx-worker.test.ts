// The ONNX Runtime engine in a worker thread (serve): same outputs as in this thread, the event loop keeps running
// while a batch computes (onnxruntime-node's own run() holds it), and bad input or a closed engine fail clearly.
import { describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import { graphBuilder, valueInfo } from '../src/onnx/builders.js';
import { DataType, encodeModel } from '../src/onnx/proto.js';
import { openEngine } from '../src/runtime/engine.js';
import { createRng } from '../src/util/random.js';
import { runFloat, floatIO } from '../src/runtime/float.js';

/** y = relu(x · W) · W2 with x [n, 512]: heavy enough (≈ 50 MFLOP per example) that a batch takes a few ms. */
function model(): Uint8Array {
  const rng = createRng(4);
  const b = graphBuilder(['x', 'y']);
  const w = b.floatConst('w', [512, 2048], Float32Array.from({ length: 512 * 2048 }, () => rng() - 0.5));
  const w2 = b.floatConst('w2', [2048, 3], Float32Array.from({ length: 2048 * 3 }, () => rng() - 0.5));
  const h = b.node('Relu', [b.node('MatMul', ['x', w], ['h0'])], ['h']);
  b.node('MatMul', [h, w2], ['y']);
  return encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'g', node: b.nodes, initializer: b.initializers, input: [valueInfo('x', DataType.FLOAT, ['n', 512])], output: [valueInfo('y', DataType.FLOAT, ['n', 3])] } });
}

describe('ONNX engine in a worker thread', () => {
  it('gives the same outputs as in this thread, and leaves the event loop free while it computes', async () => {
    const bytes = model();
    const local = await openEngine({ kind: 'onnx', model: bytes }, { engine: 'onnx' });
    const threaded = await openEngine({ kind: 'onnx', model: bytes }, { engine: 'onnx', worker: true });
    try {
      expect(threaded.description).toMatch(/in a worker thread/);
      expect(floatIO(threaded).inputShape).toEqual([512]);
      expect(floatIO(threaded).outputSize).toBe(3);
      const rng = createRng(5);
      const x = Float32Array.from({ length: 64 * 512 }, () => rng());
      const before = x.slice();
      const [a, b] = [await runFloat(local, x, 64), await runFloat(threaded, x, 64)];
      expect(Array.from(b)).toEqual(Array.from(a));
      // The caller's array is left as it was (the worker computes on its own copy).
      expect(x).toEqual(before);
      // Timers fire while a batch computes in the worker; in this thread, run() holds the event loop.
      const ticksDuring = async (run: () => Promise<unknown>) => {
        let ticks = 0;
        const timer = setInterval(() => ticks++, 0);
        for (let i = 0; i < 4; i++) await run();
        clearInterval(timer);
        return ticks;
      };
      const big = Float32Array.from({ length: 512 * 512 }, () => rng());
      const inWorker = await ticksDuring(() => runFloat(threaded, big, 512));
      const inThread = await ticksDuring(() => runFloat(local, big, 512));
      expect(inWorker).toBeGreaterThan(inThread);
      expect(inWorker).toBeGreaterThanOrEqual(4);
    } finally {
      await local.dispose();
      await threaded.dispose();
    }
  });

  it('takes the feeds without a copy when the caller hands them over, and copies them otherwise', async () => {
    const engine = await openEngine({ kind: 'onnx', model: model() }, { engine: 'onnx', worker: true });
    try {
      const rng = createRng(6);
      const x = Float32Array.from({ length: 2 * 512 }, () => rng());
      const feed = () => [{ name: 'x', datatype: 'FP32' as const, shape: [2, 512], data: x }];
      const kept = await engine.run(feed());
      expect(x.length).toBe(2 * 512);
      const [taken] = await engine.run(feed(), undefined, { handOver: true });
      // Transferred to the worker: the caller's array is detached, and the answer is the same.
      expect(x.length).toBe(0);
      expect(Array.from(taken!.data as Float32Array)).toEqual(Array.from(kept[0]!.data as Float32Array));
    } finally {
      await engine.dispose();
    }
  });

  it('rejects input of the wrong size before posting it, and fails clearly once disposed', async () => {
    const engine = await openEngine({ kind: 'onnx', model: model() }, { engine: 'onnx', worker: true });
    await expect(runFloat(engine, new Float32Array(100), 1)).rejects.toThrow(/expected 1 x \[512\] = 512 floats, got 100/);
    await engine.dispose();
    await expect(runFloat(engine, new Float32Array(512), 1)).rejects.toThrow(/closed/);
  });
});

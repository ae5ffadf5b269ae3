// Worker-thread side of the threaded ONNX Runtime engine (engines/onnx.ts, serve): the session lives here, so a batch
// computes without holding the main thread's event loop; inputs arrive and outputs leave as transferred buffers.
import { workerData } from 'node:worker_threads';
import type { InferenceEngine } from '../runtime/engine.js';
import { serveWorkerRequests } from '../util/worker.js';
import { onnxEngineFromBytes, type SessionEngineOptions } from './onnx.js';

type Request = { id: number; op: 'run'; x: Float32Array; batch: number } | { id: number; op: 'dispose' };

const { bytes, opts } = workerData as { bytes: Uint8Array; opts: SessionEngineOptions };

await serveWorkerRequests<InferenceEngine, Request>(
  async () => {
    // The main thread checked the bytes before starting this worker.
    const engine = await onnxEngineFromBytes(bytes, { ...opts, worker: false });
    return { state: engine, ready: { inputShape: engine.inputShape, outputSize: engine.outputSize, description: engine.description } };
  },
  async (engine, r) => {
    if (r.op === 'dispose') {
      await engine.dispose();
      return [undefined, []];
    }
    let y = await engine.run(r.x, r.batch);
    if (y.byteOffset !== 0 || y.byteLength !== y.buffer.byteLength) y = y.slice();
    return [y, [y.buffer as ArrayBuffer]];
  },
);

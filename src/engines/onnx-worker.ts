// Worker-thread side of the threaded ONNX Runtime engine (engines/onnx.ts, serve): the session lives here, so a batch
// computes without holding the main thread's event loop; feeds arrive and outputs leave as transferred buffers.
import { workerData } from 'node:worker_threads';
import type { InferenceEngine } from '../runtime/engine.js';
import type { Tensor } from '../runtime/tensor.js';
import { serveWorkerRequests } from '../util/worker.js';
import { onnxSessionEngine, type SessionEngineOptions } from './onnx-session.js';
import { forTransfer } from './transfer.js';

type Request = { id: number; op: 'run'; feeds: Tensor[]; fetches?: string[] } | { id: number; op: 'dispose' };

const { bytes, opts } = workerData as { bytes: Uint8Array; opts: SessionEngineOptions };

await serveWorkerRequests<InferenceEngine, Request>(
  async () => {
    // The main thread checked the bytes before starting this worker.
    const engine = await onnxSessionEngine(bytes, opts);
    return { state: engine, ready: { inputs: engine.inputs, outputs: engine.outputs, batched: engine.batched, description: engine.description } };
  },
  async (engine, r) => {
    if (r.op === 'dispose') {
      await engine.dispose();
      return [undefined, []];
    }
    const { tensors, transfer } = forTransfer(await engine.run(r.feeds, r.fetches), false);
    return [tensors, transfer];
  },
);

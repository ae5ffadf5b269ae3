// Worker-thread side of the threaded TF.js engine: loads the package's TF.js model on its own backend instance
// and runs batches posted by the main thread, so a long batch never blocks HTTP handling or health probes.
import { workerData } from 'node:worker_threads';
import { parseModelKey } from '../artifacts/encryption.js';
import { loadPackage, loadTfjsModel } from '../artifacts/package.js';
import { selectBackend, type BackendName } from '../runtime/backend.js';
import type { InferenceEngine } from '../runtime/engine.js';
import { serveWorkerRequests } from '../util/worker.js';
import { tfjsEngine } from './tfjs.js';

const { dir, backend, key } = workerData as { dir: string; backend: BackendName; key?: { bytes: Uint8Array; source: string } };

await serveWorkerRequests<InferenceEngine, { id: number; x: Float32Array; batch: number }>(
  async () => {
    await selectBackend(backend);
    // The main thread verified the package's hashes before starting this worker.
    const pkg = await loadPackage(dir, { verify: false, ...(key ? { key: parseModelKey(key.bytes, key.source) } : {}) });
    const engine = tfjsEngine(await loadTfjsModel(pkg));
    return { state: engine, ready: { inputShape: engine.inputShape, outputSize: engine.outputSize, description: engine.description } };
  },
  async (engine, m) => {
    const out = (await engine.run(m.x, m.batch)).slice();
    return [out, [out.buffer as ArrayBuffer]];
  },
);

// Worker-thread side of the threaded TF.js engine: loads the package's TF.js model on its own backend instance
// and runs batches posted by the main thread, so a long batch never blocks HTTP handling or health probes.
import { workerData } from 'node:worker_threads';
import { parseModelKey } from '../artifacts/encryption.js';
import { loadPackage, loadTfjsModel } from '../artifacts/package.js';
import { selectBackend, type BackendName } from '../runtime/backend.js';
import { manifestTensors } from '../runtime/declared.js';
import type { InferenceEngine } from '../runtime/engine.js';
import type { Tensor } from '../runtime/tensor.js';
import { serveWorkerRequests } from '../util/worker.js';
import { tfjsEngine } from './tfjs.js';
import { forTransfer } from './transfer.js';

const { dir, backend, key } = workerData as { dir: string; backend: BackendName; key?: { bytes: Uint8Array; source: string } };

await serveWorkerRequests<InferenceEngine, { id: number; feeds: Tensor[]; fetches?: string[] }>(
  async () => {
    await selectBackend(backend);
    // The main thread verified the package's hashes before starting this worker.
    const pkg = await loadPackage(dir, { verify: false, ...(key ? { key: parseModelKey(key.bytes, key.source) } : {}) });
    const engine = tfjsEngine(await loadTfjsModel(pkg), { declared: manifestTensors(pkg.manifest, pkg.dir) });
    return { state: engine, ready: { inputs: engine.inputs, outputs: engine.outputs, batched: engine.batched, description: engine.description } };
  },
  async (engine, m) => {
    // TF.js hands out arrays it may share: copy before transferring.
    const { tensors, transfer } = forTransfer(await engine.run(m.feeds, m.fetches), true);
    return [tensors, transfer];
  },
);

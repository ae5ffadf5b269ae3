// Worker-thread side of the threaded TF.js engine: loads the package's TF.js model on its own backend instance
// and runs batches posted by the main thread, so a long batch never blocks HTTP handling or health probes.
import { parentPort, workerData } from 'node:worker_threads';
import { parseModelKey } from '../artifacts/encryption.js';
import { loadPackage, loadTfjsModel } from '../artifacts/package.js';
import { selectBackend, type BackendName } from '../runtime/backend.js';
import { tfjsEngine } from './tfjs.js';

const { dir, backend, key } = workerData as { dir: string; backend: BackendName; key?: { bytes: Uint8Array; source: string } };
const port = parentPort!;

try {
  await selectBackend(backend);
  // The main thread verified the package's hashes before starting this worker.
  const pkg = await loadPackage(dir, { verify: false, ...(key ? { key: parseModelKey(key.bytes, key.source) } : {}) });
  const engine = tfjsEngine(await loadTfjsModel(pkg));
  port.on('message', (m: { id: number; x: Float32Array; batch: number }) => {
    engine.run(m.x, m.batch).then(
      (y) => {
        const out = y.slice();
        port.postMessage({ type: 'result', id: m.id, y: out }, [out.buffer]);
      },
      (err: Error) => port.postMessage({ type: 'error', id: m.id, message: err.message }),
    );
  });
  port.postMessage({ type: 'ready', inputShape: engine.inputShape, outputSize: engine.outputSize, description: engine.description });
} catch (err) {
  // The code travels with the message so the main thread can tell a package fault (bad key, tampered file) apart.
  port.postMessage({ type: 'fail', message: (err as Error).message, code: (err as { code?: unknown }).code });
}

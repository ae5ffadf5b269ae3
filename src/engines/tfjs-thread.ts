// TF.js inference in a worker thread (serve, watch): the wasm/cpu backends compute on the calling thread, so a
// VGG16 batch would block the event loop (and health probes) for seconds; here the main thread only posts batches.
import type { LoadedPackage } from '../artifacts/package.js';
import { ERRORS, MlctlError, type ErrorCode } from '../errors.js';
import { currentBackend, type BackendName } from '../runtime/backend.js';
import type { EngineSource, InferenceEngine } from '../runtime/engine.js';
import { moduleWorker } from '../util/worker.js';

type Msg =
  | { type: 'ready'; inputShape: number[]; outputSize: number; description: string }
  | { type: 'fail'; message: string; code?: string }
  | { type: 'result'; id: number; y: Float32Array }
  | { type: 'error'; id: number; message: string };

/** A worker's start-up failure as the main thread's error: an mlctl error keeps its code (and so its exit code). */
function workerFailure(m: { message: string; code?: string }): Error {
  if (!m.code || !(m.code in ERRORS)) return new Error(m.message);
  const err = new MlctlError(m.code as ErrorCode);
  err.message = m.message;
  return err;
}

export async function openTfjsThreadEngine(pkg: LoadedPackage, backend: BackendName): Promise<InferenceEngine> {
  // An encrypted package's key goes to the worker in memory (structured clone), never through a file.
  const key = pkg.key ? { bytes: new Uint8Array(pkg.key.bytes), source: pkg.key.source } : undefined;
  const worker = moduleWorker(import.meta.url, 'tfjs-worker', { dir: pkg.dir, backend, key });
  const pending = new Map<number, { resolve: (y: Float32Array) => void; reject: (e: Error) => void }>();
  let broken: Error | undefined;
  let nextId = 1;
  const failAll = (err: Error) => {
    broken ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const info = await new Promise<Extract<Msg, { type: 'ready' }>>((resolve, reject) => {
    worker.on('message', (m: Msg) => {
      if (m.type === 'ready') resolve(m);
      else if (m.type === 'fail') reject(workerFailure(m));
      else {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.type === 'result') p?.resolve(m.y);
        else p?.reject(new Error(m.message));
      }
    });
    worker.on('error', (err) => {
      failAll(err);
      reject(err);
    });
    worker.on('exit', (code) => {
      const err = new Error(`the TF.js worker thread exited (code ${code})`);
      failAll(err);
      reject(err);
    });
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  return {
    name: 'tfjs-thread',
    platform: 'tensorflowjs',
    description: `${info.description} (worker thread)`,
    inputShape: info.inputShape,
    outputSize: info.outputSize,
    provenance: { verified: pkg.verified, source: `package ${pkg.manifest.formats.tfjs} (manifest sha256, loaded in a worker thread)` },
    run(x, batch) {
      if (broken) return Promise.reject(broken);
      const id = nextId++;
      const copy = x.slice();
      return new Promise<Float32Array>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, x: copy, batch }, [copy.buffer]);
      });
    },
    async dispose() {
      broken ??= new Error('the engine was disposed');
      await worker.terminate();
    },
  };
}

export async function openTfjsThread(source: EngineSource): Promise<InferenceEngine> {
  if (source.kind !== 'package') throw new Error('a worker thread loads models from packages only');
  return openTfjsThreadEngine(source.pkg, currentBackend()?.name ?? 'cpu');
}

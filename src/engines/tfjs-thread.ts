// TF.js inference in a worker thread (serve, watch): the wasm/cpu backends compute on the calling thread, so a
// VGG16 batch would block the event loop (and health probes) for seconds; here the main thread only posts batches.
import type { LoadedPackage } from '../artifacts/package.js';
import { currentBackend, type BackendName } from '../runtime/backend.js';
import type { EngineSource, InferenceEngine } from '../runtime/engine.js';
import { startWorkerClient } from '../util/worker.js';

export async function openTfjsThreadEngine(pkg: LoadedPackage, backend: BackendName): Promise<InferenceEngine> {
  // An encrypted package's key goes to the worker in memory (structured clone), never through a file.
  const key = pkg.key ? { bytes: new Uint8Array(pkg.key.bytes), source: pkg.key.source } : undefined;
  const client = await startWorkerClient<{ inputShape: number[]; outputSize: number; description: string }>(import.meta.url, 'tfjs-worker', 'TF.js engine', { dir: pkg.dir, backend, key });
  const info = client.ready;
  return {
    name: 'tfjs-thread',
    platform: 'tensorflowjs',
    description: `${info.description} (worker thread)`,
    inputShape: info.inputShape,
    outputSize: info.outputSize,
    provenance: { verified: pkg.verified, source: `package ${pkg.manifest.formats.tfjs} (manifest sha256, loaded in a worker thread)` },
    run(x, batch) {
      const copy = x.slice();
      return client.call<Float32Array>({ x: copy, batch }, [copy.buffer as ArrayBuffer]);
    },
    dispose: () => client.close(),
  };
}

export async function openTfjsThread(source: EngineSource): Promise<InferenceEngine> {
  if (source.kind !== 'package') throw new Error('a worker thread loads models from packages only');
  return openTfjsThreadEngine(source.pkg, currentBackend()?.name ?? 'cpu');
}

// TF.js inference in a worker thread (serve, watch): the wasm/cpu backends compute on the calling thread, so a
// VGG16 batch would block the event loop (and health probes) for seconds; here the main thread only posts batches.
import type { LoadedPackage } from '../artifacts/package.js';
import { ensureBackend, type BackendName } from '../runtime/backend.js';
import type { EngineSource, InferenceEngine } from '../runtime/engine.js';
import { checkFeeds, type Tensor, type TensorSpec } from '../runtime/tensor.js';
import { startWorkerClient } from '../util/worker.js';
import { forTransfer } from './transfer.js';

export async function openTfjsThreadEngine(pkg: LoadedPackage, backend: BackendName): Promise<InferenceEngine> {
  // An encrypted package's key goes to the worker in memory (structured clone), never through a file.
  const key = pkg.key ? { bytes: new Uint8Array(pkg.key.bytes), source: pkg.key.source } : undefined;
  const client = await startWorkerClient<{ inputs: TensorSpec[]; outputs: TensorSpec[]; batched: boolean; description: string }>(import.meta.url, 'tfjs-worker', 'TF.js engine', { dir: pkg.dir, backend, key });
  const info = client.ready;
  return {
    name: 'tfjs-thread',
    platform: 'tensorflowjs',
    description: `${info.description} (worker thread)`,
    inputs: info.inputs,
    outputs: info.outputs,
    batched: info.batched,
    provenance: { verified: pkg.verified, source: `package ${pkg.manifest.formats.tfjs} (manifest sha256, loaded in a worker thread)` },
    run(feeds, fetches, runOpts) {
      checkFeeds('tfjs-thread', info.inputs, feeds);
      const { tensors, transfer } = forTransfer(feeds, !runOpts?.handOver);
      return client.call<Tensor[]>({ feeds: tensors, fetches }, transfer);
    },
    dispose: () => client.close(),
  };
}

export async function openTfjsThread(source: EngineSource): Promise<InferenceEngine> {
  if (source.kind !== 'package') throw new Error('a worker thread loads models from packages only');
  return openTfjsThreadEngine(source.pkg, (await ensureBackend()).name);
}

// The batching queue of one served version (runtime/batcher.ts) wired to serve: whom it shares fairly between, and
// what it reports (Prometheus batch size, inference time and queue depth; batch observers such as Triton's statistics).
import type { InferenceEngine } from '../runtime/engine.js';
import { createBatcher, type Batcher } from '../runtime/batcher.js';
import type { ServeMetrics } from './metrics.js';
import type { BatchEvent, InferContext, ServedModel } from './types.js';

/** Whom the batching queue shares fairly between: the API key, else the connection, else the client address. */
export const fairnessKey = (ctx: InferContext) => (ctx.keyId ? `key:${ctx.keyId}` : ctx.connection ? `conn:${ctx.connection}` : `ip:${ctx.clientAddress ?? ''}`);

export interface VersionBatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  /** Batches that run at once: the version's engine instances. */
  instances: number;
  metrics?: ServeMetrics;
  /** Told about every engine run. */
  onBatch: (event: BatchEvent) => void;
  /** Requests on their way to this queue (decoding, or announced by a front end and not yet inside infer()). */
  incoming: () => number;
}

export function versionBatcher(model: ServedModel, engine: InferenceEngine, opts: VersionBatcherOptions): Batcher {
  const labels = { model: model.name, version: String(model.version) };
  return createBatcher(engine, {
    maxBatch: opts.maxBatch,
    maxDelayMs: opts.maxDelayMs,
    maxQueue: opts.maxQueue,
    concurrency: opts.instances,
    onBatch: (size, seconds) => {
      opts.metrics?.batchSize.observe(labels, size);
      opts.metrics?.inferenceSeconds.observe(labels, seconds);
      opts.onBatch({ name: model.name, version: model.version, size, seconds });
    },
    onDepth: (d) => opts.metrics?.queueDepth.set(labels, d),
    incoming: opts.incoming,
  });
}

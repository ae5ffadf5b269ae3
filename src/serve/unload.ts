// Taking a served version away: it is hidden from new requests by the repository first; here its queued and
// in-flight work finishes, its queue-depth series is dropped and its engine is freed.
import type { Batcher } from '../runtime/batcher.js';
import type { InferenceEngine } from '../runtime/engine.js';
import type { ServeMetrics } from './metrics.js';
import type { ServedModel } from './types.js';

export interface Draining {
  model: ServedModel;
  engine: InferenceEngine;
  batcher: Batcher;
  /** Requests that resolved this version and have not finished. */
  inflight: number;
}

/** Wait for the version's requests to finish, then free what it holds. */
export async function drainAndDispose(e: Draining, metrics?: ServeMetrics): Promise<void> {
  while (e.inflight > 0) {
    await e.batcher.idle();
    if (e.inflight > 0) await new Promise((r) => setTimeout(r, 5));
  }
  metrics?.queueDepth.remove({ model: e.model.name, version: String(e.model.version) });
  await e.engine.dispose();
}

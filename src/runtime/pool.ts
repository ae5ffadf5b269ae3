// Several instances of one model side by side (Triton's instance_group count): one engine to its callers, each run
// going to an instance that is free. For machines where one instance's operators cannot keep every core busy; on 2
// cores with MobileNetV2 two single-threaded instances gained nothing (0.97x img/s: the batches got smaller).
import type { InferenceEngine } from './engine.js';

/**
 * One engine over `instances` opened from the same model (same inputs and outputs): runs go to a free instance, in
 * arrival order when all are busy. dispose() disposes them all. A single instance is returned as it is.
 */
export function enginePool(instances: readonly InferenceEngine[]): InferenceEngine {
  if (instances.length === 0) throw new RangeError('an engine pool needs at least one instance');
  const first = instances[0]!;
  if (instances.length === 1) return first;
  const free = [...instances];
  const waiting: Array<(e: InferenceEngine) => void> = [];
  const take = () => (free.length ? Promise.resolve(free.pop()!) : new Promise<InferenceEngine>((resolve) => waiting.push(resolve)));
  const give = (e: InferenceEngine) => {
    const next = waiting.shift();
    if (next) next(e);
    else free.push(e);
  };
  return {
    name: first.name,
    platform: first.platform,
    description: `${instances.length} instances of ${first.description}`,
    inputs: first.inputs,
    outputs: first.outputs,
    batched: first.batched,
    provenance: first.provenance,
    async run(feeds, fetches, opts) {
      const e = await take();
      try {
        return await e.run(feeds, fetches, opts);
      } finally {
        give(e);
      }
    },
    async dispose() {
      await Promise.all(instances.map((e) => e.dispose()));
    },
  };
}

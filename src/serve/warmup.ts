// Warm-up of a freshly loaded version before it becomes visible: zero tensors of every input, at batch 1 and at the
// largest batch, so the first real requests do not pay for the engine's allocations.
import type { InferenceEngine } from '../runtime/engine.js';
import { allocate, elementCount, type Tensor } from '../runtime/tensor.js';
import type { Logger } from '../util/log.js';

/** Zero feeds for `n` examples: the batch dimension is `n`, other dynamic dimensions 1. */
function zeroFeeds(engine: InferenceEngine, n: number): Tensor[] {
  return engine.inputs.map((spec) => {
    const shape = spec.shape.map((d, i) => (d >= 0 ? d : i === 0 ? n : 1));
    return { name: spec.name, datatype: spec.datatype, shape, data: allocate(spec.datatype, elementCount(shape)) } as Tensor;
  });
}

/**
 * Run the engine on zeros at batch 1 and `maxBatch` (once for a model without a batch dimension); returns the time
 * it took (ms). `lenient`: a model that cannot take zeros (a generic model may need real values) is warned about
 * and left cold instead of failing its load.
 */
export async function warmUp(engine: InferenceEngine, maxBatch: number, opts: { lenient?: boolean; logger?: Logger; what: string }): Promise<number> {
  const t0 = performance.now();
  const sizes = engine.batched && maxBatch > 1 ? [1, maxBatch] : [1];
  try {
    for (const n of sizes) await engine.run(zeroFeeds(engine, n));
  } catch (err) {
    if (!opts.lenient) throw err;
    opts.logger?.warn(`${opts.what}: warm-up on zero inputs failed (${(err as Error).message.split('\n')[0]}); serving it cold`);
  }
  return performance.now() - t0;
}

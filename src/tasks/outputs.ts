// Engine outputs as tasks read them: the output a manifest names, per-example rows of a batched tensor, and the
// Tensor view of a single-FP32-output engine's result (what engine.run returns until every engine speaks Tensor[]).
import { MlctlError } from '../errors.js';
import { elementCount, toNumbers, type Tensor } from '../runtime/tensor.js';
import type { TaskModel } from './types.js';

/** The output a task reads: the one named like the manifest's output, else the first. */
export function outputOf(outputs: readonly Tensor[], m: TaskModel): Tensor {
  const out = outputs.find((o) => o.name === m.output.name) ?? outputs[0];
  if (!out) throw new MlctlError('PACKAGE_INVALID', [m.output.name ?? 'the model', 'the model returned no output tensor']);
  return out;
}

/** Per-example views of a batched output: [n, ...] → n rows of prod(...) values (no copy for FP32/FP64). */
export function exampleRows(out: Tensor): Array<Float32Array | Float64Array> {
  const data = toNumbers(out);
  const n = out.shape.length ? out.shape[0]! : 1;
  const width = out.shape.length > 1 ? elementCount(out.shape.slice(1)) : n ? data.length / n : 0;
  return Array.from({ length: n }, (_, i) => data.subarray(i * width, (i + 1) * width));
}

/** `n` examples' packed FP32 output (runtime/float.ts runFloat) as the manifest's output tensor [n, size]. */
export function floatOutputs(m: TaskModel, y: Float32Array, n: number): Tensor[] {
  return [{ name: m.output.name ?? 'output', datatype: 'FP32', shape: [n, n ? y.length / n : (m.output.size ?? 0)], data: y }];
}

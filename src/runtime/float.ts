// The one-float-tensor view of an engine, for every caller that feeds one FP32 tensor and reads one back (train's
// feature extraction, evaluate, classic, optimize, predict, watch, latency): one place that picks the two tensors,
// checks sizes and keeps a Float32Array input zero-copy. Models with several inputs or outputs are refused here, clearly.
import { MlctlError } from '../errors.js';
import type { InferenceEngine } from './engine.js';
import { describeSpec, elementCount, toNumbers, type Tensor, type TensorSpec } from './tensor.js';

export interface FloatIO {
  /** The model's one input (FP32) and one output (any numeric datatype, read as float32). */
  input: TensorSpec;
  output: TensorSpec;
  /** Per-example input shape (without the batch dimension); -1 where the model leaves a dimension free. */
  inputShape: number[];
  /** Values per example in the output; -1 when the model leaves a dimension of it free. */
  outputSize: number;
}

const views = new WeakMap<InferenceEngine, FloatIO>();

const listed = (specs: readonly TensorSpec[]) => (specs.length ? specs.map(describeSpec).join(', ') : 'nothing');

/** The engine's single float input and output; ENGINE_IO_UNSUPPORTED for models with several tensors or other types. */
export function floatIO(engine: InferenceEngine): FloatIO {
  const known = views.get(engine);
  if (known) return known;
  const fail = (why: string): never => {
    throw new MlctlError('ENGINE_IO_UNSUPPORTED', [engine.description, listed(engine.inputs), listed(engine.outputs), why]);
  };
  if (engine.inputs.length !== 1 || engine.outputs.length !== 1) fail('this needs a model with one input tensor and one output tensor');
  const [input, output] = [engine.inputs[0]!, engine.outputs[0]!];
  if (input.datatype !== 'FP32') fail('this feeds one FP32 tensor');
  if (output.datatype === 'BYTES') fail('this reads numbers back');
  // The leading dimension is the batch: dynamic, or a fixed 1 (then examples run one at a time).
  if (!input.shape.length || !output.shape.length || (!engine.batched && (input.shape[0] !== 1 || output.shape[0] !== 1))) fail('this needs a leading batch dimension');
  const outDims = output.shape.slice(1);
  const io: FloatIO = { input, output, inputShape: input.shape.slice(1), outputSize: outDims.some((d) => d < 0) ? -1 : elementCount(outDims) };
  views.set(engine, io);
  return io;
}

/** The per-example input shape for `per` values: a single free dimension is solved from the data's length. */
function exampleShape(engine: InferenceEngine, io: FloatIO, x: Float32Array, batch: number): number[] {
  const free = io.inputShape.filter((d) => d < 0).length;
  const fixed = elementCount(io.inputShape.filter((d) => d >= 0));
  const per = Number.isInteger(batch) && batch >= 1 ? x.length / batch : NaN;
  if (free === 0 || (free === 1 && Number.isInteger(per / fixed) && per > 0)) {
    const shape = free ? io.inputShape.map((d) => (d < 0 ? per / fixed : d)) : io.inputShape;
    if (Number.isInteger(batch) && batch >= 1 && x.length === batch * elementCount(shape)) return shape;
  }
  const want = free ? `${batch} x [${io.inputShape.join(', ')}] (${free} free dimension${free > 1 ? 's' : ''})` : `${batch} x [${io.inputShape.join(', ')}] = ${batch * fixed}`;
  throw new RangeError(`${engine.name} engine: expected ${want} floats, got ${x.length}`);
}

/** `batch` examples packed in `x` as the engine's one input tensor (its shape checked; `x` itself, not a copy). */
export function floatFeed(engine: InferenceEngine, x: Float32Array, batch: number): Tensor<'FP32'> {
  const io = floatIO(engine);
  return { name: io.input.name, datatype: 'FP32', shape: [batch, ...exampleShape(engine, io, x, batch)], data: x };
}

/** A numeric output as float32: the tensor's own array when it is FP32, else its values converted. */
export const floatsOf = (t: Tensor): Float32Array => (t.data instanceof Float32Array ? t.data : Float32Array.from(toNumbers(t)));

/**
 * Run `batch` examples packed in `x` (row-major, batch first) through the engine's one input; returns its one output
 * as float32, batch first. `x` goes to the engine as it is (no copy). A model without a batch dimension runs one
 * example per call.
 */
export async function runFloat(engine: InferenceEngine, x: Float32Array, batch: number): Promise<Float32Array> {
  const feed = floatFeed(engine, x, batch);
  const fetch = [floatIO(engine).output.name];
  if (engine.batched || batch === 1) return floatsOf((await engine.run([feed], fetch))[0]!);
  const shape = [1, ...feed.shape.slice(1)];
  const per = elementCount(shape);
  const parts: Float32Array[] = [];
  for (let i = 0; i < batch; i++) parts.push(floatsOf((await engine.run([{ ...feed, shape, data: x.subarray(i * per, (i + 1) * per) }], fetch))[0]!));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// Request inputs → engine feeds, checked against what the model is served as: the one check every transport (REST
// V2, /predict, TF Serving, gRPC) goes through. Image and tabular models keep their contract (one FP32 input, or
// encoded images as BYTES "image" decoded with the model's own preprocessing); a generic tensor model's inputs are
// matched by name, datatype and shape.
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { ImageGeometry } from '../data/preprocess.js';
import { describeSpec, dimMatches, elementCount, type Tensor, type TensorSpec } from '../runtime/tensor.js';
import { badRequest } from './errors.js';
import { imageBytesToInput } from './images.js';
import type { InferInput, ServedModel } from './types.js';

export interface ValidateOptions {
  /** Largest decoded image accepted, in pixels. */
  maxPixels: number;
  /** Most examples one request may carry (--max-queue). */
  maxQueue: number;
  /** The engine's name for a served input. */
  feedName: (served: string) => string;
  /** The request is one picture of a larger one sent one by one (InferContext.part): errors name which. */
  part?: { index: number; of: number };
}

/** Feeds for the engine and how many examples they carry. */
export interface Feeds {
  feeds: Tensor[];
  n: number;
  /** The feeds' arrays were made for this request (decoded images): the engine may take them without a copy. */
  owned: boolean;
  /** Encoded images: where each picture landed in the input (results in input pixels map back through it). */
  images?: ImageGeometry[];
}

/** Index of the first NaN or ±Infinity in `data`, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}

export function imageSpecOf(model: ServedModel): ImageInputSpec {
  const input = model.manifest.input;
  if (input.kind !== 'image') throw badRequest(`model ${model.name} takes ${input.kind} input, not images`);
  return input;
}

function checkCount(n: number, opts: ValidateOptions, model: ServedModel): void {
  if (n > opts.maxQueue) throw badRequest(`the request has ${n} examples, more than the queue holds (--max-queue ${opts.maxQueue}); split it`);
  // Tensor-level transports answer one set of tensors per request: a model without a batch dimension has one example's.
  if (n > 1 && !model.batched) {
    const also = model.manifest.input.kind === 'image' ? '; POST /predict takes several pictures and runs them one by one' : '';
    throw badRequest(`model ${model.name} has no batch dimension: it takes one example per request, not ${n} (shape [1, …]); send them in separate requests${also}`);
  }
}

/** An image or tabular model: one FP32 tensor [N, …] (finite), or for image models BYTES encoded images. */
async function taskFeeds(model: ServedModel, inputs: InferInput[], opts: ValidateOptions): Promise<Feeds> {
  if (inputs.length !== 1) throw badRequest(`model ${model.name} takes exactly one input tensor, got ${inputs.length}`);
  const input = inputs[0]!;
  const shape = model.inputs[0]!.shape.slice(1);
  const per = elementCount(shape);
  const isImage = model.manifest.input.kind === 'image';
  const inputName = model.inputs[0]!.name;
  if (input.datatype !== 'FP32' && input.datatype !== 'BYTES') {
    throw badRequest(`input ${input.name} has datatype "${String(input.datatype)}"; use FP32 (preprocessed NHWC floats) or BYTES (encoded images)`);
  }
  // Encoded images (BYTES) may also be called "image", the name /predict and most image clients use.
  if (input.name !== inputName && !(input.datatype === 'BYTES' && input.name === 'image')) {
    throw badRequest(`model ${model.name} has no input "${String(input.name).slice(0, 100)}"; its input is "${inputName}"${isImage ? ' (FP32 preprocessed NHWC, or BYTES encoded images also named "image")' : ''}`);
  }
  const feed = (x: Float32Array, n: number, owned: boolean): Feeds => ({ feeds: [{ name: opts.feedName(inputName), datatype: 'FP32', shape: [n, ...shape], data: x }], n, owned });
  if (input.datatype === 'FP32') {
    const s = input.shape;
    if (s.length !== shape.length + 1 || s.slice(1).some((d, i) => d !== shape[i]) || !Number.isInteger(s[0]) || s[0]! < 1) {
      const what = isImage ? ' (NHWC, preprocessed)' : ' (one row of encoded features per example)';
      throw badRequest(`input ${input.name} has shape [${s.join(', ')}]; model ${model.name} expects [N, ${shape.join(', ')}]${what} with N >= 1`);
    }
    const n = s[0]!;
    if (!(input.data instanceof Float32Array)) throw badRequest(`input ${input.name}: FP32 data must be numbers`);
    if (input.data.length !== n * per) throw badRequest(`input ${input.name} has ${input.data.length} values but shape [${s.join(', ')}] needs ${n * per}`);
    const bad = firstNonFinite(input.data);
    if (bad >= 0) throw badRequest(`input ${input.name}: element ${bad} is ${input.data[bad]}; inputs must be finite float32 numbers (no NaN or Infinity, |x| <= 3.4e38)`);
    checkCount(n, opts, model);
    // The request's own numbers: observers (audit, statistics) may still read them after the run.
    return feed(input.data, n, false);
  }
  if (!isImage) throw badRequest(`model ${model.name} takes ${model.manifest.input.kind} rows: send FP32 [N, ${shape.join(', ')}], not BYTES`);
  const spec = imageSpecOf(model);
  const s = input.shape;
  if (!((s.length === 1 && s[0]! >= 1) || (s.length === 2 && s[0]! >= 1 && s[1] === 1))) {
    throw badRequest(`input ${input.name} has shape [${s.join(', ')}]; BYTES image input must be [N] or [N, 1], one encoded image per element`);
  }
  const n = s[0]!;
  const data = input.data;
  if (!Array.isArray(data) || data.length !== n) throw badRequest(`input ${input.name} has ${Array.isArray(data) ? data.length : 0} elements but shape [${s.join(', ')}] needs ${n}`);
  checkCount(n, opts, model);
  // The one buffer of the batch: every image is decoded and preprocessed straight into its slot.
  const x = new Float32Array(n * per);
  const images = await Promise.all(data.map((bytes, i) => imageBytesToInput(bytes, spec, x, i * per, opts.maxPixels, opts.part ? `image ${opts.part.index + 1} of ${opts.part.of}` : n > 1 ? `image ${i + 1} of ${n}` : 'image')));
  return { ...feed(x, n, true), images };
}

/** A generic tensor model: every declared input exactly once, of its datatype and shape; the batch is the leading dimension. */
function tensorFeeds(model: ServedModel, inputs: InferInput[], opts: ValidateOptions): Feeds {
  const listed = model.inputs.map(describeSpec).join(', ');
  const seen = new Set<string>();
  for (const t of inputs) {
    if (seen.has(t.name)) throw badRequest(`input ${String(t.name).slice(0, 100)} is given twice; send each input once`);
    seen.add(t.name);
    if (!model.inputs.some((s) => s.name === t.name)) throw badRequest(`model ${model.name} has no input "${String(t.name).slice(0, 100)}"; its inputs are ${listed}`);
  }
  const feeds = model.inputs.map((spec: TensorSpec) => {
    const t = inputs.find((i) => i.name === spec.name);
    if (!t) throw badRequest(`model ${model.name} needs input ${describeSpec(spec)}; its inputs are ${listed}`);
    if (t.datatype !== spec.datatype) throw badRequest(`input ${t.name} has datatype ${t.datatype}; model ${model.name} takes ${describeSpec(spec)}`);
    if (t.shape.length !== spec.shape.length || !t.shape.every((d, i) => dimMatches(spec.shape[i]!, d))) {
      throw badRequest(`input ${t.name} has shape [${t.shape.join(', ')}]; model ${model.name} takes ${describeSpec(spec)} (-1: any size)`);
    }
    if (t.data.length !== elementCount(t.shape)) throw badRequest(`input ${t.name} has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${elementCount(t.shape)}`);
    return { ...t, name: opts.feedName(t.name) };
  });
  if (!model.batched) return { feeds, n: 1, owned: false };
  const n = feeds[0]!.shape[0]!;
  const off = feeds.find((f) => f.shape[0] !== n);
  if (off) throw badRequest(`input ${off.name} has ${off.shape[0]} example(s) along its first dimension, input ${feeds[0]!.name} has ${n}; every input carries the same examples`);
  if (n < 1) throw badRequest(`the request has no examples: the first dimension of every input is 0`);
  checkCount(n, opts, model);
  return { feeds, n, owned: false };
}

/** The one validation of a request's inputs for `model`, into the feeds its engine runs. */
export async function toFeeds(model: ServedModel, inputs: InferInput[], opts: ValidateOptions): Promise<Feeds> {
  return model.manifest.input.kind === 'tensors' ? tensorFeeds(model, inputs, opts) : taskFeeds(model, inputs, opts);
}

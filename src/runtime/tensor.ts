// Named tensors of any datatype: the one value type from the engine up (engine.run(feeds) → fetches, the batcher,
// serve's V2/gRPC/TF Serving codecs, tasks' post-processing). Datatype names are the Open Inference Protocol's.
import { MlctlError } from '../errors.js';

/** Open Inference Protocol (KServe V2) datatypes, the names every mlctl layer uses. */
export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

/**
 * Element storage per datatype. BOOL is 0/1 bytes, FP16/BF16 are raw 16-bit patterns, INT64/UINT64 are bigints,
 * BYTES is one byte string per element.
 */
export interface TensorDataOf {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  BF16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: Uint8Array[];
}
export type TensorData = TensorDataOf[Datatype];
export type NumericDatatype = Exclude<Datatype, 'BYTES'>;
type NumericArray = TensorDataOf[NumericDatatype];

/** A value: name, datatype, full shape (batch dimension included when the model has one), row-major data. */
export interface Tensor<D extends Datatype = Datatype> {
  name: string;
  datatype: D;
  shape: number[];
  data: TensorDataOf[D];
}

/** A declared input or output: -1 marks a dynamic dimension (the batch dimension of a batched model among them). */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

type Ctor = { new (n: number): NumericArray; BYTES_PER_ELEMENT: number };

const STORAGE: Record<NumericDatatype, Ctor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  BF16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

export const isDatatype = (v: unknown): v is Datatype => typeof v === 'string' && (DATATYPES as readonly string[]).includes(v);

/** Bytes per element of a fixed-size datatype (BYTES has none: undefined). */
export function bytesPerElement(datatype: Datatype): number | undefined {
  return datatype === 'BYTES' ? undefined : STORAGE[datatype].BYTES_PER_ELEMENT;
}

/** Elements in a shape (the empty shape is a scalar: 1). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** Zeroed storage for `n` elements of `datatype` (BYTES: `n` empty strings). */
export function allocate<D extends Datatype>(datatype: D, n: number): TensorDataOf[D] {
  if (datatype === 'BYTES') return Array.from({ length: n }, () => new Uint8Array(0)) as TensorDataOf[D];
  return new STORAGE[datatype as NumericDatatype](n) as TensorDataOf[D];
}

/** True when `data` is the storage `datatype` uses (BOOL/UINT8 and FP16/BF16/UINT16 share theirs). */
export function storageMatches(datatype: Datatype, data: unknown): boolean {
  if (datatype === 'BYTES') return Array.isArray(data) && data.every((v) => v instanceof Uint8Array);
  return data instanceof STORAGE[datatype];
}

/** A dimension matches a declared one when the declaration is dynamic (-1) or equal. */
export const dimMatches = (declared: number, actual: number) => declared < 0 || declared === actual;

/** Whether a concrete shape fits a declared one (same rank, every fixed dimension equal). */
export function shapeMatches(declared: readonly number[], actual: readonly number[]): boolean {
  return declared.length === actual.length && declared.every((d, i) => dimMatches(d, actual[i]!));
}

function checkBatchable(parts: readonly Tensor[]): void {
  const first = parts[0]!;
  for (const t of parts) {
    if (t.datatype !== first.datatype || t.shape.length !== first.shape.length || t.shape.length === 0 || t.shape.slice(1).some((d, i) => d !== first.shape[i + 1])) {
      throw new MlctlError('INPUT_INVALID', [`tensor ${first.name}: cannot batch ${t.datatype} [${t.shape.join(', ')}] with ${first.datatype} [${first.shape.join(', ')}]`]);
    }
  }
}

/** Tensors of the same name, datatype and per-example shape joined along their leading (batch) dimension. */
export function concatBatch(parts: readonly Tensor[]): Tensor {
  if (!parts.length) throw new RangeError('concatBatch: no tensors');
  if (parts.length === 1) return parts[0]!;
  checkBatchable(parts);
  const first = parts[0]!;
  const rows = parts.reduce((a, t) => a + t.shape[0]!, 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (first.datatype === 'BYTES') return { name: first.name, datatype: 'BYTES', shape, data: parts.flatMap((t) => t.data as Uint8Array[]) };
  const data = allocate(first.datatype, elementCount(shape)) as NumericArray;
  let off = 0;
  for (const t of parts) {
    (data as Float32Array).set(t.data as Float32Array, off);
    off += (t.data as NumericArray).length;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/** Examples [start, end) of a tensor along its leading (batch) dimension; numeric data is a view, not a copy. */
export function sliceBatch<D extends Datatype>(t: Tensor<D>, start: number, end: number): Tensor<D> {
  if (!t.shape.length) throw new RangeError(`sliceBatch: tensor ${t.name} is a scalar`);
  const per = elementCount(t.shape.slice(1));
  const data = (t.datatype === 'BYTES' ? (t.data as Uint8Array[]).slice(start * per, end * per) : (t.data as NumericArray).subarray(start * per, end * per)) as TensorDataOf[D];
  return { name: t.name, datatype: t.datatype, shape: [end - start, ...t.shape.slice(1)], data };
}

/** Numbers of any numeric tensor as doubles (for post-processing that does arithmetic on outputs of any dtype). */
export function toNumbers(t: Tensor): Float64Array | Float32Array {
  const d = t.data;
  if (d instanceof Float32Array || d instanceof Float64Array) return d;
  if (t.datatype === 'BYTES') throw new MlctlError('INPUT_INVALID', [`tensor ${t.name} is BYTES, not numbers`]);
  if (t.datatype === 'FP16') return Float64Array.from(d as Uint16Array, halfToNumber);
  if (t.datatype === 'BF16') return Float64Array.from(d as Uint16Array, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
  return Float64Array.from(d as ArrayLike<number | bigint>, Number);
}

/** IEEE 754 half-precision bits → number. */
export function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** IEEE 754 half-precision bits of a number (round to nearest even; overflow to ±Infinity). */
export function numberToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** True when a model with these declarations takes a batch: every tensor's leading dimension is dynamic. */
export function batchable(specs: readonly TensorSpec[]): boolean {
  return specs.every((s) => s.shape.length > 0 && s.shape[0]! < 0);
}

/** A tensor whose storage does not fit its datatype or does not hold its shape's element count is INPUT_INVALID. */
export function checkTensor(t: Tensor): void {
  if (!storageMatches(t.datatype, t.data)) throw new MlctlError('INPUT_INVALID', [`tensor ${t.name}: its data is not ${t.datatype} storage`]);
  const want = elementCount(t.shape);
  if (t.data.length !== want) throw new MlctlError('INPUT_INVALID', [`tensor ${t.name} has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${want}`]);
}

/**
 * A declaration read from a record (mlctl.json, a worker's message): known datatype, a shape of integers where -1
 * marks a dynamic dimension. `where` names the record in the error.
 */
export function specOf(record: { name?: unknown; datatype?: unknown; shape?: unknown }, where: string): TensorSpec {
  const { name, datatype, shape } = record;
  if (typeof name !== 'string' || !name) throw new MlctlError('PACKAGE_INVALID', [where, 'a tensor declaration has no name']);
  if (!isDatatype(datatype)) throw new MlctlError('PACKAGE_INVALID', [where, `tensor ${name} has datatype ${JSON.stringify(datatype)}; use one of ${DATATYPES.join(', ')}`]);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < -1)) throw new MlctlError('PACKAGE_INVALID', [where, `tensor ${name} has shape ${JSON.stringify(shape)}; use integers, -1 for a dynamic dimension`]);
  return { name, datatype, shape: [...(shape as number[])] };
}

/**
 * Feeds an engine was given, against what it declares: each declared input exactly once, by name, of its datatype,
 * rank and fixed sizes, with as many elements as its shape says. Engines call it before running (a RangeError names
 * what is wrong); serve validates requests with its own words before they get this far.
 */
export function checkFeeds(engine: string, inputs: readonly TensorSpec[], feeds: readonly Tensor[]): void {
  const fail = (why: string): never => {
    throw new RangeError(`${engine} engine: ${why} (it takes ${inputs.map(describeSpec).join(', ')})`);
  };
  if (feeds.length !== inputs.length) fail(`${feeds.length} feed(s) for ${inputs.length} input(s)`);
  for (const spec of inputs) {
    const t = feeds.find((f) => f.name === spec.name);
    if (!t) return fail(`no feed for input ${spec.name}`);
    if (t.datatype !== spec.datatype) fail(`input ${spec.name} is ${spec.datatype}, got ${t.datatype}`);
    if (!shapeMatches(spec.shape, t.shape)) fail(`input ${spec.name} has shape [${spec.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    if (!storageMatches(t.datatype, t.data) || t.data.length !== elementCount(t.shape)) fail(`input ${spec.name} of shape [${t.shape.join(', ')}] needs ${elementCount(t.shape)} ${t.datatype} elements, got ${t.data.length}`);
  }
}

/** The per-example shape of a declared tensor of a batched model: its shape without the leading batch dimension. */
export const exampleShape = (spec: TensorSpec) => spec.shape.slice(1);

/** "FP32 [-1, 224, 224, 3]": a spec as messages print it. */
export const describeSpec = (spec: TensorSpec) => `${spec.name} ${spec.datatype} [${spec.shape.join(', ')}]`;

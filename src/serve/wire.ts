// Tensor data on the wire, for every datatype, shared by REST and gRPC: JSON values (numbers, INT64 as numbers,
// BOOL as true/false, BYTES as base64 strings or {"b64"}), little-endian bytes (V2 binary extension, gRPC raw
// contents; BYTES as 4-byte length + bytes) and the typed *_contents fields of the V2 gRPC messages.
import os from 'node:os';
import { allocate, bytesPerElement, numberToHalf, toNumbers, type Datatype, type Tensor, type TensorData } from '../runtime/tensor.js';
import { badRequest } from './errors.js';

export const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Deepest array nesting a request may use: tensors have a handful of dimensions, not thousands. */
export const MAX_NESTING = 32;

type Numeric = Exclude<TensorData, Uint8Array[]>;

/**
 * The leaves of nested JSON arrays in order, walked with an explicit stack (no recursion, no Array.flat), so a body
 * nested thousands of levels deep is a 400 naming the limit instead of a stack overflow.
 */
export function flattenNested(data: unknown[], what: string): unknown[] {
  const out: unknown[] = [];
  const stack: Array<{ a: unknown[]; i: number }> = [{ a: data, i: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.a.length) {
      stack.pop();
      continue;
    }
    const v = top.a[top.i++];
    if (Array.isArray(v)) {
      if (stack.length >= MAX_NESTING) throw badRequest(`${what}: arrays are nested more than ${MAX_NESTING} levels deep; a tensor has at most ${MAX_NESTING} dimensions (send its data flat with "shape", or nested once per dimension)`);
      stack.push({ a: v, i: 0 });
    } else out.push(v);
  }
  return out;
}

/** Flatten nested JSON arrays of numbers into Float32Array, refusing anything that is not a number finite in float32. */
export function toFloat32(data: unknown, what: string): Float32Array {
  if (!Array.isArray(data)) throw badRequest(`${what}: data must be an array of numbers (flat or nested)`);
  const flat = flattenNested(data, what);
  const out = new Float32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${what}: element ${i} is ${typeof v === 'number' ? v : JSON.stringify(v)?.slice(0, 40)}, not a finite number`);
    out[i] = v;
    if (!Number.isFinite(out[i]!)) throw badRequest(`${what}: element ${i} is ${v}, beyond the float32 range (±3.4e38)`);
  }
  return out;
}

/** Decode a base64 string (standard or URL-safe), refusing text that is not base64 at all. */
export function fromBase64(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string') throw badRequest(`${what}: expected a base64 string`);
  const clean = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw badRequest(`${what}: not valid base64`);
  return Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64');
}

/** BYTES elements in JSON: base64 strings or {"b64": "..."} objects, flat or nested. */
export function toBytesList(data: unknown, what: string): Uint8Array[] {
  if (!Array.isArray(data)) throw badRequest(`${what}: BYTES data must be an array of base64 strings`);
  return flattenNested(data, what).map((v, i) => {
    if (v && typeof v === 'object' && 'b64' in v) return fromBase64((v as { b64: unknown }).b64, `${what} element ${i}`);
    return fromBase64(v, `${what} element ${i}`);
  });
}

/** Inclusive integer ranges of the integer datatypes up to 32 bits. */
const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647], UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295],
};

/** One JSON (or gRPC typed) value as an element of `datatype`, range-checked; `at` names it in errors. */
function element(datatype: Datatype, v: unknown, at: () => string): number | bigint {
  const bad = (want: string): never => {
    throw badRequest(`${at()} is ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)?.slice(0, 40)}, not ${want}`);
  };
  switch (datatype) {
    case 'BOOL':
      if (v === true || v === 1) return 1;
      if (v === false || v === 0) return 0;
      return bad('true or false');
    case 'INT64':
    case 'UINT64': {
      // Numbers up to 2^53 exactly; larger values as decimal strings (JSON numbers would lose digits).
      let b: bigint | undefined;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
      if (b === undefined) return bad(`an integer (a number up to 2^53, or a decimal string)`);
      const [lo, hi] = datatype === 'INT64' ? [-(1n << 63n), (1n << 63n) - 1n] : [0n, (1n << 64n) - 1n];
      if (b < lo || b > hi) return bad(`within the ${datatype} range`);
      return b;
    }
    case 'FP32':
    case 'FP64':
    case 'FP16':
    case 'BF16': {
      if (typeof v !== 'number' || !Number.isFinite(v)) return bad('a finite number');
      if (datatype === 'FP16') return numberToHalf(v);
      if (datatype === 'BF16') return new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16;
      return v;
    }
    default: {
      const [lo, hi] = INT_RANGE[datatype]!;
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('an integer');
      if (v < lo || v > hi) return bad(`within the ${datatype} range ${lo}..${hi}`);
      return v;
    }
  }
}

/** Values (flat, already read from JSON or a gRPC message) as the storage of `datatype`. */
export function valuesToData(datatype: Exclude<Datatype, 'BYTES'>, values: readonly unknown[], what: string): Numeric {
  if (datatype === 'FP32') return toFloat32(values as unknown[], what);
  const out = allocate(datatype, values.length) as Numeric;
  for (let i = 0; i < values.length; i++) (out as unknown as Array<number | bigint>)[i] = element(datatype, values[i], () => `${what}: element ${i}`);
  return out;
}

/** JSON `data` (flat or nested) of a V2 input as the storage of its datatype. */
export function jsonToData(datatype: Datatype, data: unknown, what: string): TensorData {
  if (datatype === 'BYTES') return toBytesList(data, what);
  if (datatype === 'FP32') return toFloat32(data, what);
  if (!Array.isArray(data)) throw badRequest(`${what}: data must be an array of ${datatype === 'BOOL' ? 'true/false values' : 'numbers'} (flat or nested)`);
  return valuesToData(datatype, flattenNested(data, what), what);
}

const utf8 = new TextDecoder();

/** A tensor's data as JSON values: numbers (INT64/UINT64 too, FP16/BF16 decoded), BOOL as true/false, BYTES as UTF-8 text. */
export function dataToJson(t: Tensor): Array<number | boolean | string> {
  switch (t.datatype) {
    case 'BYTES':
      return (t.data as Uint8Array[]).map((b) => utf8.decode(b));
    case 'BOOL':
      return Array.from(t.data as Uint8Array, (v) => v !== 0);
    case 'INT64':
    case 'UINT64':
      return Array.from(t.data as BigInt64Array, Number);
    case 'FP16':
    case 'BF16':
      return Array.from(toNumbers(t));
    default:
      return Array.from(t.data as ArrayLike<number>);
  }
}

/** BYTES tensor in binary form (V2 binary extension, gRPC raw contents): each element is a 4-byte little-endian length followed by its bytes. */
export function parseBinaryBytes(buf: Uint8Array, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.byteLength) {
    if (off + 4 > buf.byteLength) throw badRequest(`${what}: truncated BYTES element length at offset ${off}; each element needs a 4-byte little-endian length prefix`);
    const len = view.getUint32(off, true);
    off += 4;
    if (off + len > buf.byteLength) throw badRequest(`${what} is truncated: a BYTES element declares ${len} bytes but ${buf.byteLength - off} remain (offset ${off})`);
    out.push(buf.subarray(off, off + len));
    off += len;
  }
  return out;
}

/** BYTES elements in the binary form (4-byte little-endian length, then the bytes). */
export function joinRawBytes(items: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(items.reduce((a, b) => a + 4 + b.byteLength, 0));
  let off = 0;
  for (const it of items) {
    out.writeUInt32LE(it.byteLength, off);
    out.set(it, off + 4);
    off += 4 + it.byteLength;
  }
  return out;
}

/** Reverse the bytes of each `size`-byte element in place (little-endian wire ↔ a big-endian host). */
function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/**
 * Little-endian bytes of a fixed-size datatype → its storage (copied, so alignment never matters). BOOL is one byte
 * per element (any non-zero is true). The byte count must fit the datatype; the element count is checked by callers.
 */
export function bytesToData(datatype: Exclude<Datatype, 'BYTES'>, buf: Uint8Array, what: string): Numeric {
  const size = bytesPerElement(datatype)!;
  if (buf.byteLength % size) throw badRequest(`${what}: ${buf.byteLength} bytes is not a whole number of ${datatype} values`);
  const out = allocate(datatype, buf.byteLength / size) as Numeric;
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  bytes.set(buf);
  if (!LITTLE_ENDIAN && size > 1) swapBytes(bytes, size);
  if (datatype === 'BOOL') for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i] ? 1 : 0;
  return out;
}

/** Little-endian float32 bytes → Float32Array (copied so alignment never matters). */
export const parseBinaryFp32 = (buf: Uint8Array, what: string): Float32Array => bytesToData('FP32', buf, what) as Float32Array;

/** A tensor's data as wire bytes (V2 binary outputs, gRPC raw_output_contents); shares memory on little-endian hosts. */
export function dataToBytes(t: Tensor): Buffer {
  if (t.datatype === 'BYTES') return joinRawBytes(t.data as Uint8Array[]);
  const d = t.data as Numeric;
  const view = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN || d.BYTES_PER_ELEMENT === 1) return view;
  const copy = Buffer.from(view);
  swapBytes(copy, d.BYTES_PER_ELEMENT);
  return copy;
}

/** Float32Array → little-endian bytes (shares memory on LE hosts). */
export const fp32ToBuffer = (data: Float32Array): Buffer => dataToBytes({ name: '', datatype: 'FP32', shape: [data.length], data });

/** The V2 gRPC InferTensorContents fields (proto-loader objects with keepCase). */
export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Array<number | string>;
  uint_contents?: number[];
  uint64_contents?: Array<number | string>;
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

/** Which typed contents field carries each datatype (FP16 and BF16 have none: raw contents only). */
export const CONTENTS_FIELD: Partial<Record<Datatype, keyof TensorContents>> = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

/** Whether a message's contents carry any value (with proto defaults on, every field is present and empty). */
export const hasContents = (c: TensorContents | null | undefined) => !!c && Object.values(c).some((v) => Array.isArray(v) && v.length > 0);

/** A tensor's data in its typed contents field (INT64/UINT64 as decimal strings: exact beyond 2^53). */
export function dataToContents(t: Tensor): TensorContents | undefined {
  const field = CONTENTS_FIELD[t.datatype];
  if (!field) return undefined;
  switch (t.datatype) {
    case 'BYTES':
      return { bytes_contents: (t.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) };
    case 'BOOL':
      return { bool_contents: Array.from(t.data as Uint8Array, (v) => v !== 0) };
    case 'INT64':
    case 'UINT64':
      return { [field]: Array.from(t.data as BigInt64Array, String) };
    default:
      return { [field]: Array.from(t.data as ArrayLike<number>) };
  }
}

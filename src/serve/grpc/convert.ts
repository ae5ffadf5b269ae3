// Conversions between V2 gRPC messages and the ModelRepository types: FP32/BYTES inputs from typed contents or
// raw_input_contents (BYTES raw = 4-byte little-endian length + bytes per element, as tritonclient sends them).
import os from 'node:os';
import { GRPC_STATUS, MlctlError } from '../../errors.js';
import { badRequest, isExposed } from '../errors.js';
import type { InferInput, InferResult } from '../types.js';

/** A gRPC status to answer with: numeric code, client-facing details, optional retry-after trailer (seconds). */
export interface GrpcFailure {
  code: number;
  details: string;
  retryAfter?: number;
  /** True when the details are generic and the real error belongs in the server log. */
  internal: boolean;
}

/**
 * Anything a handler threw → its gRPC status, from the same registry row that gives REST its HTTP status
 * (src/errors.ts). Errors REST would answer with a generic 500 become INTERNAL with a generic message here too.
 */
export function grpcFailureOf(err: unknown, requestId: string): GrpcFailure {
  if (isExposed(err)) return { code: err.grpcStatus, details: err.message, retryAfter: err.retryAfter, internal: false };
  const http = (err as { statusCode?: unknown })?.statusCode;
  if (!(err instanceof MlctlError) && typeof http === 'number' && http >= 400 && http < 500) {
    return { code: GRPC_STATUS.INVALID_ARGUMENT, details: (err as Error).message ?? 'invalid request', internal: false };
  }
  return { code: GRPC_STATUS.INTERNAL, details: `internal server error (request id ${requestId}); the details are in the server log`, internal: true };
}

export interface TensorContents {
  fp32_contents?: number[];
  bytes_contents?: Buffer[];
  [other: string]: unknown;
}

export interface InferInputTensorMsg {
  name: string;
  datatype: string;
  shape: number[];
  contents?: TensorContents | null;
}

export interface ModelInferRequestMsg {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInputTensorMsg[];
  outputs: Array<{ name: string }>;
  raw_input_contents: Buffer[];
}

export interface InferOutputTensorMsg {
  name: string;
  datatype: string;
  shape: number[];
  contents?: { fp32_contents: number[] };
}

export interface ModelInferResponseMsg {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensorMsg[];
  raw_output_contents: Buffer[];
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

function elementCount(shape: number[], name: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw badRequest(`input "${name}" has an invalid shape [${shape.join(', ')}]: dimensions are non-negative integers`);
    n *= d;
  }
  if (!shape.length) throw badRequest(`input "${name}" has an empty shape; give the batch dimension first, e.g. [1, 224, 224, 3] or [1]`);
  return n;
}

/** Little-endian float32 bytes → Float32Array (copied: gRPC buffers need not be 4-byte aligned). */
export function floatsFromRaw(raw: Uint8Array): Float32Array {
  const out = new Float32Array(raw.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
  else {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

export function floatsToRaw(data: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i]!, i * 4);
  return out;
}

/** Split raw BYTES content: each element is a uint32 little-endian length followed by that many bytes. */
export function splitRawBytes(raw: Uint8Array, name: string): Uint8Array[] {
  const items: Uint8Array[] = [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let off = 0;
  while (off < raw.byteLength) {
    if (off + 4 > raw.byteLength) throw badRequest(`raw BYTES content of input "${name}" is truncated: each element needs a 4-byte little-endian length prefix`);
    const len = view.getUint32(off, true);
    off += 4;
    if (off + len > raw.byteLength) throw badRequest(`raw BYTES content of input "${name}" is truncated: an element declares ${len} bytes but ${raw.byteLength - off} remain`);
    items.push(raw.subarray(off, off + len));
    off += len;
  }
  return items;
}

/** The inverse of splitRawBytes (what a Triton client sends). */
export function joinRawBytes(items: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(it.byteLength);
    parts.push(len, Buffer.from(it.buffer, it.byteOffset, it.byteLength));
  }
  return Buffer.concat(parts);
}

/** ModelInferRequest inputs → repository inputs, with every size checked against the declared shape. */
export function decodeInferInputs(req: ModelInferRequestMsg): InferInput[] {
  if (!req.inputs.length) throw badRequest('the request has no inputs');
  const raw = req.raw_input_contents ?? [];
  if (raw.length && raw.length !== req.inputs.length) {
    throw badRequest(`raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; send one per input, in the same order`);
  }
  return req.inputs.map((t, i) => {
    const count = elementCount(t.shape, t.name);
    const hasContents = Boolean(t.contents && ((t.contents.fp32_contents?.length ?? 0) > 0 || (t.contents.bytes_contents?.length ?? 0) > 0));
    if (raw.length && hasContents) throw badRequest(`input "${t.name}" has contents while raw_input_contents is used; use one or the other`);
    if (t.datatype === 'FP32') {
      let data: Float32Array;
      if (raw.length) {
        if (raw[i]!.byteLength !== count * 4) throw badRequest(`input "${t.name}": shape [${t.shape.join(', ')}] needs ${count * 4} bytes of FP32 raw content, got ${raw[i]!.byteLength}`);
        data = floatsFromRaw(raw[i]!);
      } else {
        const values = t.contents?.fp32_contents ?? [];
        if (values.length !== count) throw badRequest(`input "${t.name}": shape [${t.shape.join(', ')}] needs ${count} fp32_contents values, got ${values.length}`);
        data = Float32Array.from(values);
      }
      return { name: t.name, datatype: 'FP32', shape: t.shape.slice(), data };
    }
    if (t.datatype === 'BYTES') {
      const items = raw.length ? splitRawBytes(raw[i]!, t.name) : (t.contents?.bytes_contents ?? []).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      if (items.length !== count) throw badRequest(`input "${t.name}": shape [${t.shape.join(', ')}] needs ${count} BYTES elements (one encoded image each), got ${items.length}`);
      return { name: t.name, datatype: 'BYTES', shape: t.shape.slice(), data: items };
    }
    throw badRequest(`input "${t.name}" has datatype "${t.datatype}"; mlctl models take FP32 (preprocessed NHWC tensors) or BYTES (encoded images)`);
  });
}

/** Repository result → ModelInferResponse: raw_output_contents when the request used raw inputs, typed contents otherwise. */
export function encodeInferResponse(req: ModelInferRequestMsg, result: InferResult): ModelInferResponseMsg {
  let outputs = result.outputs;
  if (req.outputs?.length) {
    const wanted = req.outputs.map((o) => o.name);
    const unknown = wanted.filter((w) => !outputs.some((o) => o.name === w));
    if (unknown.length) throw badRequest(`unknown requested output(s) ${unknown.map((u) => `"${u}"`).join(', ')}; the model has ${outputs.map((o) => `"${o.name}"`).join(', ')}`);
    outputs = outputs.filter((o) => wanted.includes(o.name));
  }
  const raw = (req.raw_input_contents?.length ?? 0) > 0;
  return {
    model_name: result.model.name,
    model_version: String(result.model.version),
    id: req.id ?? '',
    outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, ...(raw ? {} : { contents: { fp32_contents: Array.from(o.data) } }) })),
    raw_output_contents: raw ? outputs.map((o) => floatsToRaw(o.data)) : [],
  };
}

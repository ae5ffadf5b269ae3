// V2 gRPC messages: the status a failure maps to, and the ModelInferResponse encoding. Request decoding (typed
// contents or raw_input_contents) lives in the codec with REST's, so both transports read tensors alike.
import { GRPC_STATUS, MlctlError } from '../../errors.js';
import { badRequest, isExposed } from '../errors.js';
import { fp32ToBuffer, parseBinaryFp32 } from '../codec.js';
import type { InferResult } from '../types.js';
import type { ModelInferRequestMsg } from '../codec.js';

export type { InferInputTensorMsg, ModelInferRequestMsg, TensorContents } from '../codec.js';

/** Little-endian float32 bytes → Float32Array (the codec's decoder, named as gRPC clients know it). */
export const floatsFromRaw = (raw: Uint8Array): Float32Array => parseBinaryFp32(raw, 'raw content');

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

/** Float32Array → little-endian bytes for raw_output_contents. */
export const floatsToRaw = fp32ToBuffer;

/** The inverse of the codec's parseBinaryBytes (what a Triton client sends). */
export function joinRawBytes(items: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(it.byteLength);
    parts.push(len, Buffer.from(it.buffer, it.byteOffset, it.byteLength));
  }
  return Buffer.concat(parts);
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

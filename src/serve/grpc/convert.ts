// V2 gRPC messages: the status a failure maps to, and the ModelInferResponse encoding. Request decoding (typed
// contents or raw_input_contents) lives in the codec with REST's, so both transports read tensors alike.
import { GRPC_STATUS, MlctlError } from '../../errors.js';
import { isExposed } from '../errors.js';
import { classificationCount, requestedOutputs } from '../triton.js';
import type { InferResult } from '../types.js';
import type { ModelInferRequestMsg } from '../codec.js';
import { dataToBytes, dataToContents, fp32ToBuffer, joinRawBytes, parseBinaryFp32, type TensorContents } from '../wire.js';

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
  contents?: TensorContents;
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
export { joinRawBytes };

/** The requested outputs of a ModelInferRequest, with Triton's "classification" parameter (int64_param) read. */
export function askedOutputs(req: ModelInferRequestMsg): Array<{ name: string; classification?: number }> {
  return (req.outputs ?? []).map((o) => {
    const p = o.parameters?.classification;
    // With defaults on, every oneof member reads as its zero value: parameter_choice names the one the client set.
    const raw = p === undefined ? undefined : p.parameter_choice ? p[p.parameter_choice as keyof typeof p] : p.int64_param;
    return { name: o.name, classification: classificationCount(raw, o.name) };
  });
}

/**
 * Repository result → ModelInferResponse: raw_output_contents when the request used raw inputs (or an output has no
 * typed contents field: FP16, BF16), typed contents otherwise (int64 as exact decimal strings); an output asked for
 * with "classification" comes back as BYTES "score:index:label" strings.
 */
export function encodeInferResponse(req: ModelInferRequestMsg, result: InferResult): ModelInferResponseMsg {
  const tensors = requestedOutputs(result, askedOutputs(req));
  const typed = (req.raw_input_contents?.length ?? 0) === 0 ? tensors.map(dataToContents) : [];
  // The contents field and raw_output_contents do not mix in one response: one untyped output makes it all raw.
  const raw = typed.length === 0 || typed.some((c) => c === undefined);
  return {
    model_name: result.model.name,
    model_version: String(result.model.version),
    id: req.id ?? '',
    outputs: tensors.map((o, i) => ({ name: o.name, datatype: o.datatype, shape: o.shape, ...(raw ? {} : { contents: typed[i]! }) })),
    raw_output_contents: raw ? tensors.map(dataToBytes) : [],
  };
}

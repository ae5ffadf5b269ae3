// ONNX ModelProto encoding/decoding with protobufjs over the official schema (onnx.proto → schema.ts), plus the
// plain-object TypeScript shapes of the messages mlctl builds and rewrites (converter, QDQ quantizer).
import type { Datatype } from '../runtime/tensor.js';
import protobuf from 'protobufjs';
import { ONNX_SCHEMA } from './schema.js';

/** TensorProto.DataType values used by mlctl. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** TensorProto.DataType code → the Open Inference Protocol datatype mlctl's tensors use (undefined: none, e.g. COMPLEX64). */
export const ONNX_DATATYPES: Readonly<Record<number, Datatype>> = {
  1: 'FP32', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'BYTES', 9: 'BOOL', 10: 'FP16', 11: 'FP64',
  12: 'UINT32', 13: 'UINT64', 16: 'BF16',
};

/** AttributeProto.AttributeType values. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  docString?: string;
}

export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeProto {
  name?: string;
  opType: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: AttributeProto[];
  docString?: string;
}

export interface DimensionProto {
  dimValue?: number;
  dimParam?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: DimensionProto[] } } };
  docString?: string;
}

export interface GraphProto {
  name?: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  docString?: string;
}

export interface OperatorSetIdProto {
  domain?: string;
  version: number;
}

export interface ModelProto {
  irVersion: number;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  metadataProps?: Array<{ key: string; value: string }>;
}

const root = protobuf.Root.fromJSON(ONNX_SCHEMA);
const ModelType = root.lookupType('onnx.ModelProto');

/** Serialise a ModelProto (plain object) to ONNX bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const err = ModelType.verify(model);
  if (err) throw new Error(`invalid ONNX ModelProto: ${err}`);
  return ModelType.encode(ModelType.fromObject(model)).finish();
}

/**
 * Parse ONNX bytes into a plain ModelProto. int64 fields become numbers (dims and attributes stay far below 2^53),
 * repeated fields are always arrays, tensor raw_data stays a Uint8Array view of the input.
 */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const msg = ModelType.decode(bytes);
  const obj = ModelType.toObject(msg, { longs: Number, enums: Number, arrays: true, defaults: false }) as ModelProto;
  const g = obj.graph;
  if (!g) throw new Error('the ONNX model has no graph');
  for (const key of ['node', 'initializer', 'input', 'output', 'valueInfo'] as const) g[key] ??= [];
  for (const n of g.node) {
    n.input ??= [];
    n.output ??= [];
  }
  return obj;
}

/** IR version that goes with an ai.onnx opset (onnx/docs/Versioning.md), so checkers accept the pair. */
export function irVersionForOpset(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

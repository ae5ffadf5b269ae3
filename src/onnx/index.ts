// Public API of mlctl's TF.js → ONNX converter (stable names; other areas import only from this file, or from
// version.ts for CONVERTER_VERSION alone, which loads no TF.js):
//   convertLayersModel(model, opts?) → Uint8Array   ONNX bytes for a tf.LayersModel (Sequential, functional, nested):
//       NHWC float32 input(s) with symbolic batch dim "batch"; opts { opset (13..21, default 17), inputName,
//       outputName, metadata (→ metadata_props), docString }. Unsupported layer → MlctlError UNSUPPORTED_LAYER.
//   buildModelProto(model, opts?) → ModelProto        same, as a plain object to inspect or rewrite before encoding.
//   decodeModel(bytes) → ModelProto / encodeModel(proto) → Uint8Array   protobufjs over the official onnx.proto.
//   Builders for graph rewrites (e.g. the int8 QDQ quantizer): makeNode, attr, floatTensor, int64Tensor,
//   int8Tensor, uint8Tensor, int32Tensor, tensorFloats, valueInfo, graphBuilder; DataType / AttributeType codes.
//   SUPPORTED_LAYERS: TF.js class names the converter handles.
export { convertLayersModel, buildModelProto, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, BATCH_DIM, CONVERTER_VERSION, type ConvertOptions } from './convert.js';
export { SUPPORTED_LAYERS } from './layers.js';
export { decodeModel, encodeModel, irVersionForOpset, DataType, AttributeType, ONNX_DATATYPES } from './proto.js';
export type { ModelProto, GraphProto, NodeProto, TensorProto, AttributeProto, ValueInfoProto } from './proto.js';
export { makeNode, attr, floatTensor, int64Tensor, int8Tensor, uint8Tensor, int32Tensor, tensorFloats, valueInfo, graphBuilder, emptyGraph, type GraphBuilder } from './builders.js';

// A Triton ModelConfig (triton-inference-server/common protobuf/model_config.proto) for a model's tensors: what
// `export --format triton` writes as config.pbtxt and what `mlctl serve` answers as the model's configuration.
import type { Manifest } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';
import type { Datatype, TensorSpec } from '../runtime/tensor.js';

export const TRITON_CONFIG = 'config.pbtxt';
export const TRITON_LABELS = 'labels.txt';

export const TRITON_DEFAULTS = { maxBatch: 8, queueDelayUs: 5000, instances: 1 } as const;

/** Open Inference Protocol datatype → Triton DataType (model_config.proto). */
const TRITON_TYPES: Record<Datatype, string> = {
  BOOL: 'TYPE_BOOL', UINT8: 'TYPE_UINT8', UINT16: 'TYPE_UINT16', UINT32: 'TYPE_UINT32', UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8', INT16: 'TYPE_INT16', INT32: 'TYPE_INT32', INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16', BF16: 'TYPE_BF16', FP32: 'TYPE_FP32', FP64: 'TYPE_FP64', BYTES: 'TYPE_STRING',
};

export const tritonDataType = (datatype: Datatype) => TRITON_TYPES[datatype];

/** Batch sizes the dynamic batcher should aim for: the largest, and half of it when that is still a real batch. */
export function preferredBatchSizes(maxBatch: number): number[] {
  return [...new Set([Math.floor(maxBatch / 2), maxBatch].filter((n) => n >= 2))];
}

/** Dims without the batch dimension, which must be dynamic (-1) for Triton's batching. */
function batchedDims(shape: number[], what: string): number[] {
  if (shape.length === 0) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} has no dimensions; Triton batching needs a leading batch dimension`]);
  if (shape[0]! > 0) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} has a fixed batch dimension ${shape[0]}; Triton dynamic batching needs it to be dynamic`]);
  return shape.slice(1).map((d) => (d > 0 ? d : -1));
}

/** mlctl.* metadata carried into the config's `parameters` (which variant this is, how to feed it). */
const CONFIG_PARAMETERS = ['mlctl.input_variant', 'mlctl.weights', 'mlctl.preprocessing', 'mlctl.resize', 'mlctl.labels', 'mlctl.detection'] as const;

export interface ConfigSettings {
  name: string;
  maxBatch: number;
  queueDelayUs: number;
  instances: number;
  /** Triton platform (default onnxruntime_onnx, what the exported model.onnx needs). */
  platform?: string;
}

export interface ConfigTensors {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** The metadata props describing the variant (ONNX metadata_props; Triton config parameters). */
  metadataProps: Record<string, string>;
}

/**
 * The ModelConfig (plain object, proto field names, enums by name) for a model with these tensors. With maxBatch 0
 * (a model without a batch dimension) the dims are the full shapes and there is no dynamic batching.
 */
export function tritonConfig(manifest: Pick<Manifest, 'input' | 'labels' | 'detection'>, model: ConfigTensors, opts: ConfigSettings): Record<string, unknown> {
  const image = manifest.input.kind === 'image';
  const dims = opts.maxBatch > 0 ? batchedDims : (shape: number[]) => shape.map((d) => (d >= 0 ? d : -1));
  const parameters = Object.fromEntries(CONFIG_PARAMETERS.filter((k) => model.metadataProps[k] !== undefined).map((k) => [k, { string_value: model.metadataProps[k]! }]));
  return {
    name: opts.name,
    platform: opts.platform ?? 'onnxruntime_onnx',
    max_batch_size: opts.maxBatch,
    input: model.inputs.map((t) => {
      const d = dims(t.shape, `input ${t.name}`);
      // Triton takes an image format only with exactly the 3 image dims (HWC or CHW): a model without a batch
      // dimension whose dims still hold a leading one (mlctl's decoded detectors) says none.
      const format = image && d.length === 3 ? { format: manifest.input.kind === 'image' && manifest.input.layout === 'NCHW' ? 'FORMAT_NCHW' : 'FORMAT_NHWC' } : {};
      return { name: t.name, data_type: tritonDataType(t.datatype), ...format, dims: d };
    }),
    output: model.outputs.map((t, i) => ({
      name: t.name,
      data_type: tritonDataType(t.datatype),
      dims: dims(t.shape, `output ${t.name}`),
      // Triton's classification extension reads labels off a scores output; detection labels are indices (labels.txt still lists them).
      ...(i === 0 && manifest.labels.length && !manifest.detection ? { label_filename: TRITON_LABELS } : {}),
    })),
    ...(opts.maxBatch > 0 ? { dynamic_batching: { preferred_batch_size: preferredBatchSizes(opts.maxBatch), max_queue_delay_microseconds: opts.queueDelayUs } } : {}),
    instance_group: [{ count: opts.instances, kind: 'KIND_CPU' }],
    parameters,
  };
}

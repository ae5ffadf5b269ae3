// `--format triton`: an NVIDIA Triton (and KServe Triton runtime) model repository entry for the onnxruntime backend:
// <repo>/<name>/config.pbtxt, <repo>/<name>/<version>/model.onnx, <repo>/<name>/labels.txt (+ metadata.json).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../artifacts/manifest.js';
import type { LoadedPackage } from '../artifacts/package.js';
import { BATCH_DIM, DataType } from '../onnx/index.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Datatype, TensorSpec } from '../runtime/tensor.js';
import { checkOnnxRuns, onnxDetails, onnxModelFor, type OnnxExportOptions, type OnnxModel } from './onnx-export.js';
import { toTextFormat } from './pbtxt.js';
import { exportMetadata } from './source.js';
import { METADATA_JSON } from './tfjs.js';

export const TRITON_CONFIG = 'config.pbtxt';
export const TRITON_LABELS = 'labels.txt';

export { MODEL_CONFIG_PROTO, tritonModelConfigType } from './model-config-proto.js';
import { tritonModelConfigType } from './model-config-proto.js';

/** ONNX TensorProto.DataType → Triton DataType. */
const ONNX_TO_TRITON: Record<number, string> = {
  1: 'TYPE_FP32', 2: 'TYPE_UINT8', 3: 'TYPE_INT8', 4: 'TYPE_UINT16', 5: 'TYPE_INT16', 6: 'TYPE_INT32', 7: 'TYPE_INT64',
  8: 'TYPE_STRING', 9: 'TYPE_BOOL', 10: 'TYPE_FP16', 11: 'TYPE_FP64', 12: 'TYPE_UINT32', 13: 'TYPE_UINT64', 16: 'TYPE_BF16',
};

export interface TritonOptions extends OnnxExportOptions {
  /** Model name in the repository (default: the package name). */
  name?: string;
  /** Numeric version folder (default: the package version). */
  version?: number;
  maxBatch?: number;
  /** Dynamic-batching queue delay in microseconds. */
  queueDelayUs?: number;
  /** CPU model instances. */
  instances?: number;
}

export const TRITON_DEFAULTS = { maxBatch: 8, queueDelayUs: 5000, instances: 1 } as const;

/** Batch sizes the dynamic batcher should aim for: the largest, and half of it when that is still a real batch. */
export function preferredBatchSizes(maxBatch: number): number[] {
  return [...new Set([Math.floor(maxBatch / 2), maxBatch].filter((n) => n >= 2))];
}

/** Non-batch dims of a graph tensor: the batch dim must be symbolic (dynamic) for Triton batching. */
function tritonDims(dims: Array<number | string>, what: string): number[] {
  if (dims.length === 0) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} has no dimensions; Triton batching needs a leading batch dimension`]);
  if (typeof dims[0] === 'number' && dims[0] > 0) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} has a fixed batch dimension ${dims[0]}; Triton dynamic batching needs it to be dynamic`]);
  return dims.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : -1));
}

function tritonType(elemType: number, what: string): string {
  const t = ONNX_TO_TRITON[elemType];
  if (!t) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} has ONNX element type ${elemType}, which has no Triton data type`]);
  return t;
}

/** mlctl.* metadata carried into the config's `parameters` (which variant this is, how to feed it). */
const CONFIG_PARAMETERS = ['mlctl.input_variant', 'mlctl.weights', 'mlctl.preprocessing', 'mlctl.labels'] as const;

export interface ConfigSettings {
  name: string;
  maxBatch: number;
  queueDelayUs: number;
  instances: number;
  /** Triton platform (default onnxruntime_onnx, what the exported model.onnx needs). */
  platform?: string;
}

/** V2 datatypes as ONNX TensorProto.DataType. */
const ONNX_OF_DATATYPE: Record<Datatype, number> = {
  FP32: DataType.FLOAT, UINT8: DataType.UINT8, INT8: DataType.INT8, UINT16: DataType.UINT16, INT16: DataType.INT16, INT32: DataType.INT32, INT64: DataType.INT64,
  BYTES: DataType.STRING, BOOL: DataType.BOOL, FP16: DataType.FLOAT16, FP64: DataType.DOUBLE, UINT32: DataType.UINT32, UINT64: DataType.UINT64, BF16: DataType.BFLOAT16,
};

/** Declared tensors (V2 datatypes, -1 where dynamic) as graph signatures: a dynamic leading dimension is the batch. */
export function tensorSignatures(tensors: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] }): Pick<OnnxModel, 'inputs' | 'outputs'> {
  const sig = (t: TensorSpec) => ({ name: t.name, elemType: ONNX_OF_DATATYPE[t.datatype], dims: t.shape.map((d, i) => (d >= 0 ? d : i === 0 ? BATCH_DIM : `dim${i}`)) });
  return { inputs: tensors.inputs.map(sig), outputs: tensors.outputs.map(sig) };
}

/**
 * The ModelConfig (plain object, proto field names, enums by name) for a model with these tensors: what
 * `export --format triton` writes as config.pbtxt and `mlctl serve` answers on GET /v2/models/{m}/config. With
 * maxBatch 0 (a model without a batch dimension) the dims are the full shapes and there is no dynamic batching.
 */
export function tritonConfig(manifest: Manifest, model: Pick<OnnxModel, 'inputs' | 'outputs' | 'metadataProps'>, opts: ConfigSettings): Record<string, unknown> {
  const image = manifest.input.kind === 'image';
  const dims = opts.maxBatch > 0 ? tritonDims : (d: Array<number | string>) => d.map((v) => (typeof v === 'number' && v >= 0 ? v : -1));
  const parameters = Object.fromEntries(CONFIG_PARAMETERS.filter((k) => model.metadataProps[k] !== undefined).map((k) => [k, { string_value: model.metadataProps[k]! }]));
  return {
    name: opts.name,
    platform: opts.platform ?? 'onnxruntime_onnx',
    max_batch_size: opts.maxBatch,
    input: model.inputs.map((t) => ({
      name: t.name,
      data_type: tritonType(t.elemType, `input ${t.name}`),
      ...(image && t.dims.length === 4 ? { format: 'FORMAT_NHWC' } : {}),
      dims: dims(t.dims, `input ${t.name}`),
    })),
    output: model.outputs.map((t, i) => ({
      name: t.name,
      data_type: tritonType(t.elemType, `output ${t.name}`),
      dims: dims(t.dims, `output ${t.name}`),
      ...(i === 0 && manifest.labels.length ? { label_filename: TRITON_LABELS } : {}),
    })),
    ...(opts.maxBatch > 0 ? { dynamic_batching: { preferred_batch_size: preferredBatchSizes(opts.maxBatch), max_queue_delay_microseconds: opts.queueDelayUs } } : {}),
    instance_group: [{ count: opts.instances, kind: 'KIND_CPU' }],
    parameters,
  };
}

/** `dir` is the model's own directory inside the repository (<repo>/<name>). */
export async function writeTritonExport(pkg: LoadedPackage, dir: string, opts: TritonOptions = {}): Promise<Record<string, unknown>> {
  const name = opts.name ?? pkg.manifest.name;
  const version = opts.version ?? pkg.manifest.version;
  const settings = {
    name,
    maxBatch: opts.maxBatch ?? TRITON_DEFAULTS.maxBatch,
    queueDelayUs: opts.queueDelayUs ?? TRITON_DEFAULTS.queueDelayUs,
    instances: opts.instances ?? TRITON_DEFAULTS.instances,
  };
  const base = exportMetadata(pkg, 'triton');
  const model = await onnxModelFor(pkg, base, opts);
  await checkOnnxRuns(model, pkg.manifest.output.size!, opts.logger);
  const config = tritonConfig(pkg.manifest, model, settings);
  const type = tritonModelConfigType();
  const header = `Triton model configuration written by ${base.exportedBy} from ${pkg.manifest.name} v${pkg.manifest.version}\n(source mlctl.json sha256 ${pkg.manifestSha256})`;
  const modelFile = path.join(String(version), 'model.onnx');
  await fs.mkdir(path.join(dir, String(version)), { recursive: true });
  await fs.writeFile(path.join(dir, modelFile), model.bytes);
  // toTextFormat refuses fields, enum names and value types that ModelConfig does not have.
  await fs.writeFile(path.join(dir, TRITON_CONFIG), toTextFormat(type, config, header));
  await fs.writeFile(path.join(dir, TRITON_LABELS), pkg.manifest.labels.join('\n') + '\n');
  const details = { ...onnxDetails(model, modelFile), tritonName: name, tritonVersion: version, config };
  await writeJsonAtomic(path.join(dir, METADATA_JSON), { ...base, details });
  return details;
}

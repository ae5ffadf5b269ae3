// `--format triton`: an NVIDIA Triton (and KServe Triton runtime) model repository entry for the onnxruntime backend:
// <repo>/<name>/config.pbtxt, <repo>/<name>/<version>/model.onnx, <repo>/<name>/labels.txt (+ metadata.json).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { ONNX_DATATYPES } from '../onnx/index.js';
import type { TensorSpec } from '../runtime/tensor.js';
import { TRITON_CONFIG, TRITON_DEFAULTS, TRITON_LABELS, tritonConfig } from '../triton/config.js';
import { tritonModelConfigType } from '../triton/model-config-proto.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import { checkedOutputSize, checkOnnxRuns, onnxDetails, onnxModelFor, type OnnxExportOptions, type TensorSignature } from './onnx-export.js';
import { toTextFormat } from '../triton/pbtxt.js';
import { exportMetadata } from './source.js';
import { METADATA_JSON } from './tfjs.js';

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

/** An exported graph's tensors as specs: ONNX element types as datatypes, symbolic dims as -1. */
function graphSpecs(signatures: TensorSignature[], what: string): TensorSpec[] {
  return signatures.map((t) => {
    const datatype = ONNX_DATATYPES[t.elemType];
    if (!datatype) throw new MlctlError('EXPORT_UNSUPPORTED', [`${what} ${t.name} has ONNX element type ${t.elemType}, which has no Triton data type`]);
    return { name: t.name, datatype, shape: t.dims.map((d) => (typeof d === 'number' && d > 0 ? d : -1)) };
  });
}

/** `dir` is the model's own directory inside the repository (<repo>/<name>). */
export async function writeTritonExport(pkg: LoadedPackage, dir: string, opts: TritonOptions = {}): Promise<Record<string, unknown>> {
  const name = opts.name ?? pkg.manifest.name;
  const version = opts.version ?? pkg.manifest.version;
  // Decoded detections are M boxes over the whole batch, not one row per request: no Triton batching dimension.
  const decoded = Boolean(pkg.manifest.detection) && !opts.rawDetections;
  if (decoded && opts.maxBatch !== undefined && opts.maxBatch > 0) opts.logger?.info('detection: the decoded outputs (boxes, scores, labels, batch_index) span the batch, so max_batch_size is 0 and the batch dimension is in dims');
  const settings = {
    name,
    maxBatch: decoded ? 0 : (opts.maxBatch ?? TRITON_DEFAULTS.maxBatch),
    queueDelayUs: opts.queueDelayUs ?? TRITON_DEFAULTS.queueDelayUs,
    instances: opts.instances ?? TRITON_DEFAULTS.instances,
  };
  const base = exportMetadata(pkg, 'triton');
  const model = await onnxModelFor(pkg, base, opts);
  await checkOnnxRuns(model, checkedOutputSize(pkg, model), opts.logger);
  const config = tritonConfig(pkg.manifest, { inputs: graphSpecs(model.inputs, 'input'), outputs: graphSpecs(model.outputs, 'output'), metadataProps: model.metadataProps }, settings);
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

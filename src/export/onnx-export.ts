// `--format onnx`: the package's ONNX model (its own formats.onnx, e.g. int8 from `mlctl quantize`, or converted now
// from the TF.js model) with labels, preprocessing and source in metadata_props, checked by running it in ONNX Runtime.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { buildModelProto, decodeModel, encodeModel, type ModelProto } from '../onnx/index.js';
import { exportMetadata, type ExportMetadata } from './source.js';
import { LABELS_JSON, METADATA_JSON } from './tfjs.js';

export const ONNX_FILE = 'model.onnx';
/** metadata_props keys mlctl owns; anything else already in a model is kept. */
export const META_PREFIX = 'mlctl.';

export interface TensorSignature {
  name: string;
  /** ONNX TensorProto.DataType code (1 = FLOAT). */
  elemType: number;
  /** Dimensions with the batch dimension first; symbolic dimensions as their names. */
  dims: Array<number | string>;
}

export interface OnnxModel {
  bytes: Uint8Array;
  origin: 'package' | 'converted';
  /** 'int8' when the graph carries QuantizeLinear/DequantizeLinear or integer kernels. */
  precision: 'fp32' | 'int8';
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

export interface OnnxExportOptions {
  /** ai.onnx opset for a conversion (the converter's default when omitted). */
  opset?: number;
  logger?: Logger;
}

/** The metadata_props mlctl writes: flat strings, JSON where the value is structured. */
export function onnxMetadataProps(meta: ExportMetadata): Record<string, string> {
  const { source } = meta;
  return {
    'mlctl.name': meta.name,
    'mlctl.task': meta.task,
    'mlctl.labels': JSON.stringify(meta.labels),
    'mlctl.input': JSON.stringify(meta.input),
    ...(meta.input.kind === 'image' ? { 'mlctl.preprocessing': JSON.stringify(meta.input.preprocessing) } : {}),
    'mlctl.output': JSON.stringify(meta.output),
    'mlctl.source': JSON.stringify({ name: source.name, version: source.version, manifestSha256: source.manifestSha256, files: source.files }),
    'mlctl.exported_by': meta.exportedBy,
    'mlctl.exported_at': meta.exportedAt,
  };
}

function signature(vi: ModelProto['graph']['input'][number]): TensorSignature {
  const t = vi.type?.tensorType;
  return { name: vi.name, elemType: t?.elemType ?? 0, dims: (t?.shape?.dim ?? []).map((d) => d.dimParam ?? d.dimValue ?? '?') };
}

const INT8_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

function describe(proto: ModelProto): Pick<OnnxModel, 'precision' | 'inputs' | 'outputs'> {
  const initializers = new Set(proto.graph.initializer.map((t) => t.name));
  return {
    precision: proto.graph.node.some((n) => INT8_OPS.has(n.opType)) ? 'int8' : 'fp32',
    // Older IRs list initializers among the graph inputs; they are not inputs a client feeds.
    inputs: proto.graph.input.filter((v) => !initializers.has(v.name)).map(signature),
    outputs: proto.graph.output.map(signature),
  };
}

/** The ONNX model to export, carrying `metadata` in metadata_props (mlctl.* keys replaced, others kept). */
export async function onnxModelFor(pkg: LoadedPackage, metadata: Record<string, string>, opts: OnnxExportOptions = {}): Promise<OnnxModel> {
  const rel = pkg.manifest.formats.onnx;
  if (rel) {
    opts.logger?.info(`using the package's own ONNX model (${rel})`);
    const proto = decodeModel(await readModelFile(pkg, rel));
    proto.metadataProps = [...(proto.metadataProps ?? []).filter((p) => !(p.key in metadata)), ...Object.entries(metadata).map(([key, value]) => ({ key, value }))];
    return { bytes: encodeModel(proto), origin: 'package', ...describe(proto) };
  }
  if (!pkg.manifest.formats.tfjs) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has neither an ONNX model (formats.onnx) nor a TF.js model to convert']);
  opts.logger?.info('converting the TF.js model to ONNX');
  const model = await loadTfjsModel(pkg);
  try {
    const inputName = pkg.manifest.input.name;
    const outputName = pkg.manifest.output.name;
    const proto = buildModelProto(model, { inputName, outputName, metadata, ...(opts.opset ? { opset: opts.opset } : {}) });
    return { bytes: encodeModel(proto), origin: 'converted', ...describe(proto) };
  } finally {
    model.dispose();
  }
}

/**
 * Load the model in ONNX Runtime and run one all-zero example: catches a graph that onnxruntime rejects before
 * anyone deploys it, and checks the output size against the manifest.
 */
export async function checkOnnxRuns(model: OnnxModel, expectedOutputSize: number, logger?: Logger): Promise<void> {
  logger?.info(`checking the ${model.precision} ONNX model (${(model.bytes.byteLength / 2 ** 20).toFixed(1)} MiB) in ONNX Runtime`);
  // Loaded here, not at import: every mlctl command imports the command table, and the native add-on is heavy.
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(model.bytes, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  try {
    const input = model.inputs[0];
    if (!input || model.inputs.length !== 1) throw new Error(`expected one graph input, found ${model.inputs.length}`);
    const dims = input.dims.map((d, i) => (i === 0 ? 1 : typeof d === 'number' ? d : NaN));
    if (dims.some((d) => !Number.isFinite(d))) throw new Error(`input ${input.name} has non-batch symbolic dimensions ${JSON.stringify(input.dims)}`);
    const size = dims.reduce((a, d) => a * d, 1);
    const out = await session.run({ [input.name]: new ort.Tensor('float32', new Float32Array(size), dims) });
    const first = out[model.outputs[0]!.name];
    if (!first) throw new Error(`ONNX Runtime returned no output ${model.outputs[0]!.name}`);
    if (first.size !== expectedOutputSize) throw new Error(`output ${model.outputs[0]!.name} has ${first.size} values per example, the manifest says ${expectedOutputSize}`);
    for (const v of first.data as Float32Array) if (!Number.isFinite(v)) throw new Error('the output holds non-finite values for an all-zero input');
  } catch (err) {
    throw new MlctlError('EXPORT_CHECK_FAILED', [`the exported ONNX model failed its ONNX Runtime check: ${(err as Error).message}`], { cause: err });
  } finally {
    await session.release();
  }
}

export function onnxDetails(model: OnnxModel, file: string): Record<string, unknown> {
  return { onnxFile: file, origin: model.origin, precision: model.precision, inputs: model.inputs, outputs: model.outputs };
}

export async function writeOnnxExport(pkg: LoadedPackage, dir: string, opts: OnnxExportOptions = {}): Promise<Record<string, unknown>> {
  const base = exportMetadata(pkg, 'onnx');
  const model = await onnxModelFor(pkg, onnxMetadataProps(base), opts);
  await checkOnnxRuns(model, pkg.manifest.output.size, opts.logger);
  await fs.writeFile(path.join(dir, ONNX_FILE), model.bytes);
  const details = { ...onnxDetails(model, ONNX_FILE), labelsFile: LABELS_JSON, metadataProps: Object.keys(onnxMetadataProps(base)) };
  await writeJsonAtomic(path.join(dir, LABELS_JSON), pkg.manifest.labels);
  await writeJsonAtomic(path.join(dir, METADATA_JSON), { ...base, details });
  return details;
}

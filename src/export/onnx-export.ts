// `--format onnx`: the package's ONNX model (its own formats.onnx, e.g. int8 from `mlctl quantize`, or converted now
// from the TF.js model at the precision the package stores its weights), optionally with the preprocessing embedded,
// labels, preprocessing, variant and source in metadata_props, checked by running it in ONNX Runtime.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { BATCH_DIM, buildModelProto, DataType, decodeModel, encodeModel, type ModelProto } from '../onnx/index.js';
import { embedPreprocessing } from './onnx-preprocessing.js';
import { appendCenterNetDecode, DECODED_OUTPUTS, DEFAULT_NMS_IOU } from './onnx-detection.js';
import { storeWeightsAs, type StorageReport } from './onnx-weights.js';
import { INPUT_VARIANTS, packageWeights, storageOf, variantProps, WEIGHTS_VARIANTS, type InputVariant, type WeightsVariant } from '../artifacts/variant.js';
import { exportMetadata, type ExportMetadata } from './source.js';
import { LABELS_JSON, METADATA_JSON } from './tfjs.js';

export const ONNX_FILE = 'model.onnx';
/** Detection exports: the model's raw CenterNet map, for callers who decode it themselves (docs/detection-evaluate.md). */
export const RAW_ONNX_FILE = 'model-raw.onnx';

export interface TensorSignature {
  name: string;
  /** ONNX TensorProto.DataType code (1 = FLOAT, 2 = UINT8). */
  elemType: number;
  /** Dimensions with the batch dimension first; symbolic dimensions as their names. */
  dims: Array<number | string>;
}

export interface OnnxModel {
  bytes: Uint8Array;
  origin: 'package' | 'converted';
  /** 'int8' when the graph quantizes activations (QuantizeLinear / integer kernels); else the float weights' storage. */
  precision: 'fp32' | 'int8';
  inputVariant: InputVariant;
  weights: WeightsVariant;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** The metadata_props mlctl wrote (also what Triton's config parameters carry). */
  metadataProps: Record<string, string>;
  docString: string;
  /** How a quantized package's weights were stored (converted models only). */
  storage?: StorageReport;
}

export interface OnnxExportOptions {
  /** ai.onnx opset for a conversion (the converter's default when omitted). */
  opset?: number;
  /** UINT8 RGB NHWC pixel input with the manifest's preprocessing done in the graph (image models). */
  embedPreprocessing?: boolean;
  /** Detection models: NonMaxSuppression's IoU threshold in the decoded graph (default 0.5). */
  nmsIou?: number;
  /** Detection models: keep the raw CenterNet map as the output instead of decoding it in the graph. */
  rawDetections?: boolean;
  logger?: Logger;
}

/** The metadata_props mlctl writes: flat strings, JSON where the value is structured. */
export function onnxMetadataProps(meta: ExportMetadata, variant: { input: InputVariant; weights: WeightsVariant } = { input: 'preprocessed', weights: 'fp32' }): Record<string, string> {
  const { source } = meta;
  return {
    'mlctl.name': meta.name,
    ...(meta.task ? { 'mlctl.task': meta.task } : {}),
    'mlctl.input': JSON.stringify(meta.input),
    ...variantProps(meta, variant),
    'mlctl.output': JSON.stringify(meta.output),
    'mlctl.source': JSON.stringify({ name: source.name, version: source.version, manifestSha256: source.manifestSha256, files: source.files }),
    'mlctl.exported_by': meta.exportedBy,
    'mlctl.exported_at': meta.exportedAt,
  };
}

/** ModelProto.doc_string of an export: what this graph is (variant and precision), not what it was made from. */
export function onnxDocString(meta: ExportMetadata, variant: { input: InputVariant; weights: WeightsVariant }): string {
  const s = meta.source;
  return [
    `${meta.name} v${s.version}: ${meta.task ?? 'generic tensor model'}, ${meta.labels.length} labels.`,
    `Input: ${INPUT_VARIANTS[variant.input]}.`,
    `Weights: ${WEIGHTS_VARIANTS[variant.weights]}.`,
    `Exported by ${meta.exportedBy} from package ${s.name} v${s.version} (mlctl.json sha256 ${s.manifestSha256}).`,
  ].join(' ');
}

function signature(vi: ModelProto['graph']['input'][number]): TensorSignature {
  const t = vi.type?.tensorType;
  return { name: vi.name, elemType: t?.elemType ?? 0, dims: (t?.shape?.dim ?? []).map((d) => d.dimParam ?? d.dimValue ?? '?') };
}

/** Activations quantized: what makes a graph an int8 model (weight-only DequantizeLinear does not). */
const INT8_OPS = new Set(['QuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

function describe(proto: ModelProto): Pick<OnnxModel, 'precision' | 'inputs' | 'outputs'> {
  const initializers = new Set(proto.graph.initializer.map((t) => t.name));
  return {
    precision: proto.graph.node.some((n) => INT8_OPS.has(n.opType)) ? 'int8' : 'fp32',
    // Older IRs list initializers among the graph inputs; they are not inputs a client feeds.
    inputs: proto.graph.input.filter((v) => !initializers.has(v.name)).map(signature),
    outputs: proto.graph.output.map(signature),
  };
}

/** The graph as it comes: the package's own ONNX model, or a conversion of its TF.js model at its weights' precision. */
async function baseProto(pkg: LoadedPackage, opts: OnnxExportOptions): Promise<{ proto: ModelProto; origin: OnnxModel['origin']; storage?: StorageReport }> {
  const rel = pkg.manifest.formats.onnx;
  if (rel) {
    opts.logger?.info(`using the package's own ONNX model (${rel})`);
    return { proto: decodeModel(await readModelFile(pkg, rel)), origin: 'package' };
  }
  if (!pkg.manifest.formats.tfjs) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has neither an ONNX model (formats.onnx) nor a TF.js model to convert']);
  opts.logger?.info('converting the TF.js model to ONNX');
  const weights = await packageWeights(pkg);
  const storage = storageOf(weights);
  const model = await loadTfjsModel(pkg);
  let proto: ModelProto;
  try {
    // A quantized package keeps BatchNormalization unfolded: folded kernels (W·γ/σ) are no values the package stores.
    proto = buildModelProto(model, { inputName: pkg.manifest.input.name, outputName: pkg.manifest.output.name, foldBatchNorm: storage === 'fp32', ...(opts.opset ? { opset: opts.opset } : {}) });
  } finally {
    model.dispose();
  }
  if (storage === 'fp32') return { proto, origin: 'converted' };
  const report = storeWeightsAs(proto, weights, storage);
  const kept = Object.keys(report.keptFp32);
  opts.logger?.info(`stored ${report.converted} weight tensor(s) as ${storage} like the package (${(report.initializerBytes.before / 2 ** 20).toFixed(1)} → ${(report.initializerBytes.after / 2 ** 20).toFixed(1)} MiB)${kept.length ? `; ${kept.length} kept as float32: ${kept.slice(0, 4).join(', ')}${kept.length > 4 ? ', …' : ''}` : ''}`);
  return { proto, origin: 'converted', storage: report };
}

/** The ONNX model to export for `meta`'s package: variant, precision, metadata_props (mlctl.* replaced, others kept), doc_string. */
export async function onnxModelFor(pkg: LoadedPackage, meta: ExportMetadata, opts: OnnxExportOptions = {}): Promise<OnnxModel> {
  const spec = pkg.manifest.input;
  if (opts.embedPreprocessing && spec.kind !== 'image') {
    throw new MlctlError('EXPORT_UNSUPPORTED', [`--embed-preprocessing applies to image models; ${pkg.manifest.name} takes ${spec.kind} input`]);
  }
  const { proto, origin, storage } = await baseProto(pkg, opts);
  const { precision } = describe(proto);
  const weights: WeightsVariant = precision === 'int8' ? 'int8-qdq' : (storage?.storage ?? 'fp32');
  const inputVariant: InputVariant = opts.embedPreprocessing ? 'pixels' : 'preprocessed';
  if (opts.embedPreprocessing && spec.kind === 'image') {
    const input = describe(proto).inputs[0];
    if (!input || describe(proto).inputs.length !== 1) throw new MlctlError('EXPORT_UNSUPPORTED', [`--embed-preprocessing needs a single-input model; this graph has ${describe(proto).inputs.length} inputs`]);
    const batchDim = typeof input.dims[0] === 'string' ? input.dims[0] : BATCH_DIM;
    const steps = embedPreprocessing(proto, spec.preprocessing, { name: input.name, height: spec.height, width: spec.width, batchDim, layout: spec.layout });
    opts.logger?.info(`embedded ${spec.preprocessing.mode} preprocessing (${steps.nodes.join(' → ')}): the input takes UINT8 RGB pixels [batch, ${spec.height}, ${spec.width}, 3]`);
  }
  const variant = { input: inputVariant, weights };
  const metadataProps = onnxMetadataProps(meta, variant);
  const d = pkg.manifest.detection;
  // Imported detectors (yolo, torchvision heads) export as the model they are, with the section in their metadata.
  if (d && d.head !== 'centernet') metadataProps['mlctl.detection'] = JSON.stringify(d);
  else if (d) {
    // How the outputs read: decoded boxes, or the map and what decoding it takes (models/detection/decode.ts).
    const decode = opts.rawDetections ? undefined : appendCenterNetDecode(proto, d, { iouThreshold: opts.nmsIou ?? DEFAULT_NMS_IOU });
    if (decode) opts.logger?.info(`decoding in the graph: 3x3 peaks, top ${decode.topK} per picture, NonMaxSuppression at IoU ${decode.iouThreshold} → ${Object.values(DECODED_OUTPUTS).join(', ')}`);
    metadataProps['mlctl.detection'] = JSON.stringify({
      ...d,
      outputs: decode ? { ...DECODED_OUTPUTS, boxFormat: 'x1,y1,x2,y2 in input pixels', nmsIou: decode.iouThreshold, topK: decode.topK } : { map: pkg.manifest.output.name, layout: `[batch, ${d.grid[0]}, ${d.grid[1]}, ${d.classes} heat map + w, h, dx, dy]` },
    });
  }
  const docString = onnxDocString(meta, variant);
  proto.metadataProps = [...(proto.metadataProps ?? []).filter((p) => !(p.key in metadataProps)), ...Object.entries(metadataProps).map(([key, value]) => ({ key, value }))];
  proto.docString = docString;
  return { bytes: encodeModel(proto), origin, inputVariant, weights, metadataProps, docString, ...describe(proto), ...(storage ? { storage } : {}) };
}

/**
 * Load the model in ONNX Runtime and run one all-zero example: catches a graph that onnxruntime rejects before
 * anyone deploys it, and checks the output size against the manifest.
 */
export async function checkOnnxRuns(model: OnnxModel, expectedOutputSize: number | undefined, logger?: Logger): Promise<void> {
  logger?.info(`checking the ${model.weights} ONNX model (${(model.bytes.byteLength / 2 ** 20).toFixed(1)} MiB) in ONNX Runtime`);
  // Loaded here, not at import: every mlctl command imports the command table, and the native add-on is heavy.
  // engines/onnx first: it sets ORT's environment (telemetry off, errors-only logging) before the add-on initialises.
  const { ort, onnxSessionOptions } = await import('../runtime/ort.js');
  // mlctl's session options (errors only: ORT's warnings carry colour codes even off a terminal), one thread, and
  // no graph rewrites beyond the basic ones: this checks the graph as written.
  const session = await ort.InferenceSession.create(model.bytes, { ...onnxSessionOptions(1), graphOptimizationLevel: 'basic' });
  try {
    const input = model.inputs[0];
    if (!input || model.inputs.length !== 1) throw new Error(`expected one graph input, found ${model.inputs.length}`);
    // A free leading dimension is the batch (one example); fixed dimensions as the model has them, so a model
    // without a batch dimension (torchvision's detectors take one [3, h, w] image) gets its own shape.
    const dims = input.dims.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : NaN));
    if (dims.some((d) => !Number.isFinite(d))) throw new Error(`input ${input.name} has non-batch symbolic dimensions ${JSON.stringify(input.dims)}`);
    const size = dims.reduce((a, d) => a * d, 1);
    const zeros = input.elemType === DataType.UINT8 ? new ort.Tensor('uint8', new Uint8Array(size), dims) : new ort.Tensor('float32', new Float32Array(size), dims);
    const out = await session.run({ [input.name]: zeros });
    const first = out[model.outputs[0]!.name];
    if (!first) throw new Error(`ONNX Runtime returned no output ${model.outputs[0]!.name}`);
    if (expectedOutputSize !== undefined && first.size !== expectedOutputSize) throw new Error(`output ${model.outputs[0]!.name} has ${first.size} values per example, the manifest says ${expectedOutputSize}`);
    for (const v of first.data as Float32Array) if (!Number.isFinite(v)) throw new Error('the output holds non-finite values for an all-zero input');
  } catch (err) {
    throw new MlctlError('EXPORT_CHECK_FAILED', [`the exported ONNX model failed its ONNX Runtime check: ${(err as Error).message}`], { cause: err });
  } finally {
    await session.release();
  }
}

export function onnxDetails(model: OnnxModel, file: string): Record<string, unknown> {
  return {
    onnxFile: file,
    origin: model.origin,
    precision: model.precision,
    inputVariant: model.inputVariant,
    weights: model.weights,
    inputs: model.inputs,
    outputs: model.outputs,
    bytes: model.bytes.byteLength,
    ...(model.storage ? { storage: model.storage } : {}),
  };
}

/** What checkOnnxRuns expects of the first output: the manifest's size, or nothing fixed for decoded detections (M boxes). */
/** Values per example the first output must hold: the manifest's size, except for decoded boxes and an imported detector's own outputs. */
export const checkedOutputSize = (pkg: LoadedPackage, model: OnnxModel): number | undefined => {
  const d = pkg.manifest.detection;
  return d && (d.head !== 'centernet' || model.outputs[0]?.name === DECODED_OUTPUTS.boxes) ? undefined : pkg.manifest.output.size!;
};

export async function writeOnnxExport(pkg: LoadedPackage, dir: string, opts: OnnxExportOptions = {}): Promise<Record<string, unknown>> {
  const base = exportMetadata(pkg, 'onnx');
  const model = await onnxModelFor(pkg, base, opts);
  await checkOnnxRuns(model, checkedOutputSize(pkg, model), opts.logger);
  await fs.writeFile(path.join(dir, ONNX_FILE), model.bytes);
  // Detection: the raw map beside the decoded graph, for callers who decode (or batch) it their own way.
  let raw: Record<string, unknown> | undefined;
  if (pkg.manifest.detection?.head === 'centernet' && !opts.rawDetections) {
    const rawModel = await onnxModelFor(pkg, base, { ...opts, rawDetections: true, logger: undefined });
    await checkOnnxRuns(rawModel, pkg.manifest.output.size!, opts.logger);
    await fs.writeFile(path.join(dir, RAW_ONNX_FILE), rawModel.bytes);
    raw = onnxDetails(rawModel, RAW_ONNX_FILE);
  }
  const details = { ...onnxDetails(model, ONNX_FILE), ...(raw ? { raw } : {}), labelsFile: LABELS_JSON, metadataProps: Object.keys(model.metadataProps) };
  await writeJsonAtomic(path.join(dir, LABELS_JSON), pkg.manifest.labels);
  await writeJsonAtomic(path.join(dir, METADATA_JSON), { ...base, details });
  return details;
}

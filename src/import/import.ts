// `mlctl import`: a model made elsewhere becomes a normal package — a generic tensor model (its own named tensors),
// an image classifier, or a detector (YOLO / torchvision heads) — with manifest, hashes, lineage and an audit line.
// The model is opened and run once before anything is written (import/onnx.ts); nothing is left half-written.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DetectionSection, ImageInputSpec, ManifestDraft, PreprocessingSpec, TensorRecord } from '../artifacts/manifest.js';
import { sha256 } from '../artifacts/hash.js';
import { savePackage, type LoadedPackage } from '../artifacts/package.js';
import { saveTensorModelPackage, TENSOR_MODEL_FILE } from '../artifacts/tensor-model.js';
import { preprocessingFor, type PreprocessingMode } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { describeSpec, elementCount, type TensorSpec } from '../runtime/tensor.js';
import { readOnnxModel, type OnnxModel } from './onnx.js';
import { convertToOnnx, modelKindOf } from './convert.js';

export const IMPORT_TASKS = ['image-classification', 'detection'] as const;
export type ImportTask = (typeof IMPORT_TASKS)[number];
export const IMPORT_LAYOUTS = ['NCHW', 'NHWC', 'yolo', 'torchvision'] as const;
export type ImportLayout = (typeof IMPORT_LAYOUTS)[number];

export interface ImportOptions {
  file: string;
  name: string;
  root?: string;
  version?: number;
  task?: ImportTask;
  labels?: string[];
  preprocessing?: PreprocessingMode;
  /** [height, width] of the image input (needed when the model leaves them open). */
  imageSize?: [number, number];
  channelOrder?: PreprocessingSpec['channelOrder'];
  mean?: number[];
  std?: number[];
  resize?: PreprocessingSpec['resize'];
  /** Image tensor layout (NCHW/NHWC; read from the model when absent), or a detector's output layout (yolo/torchvision). */
  layout?: ImportLayout;
  inputShapes?: ReadonlyMap<string, number[]>;
  /** Detection: defaults of the decoding recorded in the manifest. */
  maxDetections?: number;
  iouThreshold?: number;
  scoreThreshold?: number;
  logger?: Logger;
}

export interface ImportResult {
  pkg: LoadedPackage;
  /** What was imported: the source format and what import did to it. */
  source: { file: string; format: string; sha256: string; opset: number; producer: string; externalData: string[] };
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** Labels from --labels: a file (one per line, or a JSON array) when one exists at that path, else a comma list. */
export async function readLabels(value: string): Promise<string[]> {
  let text: string | undefined;
  try {
    text = await fs.readFile(value, 'utf8');
  } catch (err) {
    if (!['ENOENT', 'ENAMETOOLONG'].includes((err as NodeJS.ErrnoException).code ?? '')) throw new MlctlError('OPTION_INVALID', [`--labels ${value}: cannot read it (${(err as Error).message})`]);
  }
  const labels = text === undefined ? value.split(',') : text.trim().startsWith('[') ? parseJsonLabels(value, text) : text.split(/\r?\n/);
  const out = labels.map((l) => l.trim()).filter((l, i, all) => l !== '' || i < all.length - 1);
  if (!out.length || out.some((l) => !l)) throw new MlctlError('OPTION_INVALID', [`--labels ${value}: expected a file with one label per line (or a JSON array), or a,b,c; got an empty label`]);
  return out;
}

function parseJsonLabels(file: string, text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* reported below */
  }
  throw new MlctlError('OPTION_INVALID', [`--labels ${file}: a JSON labels file must be an array of strings`]);
}

const record = (t: TensorSpec): TensorRecord => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] });

/** Import a model file as a package (see the file comment). */
export async function importModel(opts: ImportOptions): Promise<ImportResult> {
  const kind = await modelKindOf(opts.file);
  const converted = kind === 'onnx' ? undefined : await convertToOnnx(opts.file, kind, opts.logger);
  const model = converted ? await readConverted(converted.bytes, opts) : await readOnnxModel(opts.file, { inputShapes: opts.inputShapes, imageSize: opts.imageSize });
  const sourceBytes = converted?.sourceBytes ?? (await fs.readFile(opts.file));
  const source = { file: path.resolve(opts.file), format: kind, sha256: sha256(sourceBytes), opset: model.opset, producer: model.producer, externalData: model.externalData };
  const architecture = { type: 'onnx', imported: kind, producer: model.producer || undefined, opset: model.opset };
  const lineage = [{ op: 'import', at: new Date().toISOString(), tool: 'mlctl', params: { origin: source.file, format: kind, sha256: source.sha256, ...(model.externalData.length ? { externalData: model.externalData } : {}) } }];
  if (!opts.task) {
    if (opts.labels || opts.preprocessing || opts.layout) throw new MlctlError('OPTION_CONFLICT', ['--labels, --preprocessing and --layout describe a task: give --task image-classification or --task detection (without a task the model is imported as a generic tensor model)']);
    const pkg = await saveTensorModelPackage({
      name: opts.name,
      root: opts.root,
      version: opts.version,
      onnx: model.bytes,
      tensors: { inputs: model.inputs.map(record), outputs: model.outputs.map(record) },
      architecture,
      origin: source.file,
    });
    return { pkg, source, inputs: model.inputs, outputs: model.outputs };
  }
  const draft = opts.task === 'image-classification' ? classifierDraft(model, opts) : detectorDraft(model, opts);
  const pkg = await savePackage({
    name: opts.name,
    root: opts.root,
    version: opts.version,
    draft: { ...draft, architecture: { ...architecture, ...draft.architecture }, formats: { onnx: TENSOR_MODEL_FILE }, lineage },
    write: (dir) => fs.writeFile(path.join(dir, TENSOR_MODEL_FILE), model.bytes),
  });
  return { pkg, source, inputs: model.inputs, outputs: model.outputs };
}

async function readConverted(bytes: Uint8Array, opts: ImportOptions): Promise<OnnxModel> {
  // The converted model goes through the same trial run as any ONNX file, from a temporary file.
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mlctl-import-'));
  try {
    const file = path.join(tmp, 'model.onnx');
    await fs.writeFile(file, bytes);
    return await readOnnxModel(file, { inputShapes: opts.inputShapes, imageSize: opts.imageSize });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

type TaskDraft = Omit<ManifestDraft, 'formats' | 'lineage'>;

/** The model's one image input as an ImageInputSpec: layout and size from the model, --image-size, or --input-shape. */
function imageInput(model: OnnxModel, opts: ImportOptions, what: string): ImageInputSpec {
  const fail = (why: string): never => {
    throw new MlctlError('IMPORT_TASK_MISMATCH', [opts.file, what, why]);
  };
  if (model.inputs.length !== 1) fail(`it takes ${model.inputs.length} inputs (${model.inputs.map(describeSpec).join(', ')}); an image model takes one`);
  const input = model.inputs[0]!;
  if (input.datatype !== 'FP32') fail(`its input ${describeSpec(input)} is not FP32 (an image model takes preprocessed floats)`);
  const shape = model.trialShapes.get(input.name)!;
  // Channels first [n, 3, h, w] or last [n, h, w, 3]; torchvision detection exports take one image [3, h, w].
  const rank4 = shape.length === 4;
  const dims = rank4 ? shape.slice(1) : shape;
  if (dims.length !== 3) fail(`its input ${describeSpec(input)} is not an image tensor [batch, 3, height, width] or [batch, height, width, 3]`);
  const tensorLayout = opts.layout === 'NCHW' || opts.layout === 'NHWC' ? opts.layout : dims[0] === 3 && dims[2] !== 3 ? 'NCHW' : dims[2] === 3 && dims[0] !== 3 ? 'NHWC' : fail(`cannot tell whether its input ${describeSpec(input)} is channels first or last: give --layout NCHW or --layout NHWC`);
  const declared = (rank4 ? input.shape.slice(1) : input.shape) as number[];
  const [c, h, w] = tensorLayout === 'NCHW' ? [0, 1, 2] : [2, 0, 1];
  if (dims[c] !== 3) fail(`its input ${describeSpec(input)} does not have 3 channels where ${tensorLayout} puts them`);
  let [height, width] = [declared[h]!, declared[w]!];
  if (opts.imageSize) {
    if ((height > 0 && height !== opts.imageSize[0]) || (width > 0 && width !== opts.imageSize[1])) fail(`its input ${describeSpec(input)} is fixed at ${height}x${width}, not --image-size ${opts.imageSize.join('x')}`);
    [height, width] = opts.imageSize;
  } else if (height < 0 || width < 0) {
    // --input-shape gave them for the trial run.
    [height, width] = [dims[h]!, dims[w]!];
  }
  if (!opts.preprocessing) fail('give --preprocessing caffe|tf|torch|unit|raw: how raw pixels become this model\'s input (torchvision classifiers: torch; Keras applications: caffe or tf; YOLO and torchvision detectors: unit)');
  const base = preprocessingFor(opts.preprocessing!);
  const three = (v: number[] | undefined, flag: string) => {
    if (v && (v.length !== 3 || v.some((x) => !Number.isFinite(x)))) throw new MlctlError('OPTION_INVALID', [`${flag} takes 3 numbers, one per channel in the model's channel order, e.g. 0.485,0.456,0.406`]);
    if (flag === '--std' && v?.some((x) => x === 0)) throw new MlctlError('OPTION_INVALID', ['--std values divide: none may be 0']);
    return v;
  };
  const preprocessing: PreprocessingSpec = {
    ...base,
    ...(opts.channelOrder ? { channelOrder: opts.channelOrder } : {}),
    ...(three(opts.mean, '--mean') ? { mean: opts.mean! } : {}),
    ...(three(opts.std, '--std') ? { std: opts.std! } : {}),
    ...(opts.resize ? { resize: opts.resize } : {}),
  };
  return { kind: 'image', name: input.name, height, width, channels: 3, layout: tensorLayout, dtype: 'float32', preprocessing };
}

function classifierDraft(model: OnnxModel, opts: ImportOptions): TaskDraft {
  const what = '--task image-classification';
  const fail = (why: string): never => {
    throw new MlctlError('IMPORT_TASK_MISMATCH', [opts.file, what, why]);
  };
  if (opts.layout === 'yolo' || opts.layout === 'torchvision') throw new MlctlError('OPTION_CONFLICT', [`--layout ${opts.layout} is a detector's output layout; with --task image-classification --layout is NCHW or NHWC`]);
  if (!opts.labels) fail('give --labels FILE or --labels a,b,c: one label per output value, in output order');
  const input = imageInput(model, opts, what);
  if (model.outputs.length !== 1) fail(`it answers ${model.outputs.length} outputs (${model.outputs.map(describeSpec).join(', ')}); a classifier answers one row of scores per image`);
  const out = model.outputs[0]!;
  const trial = model.trial.get(out.name)!;
  const size = elementCount(trial.shape.slice(1));
  if (trial.shape.length !== 2 || out.datatype === 'BYTES') fail(`its output ${describeSpec(out)} is not one row of scores per image [batch, classes]`);
  if (size !== opts.labels!.length) fail(`its output has ${size} scores per image but --labels gives ${opts.labels!.length} labels`);
  // A graph that ends in Softmax answers probabilities; anything else (logits) is softmaxed by the task.
  const kind = model.producedBy.get(out.name) === 'Softmax' ? 'probabilities' : 'scores';
  return { task: 'image-classification', labels: opts.labels!, input, output: { name: out.name, kind, size }, architecture: { outputs: kind } };
}

function detectorDraft(model: OnnxModel, opts: ImportOptions): TaskDraft {
  const fail = (why: string): never => {
    throw new MlctlError('IMPORT_TASK_MISMATCH', [opts.file, `--task detection${opts.layout ? ` --layout ${opts.layout}` : ''}`, why]);
  };
  if (opts.layout !== 'yolo' && opts.layout !== 'torchvision') throw new MlctlError('OPTION_REQUIRED', ['--task detection needs --layout yolo (Ultralytics YOLOv5/v8 heads before NMS) or --layout torchvision (boxes, scores, labels outputs)']);
  if (!opts.labels) fail('give --labels FILE or --labels a,b,c: the class names, in the model\'s class order');
  const labels = opts.labels!;
  const input = imageInput(model, { ...opts, layout: undefined }, '--task detection');
  const common = { maxDetections: opts.maxDetections ?? 100, resize: input.preprocessing.resize };
  let detection: DetectionSection;
  let output: { name: string; size: number };
  if (opts.layout === 'yolo') {
    if (model.outputs.length !== 1) fail(`a YOLO head answers one output [batch, 4 + classes, anchors]; this model answers ${model.outputs.map(describeSpec).join(', ')}`);
    const out = model.outputs[0]!;
    const shape = model.trial.get(out.name)!.shape;
    const nc = labels.length;
    if (shape.length !== 3) fail(`its output ${out.name} [${shape.join(', ')}] is not [batch, 4 + classes, anchors] (YOLOv8) or [batch, anchors, 5 + classes] (YOLOv5)`);
    const [, a, b] = shape as [number, number, number];
    // Which axis holds 4 (+1 objectness) + classes values tells the layout.
    const fits = ([[a, b, false, false], [a, b, false, true], [b, a, true, false], [b, a, true, true]] as const).filter(([vals, , , obj]) => vals === 4 + (obj ? 1 : 0) + nc);
    // Real heads have thousands of anchors and tens of values: when both axes could be values, the longer one is the anchors.
    fits.sort((p, q) => q[1] - p[1]);
    if (!fits.length) fail(`its output ${out.name} [${shape.join(', ')}] has no axis of 4 + ${nc} (or 5 + ${nc}) values for the ${nc} labels given`);
    const [, anchors, transposed, objectness] = fits[0]!;
    detection = {
      head: 'yolo',
      classes: nc,
      categoryIds: labels.map((_, i) => i + 1),
      ...common,
      maxDetections: opts.maxDetections ?? 300,
      output: out.name,
      anchors,
      transposed,
      objectness,
      // Ultralytics' predict defaults: conf 0.25; IoU 0.7 (YOLOv8) and 0.45 (YOLOv5 detect.py).
      iouThreshold: opts.iouThreshold ?? (objectness ? 0.45 : 0.7),
      scoreThreshold: opts.scoreThreshold ?? 0.25,
    };
    output = { name: out.name, size: anchors * (4 + (objectness ? 1 : 0) + nc) };
  } else {
    const find = (re: RegExp, dt: (d: string) => boolean, rank: number) => model.outputs.find((o) => re.test(o.name) && dt(o.datatype) && model.trial.get(o.name)!.shape.length === rank);
    const byPosition = model.outputs.length === 3 ? model.outputs : [];
    const boxes = find(/box/i, (d) => d.startsWith('FP'), 2) ?? byPosition[0];
    const scores = find(/score/i, (d) => d.startsWith('FP'), 1) ?? byPosition[1];
    const labelsOut = find(/label|class/i, (d) => d.startsWith('INT'), 1) ?? byPosition[2];
    if (!boxes || !scores || !labelsOut) fail(`a torchvision detector answers boxes [n, 4], scores [n] and labels [n]; this model answers ${model.outputs.map(describeSpec).join(', ')}`);
    // torchvision numbers classes with 0 the background: its own category lists start with "__background__".
    const labelOffset = labels[0] === '__background__' ? 0 : 1;
    detection = { head: 'torchvision', classes: labels.length, categoryIds: labels.map((_, i) => i + labelOffset), ...common, outputs: { boxes: boxes!.name, scores: scores!.name, labels: labelsOut!.name }, labelOffset };
    output = { name: boxes!.name, size: 0 };
  }
  return { task: 'detection', labels, input, output: { name: output.name, kind: 'detection', size: output.size }, detection, architecture: { head: detection.head } };
}

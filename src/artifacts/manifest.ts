// The model package manifest (mlctl.json): the single contract between train, optimize, evaluate, export and serve.
// Any subcommand that reads a package reads it through this type; validateManifest() is the schema check.
import { MlctlError } from '../errors.js';

export const MANIFEST_FILE = 'mlctl.json';
export const SCHEMA_VERSION = 1;

/** How raw RGB pixels (0..255, HWC) become the model's input tensor. Implemented once in data/preprocess.ts. */
export interface PreprocessingSpec {
  /** caffe: RGB→BGR minus ImageNet means (Keras VGG16); tf: scale to [-1,1]; torch: /255 then mean/std; unit: /255; raw: none. */
  mode: 'caffe' | 'tf' | 'torch' | 'unit' | 'raw';
  channelOrder: 'RGB' | 'BGR';
  /** Per channel, in the model's channel order, subtracted after scaling. */
  mean: number[];
  /** Per channel divisor applied after mean subtraction (1 = none). */
  std: number[];
  /** Multiplier applied to 0..255 pixels before mean/std. */
  scale: number;
  /** Resize rule: images are resized to exactly height x width. */
  resize: 'fill' | 'cover' | 'contain';
  /**
   * Resampling of that resize: bilinear (sharp/libvips kernel "linear"). A consumer resizing with another kernel
   * (sharp's default lanczos3, bicubic) feeds the model other pixels and loses accuracy. Manifests written before it
   * was recorded are read as bilinear (normalizeManifest): the resize mlctl always did.
   */
  interpolation: 'bilinear';
  /**
   * Downscaling averages the whole source area under each output pixel (libvips shrink + reduce: Pillow's
   * Image.resize(BILINEAR), tf.image.resize(antialias=True)), not just its 2x2 neighbours (cv2.INTER_LINEAR,
   * tf.image.resize's default antialias=False). Older manifests: true.
   */
  antialias: true;
}

/** What a manifest without interpolation/antialias meant: the resize data/preprocess.ts has always done. */
export const LEGACY_RESIZE = { interpolation: 'bilinear', antialias: true } as const satisfies Pick<PreprocessingSpec, 'interpolation' | 'antialias'>;

export interface ImageInputSpec {
  kind: 'image';
  name: string;
  height: number;
  width: number;
  channels: 3;
  /**
   * Element order of the tensor: NHWC (Keras/TF.js, what mlctl trains) or NCHW (PyTorch exports, channels first).
   * data/preprocess.ts writes what it says; height and width are the same either way.
   */
  layout: 'NHWC' | 'NCHW';
  dtype: 'float32';
  preprocessing: PreprocessingSpec;
}

export interface TabularInputSpec {
  kind: 'tabular';
  name: string;
  features: string[];
  dtype: 'float32';
  /** Standardisation and encoding recorded by training, applied by every consumer. */
  transform?: Record<string, unknown>;
}

/**
 * One tensor as mlctl.json records it: a V2 datatype name (FP32, INT64, BOOL …) and the shape with the batch
 * dimension, -1 where dynamic. Checked into the runtime's TensorSpec (runtime/tensor.ts specOf) when it is used.
 */
export interface TensorRecord {
  name: string;
  datatype: string;
  shape: number[];
}

/** A generic tensor model's inputs (no task): whatever it declares, fed as they are; no single input name. */
export interface TensorsInputSpec {
  kind: 'tensors';
  tensors: TensorRecord[];
  name?: undefined;
}

export type InputSpec = ImageInputSpec | TabularInputSpec | TensorsInputSpec;

export interface ValuesOutputSpec {
  name: string;
  /** detection: a map the manifest's `detection` section says how to decode into boxes. */
  kind: 'probabilities' | 'regression' | 'scores' | 'detection';
  /** Number of values per example. */
  size: number;
}

/** A generic tensor model's outputs (no task): no single output, no labels to read off it. */
export interface TensorsOutputSpec {
  kind: 'tensors';
  tensors: TensorRecord[];
  name?: undefined;
  size?: undefined;
}

export type OutputSpec = ValuesOutputSpec | TensorsOutputSpec;

/**
 * How a detection model's output becomes boxes (task "detection"; docs/tasks.md, docs/import.md). One variant per head:
 * centernet (mlctl's own), yolo and torchvision (imported models, `mlctl import --task detection --layout …`).
 */
export type DetectionSection = CenterNetSection | YoloSection | TorchvisionSection;

/** What every head records: its classes, their dataset ids, how many boxes to keep, how boxes map back to the picture. */
interface DetectionCommon {
  /** Object classes: the labels, in the model's class order. */
  classes: number;
  /** K: most detections decoding keeps per image. */
  maxDetections: number;
  /** Score below which serve and predict drop a box unless told otherwise (absent: the task's default, 0.3). */
  minScore?: number;
  /** The dataset's category id of each label (COCO category ids; YOLO/VOC: index + 1), for COCO results files. */
  categoryIds: number[];
  /** How boxes map back to the original picture: "fill" stretches it to the input, so x·W/width and y·H/height. */
  resize: PreprocessingSpec['resize'];
}

/**
 * centernet: one output [grid h, grid w, classes + 4] per image — per-class centre heatmap (sigmoid), box size (w, h)
 * and centre offset (dx, dy) in grid cells — decoded by models/detection/decode.ts (3x3 peak rule, top maxDetections).
 */
export interface CenterNetSection extends DetectionCommon {
  head: 'centernet';
  /** Output grid [h, w]: the input size divided by the stride. */
  grid: [number, number];
  /** Input pixels per grid cell. */
  stride: number;
}

/**
 * yolo: Ultralytics' raw head before NMS, one output [batch, 4 + (1) + classes, anchors] (YOLOv8; `transposed`:
 * [batch, anchors, 4 + (1) + classes], YOLOv5) — box centre x, y, width, height in input pixels, then an objectness
 * score when `objectness` (YOLOv5), then per-class scores. Decoded by models/detection/yolo.ts: score = class score
 * (× objectness), then per-class non-maximum suppression at `iouThreshold`.
 */
export interface YoloSection extends DetectionCommon {
  head: 'yolo';
  /** The output tensor holding the head. */
  output: string;
  /** Anchors (candidate boxes) per image. */
  anchors: number;
  /** [batch, anchors, values] instead of [batch, values, anchors]. */
  transposed: boolean;
  /** A fifth value per anchor before the class scores, multiplied into each (YOLOv5). */
  objectness: boolean;
  /** Boxes overlapping a better box of the same class by more than this IoU are dropped. */
  iouThreshold: number;
  /** Candidates scoring below this are dropped before NMS. */
  scoreThreshold: number;
}

/**
 * torchvision: a detection model exported with its own post-processing (SSD, SSDLite, Faster R-CNN, RetinaNet):
 * outputs boxes [n, 4] (x1, y1, x2, y2 in input pixels), scores [n] and labels [n] (class indices, 0 the
 * background in torchvision's numbering). Decoded by models/detection/torchvision.ts as given. The manifest's output
 * names the boxes tensor with size 0: how many boxes come back is the model's to say.
 */
export interface TorchvisionSection extends DetectionCommon {
  head: 'torchvision';
  /** The output tensor names. */
  outputs: { boxes: string; scores: string; labels: string };
  /** Subtracted from a model label to index `labels` (1 when the labels leave out torchvision's background 0). */
  labelOffset: number;
}

export interface FileEntry {
  sha256: string;
  bytes: number;
}

/** Who signed a package a lineage entry points at (its mlctl.sig, checked when the new package was made). */
export interface SignerRecord {
  keyId: string;
  signedAt: string;
  /** True when the signature was checked against trusted keys, false when only against the key it carries. */
  trusted: boolean;
}

export interface LineageEntry {
  op: string;
  at: string;
  tool: string;
  from?: { name: string; version: number; manifestSha256: string; signer?: SignerRecord };
  params?: Record<string, unknown>;
}

export const ENCRYPTION_ALGORITHM = 'AES-256-GCM';
export const ENCRYPTION_FORMAT = 'mlctl-aes-256-gcm-v1';

/** An encrypted package's record (artifacts/encryption.ts): algorithm, key fingerprint, which files are ciphertext. */
export interface EncryptionRecord {
  algorithm: typeof ENCRYPTION_ALGORITHM;
  format: typeof ENCRYPTION_FORMAT;
  /** Fingerprint of the key (HMAC-SHA256 of a fixed label under the key), never the key. */
  keyId: string;
  /** Package-relative paths of the encrypted files; the manifest's sha256 of each is of the ciphertext. */
  files: string[];
}

export interface Manifest {
  schemaVersion: number;
  name: string;
  version: number;
  createdAt: string;
  /**
   * What kind of model this is — a task in src/tasks/ ("image-classification", "tabular-classification",
   * "tabular-regression"), which owns its labels/output sections. Absent: a generic tensor model (no labels, no
   * metrics), served by its tensors (input/output of kind "tensors" list them when the model has several).
   */
  task?: string;
  labels: string[];
  input: InputSpec;
  output: OutputSpec;
  /** Detection models (task "detection"): how the output decodes into boxes. */
  detection?: DetectionSection;
  /** Free-form description of the network: backbone, head, layer counts, parameter count. */
  architecture: Record<string, unknown>;
  /** Model formats present in the package, by format → file name relative to the package. */
  formats: { tfjs?: string; onnx?: string; [format: string]: string | undefined };
  training?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  lineage: LineageEntry[];
  /** Present when a gate rejected this package (e.g. quantization accuracy drop). */
  status?: 'ok' | 'rejected';
  statusReason?: string;
  /** Present when model files are stored encrypted (mlctl encrypt). */
  encryption?: EncryptionRecord;
  /** sha256 and size of every file in the package except mlctl.json itself (and its detached signature, mlctl.sig). */
  files: Record<string, FileEntry>;
}

/** Fields a producer supplies; name, version, createdAt and files are filled in by savePackage(). */
export type ManifestDraft = Omit<Manifest, 'schemaVersion' | 'name' | 'version' | 'createdAt' | 'files'>;

export function validateManifest(value: unknown, where: string): Manifest {
  const fail = (why: string): never => {
    throw new MlctlError('PACKAGE_INVALID', [where, why]);
  };
  if (!value || typeof value !== 'object') fail('mlctl.json is not a JSON object');
  const m = value as Partial<Manifest>;
  if (typeof m.schemaVersion !== 'number') fail('mlctl.json has no schemaVersion');
  if (m.schemaVersion! > SCHEMA_VERSION) fail(`schemaVersion ${m.schemaVersion} is newer than this mlctl understands (${SCHEMA_VERSION}); upgrade mlctl`);
  if (typeof m.name !== 'string' || !m.name) fail('mlctl.json has no name');
  if (!Number.isInteger(m.version) || m.version! < 1) fail('mlctl.json has no valid version');
  if (m.task !== undefined && (typeof m.task !== 'string' || !m.task)) fail('mlctl.json has a task that is not a name');
  if (!Array.isArray(m.labels)) fail('mlctl.json has no labels array');
  if (!m.input || typeof m.input !== 'object') fail('mlctl.json has no input spec');
  if (!m.output || typeof m.output !== 'object') fail('mlctl.json has no output spec');
  if (!m.files || typeof m.files !== 'object') fail('mlctl.json has no files table');
  if (!m.formats || typeof m.formats !== 'object') fail('mlctl.json has no formats table');
  if (!Array.isArray(m.lineage)) fail('mlctl.json has no lineage array');
  const tensorsOk = (side: { kind?: unknown; tensors?: unknown }) =>
    side.kind !== 'tensors' || (Array.isArray(side.tensors) && side.tensors.every((t: Partial<TensorRecord>) => t && typeof t.name === 'string' && typeof t.datatype === 'string' && Array.isArray(t.shape)));
  if (!tensorsOk(m.input!) || !tensorsOk(m.output!)) fail('its tensors list entries need a name, a datatype and a shape');
  if ((m.input!.kind === 'tensors') !== (m.output!.kind === 'tensors') || (m.task !== undefined && m.input!.kind === 'tensors')) fail('a model listing its own input and output tensors (a generic tensor model) lists both and has no task');
  for (const [file, entry] of Object.entries(m.files!)) {
    if (!entry || typeof entry.sha256 !== 'string' || typeof entry.bytes !== 'number') fail(`files entry for ${file} lacks sha256/bytes`);
    if (file.includes('..') || file.startsWith('/')) fail(`files entry ${file} points outside the package`);
  }
  if (m.task === 'detection' && m.detection === undefined) fail('its task is detection but it has no detection section (how its output becomes boxes)');
  if (m.detection !== undefined) checkDetection(m as Manifest, fail);
  if (m.encryption !== undefined) {
    const e = m.encryption;
    if (!e || e.algorithm !== ENCRYPTION_ALGORITHM || e.format !== ENCRYPTION_FORMAT) fail(`its encryption record is not ${ENCRYPTION_ALGORITHM} (${ENCRYPTION_FORMAT}); this mlctl cannot read it`);
    if (typeof e.keyId !== 'string' || !Array.isArray(e.files) || e.files.some((f) => typeof f !== 'string' || !m.files![f])) fail('its encryption record lacks keyId or lists files the manifest does not');
  }
  return normalizeManifest(m as Manifest);
}

/** Fill in what older manifests left implicit, as what it meant then (an image input's resize interpolation). */
export function normalizeManifest(m: Manifest): Manifest {
  if (m.input?.kind === 'image' && m.input.preprocessing && (m.input.preprocessing.interpolation === undefined || m.input.preprocessing.antialias === undefined)) {
    m.input.preprocessing = { ...m.input.preprocessing, ...LEGACY_RESIZE, ...definedOnly(m.input.preprocessing) };
  }
  return m;
}

const definedOnly = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** The detection section fits the labels, the input and the output it describes. */
function checkDetection(m: Manifest, fail: (why: string) => never): void {
  const d = m.detection as unknown as (Partial<Omit<CenterNetSection, 'head'> & Omit<YoloSection, 'head'> & Omit<TorchvisionSection, 'head'>> & { head?: unknown }) | null;
  if (!d || typeof d !== 'object') fail('its detection section is not an object');
  if (d!.head !== 'centernet' && d!.head !== 'yolo' && d!.head !== 'torchvision') fail(`its detection head ${JSON.stringify(d!.head)} is not one this mlctl decodes (centernet, yolo, torchvision)`);
  if (d!.classes !== m.labels.length) fail(`its detection section has ${String(d!.classes)} classes for ${m.labels.length} labels`);
  if (!Array.isArray(d!.categoryIds) || d!.categoryIds.length !== m.labels.length || !d!.categoryIds.every(Number.isInteger)) fail('its detection categoryIds are not one integer per label');
  if (!positiveInt(d!.maxDetections)) fail('its detection maxDetections is not a positive integer');
  if (m.input.kind !== 'image') fail('its detection model does not take images');
  if (d!.resize !== (m.input as ImageInputSpec).preprocessing.resize) fail(`its detection resize rule (${String(d!.resize)}) is not its input's (${(m.input as ImageInputSpec).preprocessing.resize})`);
  if (d!.head === 'yolo') {
    if (typeof d!.output !== 'string' || !d!.output) fail('its yolo detection section names no output tensor');
    if (!positiveInt(d!.anchors) || typeof d!.transposed !== 'boolean' || typeof d!.objectness !== 'boolean') fail('its yolo detection section needs anchors, transposed and objectness');
    if (!(d!.iouThreshold! > 0 && d!.iouThreshold! <= 1) || !(d!.scoreThreshold! >= 0 && d!.scoreThreshold! < 1)) fail('its yolo iouThreshold must be in (0, 1] and scoreThreshold in [0, 1)');
    if (m.output.kind !== 'detection' || m.output.size !== d!.anchors! * (4 + (d!.objectness ? 1 : 0) + m.labels.length)) fail(`its output is not the yolo head of ${d!.anchors} anchors x ${4 + (d!.objectness ? 1 : 0) + m.labels.length} values`);
    return;
  }
  if (d!.head === 'torchvision') {
    const o = d!.outputs;
    if (!o || typeof o !== 'object' || ![o.boxes, o.scores, o.labels].every((n) => typeof n === 'string' && n)) fail('its torchvision detection section needs the boxes, scores and labels output names');
    if (!Number.isInteger(d!.labelOffset) || d!.labelOffset! < 0) fail('its torchvision labelOffset is not a non-negative integer');
    if (m.output.kind !== 'detection') fail('its output is not a detection output');
    return;
  }
  if (!Array.isArray(d!.grid) || d!.grid.length !== 2 || !d!.grid.every(positiveInt) || !positiveInt(d!.stride)) fail('its detection grid is not [h, w] with a positive integer stride');
  const [gh, gw] = d!.grid!;
  const input = m.input as ImageInputSpec;
  if (input.height !== gh * d!.stride! || input.width !== gw * d!.stride!) fail(`its detection grid ${gh}x${gw} at stride ${d!.stride} does not cover its input`);
  if (m.output.kind !== 'detection' || m.output.size !== gh * gw * (m.labels.length + 4)) fail(`its output is not the centernet map of ${gh}x${gw}x${m.labels.length + 4} values`);
}

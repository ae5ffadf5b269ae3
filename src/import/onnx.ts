// An ONNX file made elsewhere, made ready to package: external data inlined (a package is one self-contained
// model.onnx), dynamic dimensions fixed where --input-shape says, then opened in ONNX Runtime and run once on zeros,
// so a model that cannot run fails here, with ORT's reason, and never at serve time.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnxEngineFromBytes } from '../engines/onnx.js';
import { MlctlError } from '../errors.js';
import { decodeModel, encodeModel, type ModelProto, type TensorProto } from '../onnx/index.js';
import { ORT_VERSION } from '../runtime/ort.js';
import { allocate, describeSpec, elementCount, type Tensor, type TensorSpec } from '../runtime/tensor.js';

/** An ONNX model as import found it: bytes to store, its tensors, and what the trial run answered. */
export interface OnnxModel {
  /** The bytes to store as model.onnx (rewritten only when data was inlined or shapes fixed). */
  bytes: Uint8Array;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** The trial run's outputs (zeros in), by output name: their concrete shapes. */
  trial: Map<string, Tensor>;
  /** The shapes the trial run fed. */
  trialShapes: Map<string, number[]>;
  /** ai.onnx opset, producer, external data files inlined, and the operator that makes each output. */
  opset: number;
  producer: string;
  externalData: string[];
  producedBy: Map<string, string>;
}

/** TensorProto fields protobufjs reads that proto.ts's plain type leaves out (external data). */
type StoredTensor = TensorProto & { dataLocation?: number; externalData?: Array<{ key: string; value: string }> };

/** "x:1x3x224x224" values → name → dims; OPTION_INVALID for anything else. */
export function parseInputShapes(values: readonly string[] = []): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const v of values) {
    const m = /^(.+):(\d+(?:x\d+)*)$/.exec(v.trim());
    const dims = m ? m[2]!.split('x').map(Number) : [];
    if (!m || dims.some((d) => !(d >= 1))) throw new MlctlError('OPTION_INVALID', [`--input-shape ${JSON.stringify(v)}: expected NAME:DIMxDIM… with positive dimensions, batch first, e.g. input:1x3x224x224`]);
    out.set(m[1]!, dims);
  }
  return out;
}

const firstLines = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n').filter(Boolean).slice(0, 2).join(' ').slice(0, 600);

/** Move every external tensor's bytes into the model; the file must sit beside the model (no path leaves its folder). */
async function inlineExternalData(model: ModelProto, dir: string, label: string): Promise<string[]> {
  const files = new Map<string, Buffer>();
  const tensors: StoredTensor[] = [...model.graph.initializer];
  for (const n of model.graph.node) for (const a of n.attribute ?? []) if (a.t) tensors.push(a.t);
  for (const t of tensors) {
    if (t.dataLocation !== 1) continue;
    const info = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
    const loc = info.location;
    if (!loc || path.isAbsolute(loc) || path.normalize(loc).split(path.sep).includes('..')) {
      throw new MlctlError('IMPORT_UNREADABLE', [label, `tensor ${t.name} keeps its data in ${JSON.stringify(loc ?? '')}, which is not a file beside the model`]);
    }
    let buf = files.get(loc);
    if (!buf) {
      try {
        buf = await fs.readFile(path.join(dir, loc));
      } catch (err) {
        throw new MlctlError('IMPORT_UNREADABLE', [label, `its external data file ${path.join(dir, loc)} (tensor ${t.name}) cannot be read: ${(err as NodeJS.ErrnoException).code ?? firstLines(err)}; keep it beside the model`], { cause: err });
      }
      files.set(loc, buf);
    }
    const offset = Number(info.offset ?? 0);
    const length = info.length !== undefined ? Number(info.length) : buf.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) throw new MlctlError('IMPORT_UNREADABLE', [label, `tensor ${t.name} reads bytes ${offset}..${offset + length} of ${loc}, which has ${buf.length}`]);
    t.rawData = buf.subarray(offset, offset + length);
    delete t.dataLocation;
    delete t.externalData;
  }
  return [...files.keys()];
}

/** Fix the dimensions --input-shape gives (a dynamic leading dimension stays dynamic: the batch). */
function fixShapes(model: ModelProto, shapes: ReadonlyMap<string, number[]>, label: string): void {
  const initializers = new Set(model.graph.initializer.map((t) => t.name));
  const inputs = model.graph.input.filter((v) => !initializers.has(v.name));
  for (const [name, dims] of shapes) {
    const v = inputs.find((i) => i.name === name);
    if (!v) throw new MlctlError('OPTION_INVALID', [`--input-shape ${name}: the model has no input ${name} (its inputs: ${inputs.map((i) => i.name).join(', ')})`]);
    const declared = v.type?.tensorType?.shape?.dim;
    if (!declared) continue; // No shape recorded: ORT takes any; the trial run uses the given one.
    if (declared.length !== dims.length) throw new MlctlError('OPTION_INVALID', [`--input-shape ${name}:${dims.join('x')}: the model's input ${name} has ${declared.length} dimensions, not ${dims.length}`]);
    declared.forEach((d, i) => {
      if (d.dimValue && d.dimValue > 0) {
        if (d.dimValue !== dims[i]) throw new MlctlError('OPTION_INVALID', [`--input-shape ${name}:${dims.join('x')}: dimension ${i} of ${name} is fixed at ${d.dimValue} in the model`]);
        return;
      }
      if (i === 0 && declared.length > 1) return;
      declared[i] = { dimValue: dims[i]! };
    });
  }
}

/**
 * The trial shape of an image input whose height and width are open, from --image-size: [1, 3, h, w], [1, h, w, 3]
 * or [3, h, w] by where its 3 channels are. Undefined when the input is not such an image.
 */
function imageTrialShape(spec: TensorSpec, size: [number, number] | undefined): number[] | undefined {
  if (!size) return undefined;
  const [h, w] = size;
  const s = spec.shape;
  const fill = (want: number[]) => (want.every((d, i) => s[i]! < 0 || s[i] === d) ? want : undefined);
  if (s.length === 4 && s[1] === 3) return fill([1, 3, h, w]);
  if (s.length === 4 && s[3] === 3) return fill([1, h, w, 3]);
  if (s.length === 3 && s[0] === 3) return fill([3, h, w]);
  return undefined;
}

/** Read, normalise and trial-run an ONNX file (see the file comment). */
export async function readOnnxModel(file: string, opts: { inputShapes?: ReadonlyMap<string, number[]>; imageSize?: [number, number] } = {}): Promise<OnnxModel> {
  const label = file;
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new MlctlError('IMPORT_UNREADABLE', [label, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : firstLines(err)], { cause: err });
  }
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new MlctlError('IMPORT_UNREADABLE', [label, `it is not an ONNX model (${firstLines(err)})`], { cause: err });
  }
  const shapes = opts.inputShapes ?? new Map<string, number[]>();
  const externalData = await inlineExternalData(model, path.dirname(file), label);
  if (shapes.size) fixShapes(model, shapes, label);
  if (externalData.length || shapes.size) bytes = encodeModel(model);
  const opset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0;
  const producedBy = new Map<string, string>();
  for (const n of model.graph.node) for (const o of n.output) producedBy.set(o, n.opType);

  let engine;
  try {
    engine = await onnxEngineFromBytes(bytes, { session: { intraOpThreads: 1 } });
  } catch (err) {
    if (err instanceof MlctlError) throw err;
    throw new MlctlError('IMPORT_UNRUNNABLE', [label, ORT_VERSION, `opset ${opset}: ${firstLines(err)}`], { cause: err });
  }
  try {
    const trialShapes = new Map<string, number[]>();
    const feeds: Tensor[] = engine.inputs.map((spec) => {
      const given = shapes.get(spec.name) ?? imageTrialShape(spec, opts.imageSize);
      const open = spec.shape.map((d, i) => (d < 0 && !(i === 0 && spec.shape.length > 1) ? i : -1)).filter((i) => i >= 0);
      if (!given && open.length) {
        const example = spec.shape.map((d, i) => (d > 0 ? d : i === 0 ? 1 : 'N')).join('x');
        throw new MlctlError('IMPORT_SHAPE_REQUIRED', [label, describeSpec(spec), open.join(', '), `${spec.name}:${example}`]);
      }
      const shape = given ?? spec.shape.map((d) => (d < 0 ? 1 : d));
      trialShapes.set(spec.name, shape);
      return { name: spec.name, datatype: spec.datatype, shape, data: allocate(spec.datatype, elementCount(shape)) } as Tensor;
    });
    let outs: Tensor[];
    try {
      outs = await engine.run(feeds);
    } catch (err) {
      throw new MlctlError('IMPORT_UNRUNNABLE', [label, ORT_VERSION, `it fails on a trial run with zeros of shape ${[...trialShapes].map(([n, s]) => `${n}:${s.join('x')}`).join(', ')}: ${firstLines(err)}`], { cause: err });
    }
    return {
      bytes,
      inputs: [...engine.inputs],
      outputs: [...engine.outputs],
      trial: new Map(outs.map((t) => [t.name, t])),
      trialShapes,
      opset,
      producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
      externalData,
      producedBy,
    };
  } finally {
    await engine.dispose();
  }
}

// TensorFlow Serving's REST Classify/Regress requests and Model Metadata responses, as tensorflow/serving documents
// them (g3doc/api_rest.md) and its server writes them (util/json_tensor.cc): tf.Example-style {"examples": [...]}
// bodies become one InferInput, and a served model is described as the SignatureDefs a SavedModel would carry.
import type { TabularEncoding } from '../data/csv.js';
import { elementCount, type Datatype, type Tensor, type TensorSpec } from '../runtime/tensor.js';
import { taskOf } from '../tasks/index.js';
import { badRequest } from './errors.js';
import { fromBase64, rowsToInput, toFloat32 } from './codec.js';
import type { InferInput, ServedModel } from './types.js';
import { dataToJson, flattenNested, MAX_NESTING, valuesToData } from './wire.js';

/** SignatureDef keys and method names (tensorflow/python/saved_model/signature_constants.py). */
export const SIGNATURES = {
  predict: 'serving_default',
  imageBytes: 'serving_image_bytes',
  classify: 'tensorflow/serving/classify',
  regress: 'tensorflow/serving/regress',
} as const;
const METHOD = { predict: 'tensorflow/serving/predict', classify: 'tensorflow/serving/classify', regress: 'tensorflow/serving/regress' } as const;
/** The name a BYTES input goes by in V2 and TF Serving metadata (TF Serving reads "_bytes"-suffixed tensors as binary). */
export const IMAGE_BYTES_INPUT = 'image_bytes';
/** Feature names an encoded image may come under in a tf.Example, beside the model's own input name. */
const IMAGE_FEATURES = ['image', 'image/encoded', IMAGE_BYTES_INPUT, 'image_raw'];

export type ExampleVerb = 'classify' | 'regress';

/** V2 datatypes as TensorFlow DataType names. */
const DT_OF: Record<Datatype, string> = {
  BOOL: 'DT_BOOL', UINT8: 'DT_UINT8', UINT16: 'DT_UINT16', UINT32: 'DT_UINT32', UINT64: 'DT_UINT64', INT8: 'DT_INT8', INT16: 'DT_INT16',
  INT32: 'DT_INT32', INT64: 'DT_INT64', FP16: 'DT_HALF', BF16: 'DT_BFLOAT16', FP32: 'DT_FLOAT', FP64: 'DT_DOUBLE', BYTES: 'DT_STRING',
};

interface TensorInfo {
  dtype: string;
  tensor_shape: { dim: Array<{ size: string; name: string }>; unknown_rank: boolean };
  name: string;
}

function tensorInfo(name: string, dtype: TensorInfo['dtype'], dims: number[] | undefined): TensorInfo {
  // TensorShapeProto's JSON: int64 sizes as strings, -1 for a variable dimension; no dims at all = unknown rank.
  return { dtype, tensor_shape: { dim: (dims ?? []).map((d) => ({ size: String(d), name: '' })), unknown_rank: dims === undefined }, name: `${name}:0` };
}

function signature(method: string, inputs: Record<string, TensorInfo>, outputs: Record<string, TensorInfo>) {
  return { inputs, outputs, method_name: method, defaults: {} };
}

/** Which of TF Serving's Classify/Regress APIs the model's task answers (none for a model without a task or for tasks with neither). */
export function exampleMethod(m: ServedModel): ExampleVerb | undefined {
  return taskOf(m.manifest)?.serve.tfServing?.method;
}

/** A model that declares its own tensors (a generic tensor model): served by them only (no classify, regress or tf.Examples). */
export const isTensorModel = (m: ServedModel) => m.manifest.input.kind === 'tensors';

/** The per-example input shape an image or tabular model takes ([H, W, 3] or [features]). */
export function exampleShape(m: ServedModel): number[] {
  return m.inputs[0]!.shape.slice(1);
}

const infoMap = (specs: readonly TensorSpec[]) => Object.fromEntries(specs.map((t) => [t.name, tensorInfo(t.name, DT_OF[t.datatype] as TensorInfo['dtype'], t.shape)]));

/**
 * The SignatureDefs of a served model: predict on the float input (serving_default), predict on encoded images
 * (image models), and classify or regress on serialized tf.Examples — the one the model's task answers, if any.
 * `topK` is how many classes :classify answers per example.
 */
export function signatureDefs(m: ServedModel, topK: number): Record<string, ReturnType<typeof signature>> {
  // A generic tensor model: one predict signature with every input and output as it declares them.
  if (isTensorModel(m)) return { [SIGNATURES.predict]: signature(METHOD.predict, infoMap(m.inputs), infoMap(m.outputs)) };
  const input = m.manifest.input;
  const out = m.outputs[0]!;
  const predictions = infoMap(m.outputs);
  const examples = { inputs: tensorInfo('tf_example', 'DT_STRING', undefined) };
  const k = Math.min(topK, out.shape[1]!);
  const method = exampleMethod(m);
  return {
    [SIGNATURES.predict]: signature(METHOD.predict, infoMap(m.inputs), predictions),
    ...(input.kind === 'image' ? { [SIGNATURES.imageBytes]: signature(METHOD.predict, { [IMAGE_BYTES_INPUT]: tensorInfo(IMAGE_BYTES_INPUT, 'DT_STRING', [m.batched ? -1 : 1]) }, predictions) } : {}),
    ...(method === 'regress' ? { [SIGNATURES.regress]: signature(METHOD.regress, examples, { outputs: tensorInfo(out.name, 'DT_FLOAT', [-1, 1]) }) } : {}),
    ...(method === 'classify' ? { [SIGNATURES.classify]: signature(METHOD.classify, examples, { classes: tensorInfo('classes', 'DT_STRING', [-1, k]), scores: tensorInfo('scores', 'DT_FLOAT', [-1, k]) }) } : {}),
  };
}

/** GetModelMetadataResponse as TF Serving prints it (model_spec + metadata.signature_def.signature_def). */
export function modelMetadataResponse(m: ServedModel, topK: number) {
  return {
    model_spec: { name: m.name, signature_name: '', version: String(m.version) },
    metadata: { signature_def: { signature_def: signatureDefs(m, topK) } },
  };
}

/** Which signature a classify/regress request may name: none, serving_default, or the verb's own. */
export function checkSignature(m: ServedModel, verb: ExampleVerb, name: unknown): void {
  if (name === undefined || name === '' || name === SIGNATURES.predict) return;
  if (typeof name !== 'string') throw badRequest('"signature_name" must be a string');
  const own = verb === 'classify' ? SIGNATURES.classify : SIGNATURES.regress;
  if (name === own) return;
  const known = Object.keys(signatureDefs(m, 1));
  throw badRequest(`model ${m.name} has no ${verb} signature "${name.slice(0, 100)}"; its signatures are ${known.join(', ')} (omit signature_name for the default)`);
}

/**
 * Which signature a :predict request may name: none, serving_default, or (image models) serving_image_bytes; an
 * unknown one is refused as tensorflow_model_server refuses it, naming the ones there are.
 */
export function checkPredictSignature(m: ServedModel, name: unknown): void {
  if (name === undefined || name === '' || name === SIGNATURES.predict) return;
  if (typeof name !== 'string') throw badRequest('"signature_name" must be a string');
  if (name === SIGNATURES.imageBytes && m.manifest.input.kind === 'image') return;
  const known = Object.keys(signatureDefs(m, 1));
  throw badRequest(`Serving signature name: "${name.slice(0, 100)}" not found in signature def of model ${m.name}; :predict takes ${known.filter((k) => k === SIGNATURES.predict || k === SIGNATURES.imageBytes).join(' or ')} (omit signature_name for the default)`);
}

/** A tf.Example feature as JSON: a value, a list of values, or {"b64": …}; returns its values as a list. */
function featureValues(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

const isB64 = (v: unknown): v is { b64: unknown } => !!v && typeof v === 'object' && !Array.isArray(v) && 'b64' in v;

/** Merge the shared "context" into each example; a feature in both is an error, as in TF Serving. */
function mergedExamples(body: Record<string, unknown>): Array<Record<string, unknown>> {
  const { examples, context } = body;
  if (!Array.isArray(examples) || examples.length === 0) throw badRequest('"examples" must be a non-empty list of tf.Example objects {"feature": value | [values] | {"b64": "…"}}');
  if (context !== undefined && (!context || typeof context !== 'object' || Array.isArray(context))) throw badRequest('"context" must be an object of features shared by every example');
  const ctx = (context ?? {}) as Record<string, unknown>;
  return examples.map((e, i) => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw badRequest(`examples[${i}] must be an object of features, got ${Array.isArray(e) ? 'a list' : JSON.stringify(e)?.slice(0, 40)}`);
    const clash = Object.keys(e).find((k) => k in ctx);
    if (clash) throw badRequest(`examples[${i}] has feature "${clash.slice(0, 100)}", which is also in "context"; a feature goes in one of them`);
    return { ...ctx, ...(e as Record<string, unknown>) };
  });
}

/** The feature carrying an image model's input in one example: an encoded image ({"b64"}) or the float pixels. */
function imageFeature(ex: Record<string, unknown>, inputName: string, i: number): { kind: 'bytes'; data: Uint8Array } | { kind: 'floats'; data: unknown[] } {
  const binary = Object.entries(ex).filter(([, v]) => isB64(v) || (Array.isArray(v) && v.length === 1 && isB64(v[0])));
  const named = binary.filter(([k]) => k === inputName || IMAGE_FEATURES.includes(k));
  const pick = named.length === 1 ? named : binary.length === 1 ? binary : [];
  if (pick.length === 1) {
    const [key, v] = pick[0]!;
    return { kind: 'bytes', data: fromBase64((featureValues(v)[0] as { b64: unknown }).b64, `examples[${i}]["${key}"].b64`) };
  }
  if (binary.length > 1) throw badRequest(`examples[${i}] has ${binary.length} binary features (${binary.map(([k]) => k).join(', ')}); name the image "${IMAGE_FEATURES[0]}" or "${inputName}"`);
  const floats = ex[inputName];
  if (Array.isArray(floats)) return { kind: 'floats', data: floats };
  throw badRequest(`examples[${i}] has no image: give the encoded image as {"b64": "…"} (feature "${IMAGE_FEATURES[0]}") or the preprocessed pixels as a float list (feature "${inputName}")`);
}

/** A Classify/Regress request body → the model's input (encoded images, preprocessed floats, or tabular rows). */
export function examplesToInput(m: ServedModel, body: unknown): InferInput {
  if (!body || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) throw badRequest('the body must be JSON {"signature_name"?, "context"?, "examples": [...]}');
  const examples = mergedExamples(body as Record<string, unknown>);
  const spec = m.manifest.input;
  if (spec.kind === 'tensors') throw badRequest(`model ${m.name} is a generic tensor model: send its tensors to :predict`);
  if (spec.kind === 'tabular') {
    // A tf.Example feature is a list; a tabular column takes one value per example.
    const rows = examples.map((ex, i) =>
      Object.fromEntries(
        Object.entries(ex).map(([k, v]) => {
          const vals = featureValues(v);
          if (vals.length !== 1) throw badRequest(`examples[${i}]["${k.slice(0, 100)}"] has ${vals.length} values; a column takes one`);
          return [k, vals[0]];
        }),
      ),
    );
    const encoding = (spec.transform as { encoding?: TabularEncoding } | undefined)?.encoding;
    return rowsToInput(rows, spec.features, spec.name, encoding, m.name);
  }
  const items = examples.map((ex, i) => imageFeature(ex, spec.name, i));
  if (items.every((it) => it.kind === 'bytes')) return { name: spec.name, datatype: 'BYTES', shape: [items.length], data: items.map((it) => it.data as Uint8Array) };
  if (items.every((it) => it.kind === 'floats')) {
    const shape = exampleShape(m);
    const per = shape.reduce((a, d) => a * d, 1);
    const data = toFloat32(items.map((it) => it.data), 'examples');
    if (data.length !== items.length * per) throw badRequest(`each example's "${spec.name}" must hold ${per} floats (${shape.join('x')} preprocessed NHWC); got ${data.length / items.length} on average`);
    return { name: spec.name, datatype: 'FP32', shape: [items.length, ...shape], data };
  }
  throw badRequest('examples mix encoded images and float pixels; send every example the same way');
}

/** What :classify and :regress answer: "results" as tensorflow_model_server writes it, "result" as api_rest.md's format section (and earlier mlctl) has it. */
export function examplesResponse<T>(results: T[]): { results: T[]; result: T[] } {
  return { results, result: results };
}

/** The leading dimensions of a nested JSON value (its first element's, level by level). */
function nestedShape(v: unknown): number[] {
  const shape: number[] = [];
  while (Array.isArray(v) && shape.length <= MAX_NESTING) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/** A TF Serving JSON value of `spec`'s datatype: nested lists; strings as UTF-8 text unless {"b64": …}. */
function jsonTensor(spec: TensorSpec, value: unknown, shape: number[], what: string): Tensor {
  const flat = Array.isArray(value) ? flattenNested(value, what) : [value];
  if (flat.length !== elementCount(shape)) throw badRequest(`${what} has ${flat.length} values, but its nesting [${shape.join(', ')}] needs ${elementCount(shape)}; every example must have the same shape`);
  if (spec.datatype === 'BYTES') {
    const data = flat.map((v, i) => (v && typeof v === 'object' && 'b64' in v ? fromBase64((v as { b64: unknown }).b64, `${what} element ${i}.b64`) : typeof v === 'string' ? Buffer.from(v, 'utf8') : badValue(what, i)));
    return { name: spec.name, datatype: 'BYTES', shape, data };
  }
  return { name: spec.name, datatype: spec.datatype, shape, data: valuesToData(spec.datatype, flat, what) } as Tensor;
}

function badValue(what: string, i: number): never {
  throw badRequest(`${what} element ${i} must be a string or {"b64": "…"}`);
}

/** The value of each named input of one instance (row format), or of the request (columnar format). */
function namedValues(m: ServedModel, v: unknown, what: string): Map<string, unknown> {
  const names = m.inputs.map((t) => t.name);
  const isNamed = v && typeof v === 'object' && !Array.isArray(v) && !('b64' in v);
  if (!isNamed) {
    if (names.length !== 1) throw badRequest(`${what} must be an object naming the inputs of model ${m.name}: ${names.join(', ')}`);
    return new Map([[names[0]!, v]]);
  }
  const obj = v as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !names.includes(k));
  if (unknown.length) throw badRequest(`${what} names ${unknown.map((u) => `"${u.slice(0, 100)}"`).join(', ')}; model ${m.name} takes ${names.join(', ')}`);
  const missing = names.filter((n) => !(n in obj));
  if (missing.length) throw badRequest(`${what} lacks ${missing.join(', ')}; model ${m.name} takes ${names.join(', ')}`);
  return new Map(names.map((n) => [n, obj[n]]));
}

/**
 * A :predict body for a generic tensor model → its inputs: "instances" (row format: one value, or one object of
 * named values, per example; stacked along a new leading dimension) or "inputs" (columnar: each input's whole value).
 */
export function tensorsToInputs(m: ServedModel, raw: unknown, columnar: boolean): InferInput[] {
  if (columnar) {
    const values = namedValues(m, raw, '"inputs"');
    return m.inputs.map((spec) => {
      const v = values.get(spec.name);
      return jsonTensor(spec, v, nestedShape(v), `input ${spec.name}`);
    });
  }
  if (!Array.isArray(raw) || raw.length === 0) throw badRequest('"instances" must be a non-empty array');
  const rows = raw.map((row, i) => namedValues(m, row, `instances[${i}]`));
  return m.inputs.map((spec) => {
    const vs = rows.map((r) => r.get(spec.name));
    return jsonTensor(spec, vs, [vs.length, ...nestedShape(vs[0])], `input ${spec.name}`);
  });
}

/** Flat JSON values nested by a shape (row-major). */
function nest(values: unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return values[0];
  if (shape.length === 1) return values;
  const per = elementCount(shape.slice(1));
  return Array.from({ length: shape[0]! }, (_, i) => nest(values.slice(i * per, (i + 1) * per), shape.slice(1)));
}

/** A generic tensor model's outputs as TF Serving answers :predict: "predictions" per example (row) or "outputs" (columnar). */
export function tensorsResponse(outputs: readonly Tensor[], columnar: boolean): { predictions: unknown[] } | { outputs: unknown } {
  const values = outputs.map((o) => ({ name: o.name, shape: o.shape, data: dataToJson(o) }));
  if (columnar) {
    const whole = values.map((v) => nest(v.data, v.shape));
    return { outputs: values.length === 1 ? whole[0] : Object.fromEntries(values.map((v, i) => [v.name, whole[i]])) };
  }
  const n = outputs[0]?.shape[0] ?? 0;
  const rows = Array.from({ length: n }, (_, i) =>
    values.map((v) => {
      const per = elementCount(v.shape.slice(1));
      return nest(v.data.slice(i * per, (i + 1) * per), v.shape.slice(1));
    }),
  );
  return { predictions: rows.map((r) => (values.length === 1 ? r[0] : Object.fromEntries(values.map((v, j) => [v.name, r[j]])))) };
}

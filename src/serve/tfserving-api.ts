// TensorFlow Serving's REST Classify/Regress requests and Model Metadata responses, as tensorflow/serving documents
// them (g3doc/api_rest.md) and its server writes them (util/json_tensor.cc): tf.Example-style {"examples": [...]}
// bodies become one InferInput, and a served model is described as the SignatureDefs a SavedModel would carry.
import type { TabularEncoding } from '../data/csv.js';
import { taskOf } from '../tasks/index.js';
import { badRequest } from './errors.js';
import { fromBase64, rowsToInput, toFloat32 } from './codec.js';
import type { InferInput, ServedModel } from './types.js';

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

interface TensorInfo {
  dtype: 'DT_FLOAT' | 'DT_STRING';
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

/** The per-example input shape the model takes ([H, W, 3] or [features]). */
export function exampleShape(m: ServedModel): number[] {
  const input = m.manifest.input;
  return m.inputShape ?? (input.kind === 'image' ? [input.height, input.width, input.channels] : [input.features.length]);
}

/**
 * The SignatureDefs of a served model: predict on the float input (serving_default), predict on encoded images
 * (image models), and classify or regress on serialized tf.Examples — the one the model's task answers, if any.
 * `topK` is how many classes :classify answers per example.
 */
export function signatureDefs(m: ServedModel, topK: number): Record<string, ReturnType<typeof signature>> {
  const input = m.manifest.input;
  const out = m.manifest.output;
  const predictions = { [out.name]: tensorInfo(out.name, 'DT_FLOAT', [-1, out.size]) };
  const examples = { inputs: tensorInfo('tf_example', 'DT_STRING', undefined) };
  const k = Math.min(topK, out.size);
  const method = exampleMethod(m);
  return {
    [SIGNATURES.predict]: signature(METHOD.predict, { [input.name]: tensorInfo(input.name, 'DT_FLOAT', [-1, ...exampleShape(m)]) }, predictions),
    ...(input.kind === 'image' ? { [SIGNATURES.imageBytes]: signature(METHOD.predict, { [IMAGE_BYTES_INPUT]: tensorInfo(IMAGE_BYTES_INPUT, 'DT_STRING', [-1]) }, predictions) } : {}),
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

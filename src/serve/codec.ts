// Request decoding and response encoding for every serve transport: JSON tensors (flat or nested), base64 images,
// the V2 request (JSON or binary tensor extension), gRPC ModelInfer inputs, multipart uploads, TF Serving instances,
// tabular rows. Routes and the gRPC service only map transport fields onto these functions (answers in a task's
// terms — labels, values — are the task's: tasks/); tensor data of every datatype is read and written by wire.ts.
import { encodeObjects, type TabularEncoding } from '../data/csv.js';
import { MlctlError } from '../errors.js';
import { bytesPerElement, DATATYPES, elementCount, isDatatype, toNumbers, type Datatype, type TensorData } from '../runtime/tensor.js';
import { badRequest, payloadTooLarge } from './errors.js';
import type { InferInput, InferOutput } from './types.js';
import { bytesToData, CONTENTS_FIELD, fromBase64, hasContents, jsonToData, MAX_NESTING, parseBinaryBytes, toFloat32, valuesToData, type TensorContents } from './wire.js';

export { flattenNested, fromBase64, MAX_NESTING, toFloat32 } from './wire.js';

/** Product of a shape's dimensions (validated as non-negative integers). */
export function shapeSize(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw badRequest(`${what}: shape must be an array of non-negative integers`);
  return (shape as number[]).reduce((a, d) => a * d, 1);
}

/** Split a binary-extension body: the JSON header length comes from the Inference-Header-Content-Length header. */
export function splitBinaryBody(body: Buffer, headerLength: number): { json: unknown; binary: Buffer } {
  if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length) {
    throw badRequest(`Inference-Header-Content-Length ${headerLength} does not fit the ${body.length}-byte body`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(0, headerLength).toString('utf8'));
  } catch (err) {
    throw badRequest(`the inference header is not valid JSON (${(err as Error).message})`);
  }
  return { json, binary: body.subarray(headerLength) };
}

interface RawInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: { binary_data_size?: unknown };
  data?: unknown;
}

/** The fields of a V2 infer request mlctl reads (KServe Open Inference Protocol). */
export interface V2InferRequest {
  id?: unknown;
  parameters?: { binary_data_output?: unknown };
  inputs?: unknown;
  outputs?: Array<{ name?: unknown; parameters?: { binary_data?: unknown; classification?: unknown } }>;
}

/**
 * A V2 infer body → its request fields and decoded inputs: a parsed JSON object, or a Buffer in the binary tensor
 * extension (JSON header of `headerLength` bytes, then the raw tensors in input order).
 */
export function decodeV2Request(body: unknown, headerLength: string | string[] | undefined): { req: V2InferRequest; inputs: InferInput[] } {
  if (Buffer.isBuffer(body)) {
    if (headerLength === undefined) throw badRequest('a binary infer body needs the Inference-Header-Content-Length header (binary tensor extension)');
    const { json, binary } = splitBinaryBody(body, Number(headerLength));
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw badRequest('the inference header must be a JSON object {"inputs": [...]}');
    return { req: json as V2InferRequest, inputs: decodeV2Inputs(json as V2InferRequest, binary) };
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the infer body must be a JSON object {"inputs": [...]}');
  return { req: body as V2InferRequest, inputs: decodeV2Inputs(body as V2InferRequest, undefined) };
}

/** The datatype a request names, or a 400 listing the V2 datatypes. */
function datatypeOf(v: unknown, what: string, quote: (v: unknown) => string): Datatype {
  if (isDatatype(v)) return v;
  throw badRequest(`${what} has datatype ${quote(v)}; V2 datatypes are ${DATATYPES.join(', ')}`);
}

/** Wire bytes of an input as its datatype's storage, with the byte count checked against its shape. */
function binaryData(datatype: Datatype, chunk: Uint8Array, count: number, what: string, needs: (bytes: number) => string): TensorData {
  if (datatype === 'BYTES') return parseBinaryBytes(chunk, what);
  const size = bytesPerElement(datatype)! * count;
  if (chunk.byteLength !== size) throw badRequest(needs(size));
  return bytesToData(datatype, chunk, what);
}

function decodeV2Inputs(req: V2InferRequest, binary: Buffer | undefined): InferInput[] {
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) throw badRequest('"inputs" must be a non-empty array of tensors {name, shape, datatype, data}');
  let off = 0;
  return (req.inputs as RawInput[]).map((raw, i) => {
    if (!raw || typeof raw !== 'object') throw badRequest(`inputs[${i}] must be an object`);
    const name = raw.name;
    if (typeof name !== 'string' || !name) throw badRequest(`inputs[${i}] has no "name"`);
    const what = `input ${name}`;
    const size = shapeSize(raw.shape, what);
    const shape = raw.shape as number[];
    const datatype = datatypeOf(raw.datatype, what, (v) => JSON.stringify(v));
    const binSize = raw.parameters?.binary_data_size;
    if (binSize !== undefined) {
      if (!binary) throw badRequest(`${what} sets binary_data_size but the request has no binary section`);
      if (!Number.isInteger(binSize) || (binSize as number) < 0 || off + (binSize as number) > binary.length) throw badRequest(`${what}: binary_data_size ${String(binSize)} overruns the ${binary.length}-byte binary section`);
      const chunk = binary.subarray(off, off + (binSize as number));
      off += binSize as number;
      const data = binaryData(datatype, chunk, size, what, (bytes) => `${what}: ${chunk.length} bytes of ${datatype} data, shape [${shape.join(', ')}] needs ${bytes}`);
      return { name, datatype, shape, data } as InferInput;
    }
    if (raw.data === undefined) throw badRequest(`${what} has no "data"`);
    const data = jsonToData(datatype, raw.data, what);
    if (datatype !== 'BYTES' && data.length !== size) throw badRequest(`${what} has ${data.length} values but shape [${shape.join(', ')}] needs ${size}`);
    return { name, datatype, shape, data } as InferInput;
  });
}

/** One part of a multipart upload, as @fastify/multipart yields it. */
export type UploadPart = { type: 'file'; fieldname: string; toBuffer(): Promise<Buffer> } | { type: 'field'; fieldname: string; value: unknown };

/**
 * The fields POST /predict reads from multipart/form-data (docs/serving.md): every file part is one encoded image
 * (the classic contract names the field `image`; clients using `file`, `data` … work too), and these text fields.
 */
export const UPLOAD_FIELDS = {
  /** Text fields: which model/version, and how many labels per image. */
  text: ['model', 'version', 'top_k', 'min_score', 'max_detections'],
} as const;

export interface UploadLimits {
  /** Largest file and largest total of files (bytes). */
  bodyLimit: number;
  maxFiles: number;
  maxFields: number;
  /** Largest text field value (bytes). */
  fieldSize: number;
}

/** Text-field limits of a /predict upload (files are limited by --body-limit and maxFiles). */
export const UPLOAD_TEXT_LIMITS = { maxFields: 8, fieldSize: 1024 };

const uploadLimit = (message: string, cause?: unknown) => new MlctlError('UPLOAD_LIMIT', [message], { cause });

/** What each @fastify/multipart limit error means, in words that name the limit that was hit. */
function uploadError(err: unknown, limits: UploadLimits): MlctlError {
  if (err instanceof MlctlError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'FST_FILES_LIMIT') return uploadLimit(`more than ${limits.maxFiles} files in one upload; send at most ${limits.maxFiles} images per request`, err);
  if (code === 'FST_FIELDS_LIMIT') return uploadLimit(`more than ${limits.maxFields} text fields in one upload; /predict reads only ${UPLOAD_FIELDS.text.join(', ')}`, err);
  if (code === 'FST_PARTS_LIMIT') return uploadLimit(`more than ${limits.maxFiles + limits.maxFields} parts in one upload (files plus text fields)`, err);
  if (code === 'FST_REQ_FILE_TOO_LARGE') return payloadTooLarge(`an uploaded file is larger than the ${limits.bodyLimit}-byte limit (--body-limit)`, err);
  if (code === 'FST_PROTO_VIOLATION') return badRequest('a multipart field is named __proto__ or constructor', err);
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 413) return payloadTooLarge(`the upload is larger than the ${limits.bodyLimit}-byte limit (--body-limit)`, err);
  return badRequest(`malformed multipart body (${(err as Error).message}); send files in the field "image" and text fields ${UPLOAD_FIELDS.text.join(', ')}`, err);
}

/**
 * A multipart upload → its images and text fields. Each limit (files, text fields, file size, total size) answers
 * with its own message; unknown text fields are refused, naming the ones /predict reads.
 */
export async function readMultipartImages(parts: AsyncIterable<UploadPart>, limits: UploadLimits): Promise<{ images: Uint8Array[]; fields: Record<string, string> }> {
  const images: Uint8Array[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  const iterator = parts[Symbol.asyncIterator]();
  try {
    for (;;) {
      const { value: part, done } = await iterator.next();
      if (done) break;
      if (part.type === 'file') {
        const buf = await part.toBuffer();
        total += buf.length;
        if (total > limits.bodyLimit) throw payloadTooLarge(`the uploaded images total more than the ${limits.bodyLimit}-byte body limit (--body-limit)`);
        images.push(buf);
      } else {
        if (!(UPLOAD_FIELDS.text as readonly string[]).includes(part.fieldname)) {
          throw badRequest(`unknown text field "${part.fieldname.slice(0, 60)}": /predict reads image files (field "image") and the text fields ${UPLOAD_FIELDS.text.join(', ')}`);
        }
        if (typeof part.value === 'string') fields[part.fieldname] = part.value;
      }
    }
  } catch (err) {
    // Stop reading: the rest of the body is discarded with the connection (413s close it).
    await iterator.return?.().catch(() => {});
    throw uploadError(err, limits);
  }
  return { images, fields };
}

export type { TensorContents } from './wire.js';

export interface InferInputTensorMsg {
  name: string;
  datatype: string;
  shape: number[];
  contents?: TensorContents | null;
}

/** InferParameter as proto-loader decodes it (oneofs: the set field, and parameter_choice naming it). */
export interface InferParameterMsg {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
  parameter_choice?: string;
}

export interface ModelInferRequestMsg {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInputTensorMsg[];
  outputs: Array<{ name: string; parameters?: Record<string, InferParameterMsg> }>;
  raw_input_contents: Buffer[];
}

function grpcElementCount(shape: number[], name: string): number {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw badRequest(`input "${name}" has an invalid shape [${shape.join(', ')}]: dimensions are non-negative integers`);
  if (!shape.length) throw badRequest(`input "${name}" has an empty shape; give the batch dimension first, e.g. [1, 224, 224, 3] or [1]`);
  return elementCount(shape);
}

/** ModelInferRequest inputs → repository inputs (typed contents or raw_input_contents, any datatype), every size checked against the declared shape. */
export function decodeGrpcInputs(req: ModelInferRequestMsg): InferInput[] {
  if (!req.inputs.length) throw badRequest('the request has no inputs');
  const raw = req.raw_input_contents ?? [];
  if (raw.length && raw.length !== req.inputs.length) {
    throw badRequest(`raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; send one per input, in the same order`);
  }
  return req.inputs.map((t, i) => {
    const count = grpcElementCount(t.shape, t.name);
    const what = `input "${t.name}"`;
    if (raw.length && hasContents(t.contents)) throw badRequest(`${what} has contents while raw_input_contents is used; use one or the other`);
    const datatype = datatypeOf(t.datatype, what, (v) => `"${String(v)}"`);
    const shape = t.shape.slice();
    if (raw.length) {
      const data = binaryData(datatype, raw[i]!, count, `raw ${datatype === 'BYTES' ? 'BYTES ' : ''}content of ${what}`, (bytes) => `${what}: shape [${t.shape.join(', ')}] needs ${bytes} bytes of ${datatype} raw content, got ${raw[i]!.byteLength}`);
      // Fixed-size data was checked by its byte count; BYTES elements are counted once parsed.
      if (data.length !== count) throw badRequest(`${what}: shape [${t.shape.join(', ')}] needs ${count} BYTES elements (one encoded image each), got ${data.length}`);
      return { name: t.name, datatype, shape, data } as InferInput;
    }
    const field = CONTENTS_FIELD[datatype];
    if (!field) throw badRequest(`${what} is ${datatype}, which has no typed contents field: send it in raw_input_contents`);
    const values = (t.contents?.[field] ?? []) as unknown[];
    if (values.length !== count) throw badRequest(`${what}: shape [${t.shape.join(', ')}] needs ${count} ${datatype === 'BYTES' ? 'BYTES elements (one encoded image each)' : `${field} values`}, got ${values.length}`);
    const data = datatype === 'BYTES' ? (values as Buffer[]).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) : valuesToData(datatype, values, what);
    return { name: t.name, datatype, shape, data } as InferInput;
  });
}

/** Rows of an [N, K] numeric output as nested JSON arrays. */
export function rowsOf(out: InferOutput): number[][] {
  const [n, k] = [out.shape[0]!, out.shape[1] ?? 1];
  const data = toNumbers(out);
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) rows.push(Array.from(data.subarray(i * k, (i + 1) * k)));
  return rows;
}

const isImageObject = (v: unknown): v is { b64: unknown } => !!v && typeof v === 'object' && !Array.isArray(v) && 'b64' in v;

/**
 * TF Serving / seed JSON instances → one InferInput: {"b64"} objects (or a one-key object holding one, the
 * named-input row form) are encoded images; nested number arrays are preprocessed NHWC examples.
 */
export function instancesToInput(instances: unknown, inputName: string, what = 'instances'): InferInput {
  if (!Array.isArray(instances) || instances.length === 0) throw badRequest(`${what} must be a non-empty array`);
  const unwrap = (v: unknown): unknown => {
    if (v && typeof v === 'object' && !Array.isArray(v) && !isImageObject(v)) {
      const vals = Object.values(v);
      if (vals.length === 1) return vals[0];
      throw badRequest(`${what}: each instance must be {"b64": "..."}, a one-input object or an array of numbers`);
    }
    return v;
  };
  const items = instances.map(unwrap);
  if (items.every(isImageObject)) {
    return { name: inputName, datatype: 'BYTES', shape: [items.length], data: items.map((v, i) => fromBase64(v.b64, `${what}[${i}].b64`)) };
  }
  if (items.every((v) => Array.isArray(v))) {
    const data = toFloat32(items, what);
    const shape = [items.length, ...nestedShape(items[0])];
    return { name: inputName, datatype: 'FP32', shape, data };
  }
  throw badRequest(`${what}: mix of images and numbers, or values that are neither; send {"b64": "<base64 image>"} per instance or nested number arrays`);
}

function nestedShape(v: unknown): number[] {
  const shape: number[] = [];
  while (Array.isArray(v) && shape.length <= MAX_NESTING) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/**
 * Tabular rows as JSON: each an array of numbers in feature order, an object keyed by encoded feature name, or —
 * when the package records its encoding — an object of raw column values ({"color": "red", "x": 1.5}), one-hot
 * encoded here exactly as training did (data/csv.ts encodeObjects).
 */
export function rowsToInput(instances: unknown, features: string[], inputName: string, encoding?: TabularEncoding, modelName = 'the model'): InferInput {
  if (!Array.isArray(instances) || instances.length === 0) throw badRequest('instances must be a non-empty array of rows');
  const width = features.length;
  const x = new Float32Array(instances.length * width);
  const columns = encoding ? encoding.columns.map((c) => c.name) : [];
  const put = (i: number, j: number, v: unknown, what: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`instance ${i}: ${what} must be a finite number, got ${JSON.stringify(v) ?? 'nothing'}`);
    x[i * width + j] = v;
  };
  instances.forEach((row, i) => {
    if (Array.isArray(row)) {
      if (row.length !== width) throw badRequest(`instance ${i} has ${row.length} values; the model takes ${width} (${features.join(', ')})`);
      row.forEach((v, j) => put(i, j, v, `value ${j}`));
    } else if (row && typeof row === 'object') {
      const rec = row as Record<string, unknown>;
      const keys = Object.keys(rec);
      // Keys that are encoded names but not raw columns ("color=red") mark an already-encoded row.
      const encoded = keys.every((k) => features.includes(k)) && keys.some((k) => !columns.includes(k));
      if (encoding && !encoded) {
        const unknown = keys.filter((k) => !columns.includes(k));
        if (unknown.length) throw badRequest(`instance ${i} has unknown feature(s) ${unknown.join(', ')}; the model's columns are ${columns.join(', ')}`);
        try {
          x.set(encodeObjects([rec], encoding, modelName), i * width);
        } catch (err) {
          if (!(err instanceof MlctlError)) throw err;
          // encodeObjects numbers its one row 0; the client needs the instance index.
          throw badRequest(err.message.replace(/\brow 0\b/, `instance ${i}`), err);
        }
        return;
      }
      const unknown = keys.filter((k) => !features.includes(k));
      if (unknown.length) throw badRequest(`instance ${i} has unknown feature(s) ${unknown.join(', ')}; the model's features are ${features.join(', ')}`);
      features.forEach((f, j) => put(i, j, rec[f], `feature "${f}"`));
    } else {
      throw badRequest(`instance ${i} must be an array of numbers or an object keyed by column or feature name`);
    }
  });
  return { name: inputName, datatype: 'FP32', shape: [instances.length, width], data: x };
}

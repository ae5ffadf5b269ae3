// Request/response encodings shared by serve's REST routes: JSON tensors (flat or nested), base64 images,
// the V2 binary tensor extension (JSON header + little-endian raw data), TF Serving instances, top-k labels.
import { encodeObjects, type TabularEncoding } from '../data/csv.js';
import { MlctlError } from '../errors.js';
import { badRequest } from './errors.js';
import type { InferInput, InferOutput } from './types.js';

/** Flatten nested JSON arrays of numbers into Float32Array, refusing anything that is not a finite number. */
export function toFloat32(data: unknown, what: string): Float32Array {
  if (!Array.isArray(data)) throw badRequest(`${what}: data must be an array of numbers (flat or nested)`);
  const flat = (data as unknown[]).flat(Infinity as 1);
  const out = new Float32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${what}: element ${i} is ${JSON.stringify(v)?.slice(0, 40)}, not a finite number`);
    out[i] = v;
  }
  return out;
}

/** Decode a base64 string (standard or URL-safe), refusing text that is not base64 at all. */
export function fromBase64(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string') throw badRequest(`${what}: expected a base64 string`);
  const clean = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw badRequest(`${what}: not valid base64`);
  return Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64');
}

/** BYTES elements in JSON: base64 strings or {"b64": "..."} objects, flat or nested. */
export function toBytesList(data: unknown, what: string): Uint8Array[] {
  if (!Array.isArray(data)) throw badRequest(`${what}: BYTES data must be an array of base64 strings`);
  return (data as unknown[]).flat(Infinity as 1).map((v, i) => {
    if (v && typeof v === 'object' && 'b64' in v) return fromBase64((v as { b64: unknown }).b64, `${what} element ${i}`);
    return fromBase64(v, `${what} element ${i}`);
  });
}

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

/** BYTES tensor in binary form: each element is a 4-byte little-endian length followed by its bytes. */
export function parseBinaryBytes(buf: Buffer, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw badRequest(`${what}: truncated BYTES element length at offset ${off}`);
    const len = buf.readUInt32LE(off);
    off += 4;
    if (off + len > buf.length) throw badRequest(`${what}: BYTES element of ${len} bytes overruns the data at offset ${off}`);
    out.push(buf.subarray(off, off + len));
    off += len;
  }
  return out;
}

/** Little-endian float32 bytes → Float32Array (copied so alignment never matters). */
export function parseBinaryFp32(buf: Buffer, what: string): Float32Array {
  if (buf.length % 4) throw badRequest(`${what}: ${buf.length} bytes is not a whole number of FP32 values`);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

export function fp32ToBuffer(data: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(data.length * 4);
  for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i]!, i * 4);
  return buf;
}

/** Rows of an [N, K] output as nested JSON arrays. */
export function rowsOf(out: InferOutput): number[][] {
  const [n, k] = [out.shape[0]!, out.shape[1] ?? 1];
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) rows.push(Array.from(out.data.subarray(i * k, (i + 1) * k)));
  return rows;
}

export interface LabelScore {
  label: string;
  score: number;
}

export function topK(row: number[], labels: string[], k: number): LabelScore[] {
  return row
    .map((score, i) => ({ label: labels[i] ?? String(i), score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, Math.max(0, k));
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
  while (Array.isArray(v)) {
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

// POST /predict: the seed's Flask contract (multipart field `image`) plus raw image bodies and JSON
// {"instances": [{"b64": ...}]}; several images per request. Answers predictions, top-k labels, model, version.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TabularEncoding } from '../../data/csv.js';
import { MlctlError } from '../../errors.js';
import { badRequest, payloadTooLarge } from '../errors.js';
import { instancesToInput, rowsOf, rowsToInput, topK } from '../codec.js';
import type { InferInput } from '../types.js';
import { inferContext, resolveModel } from './common.js';
import { predictSchema } from './schemas.js';

interface PredictQuery {
  model?: string;
  version?: string;
  /** A number once the schema has coerced it. */
  top_k?: number | string;
}

async function readMultipart(request: FastifyRequest, bodyLimit: number): Promise<{ images: Uint8Array[]; fields: Record<string, string> }> {
  const images: Uint8Array[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const buf = await part.toBuffer();
        total += buf.length;
        if (total > bodyLimit) throw payloadTooLarge(`the uploaded images total more than the ${bodyLimit}-byte body limit`);
        images.push(buf);
      } else if (typeof part.value === 'string') {
        fields[part.fieldname] = part.value;
      }
    }
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode ?? (err instanceof MlctlError ? err.httpStatus : undefined);
    if (status === 413) throw payloadTooLarge(`an uploaded file is larger than the ${bodyLimit}-byte limit (--body-limit)`, err);
    if (err instanceof MlctlError || (status && status < 500)) throw err;
    throw badRequest(`malformed multipart body (${(err as Error).message})`, err);
  }
  return { images, fields };
}

export async function predictRoutes(app: FastifyInstance): Promise<void> {
  const state = app.mlctl;
  app.post<{ Querystring: PredictQuery }>('/predict', { config: { kind: 'inference' }, schema: predictSchema }, async (request) => {
    const k = request.query.top_k !== undefined ? Number(request.query.top_k) : state.topK;
    if (!Number.isInteger(k) || k < 0) throw badRequest(`top_k must be a non-negative integer, got "${request.query.top_k}"`);
    let input: InferInput;
    let { model: name, version } = request.query;
    const ct = request.headers['content-type'] ?? '';
    if (request.isMultipart()) {
      const { images, fields } = await readMultipart(request, state.bodyLimit);
      name ??= fields.model;
      version ??= fields.version;
      if (!images.length) throw badRequest('no image in the upload: send the file in the multipart field "image"');
      input = { name: 'image', datatype: 'BYTES', shape: [images.length], data: images };
    } else if (Buffer.isBuffer(request.body)) {
      input = { name: 'image', datatype: 'BYTES', shape: [1], data: [request.body] };
    } else if (/json/i.test(ct) && request.body && typeof request.body === 'object') {
      const body = request.body as { instances?: unknown; inputs?: unknown; model?: string; version?: string | number };
      if (body.instances === undefined) throw badRequest('JSON body needs "instances": [{"b64": "<base64 image>"}, ...] (or rows of features for tabular models)');
      name ??= body.model;
      version ??= body.version === undefined ? undefined : String(body.version);
      const target = resolveModel(state.repo, name, version);
      const spec = target.manifest.input;
      input = spec.kind === 'tabular' ? rowsToInput(body.instances, spec.features, spec.name, (spec.transform as { encoding?: TabularEncoding } | undefined)?.encoding, target.name) : instancesToInput(body.instances, 'image');
    } else {
      throw badRequest('send an image as multipart field "image", as a raw body with Content-Type image/*, or JSON {"instances": [{"b64": "..."}]}');
    }
    const model = resolveModel(state.repo, name, version);
    if (input.datatype === 'FP32') input.name = model.manifest.input.name;
    const res = await state.repo.infer(model.name, model.version, [input], inferContext(request));
    const rows = rowsOf(res.outputs[0]!);
    const m = res.model.manifest;
    const classifier = m.output.kind !== 'regression' && m.labels.length > 0;
    return {
      predictions: rows,
      ...(classifier ? { labels: rows.map((r) => topK(r, m.labels, k)) } : {}),
      model: res.model.name,
      version: res.model.version,
    };
  });
}

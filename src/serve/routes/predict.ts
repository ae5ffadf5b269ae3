// POST /predict: the seed's Flask contract (multipart field `image`) plus raw image bodies and JSON
// {"instances": [{"b64": ...}]}; several images per request (one run each for a model without a batch dimension).
// Answers what the model's task renders (classifiers: predictions and top-k labels; regression: predictions;
// detection: boxes per image in its own pixels), then model and version.
import type { FastifyInstance } from 'fastify';
import type { TabularEncoding } from '../../data/csv.js';
import { badRequest } from '../errors.js';
import { requireTask, type DetectionLimits } from '../../tasks/index.js';
import { instancesToInput, readMultipartImages, rowsToInput, UPLOAD_TEXT_LIMITS } from '../codec.js';
import { sliceBatch } from '../../runtime/tensor.js';
import type { InferContext, InferInput, InferResult, ModelRepository, ServedModel } from '../types.js';
import { inferContext, keyScope, resolveModel } from './common.js';
import { predictSchema } from './schemas.js';

interface PredictQuery {
  model?: string;
  version?: string;
  /** A number once the schema has coerced it; a string from multipart fields. */
  top_k?: number | string;
  min_score?: number | string;
  max_detections?: number | string;
}

function parseTopK(v: string | number): number {
  const k = Number(v);
  if (!Number.isInteger(k) || k < 0) throw badRequest(`top_k must be a non-negative integer, got "${String(v).slice(0, 20)}"`);
  return k;
}

/** Detection limits a request sets (query first, then body or multipart fields), checked: 400 INPUT_INVALID when bad. */
function parseLimits(...sources: Array<{ min_score?: unknown; max_detections?: unknown } | undefined>): DetectionLimits {
  const pick = (key: 'min_score' | 'max_detections') => sources.map((s) => s?.[key]).find((v) => v !== undefined && v !== '');
  const limits: DetectionLimits = {};
  const s = pick('min_score');
  if (s !== undefined) {
    const v = typeof s === 'number' || typeof s === 'string' ? Number(s) : NaN;
    if (!(v >= 0 && v <= 1)) throw badRequest(`min_score must be a number from 0 to 1, got ${JSON.stringify(s).slice(0, 20)}`);
    limits.minScore = v;
  }
  const k = pick('max_detections');
  if (k !== undefined) {
    const v = typeof k === 'number' || typeof k === 'string' ? Number(k) : NaN;
    if (!Number.isInteger(v) || v < 1) throw badRequest(`max_detections must be a positive integer, got ${JSON.stringify(k).slice(0, 20)}`);
    limits.maxDetections = v;
  }
  return limits;
}

/**
 * The request's examples through the repository: in one call, or — for a model without a batch dimension (torchvision's
 * detectors take one image per run) given several pictures — one call per picture, each answered as if sent alone
 * (its own queue turn, batch of one; its audit line and errors name its place in the request). Two are in flight,
 * so the next picture decodes while the engine runs one. Answers in request order.
 */
async function inferEach(repo: ModelRepository, model: ServedModel, input: InferInput, ctx: InferContext): Promise<InferResult[]> {
  const n = input.shape[0] ?? 1;
  if (model.batched || input.datatype !== 'BYTES' || n <= 1) return [await repo.infer(model.name, model.version, [input], ctx)];
  const answers: InferResult[] = [];
  let next = 0;
  const lane = async () => {
    try {
      for (let i = next++; i < n; i = next++) answers[i] = await repo.infer(model.name, model.version, [sliceBatch(input, i, i + 1)], { ...ctx, part: { index: i, of: n } });
    } catch (err) {
      next = n; // the request has failed: the other lane starts no more pictures
      throw err;
    }
  };
  await Promise.all([lane(), lane()]);
  return answers;
}

export async function predictRoutes(app: FastifyInstance): Promise<void> {
  const state = app.mlctl;
  app.post<{ Querystring: PredictQuery }>('/predict', { config: { kind: 'inference' }, schema: predictSchema }, async (request) => {
    let k = request.query.top_k !== undefined ? parseTopK(request.query.top_k) : state.topK;
    let input: InferInput;
    let { model: name, version } = request.query;
    let limits: DetectionLimits;
    const ct = request.headers['content-type'] ?? '';
    if (request.isMultipart()) {
      const { images, fields } = await readMultipartImages(request.parts(), { bodyLimit: state.bodyLimit, maxFiles: state.maxFiles, ...UPLOAD_TEXT_LIMITS });
      if (fields.top_k !== undefined && request.query.top_k === undefined) k = parseTopK(fields.top_k);
      limits = parseLimits(request.query, fields);
      name ??= fields.model;
      version ??= fields.version;
      if (!images.length) throw badRequest('no image in the upload: send the file in the multipart field "image"');
      input = { name: 'image', datatype: 'BYTES', shape: [images.length], data: images };
    } else if (Buffer.isBuffer(request.body)) {
      limits = parseLimits(request.query);
      input = { name: 'image', datatype: 'BYTES', shape: [1], data: [request.body] };
    } else if (/json/i.test(ct) && request.body && typeof request.body === 'object') {
      const body = request.body as { instances?: unknown; inputs?: unknown; model?: string; version?: string | number; min_score?: unknown; max_detections?: unknown };
      limits = parseLimits(request.query, body);
      if (body.instances === undefined) throw badRequest('JSON body needs "instances": [{"b64": "<base64 image>"}, ...] (or rows of features for tabular models)');
      name ??= body.model;
      version ??= body.version === undefined ? undefined : String(body.version);
      const target = resolveModel(state, name, version, keyScope(request));
      const spec = target.manifest.input;
      input = spec.kind === 'tabular' ? rowsToInput(body.instances, spec.features, spec.name, (spec.transform as { encoding?: TabularEncoding } | undefined)?.encoding, target.name) : instancesToInput(body.instances, 'image');
    } else {
      throw badRequest('send an image as multipart field "image", as a raw body with Content-Type image/*, or JSON {"instances": [{"b64": "..."}]}');
    }
    const model = resolveModel(state, name, version, keyScope(request));
    // Checked before inference: a model without a task has nothing /predict could answer.
    const task = requireTask(model.manifest, 'POST /predict', `${model.name} v${model.version}`);
    if (input.datatype === 'FP32') input.name = model.inputs[0]!.name;
    const answers = await inferEach(state.repo, model, input, inferContext(request));
    const m = answers[0]!.model.manifest;
    const results = answers.flatMap((res) => task.results(res.outputs, m, { ...state.detection, ...limits, ...(res.images ? { images: res.images } : {}) }));
    return { ...task.serve.predict(results, m, { topK: k }), model: answers[0]!.model.name, version: answers[0]!.model.version };
  });
}

// KServe Open Inference Protocol (V2) over REST: health, server/model metadata, model readiness and infer with
// tensors of every datatype (image models: FP32 preprocessed NHWC or BYTES encoded images), in JSON or with the
// binary tensor extension.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { decodeV2Request } from '../codec.js';
import type { ServedModel } from '../types.js';
import { checkOutputNames, classificationCount, requestedOutputs } from '../triton.js';
import { dataToBytes, dataToJson } from '../wire.js';
import { inferContext, resolveModel, SERVER_VERSION, unavailableVersions } from './common.js';
import { v2InferSchema, v2LiveSchema, v2MetadataSchema, v2ReadySchema, v2ReadyServerSchema, v2ServerSchema } from './schemas.js';

type ModelParams = { name: string; version?: string };

/** The name V2 clients send encoded images under (the repository also accepts the FP32 input's own name). */
export const V2_IMAGE_INPUT = 'image';

const tensorMetadata = (t: { name: string; datatype: string; shape: number[] }) => ({ name: t.name, datatype: t.datatype, shape: t.shape });

/**
 * V2 model metadata: every input and output as the model is served (batch dimension first, -1 where dynamic; 1 for a
 * model without a batch dimension, which takes one example per request). Image models also list the BYTES tensor of
 * encoded images (JPEG, PNG, WebP …; one per element), so a client discovers it can send pictures as they are.
 */
export function modelMetadata(model: ServedModel, versions: number[]) {
  return {
    name: model.name,
    versions: versions.map(String),
    platform: model.platform,
    inputs: [...model.inputs.map(tensorMetadata), ...(model.manifest.input.kind === 'image' ? [{ name: V2_IMAGE_INPUT, datatype: 'BYTES', shape: [model.batched ? -1 : 1] }] : [])],
    outputs: model.outputs.map(tensorMetadata),
  };
}

async function infer(request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) {
  const state = request.server.mlctl;
  const model = resolveModel(state, request.params.name, request.params.version);
  const { req, inputs } = decodeV2Request(request.body, request.headers['inference-header-content-length']);
  const requested = req.outputs;
  if (requested !== undefined && !Array.isArray(requested)) throw badRequest('"outputs" must be an array of {name, parameters?}');
  // Checked before inference: a bad request costs no engine time.
  const asked = (requested ?? []).map((o) => ({ name: o?.name, classification: classificationCount(o?.parameters?.classification, String(o?.name)), binary: o?.parameters?.binary_data }));
  checkOutputNames(model, asked.map((o) => o.name));
  const res = await state.repo.infer(model.name, model.version, inputs, inferContext(request));
  const tensors = requestedOutputs(res, asked);
  const id = req.id === undefined ? {} : { id: String(req.id) };
  const head = { model_name: res.model.name, model_version: String(res.model.version), ...id };
  // binary_data on an output overrides the request-wide binary_data_output (Triton's binary tensor extension).
  const binaryFor = (i: number) => (asked[i]?.binary !== undefined ? asked[i]!.binary === true : req.parameters?.binary_data_output === true);
  if (!tensors.some((_, i) => binaryFor(i))) {
    return { ...head, outputs: tensors.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, data: dataToJson(o) })) };
  }
  const blobs = tensors.map((o, i) => (binaryFor(i) ? dataToBytes(o) : undefined));
  const json = Buffer.from(
    JSON.stringify({
      ...head,
      outputs: tensors.map((o, i) => ({ name: o.name, datatype: o.datatype, shape: o.shape, ...(blobs[i] ? { parameters: { binary_data_size: blobs[i]!.length } } : { data: dataToJson(o) }) })),
    }),
  );
  reply.header('inference-header-content-length', String(json.length));
  reply.type('application/octet-stream');
  return Buffer.concat([json, ...blobs.filter((b): b is Buffer => b !== undefined)]);
}

/**
 * A binary-extension body is marked by Inference-Header-Content-Length, whatever its Content-Type says (Triton reads
 * it so): such a request is parsed and validated as the application/octet-stream body it is, so a client that labels
 * it application/json or text/plain still gets its tensors rather than a JSON parse or schema error.
 */
async function binaryByHeader(request: FastifyRequest): Promise<void> {
  if (request.headers['inference-header-content-length'] !== undefined) request.headers['content-type'] = 'application/octet-stream';
}

export async function v2Routes(app: FastifyInstance): Promise<void> {
  const state = app.mlctl;
  const health = { config: { kind: 'health' as const } };
  const meta = { config: { kind: 'metadata' as const } };

  app.get('/v2/health/live', { ...health, schema: v2LiveSchema }, async () => ({ live: true }));
  app.get('/v2/health/ready', { ...health, schema: v2ReadyServerSchema }, async (_request, reply) => {
    const ready = state.accepting() && state.repo.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  app.get('/v2', { ...meta, schema: v2ServerSchema }, async () => ({ name: 'mlctl', version: SERVER_VERSION, extensions: state.extensions }));

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>) => {
    const model = resolveModel(state, request.params.name, request.params.version);
    const versions = state.repo.list().filter((m) => m.name === model.name).map((m) => m.version);
    const unavailable = unavailableVersions(state).filter((u) => u.name === model.name).map((u) => ({ version: String(u.version), reason: u.reason }));
    return { ...modelMetadata(model, versions), ...(unavailable.length ? { unavailable_versions: unavailable } : {}) };
  };
  app.get('/v2/models/:name', { ...meta, schema: v2MetadataSchema }, metadata);
  app.get('/v2/models/:name/versions/:version', { ...meta, schema: v2MetadataSchema }, metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    const broken = unavailableVersions(state).find((u) => u.name === name && String(u.version) === version);
    if (broken) return reply.code(503).send({ name, version, ready: false, reason: broken.reason });
    const model = resolveModel(state, name, version);
    const ok = model.ready && state.accepting();
    return reply.code(ok ? 200 : 503).send({ name: model.name, ready: ok });
  };
  // A model's readiness is guarded like its metadata (with keys on, 200 vs 404 would list the models to anyone);
  // the server's /v2/health/* stay open for probes.
  app.get('/v2/models/:name/ready', { ...meta, schema: v2ReadySchema }, ready);
  app.get('/v2/models/:name/versions/:version/ready', { ...meta, schema: v2ReadySchema }, ready);

  const inference = { config: { kind: 'inference' as const } };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', { ...inference, onRequest: binaryByHeader, schema: v2InferSchema }, infer);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', { ...inference, onRequest: binaryByHeader, schema: v2InferSchema }, infer);
}

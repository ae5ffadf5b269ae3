// KServe Open Inference Protocol (V2) over REST: health, server/model metadata, model readiness and infer with
// FP32 (preprocessed NHWC) or BYTES (encoded images) tensors, in JSON or with the binary tensor extension.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { decodeV2Request, fp32ToBuffer } from '../codec.js';
import type { ServedModel } from '../types.js';
import { inferContext, resolveModel, SERVER_VERSION } from './common.js';
import { v2InferSchema, v2LiveSchema, v2MetadataSchema, v2ReadySchema, v2ReadyServerSchema, v2ServerSchema } from './schemas.js';

type ModelParams = { name: string; version?: string };

export function modelMetadata(model: ServedModel, versions: number[]) {
  const input = model.manifest.input;
  const shape = model.inputShape ?? (input.kind === 'image' ? [input.height, input.width, input.channels] : [input.features.length]);
  return {
    name: model.name,
    versions: versions.map(String),
    platform: model.platform,
    inputs: [{ name: input.name, datatype: 'FP32', shape: [-1, ...shape] }],
    outputs: [{ name: model.manifest.output.name, datatype: 'FP32', shape: [-1, model.manifest.output.size] }],
  };
}

async function infer(request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) {
  const state = request.server.mlctl;
  const model = resolveModel(state, request.params.name, request.params.version);
  const { req, inputs } = decodeV2Request(request.body, request.headers['inference-header-content-length']);
  const outName = model.manifest.output.name;
  const requested = req.outputs;
  if (requested !== undefined && !Array.isArray(requested)) throw badRequest('"outputs" must be an array of {name}');
  for (const o of requested ?? []) {
    if (o?.name !== outName) throw badRequest(`model ${model.name} has no output ${JSON.stringify(o?.name)}; its output is "${outName}"`);
  }
  const binaryOut = req.parameters?.binary_data_output === true || (requested ?? []).some((o) => o.parameters?.binary_data === true);
  const res = await state.repo.infer(model.name, model.version, inputs, inferContext(request));
  const id = req.id === undefined ? {} : { id: String(req.id) };
  const head = { model_name: res.model.name, model_version: String(res.model.version), ...id };
  if (!binaryOut) {
    return { ...head, outputs: res.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, data: Array.from(o.data) })) };
  }
  const blobs = res.outputs.map((o) => fp32ToBuffer(o.data));
  const json = Buffer.from(JSON.stringify({ ...head, outputs: res.outputs.map((o, i) => ({ name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: blobs[i]!.length } })) }));
  reply.header('inference-header-content-length', String(json.length));
  reply.type('application/octet-stream');
  return Buffer.concat([json, ...blobs]);
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
    const unavailable = state.repo.unavailable().filter((u) => u.name === model.name).map((u) => ({ version: String(u.version), reason: u.reason }));
    return { ...modelMetadata(model, versions), ...(unavailable.length ? { unavailable_versions: unavailable } : {}) };
  };
  app.get('/v2/models/:name', { ...meta, schema: v2MetadataSchema }, metadata);
  app.get('/v2/models/:name/versions/:version', { ...meta, schema: v2MetadataSchema }, metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    const broken = state.repo.unavailable().find((u) => u.name === name && String(u.version) === version);
    if (broken) return reply.code(503).send({ name, version, ready: false, reason: broken.reason });
    const model = resolveModel(state, name, version);
    const ok = model.ready && state.accepting();
    return reply.code(ok ? 200 : 503).send({ name: model.name, ready: ok });
  };
  app.get('/v2/models/:name/ready', { ...health, schema: v2ReadySchema }, ready);
  app.get('/v2/models/:name/versions/:version/ready', { ...health, schema: v2ReadySchema }, ready);

  const inference = { config: { kind: 'inference' as const } };
  app.post('/v2/models/:name/infer', { ...inference, schema: v2InferSchema }, infer);
  app.post('/v2/models/:name/versions/:version/infer', { ...inference, schema: v2InferSchema }, infer);
}

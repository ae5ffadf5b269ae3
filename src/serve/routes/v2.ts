// KServe Open Inference Protocol (V2) over REST: health, server/model metadata, model readiness and infer with
// FP32 (preprocessed NHWC) or BYTES (encoded images) tensors, in JSON or with the binary tensor extension.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { fp32ToBuffer, parseBinaryBytes, parseBinaryFp32, shapeSize, splitBinaryBody, toBytesList, toFloat32 } from '../codec.js';
import type { InferInput, ServedModel } from '../types.js';
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

interface RawInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: { binary_data_size?: unknown };
  data?: unknown;
}

interface RawRequest {
  id?: unknown;
  parameters?: { binary_data_output?: unknown };
  inputs?: unknown;
  outputs?: Array<{ name?: unknown; parameters?: { binary_data?: unknown } }>;
}

function parseInferBody(request: FastifyRequest): { req: RawRequest; binary?: Buffer } {
  const headerLen = request.headers['inference-header-content-length'];
  if (Buffer.isBuffer(request.body)) {
    if (headerLen === undefined) throw badRequest('a binary infer body needs the Inference-Header-Content-Length header (binary tensor extension)');
    const { json, binary } = splitBinaryBody(request.body, Number(headerLen));
    return { req: json as RawRequest, binary };
  }
  if (!request.body || typeof request.body !== 'object' || Array.isArray(request.body)) throw badRequest('the infer body must be a JSON object {"inputs": [...]}');
  return { req: request.body as RawRequest };
}

function parseInputs(req: RawRequest, binary: Buffer | undefined): InferInput[] {
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) throw badRequest('"inputs" must be a non-empty array of tensors {name, shape, datatype, data}');
  let off = 0;
  return (req.inputs as RawInput[]).map((raw, i) => {
    if (!raw || typeof raw !== 'object') throw badRequest(`inputs[${i}] must be an object`);
    const name = raw.name;
    if (typeof name !== 'string' || !name) throw badRequest(`inputs[${i}] has no "name"`);
    const what = `input ${name}`;
    const size = shapeSize(raw.shape, what);
    const shape = raw.shape as number[];
    if (raw.datatype !== 'FP32' && raw.datatype !== 'BYTES') {
      throw badRequest(`${what} has datatype ${JSON.stringify(raw.datatype)}; this model takes FP32 (preprocessed NHWC floats) or BYTES (encoded images)`);
    }
    const binSize = raw.parameters?.binary_data_size;
    if (binSize !== undefined) {
      if (!binary) throw badRequest(`${what} sets binary_data_size but the request has no binary section`);
      if (!Number.isInteger(binSize) || (binSize as number) < 0 || off + (binSize as number) > binary.length) throw badRequest(`${what}: binary_data_size ${String(binSize)} overruns the ${binary.length}-byte binary section`);
      const chunk = binary.subarray(off, off + (binSize as number));
      off += binSize as number;
      if (raw.datatype === 'FP32') {
        if (chunk.length !== size * 4) throw badRequest(`${what}: ${chunk.length} bytes of FP32 data, shape [${shape.join(', ')}] needs ${size * 4}`);
        return { name, datatype: 'FP32', shape, data: parseBinaryFp32(chunk, what) };
      }
      return { name, datatype: 'BYTES', shape, data: parseBinaryBytes(chunk, what) };
    }
    if (raw.data === undefined) throw badRequest(`${what} has no "data"`);
    if (raw.datatype === 'FP32') {
      const data = toFloat32(raw.data, what);
      if (data.length !== size) throw badRequest(`${what} has ${data.length} values but shape [${shape.join(', ')}] needs ${size}`);
      return { name, datatype: 'FP32', shape, data };
    }
    return { name, datatype: 'BYTES', shape, data: toBytesList(raw.data, what) };
  });
}

async function infer(request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) {
  const state = request.server.mlctl;
  const model = resolveModel(state.repo, request.params.name, request.params.version);
  const { req, binary } = parseInferBody(request);
  const inputs = parseInputs(req, binary);
  const inputName = model.manifest.input.name;
  for (const input of inputs) {
    if (input.datatype === 'FP32' && input.name !== inputName) throw badRequest(`model ${model.name} has no input "${input.name}"; its FP32 input is "${inputName}"${model.manifest.input.kind === 'image' ? ' (or send encoded images as BYTES)' : ''}`);
  }
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
    const model = resolveModel(state.repo, request.params.name, request.params.version);
    const versions = state.repo.list().filter((m) => m.name === model.name).map((m) => m.version);
    return modelMetadata(model, versions);
  };
  app.get('/v2/models/:name', { ...meta, schema: v2MetadataSchema }, metadata);
  app.get('/v2/models/:name/versions/:version', { ...meta, schema: v2MetadataSchema }, metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const model = resolveModel(state.repo, request.params.name, request.params.version);
    const ok = model.ready && state.accepting();
    return reply.code(ok ? 200 : 503).send({ name: model.name, ready: ok });
  };
  app.get('/v2/models/:name/ready', { ...health, schema: v2ReadySchema }, ready);
  app.get('/v2/models/:name/versions/:version/ready', { ...health, schema: v2ReadySchema }, ready);

  const inference = { config: { kind: 'inference' as const } };
  app.post('/v2/models/:name/infer', { ...inference, schema: v2InferSchema }, infer);
  app.post('/v2/models/:name/versions/:version/infer', { ...inference, schema: v2InferSchema }, infer);
}

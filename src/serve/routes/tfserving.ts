// TensorFlow Serving REST compatibility: POST /v1/models/{name}[/versions/{v}]:predict|:classify with
// {"instances"} (row) or {"inputs"} (columnar) bodies, and GET /v1/models/{name}[/versions/{v}] model status.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import { instancesToInput, rowsOf, topK } from '../codec.js';
import { inferContext, parseVersion, resolveModel } from './common.js';
import { tfRunSchema, tfStatusSchema } from './schemas.js';

type Params = { model: string; version?: string };

/** "name:predict" → ["name", "predict"]; the verb rides on the last path segment as in TF Serving. */
function splitVerb(segment: string): [string, string] {
  const i = segment.lastIndexOf(':');
  if (i < 0) throw notFound(`no route POST ${segment}: use /v1/models/{name}:predict or :classify`);
  return [segment.slice(0, i), segment.slice(i + 1)];
}

export async function tfServingRoutes(app: FastifyInstance): Promise<void> {
  const state = app.mlctl;

  const status = async (request: FastifyRequest<{ Params: Params }>) => {
    const name = request.params.model;
    const v = parseVersion(name, request.params.version);
    const models = state.repo.list().filter((m) => m.name === name && (v === undefined || m.version === v));
    if (!models.length && !state.repo.unavailable().some((u) => u.name === name && (v === undefined || u.version === v))) resolveModel(state, name, request.params.version);
    const broken = state.repo.unavailable().filter((u) => u.name === name && (v === undefined || u.version === v));
    return {
      model_version_status: [
        ...models.map((m) => ({ version: String(m.version), state: m.ready ? 'AVAILABLE' : 'LOADING', status: { error_code: 'OK', error_message: '' } })),
        ...broken.map((u) => ({ version: String(u.version), state: 'END', status: { error_code: 'UNAVAILABLE', error_message: u.reason } })),
      ].sort((a, b) => Number(b.version) - Number(a.version)),
    };
  };
  app.get('/v1/models/:model', { config: { kind: 'metadata' }, schema: tfStatusSchema }, status);
  app.get('/v1/models/:model/versions/:version', { config: { kind: 'metadata' }, schema: tfStatusSchema }, status);

  const run = async (request: FastifyRequest<{ Params: Params }>) => {
    let name: string, verb: string, version: string | undefined;
    if (request.params.version !== undefined) {
      name = request.params.model;
      [version, verb] = splitVerb(request.params.version);
    } else {
      [name, verb] = splitVerb(request.params.model);
    }
    if (verb !== 'predict' && verb !== 'classify') throw notFound(`unknown verb :${verb}; use :predict or :classify`);
    const model = resolveModel(state, name, version);
    const body = request.body as { instances?: unknown; inputs?: unknown } | undefined;
    if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) throw badRequest('the body must be JSON {"instances": [...]} or {"inputs": ...}');
    if (body.instances !== undefined && body.inputs !== undefined) throw badRequest('"instances" and "inputs" are exclusive: send one of them');
    const columnar = body.inputs !== undefined;
    let raw = columnar ? body.inputs : body.instances;
    if (raw === undefined) throw badRequest('the body needs "instances" (row format) or "inputs" (columnar format)');
    // Columnar form with a named input: {"inputs": {"input": [...]}}.
    if (columnar && raw && typeof raw === 'object' && !Array.isArray(raw) && !('b64' in raw)) {
      const vals = Object.values(raw);
      if (vals.length !== 1) throw badRequest(`model ${model.name} has one input ("${model.manifest.input.name}"); "inputs" names ${vals.length}`);
      raw = vals[0];
    }
    if (columnar && raw && typeof raw === 'object' && !Array.isArray(raw)) raw = [raw];
    const input = instancesToInput(raw, model.manifest.input.name, columnar ? 'inputs' : 'instances');
    const res = await state.repo.infer(model.name, model.version, [input], inferContext(request));
    const rows = rowsOf(res.outputs[0]!);
    if (verb === 'classify') return { result: rows.map((r) => topK(r, res.model.manifest.labels, state.topK).map((t) => [t.label, t.score])) };
    return columnar ? { outputs: rows } : { predictions: rows };
  };
  app.post('/v1/models/:model', { config: { kind: 'inference' }, schema: tfRunSchema }, run);
  app.post('/v1/models/:model/versions/:version', { config: { kind: 'inference' }, schema: tfRunSchema }, run);
}

// TensorFlow Serving REST compatibility (tensorflow/serving g3doc/api_rest.md): POST …:predict with {"instances"}
// (row) or {"inputs"} (columnar) bodies, …:classify / …:regress with tf.Example {"examples"} (or instances), and
// GET /v1/models/{name}[/versions/{v}] model status and …/metadata (SignatureDefs).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import type { TabularEncoding } from '../../data/csv.js';
import { instancesToInput, rowsOf, rowsToInput } from '../codec.js';
import { checkPredictSignature, checkSignature, exampleMethod, examplesResponse, examplesToInput, isTensorModel, modelMetadataResponse, tensorsResponse, tensorsToInputs, type ExampleVerb } from '../tfserving-api.js';
import type { InferResult, ServedModel } from '../types.js';
import { taskOf } from '../../tasks/index.js';
import { inferContext, parseVersion, resolveModel, unavailableVersions } from './common.js';
import { tfMetadataSchema, tfRunSchema, tfStatusSchema } from './schemas.js';

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
    const broken = unavailableVersions(state).filter((u) => u.name === name && (v === undefined || u.version === v));
    if (!models.length && !broken.length) resolveModel(state, name, request.params.version);
    return {
      model_version_status: [
        ...models.map((m) => ({ version: String(m.version), state: m.ready ? 'AVAILABLE' : 'LOADING', status: { error_code: 'OK', error_message: '' } })),
        ...broken.map((u) => ({ version: String(u.version), state: 'END', status: { error_code: 'UNAVAILABLE', error_message: u.reason } })),
      ].sort((a, b) => Number(b.version) - Number(a.version)),
    };
  };
  app.get('/v1/models/:model', { config: { kind: 'metadata' }, schema: tfStatusSchema }, status);
  app.get('/v1/models/:model/versions/:version', { config: { kind: 'metadata' }, schema: tfStatusSchema }, status);

  // GetModelMetadata: the signature_def map a SavedModel of this model would carry, as TF Serving prints it.
  const metadata = async (request: FastifyRequest<{ Params: Params }>) => modelMetadataResponse(resolveModel(state, request.params.model, request.params.version), state.topK);
  app.get('/v1/models/:model/metadata', { config: { kind: 'metadata' }, schema: tfMetadataSchema }, metadata);
  app.get('/v1/models/:model/versions/:version/metadata', { config: { kind: 'metadata' }, schema: tfMetadataSchema }, metadata);
  const labels = async () => {
    throw notFound('version labels are not supported by mlctl serve: use /v1/models/{name}/versions/{version}');
  };
  // Answered (404, saying what to use instead) but not documented.
  app.get('/v1/models/:model/labels/:label', { config: { kind: 'metadata' }, schema: { hide: true } }, labels);
  app.get('/v1/models/:model/labels/:label/metadata', { config: { kind: 'metadata' }, schema: { hide: true } }, labels);

  /** The verb must be the one the model's task answers: a regression model regresses, a classifier classifies. */
  const checkMethod = (model: ServedModel, verb: ExampleVerb, asked: string) => {
    const method = exampleMethod(model);
    if (method === verb) return;
    if (method === 'regress') throw badRequest(`model ${model.name} is a regression model: use :regress${asked === 'instances' ? ' (or :predict)' : ''}`);
    if (method === 'classify') throw badRequest(`model ${model.name} is a classifier: use :classify (or :predict for the raw scores)`);
    throw badRequest(`model ${model.name} answers neither :classify nor :regress${model.manifest.task ? ` (its task is ${model.manifest.task})` : ' (it has no task)'}: use :predict`);
  };

  /** :classify / :regress answers: the task's per-example answer (labels with scores, or the value). */
  const answers = (res: InferResult) => {
    const m = res.model.manifest;
    const task = taskOf(m)!;
    return examplesResponse(task.results(res.outputs, m).map((r) => task.serve.tfServing!.answer(r, m, { topK: state.topK })));
  };

  /** Classify / Regress with tf.Example-style {"examples": [...]} (api_rest.md): one answer per example. */
  const examples = async (request: FastifyRequest<{ Params: Params }>, model: ServedModel, verb: ExampleVerb, body: Record<string, unknown>) => {
    checkSignature(model, verb, body.signature_name);
    checkMethod(model, verb, 'examples');
    return answers(await state.repo.infer(model.name, model.version, [examplesToInput(model, body)], inferContext(request)));
  };

  const run = async (request: FastifyRequest<{ Params: Params }>) => {
    let name: string, verb: string, version: string | undefined;
    if (request.params.version !== undefined) {
      name = request.params.model;
      [version, verb] = splitVerb(request.params.version);
    } else {
      [name, verb] = splitVerb(request.params.model);
    }
    if (verb !== 'predict' && verb !== 'classify' && verb !== 'regress') throw notFound(`unknown verb :${verb.slice(0, 40)}; use :predict, :classify or :regress`);
    const model = resolveModel(state, name, version);
    const body = request.body as { instances?: unknown; inputs?: unknown; examples?: unknown } | undefined;
    if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) throw badRequest(`the body must be JSON: {"instances": [...]} or {"inputs": ...}${verb === 'predict' ? '' : ', or {"examples": [...]}'}`);
    if (body.examples !== undefined) {
      if (verb === 'predict') throw badRequest(':predict takes "instances" or "inputs"; "examples" go to :classify or :regress');
      if (body.instances !== undefined || body.inputs !== undefined) throw badRequest('"examples" and "instances"/"inputs" are exclusive: send one of them');
      return examples(request, model, verb, body as Record<string, unknown>);
    }
    if (verb === 'regress') throw badRequest(':regress takes {"examples": [{feature: value, …}, …]} (tf.Example features)');
    const signatureName = (body as { signature_name?: unknown }).signature_name;
    if (verb === 'predict') checkPredictSignature(model, signatureName);
    else {
      checkSignature(model, verb, signatureName);
      checkMethod(model, verb, 'instances');
    }
    if (body.instances !== undefined && body.inputs !== undefined) throw badRequest('"instances" and "inputs" are exclusive: send one of them');
    const columnar = body.inputs !== undefined;
    let raw = columnar ? body.inputs : body.instances;
    if (raw === undefined) throw badRequest(`the body needs "instances" (row format) or "inputs" (columnar format)${verb === 'classify' ? ', or "examples"' : ''}`);
    // A model that lists its own tensors takes them by name (several inputs, any datatype); :classify was refused above.
    if (isTensorModel(model)) {
      const res = await state.repo.infer(model.name, model.version, tensorsToInputs(model, raw, columnar), inferContext(request));
      return tensorsResponse(res.outputs, columnar);
    }
    const spec = model.manifest.input;
    let input;
    if (spec.kind === 'tabular') {
      // Rows by column (objects) or in feature order (arrays), as /predict takes them.
      input = rowsToInput(columnar && !Array.isArray(raw) ? Object.values(raw as object)[0] : raw, spec.features, spec.name, (spec.transform as { encoding?: TabularEncoding } | undefined)?.encoding, model.name);
    } else {
      // Columnar form with a named input: {"inputs": {"input": [...]}}.
      if (columnar && raw && typeof raw === 'object' && !Array.isArray(raw) && !('b64' in raw)) {
        const vals = Object.values(raw);
        if (vals.length !== 1) throw badRequest(`model ${model.name} has one input ("${model.inputs[0]!.name}"); "inputs" names ${vals.length}`);
        raw = vals[0];
      }
      if (columnar && raw && typeof raw === 'object' && !Array.isArray(raw)) raw = [raw];
      input = instancesToInput(raw, model.inputs[0]!.name, columnar ? 'inputs' : 'instances');
    }
    const res = await state.repo.infer(model.name, model.version, [input], inferContext(request));
    if (verb === 'classify') return answers(res);
    const rows = rowsOf(res.outputs[0]!);
    return columnar ? { outputs: rows } : { predictions: rows };
  };
  app.post('/v1/models/:model', { config: { kind: 'inference' }, schema: tfRunSchema }, run);
  app.post('/v1/models/:model/versions/:version', { config: { kind: 'inference' }, schema: tfRunSchema }, run);
}

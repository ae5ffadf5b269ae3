// Triton's REST extensions (triton-inference-server/server docs/protocol/extension_*.md): model configuration
// (GET …/config, the ModelConfig export --format triton writes), statistics (GET …/stats) and the repository index
// (POST /v2/repository/index; load/unload live with model control in serve/reload.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { servedIndex, servedModelConfig } from '../triton.js';
import { parseVersion, resolveModel } from './common.js';
import { repositoryIndexSchema, tritonConfigSchema, tritonStatsAllSchema, tritonStatsSchema } from './schemas.js';

type ModelParams = { name: string; version?: string };

/** Model-less listings show what the caller's API key may use (every model without keys or with an unscoped key). */
function visibleTo(request: FastifyRequest): (name: string) => boolean {
  const scope = request.apiKeyModels;
  return (name) => !scope || scope.includes(name);
}

export async function tritonRoutes(app: FastifyInstance): Promise<void> {
  const state = app.mlctl;
  const meta = { config: { kind: 'metadata' as const } };

  const config = async (request: FastifyRequest<{ Params: ModelParams }>) => {
    const model = resolveModel(state, request.params.name, request.params.version);
    return servedModelConfig(model, state.repo.batching);
  };
  app.get('/v2/models/:name/config', { ...meta, schema: tritonConfigSchema }, config);
  app.get('/v2/models/:name/versions/:version/config', { ...meta, schema: tritonConfigSchema }, config);

  const stats = async (request: FastifyRequest<{ Params: Partial<ModelParams> }>) => {
    const { name, version } = request.params;
    if (name === undefined) return { model_stats: state.stats.modelStats().filter((s) => visibleTo(request)(s.name)) };
    // Unknown models and versions are 404s (with resolveModel's messages), as for every other model route.
    resolveModel(state, name, version);
    return { model_stats: state.stats.modelStats(name, parseVersion(name, version)) };
  };
  app.get('/v2/models/stats', { ...meta, schema: tritonStatsAllSchema }, stats);
  app.get('/v2/models/:name/stats', { ...meta, schema: tritonStatsSchema }, stats);
  app.get('/v2/models/:name/versions/:version/stats', { ...meta, schema: tritonStatsSchema }, stats);

  app.post<{ Body: { ready?: boolean } | undefined }>(
    '/v2/repository/index',
    {
      ...meta,
      schema: repositoryIndexSchema,
    },
    async (request) => servedIndex(state, request.body?.ready === true, visibleTo(request)),
  );
}

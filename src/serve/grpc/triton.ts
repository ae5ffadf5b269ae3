// Triton's gRPC extensions for mlctl serve: ModelConfig, ModelStatistics, RepositoryIndex, RepositoryModelLoad and
// RepositoryModelUnload (behind --allow-model-control), and ModelStreamInfer — a bidirectional stream answering every
// request with one ModelStreamInferResponse, failures included as error_message (the stream itself stays open).
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { MlctlError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { decodeGrpcInputs, type ModelInferRequestMsg } from '../codec.js';
import { badRequest, notFound } from '../errors.js';
import { servedIndex, servedModelConfig } from '../triton.js';
import type { ModelControl, ModelRepository, ServeState, TritonStats } from '../types.js';
import { encodeInferResponse, grpcFailureOf } from './convert.js';
import { undecodable } from './proto.js';

/** What a handler knows about its call (grpc/server.ts CallInfo). */
export interface TritonCallInfo {
  requestId: string;
  keyId?: string;
  keyModels?: string[];
  clientAddress: string;
  connection: string;
}

type Unary = <Req, Res>(method: string, guard: ((req: Req) => string | undefined) | undefined, fn: (req: Req, info: TritonCallInfo) => Promise<Res> | Res) => grpc.handleUnaryCall<Req, Res>;

export interface TritonGrpcDeps {
  repo: ModelRepository;
  /** The REST side's statistics, model control and state (read when a call arrives: plugins set them at start-up). */
  stats: () => TritonStats | undefined;
  control: () => ModelControl | undefined;
  state: () => ServeState | undefined;
  unary: Unary;
  /** Checks the caller's key for a model (or none) from the stream's metadata; throws 401/403 like unary calls. */
  authorize: (call: grpc.ServerDuplexStream<ModelInferRequestMsg, unknown>, model: string | undefined) => TritonCallInfo;
  checkName: (name: string) => string;
  parseVersion: (v: string) => number | undefined;
  onCall?: (method: string, code: grpc.status, seconds: number) => void;
  logger?: Logger;
}

const modelOf = (r: { name?: string; model_name?: string }) => r.name || r.model_name || undefined;

export function tritonHandlers(d: TritonGrpcDeps): grpc.UntypedServiceImplementation {
  const { repo, unary } = d;
  const loaded = (name: string, version: string) => {
    const n = d.checkName(name);
    const model = repo.get(n, d.parseVersion(version));
    if (!model) throw notFound(`model "${n}"${version ? ` version ${version}` : ''} is not loaded`);
    return model;
  };
  const control = (): ModelControl => {
    const c = d.control();
    if (!c?.enabled) throw new MlctlError('MODEL_CONTROL_DISABLED', ['model control is disabled: start mlctl serve with --allow-model-control']);
    return c;
  };

  return {
    ModelConfig: unary<{ name: string; version: string }, { config: Record<string, unknown> }>('ModelConfig', modelOf, async (req) => ({
      config: await servedModelConfig(loaded(req.name, req.version), repo.batching),
    })),

    ModelStatistics: unary<{ name: string; version: string }, { model_stats: unknown[] }>('ModelStatistics', modelOf, (req, info) => {
      const stats = d.stats();
      if (!stats) return { model_stats: [] };
      // An empty name asks for every model (Triton's convention) the caller's key may see; a name must be loaded.
      if (!req.name) return { model_stats: stats.modelStats().filter((m) => !info.keyModels || info.keyModels.includes(m.name)) };
      const model = loaded(req.name, req.version);
      return { model_stats: stats.modelStats(model.name, req.version ? model.version : undefined) };
    }),

    RepositoryIndex: unary<{ repository_name: string; ready: boolean }, { models: unknown[] }>('RepositoryIndex', () => undefined, async (req, info) => {
      const state = d.state();
      if (req.repository_name) throw badRequest(`mlctl serve has one repository (what it was started on); leave repository_name empty, got "${req.repository_name.slice(0, 100)}"`);
      return { models: state ? await servedIndex(state, req.ready, (name) => !info.keyModels || info.keyModels.includes(name)) : [] };
    }),

    RepositoryModelLoad: unary<{ repository_name: string; model_name: string; parameters: Record<string, { int64_param?: number; string_param?: string; parameter_choice?: string }> }, Record<string, never>>(
      'RepositoryModelLoad',
      (r) => r.model_name,
      async (req) => {
        const c = control();
        const p = req.parameters?.version;
        const raw = p ? (p.parameter_choice === 'string_param' ? p.string_param : p.int64_param) : undefined;
        const version = raw === undefined ? undefined : Number(raw);
        if (version !== undefined && !(Number.isInteger(version) && version >= 1)) throw badRequest(`parameters["version"] must be a positive integer, got ${JSON.stringify(String(raw))}`);
        await c.load(d.checkName(req.model_name), version);
        return {};
      },
    ),

    RepositoryModelUnload: unary<{ repository_name: string; model_name: string }, Record<string, never>>('RepositoryModelUnload', (r) => r.model_name, async (req) => {
      await control().unload(d.checkName(req.model_name));
      return {};
    }),

    ModelStreamInfer(call: grpc.ServerDuplexStream<ModelInferRequestMsg, unknown>) {
      // Requests run concurrently (so they batch with each other and with everyone else's); answers leave in request
      // order, one per request, with a failure as error_message rather than the end of the stream. A client that
      // writes faster than the engine answers is held back by HTTP/2 flow control once `window` requests are in
      // flight, instead of filling the queue (and memory) for everyone.
      const window = Math.max(8, 2 * repo.batching.maxBatch);
      let chain = Promise.resolve();
      let open = true;
      let ended = false;
      let pending = 0;
      const finish = () => {
        if (ended && pending === 0 && open) {
          open = false;
          call.end();
        }
      };
      call.on('cancelled', () => (open = false));
      call.on('error', () => (open = false));
      call.on('data', (req: ModelInferRequestMsg) => {
        const started = performance.now();
        pending++;
        if (pending >= window) call.pause();
        repo.expectRequests(1);
        const work = (async () => {
          const garbled = undecodable(req);
          const info = d.authorize(call, garbled === undefined ? req.model_name || undefined : undefined);
          if (garbled !== undefined) throw badRequest(garbled);
          const name = d.checkName(req.model_name);
          const version = d.parseVersion(req.model_version);
          if (!repo.get(name, version)) throw notFound(`model "${name}"${version ? ` version ${version}` : ''} is not loaded`);
          const result = await repo.infer(name, version, decodeGrpcInputs(req), info);
          return encodeInferResponse(req, result);
        })();
        work.finally(() => repo.expectRequests(-1)).catch(() => {});
        chain = chain.then(async () => {
          let message: unknown;
          let code: grpc.status = grpc.status.OK;
          try {
            message = { error_message: '', infer_response: await work };
          } catch (err) {
            const f = grpcFailureOf(err, req.id || randomUUID());
            if (f.internal) d.logger?.error(`gRPC stream request failed: ${(err as Error)?.stack ?? String(err)}`);
            code = f.code;
            // Keep the request's id on the failure so a client can tell which request it was.
            message = { error_message: f.details, infer_response: { model_name: req.model_name ?? '', model_version: req.model_version ?? '', id: req.id ?? '', outputs: [], raw_output_contents: [] } };
          }
          d.onCall?.('ModelStreamInfer', code, (performance.now() - started) / 1000);
          if (open) call.write(message);
          pending--;
          if (call.isPaused() && pending < window) call.resume();
          finish();
        });
      });
      call.on('end', () => {
        ended = true;
        void chain.then(finish);
      });
    },
  };
}

// The V2 `inference.GRPCInferenceService` for mlctl serve (--grpc-port): health, metadata and ModelInfer over
// @grpc/grpc-js, calling repo.infer so gRPC shares REST's batching queue, metrics and audit trail.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import fp from 'fastify-plugin';
import { MlctlError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import type { AuditLog } from '../audit.js';
import { checkAccess, presentedKey, type AccessControl } from '../auth.js';
import { clientAddressOf } from '../server.js';
import { isValidModelName, isValidVersion } from '../hygiene.js';
import { grpcServerCredentials, type TlsMaterial } from '../tls.js';
import type { ModelRepository, ServeState } from '../types.js';
import { createHealthWatch, type HealthStatus, type HealthWatch } from './health-watch.js';
import { tritonHandlers } from './triton.js';
import { modelMetadata } from '../routes/v2.js';
import { unavailableVersions } from '../routes/common.js';
import { accessDenied, badRequest, notFound, type ScopeRefusal } from '../errors.js';
import { decodeGrpcInputs, type ModelInferRequestMsg } from '../codec.js';
import { encodeInferResponse, grpcFailureOf } from './convert.js';
import { SERVICE_NAME, healthService, predictV2Service, tolerantService, undecodable } from './proto.js';

const require = createRequire(import.meta.url);
const MLCTL_VERSION: string = (require('../../../package.json') as { version: string }).version;

export const DEFAULT_GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface GrpcServerOptions {
  repo: ModelRepository;
  host?: string;
  /** 0 = an ephemeral port. */
  port: number;
  tls?: TlsMaterial;
  access?: AccessControl;
  logger?: Logger;
  /** Largest request/response message (the gRPC default of 4 MB is too small for image batches). */
  maxMessageBytes?: number;
  /** Extensions reported by ServerMetadata (same list as REST GET /v2). */
  extensions?: string[];
  /** Called after every RPC, e.g. to count requests in the REST metrics registry. */
  onCall?: (method: string, code: grpc.status, seconds: number) => void;
  /** Refused calls (401/403) are written here, as REST's are. */
  audit?: AuditLog;
  /** Metadata key a trusted proxy sets to the client address (serve --trust-proxy-header). */
  trustProxyHeader?: string;
  /** The REST side's state (statistics, model control, batching), for Triton's extensions; read per call. */
  state?: () => ServeState | undefined;
}

export interface GrpcServerHandle {
  port: number;
  server: grpc.Server;
  /** Stop accepting calls, let in-flight ones finish (up to graceMs), then force. */
  close(graceMs?: number): Promise<void>;
}

interface CallInfo {
  requestId: string;
  keyId?: string;
  /** The models the caller's key may use (undefined: every model), for listings that name no model. */
  keyModels?: string[];
  clientAddress: string;
  connection: string;
}

/** "ipv4:127.0.0.1:5123" / "ipv6:[::1]:5123" / "127.0.0.1:5123" → the address without the port. */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (v6) return v6[1]!;
  const i = p.lastIndexOf(':');
  return i > 0 && p.indexOf(':') === i ? p.slice(0, i) : p;
}

function firstMeta(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : v ? v.toString('utf8') : undefined;
}

function serviceError(code: grpc.status, details: string, trailers?: Record<string, string>): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(trailers ?? {})) metadata.set(k, v);
  return { code, details, metadata };
}

/** A thrown error → gRPC status via the error registry (grpcFailureOf); internal errors are logged, never sent. */
export function toGrpcError(err: unknown, requestId: string, logger?: Logger): Partial<grpc.StatusObject> {
  const f = grpcFailureOf(err, requestId);
  if (f.internal) logger?.error(`gRPC request ${requestId} failed: ${(err as Error)?.stack ?? String(err)}`);
  return serviceError(f.code, f.details, f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : undefined);
}

function parseVersion(v: string): number | undefined {
  if (!v) return undefined;
  if (!isValidVersion(v)) throw badRequest(`invalid model version "${v.slice(0, 20)}": versions are positive integers`);
  return Number(v);
}

function checkName(name: string): string {
  if (!name) throw badRequest('the model name is empty');
  if (!isValidModelName(name)) throw new MlctlError('MODEL_NAME_INVALID', [`invalid model name "${name.slice(0, 130)}": use letters, digits, '.', '_' or '-'`]);
  return name;
}

/** Build the service implementation (exported for tests that host it on their own grpc.Server). */
export function grpcHandlers(opts: GrpcServerOptions): grpc.UntypedServiceImplementation {
  const { repo, logger } = opts;
  const extensions = opts.extensions ?? [];

  /** Request id, peer address and connection of a call (its x-request-id when valid, else a new one). */
  const callInfo = (call: { metadata: grpc.Metadata; getPeer(): string }): CallInfo => {
    const supplied = firstMeta(call.metadata, 'x-request-id');
    const requestId = supplied && /^[\w.:-]{1,128}$/.test(supplied) ? supplied : randomUUID();
    const peer = call.getPeer();
    const forwarded = opts.trustProxyHeader ? firstMeta(call.metadata, opts.trustProxyHeader) : undefined;
    return { requestId, clientAddress: clientAddressOf({ p: forwarded }, peerAddress(peer), forwarded ? 'p' : undefined), connection: peer.replace(/^ipv[46]:/, '') };
  };

  const auditDenied = (info: CallInfo, method: string, err: MlctlError, keyId: string | undefined, model: string | undefined) => {
    opts.audit?.write({
      time: new Date().toISOString(), event: 'auth-denied', requestId: info.requestId, status: err.httpStatus, code: err.code, keyId: keyId ?? null,
      client: info.clientAddress, route: `grpc ${method}`, ...(model ? { model: model.slice(0, 130) } : {}), reason: err.message,
    });
  };

  /** The API-key check of a call for `model` (none when keys are off); refusals are audited and thrown as 401/403/429. */
  const authorize = (metadata: grpc.Metadata, info: CallInfo, method: string, model: string | undefined): void => {
    if (!opts.access) return;
    const key = presentedKey(firstMeta(metadata, 'authorization'), firstMeta(metadata, 'x-api-key'));
    const d = checkAccess(opts.access, key, model, info.clientAddress);
    if (!d.ok) {
      const err = accessDenied(d);
      if (d.status !== 429) auditDenied(info, method, err, d.keyId, model);
      throw err;
    }
    info.keyId = d.keyId;
    info.keyModels = opts.access.store.keys.find((k) => k.id === d.keyId)?.models;
  };

  /** Wrap an RPC: request id, peer address, optional access check, error mapping, call hook. */
  const unary = <Req, Res>(method: string, guard: ((req: Req) => string | undefined) | undefined, fn: (req: Req, info: CallInfo) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> => {
    return (call, callback) => {
      const started = performance.now();
      // Tell the batching queues an inference request is on its way (as serve's REST front end does), so a lone
      // request runs at once while concurrent ones still get batched.
      const announce = method === 'ModelInfer' ? (d: number) => repo.expectRequests(d) : undefined;
      announce?.(1);
      const info = callInfo(call);
      const requestId = info.requestId;
      const finish = (code: grpc.status) => {
        announce?.(-1);
        opts.onCall?.(method, code, (performance.now() - started) / 1000);
      };
      const run = async (): Promise<Res> => {
        const garbled = undecodable(call.request);
        if (guard) authorize(call.metadata, info, method, garbled === undefined ? guard(call.request) : undefined);
        if (garbled !== undefined) throw badRequest(garbled);
        try {
          return await fn(call.request, info);
        } catch (err) {
          // A scope refusal from deeper down (the repository checks the model that runs) is audited like the guard's.
          if (err instanceof MlctlError && err.code === 'PERMISSION_DENIED') auditDenied(info, method, err, info.keyId, (err as Partial<ScopeRefusal>).model);
          throw err;
        }
      };
      run().then(
        (res) => {
          finish(grpc.status.OK);
          callback(null, res);
        },
        (err) => {
          const status = toGrpcError(err, requestId, logger);
          finish(status.code ?? grpc.status.UNKNOWN);
          callback(status as grpc.ServiceError, null);
        },
      );
    };
  };

  const byName = (r: { name: string }) => r.name;
  const streams = new WeakMap<object, CallInfo>();
  const triton = tritonHandlers({
    repo,
    unary,
    logger,
    onCall: opts.onCall,
    state: () => opts.state?.(),
    stats: () => opts.state?.()?.stats,
    control: () => opts.state?.()?.modelControl,
    checkName,
    parseVersion,
    // A stream is one call: one call id and peer per stream, its key checked against each request's model.
    authorize: (call, model) => {
      let info = streams.get(call);
      if (!info) streams.set(call, (info = callInfo(call)));
      authorize(call.metadata, info, 'ModelStreamInfer', model);
      return info;
    },
  });
  return {
    ...triton,
    ServerLive: unary('ServerLive', undefined, () => ({ live: true })),
    ServerReady: unary('ServerReady', undefined, () => ({ ready: repo.ready() })),
    // A model's readiness needs a key like its metadata: with keys on, ready vs NOT_FOUND would list the models.
    ModelReady: unary<{ name: string; version: string }, { ready: boolean }>('ModelReady', byName, (req) => {
      const version = parseVersion(req.version);
      const model = repo.get(checkName(req.name), version);
      const state = opts.state?.();
      // A version refused at start-up or hot reload is known and not ready (REST answers 503 ready: false).
      if (!model && version !== undefined && unavailableVersions({ repo, modelControl: state?.modelControl }).some((u) => u.name === req.name && u.version === version)) return { ready: false };
      if (!model) throw notFound(`model "${req.name}"${req.version ? ` version ${req.version}` : ''} is not loaded`);
      return { ready: model.ready };
    }),
    ServerMetadata: unary('ServerMetadata', () => undefined, () => ({ name: 'mlctl', version: MLCTL_VERSION, extensions })),
    ModelMetadata: unary<{ name: string; version: string }, ReturnType<typeof modelMetadata>>('ModelMetadata', byName, (req) => {
      const name = checkName(req.name);
      const model = repo.get(name, parseVersion(req.version));
      if (!model) throw notFound(`model "${name}"${req.version ? ` version ${req.version}` : ''} is not loaded`);
      const versions = repo.list().filter((m) => m.name === name).map((m) => m.version).sort((a, b) => a - b);
      return modelMetadata(model, versions);
    }),
    ModelInfer: unary<ModelInferRequestMsg, ReturnType<typeof encodeInferResponse>>('ModelInfer', (r) => r.model_name, async (req, info) => {
      const name = checkName(req.model_name);
      const version = parseVersion(req.model_version);
      if (!repo.get(name, version)) throw notFound(`model "${name}"${version ? ` version ${version}` : ''} is not loaded`);
      const inputs = decodeGrpcInputs(req);
      const result = await repo.infer(name, version, inputs, { requestId: info.requestId, keyId: info.keyId, keyModels: info.keyModels, clientAddress: info.clientAddress, connection: info.connection });
      return encodeInferResponse(req, result);
    }),
  };
}

/**
 * grpc.health.v1 (grpc-proto health.proto): Check and List answer SERVING once every model is warm and while the
 * server takes requests, for the whole server ("") and the inference service; Watch (when given) streams that status
 * and each change of it. Check of an unknown service is NOT_FOUND, as the protocol says.
 */
export function healthHandlers(status: (service: string) => HealthStatus, watch?: HealthWatch): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<{ service: string }, { status: string }> = (call, callback) => {
    const garbled = undecodable(call.request);
    if (garbled !== undefined) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: garbled }, null);
      return;
    }
    const service = call.request.service ?? '';
    const s = status(service);
    if (s === 'SERVICE_UNKNOWN') {
      callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${service.slice(0, 100)}"; this server has "${SERVICE_NAME}"` }, null);
      return;
    }
    callback(null, { status: s });
  };
  const list: grpc.handleUnaryCall<unknown, { statuses: Record<string, { status: string }> }> = (_call, callback) => {
    callback(null, { statuses: Object.fromEntries(['', SERVICE_NAME].map((name) => [name, { status: status(name) }])) });
  };
  return { Check: check, List: list, ...(watch ? { Watch: watch.handler } : {}) };
}

/** The health status of a service name: the server's readiness, SERVICE_UNKNOWN for other names. */
export function healthStatus(repo: ModelRepository, accepting: () => boolean = () => true): (service: string) => HealthStatus {
  return (service) => (service !== '' && service !== SERVICE_NAME ? 'SERVICE_UNKNOWN' : repo.ready() && accepting() ? 'SERVING' : 'NOT_SERVING');
}

/** Start the gRPC server on host:port (TLS/mTLS when given); resolves once bound. */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServerHandle> {
  const max = opts.maxMessageBytes ?? DEFAULT_GRPC_MAX_MESSAGE_BYTES;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(tolerantService(predictV2Service().service), grpcHandlers(opts));
  const status = healthStatus(opts.repo, () => opts.state?.()?.accepting() ?? true);
  const watch = createHealthWatch(status);
  server.addService(tolerantService(healthService().service), healthHandlers(status, watch));
  const host = opts.host ?? '127.0.0.1';
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpcServerCredentials(opts.tls), (err, bound) => (err ? reject(err) : resolve(bound)));
  }).catch((err: Error) => {
    throw new MlctlError('LISTEN_FAILED', [`cannot start the gRPC server on ${address}: ${err.message}`], { cause: err });
  });
  return {
    port,
    server,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        // Watchers hear NOT_SERVING and their streams end: open watches must not hold up the drain.
        watch.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

export interface GrpcPluginOptions {
  host: string;
  /** 0 = an ephemeral port. */
  port: number;
  tls?: TlsMaterial;
  access?: AccessControl;
  logger?: Logger;
  maxMessageBytes?: number;
}

/**
 * --grpc-port as a plugin: the gRPC server starts when the app is ready (a bind failure fails start-up), shares the
 * repository, extensions and metrics; close() stops it from taking calls in preClose and waits for its drain in onClose.
 */
export const grpcPlugin = fp<GrpcPluginOptions>(
  async (app, opts) => {
    const { repo, metrics } = app.mlctl;
    let handle: GrpcServerHandle | undefined;
    let closing: Promise<void> | undefined;
    app.addHook('onReady', async () => {
      handle = await startGrpcServer({
        ...opts,
        repo,
        extensions: app.mlctl.extensions,
        audit: app.auditLog,
        trustProxyHeader: app.mlctl.trustProxyHeader,
        state: () => app.mlctl,
        onCall: (method, code, seconds) => {
          metrics.requests.inc({ protocol: 'grpc', route: method, status: grpc.status[code] ?? String(code) });
          metrics.requestSeconds.observe({ protocol: 'grpc', route: method }, seconds);
        },
      });
      app.mlctl.info.grpc = `${opts.host}:${handle.port}`;
      opts.logger?.info(`gRPC (inference.GRPCInferenceService) on ${opts.host}:${handle.port}${opts.tls ? ' with TLS' : ''}`);
    });
    app.addHook('preClose', async () => {
      closing = handle?.close(app.mlctl.drain.timeoutMs);
    });
    app.addHook('onClose', async () => {
      await closing;
    });
  },
  { name: 'mlctl-grpc', dependencies: ['mlctl-core'], decorators: { fastify: ['mlctl'] } },
);

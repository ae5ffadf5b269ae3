// Extension point for `mlctl serve` add-ons (gRPC, auth, TLS, audit, hot reload): each contributes CLI options
// and, at start-up, server options plus after-listen / before-close steps. The serve command runs them in order.
import type { OptionSpec } from '../cli/spec.js';
import type { Logger } from '../util/log.js';
import type { ServeMetrics } from './metrics.js';
import type { ServerOptions } from './server.js';
import type { RunningServer } from './start.js';
import type { ManagedModelRepository } from './types.js';

export interface ServeExtensionContext {
  /** Parsed CLI options (camelCase, as commander gives them). */
  opts: Record<string, unknown>;
  /** The MODEL_OR_DIR argument. */
  target: string;
  repo: ManagedModelRepository;
  metrics: ServeMetrics;
  logger: Logger;
  /** What the extension's prepare() returned (options parsed and files checked before any model loads). */
  prepared?: unknown;
}

export interface ServeExtensionHandle {
  /** Merged into buildServer's options (onRequest hooks are appended; beforeRoutes callbacks all run). */
  server?: Partial<ServerOptions>;
  /** Runs once the HTTP server listens (e.g. start the gRPC server, begin watching the model directory). */
  afterListen?: (server: RunningServer) => Promise<void> | void;
  /** Runs when shutdown begins, before in-flight HTTP requests are drained. */
  beforeClose?: () => Promise<void> | void;
  /** Extra fields for the command's JSON result / startup log (e.g. {grpc: "127.0.0.1:8001"}). */
  describe?: () => Record<string, unknown>;
}

export interface ServeExtension {
  name: string;
  options: OptionSpec[];
  /**
   * Parse and check the extension's options before models load, so a bad flag or unreadable file fails in
   * milliseconds instead of after minutes of loading and warm-up. The result reaches setup() as ctx.prepared.
   */
  prepare?(opts: Record<string, unknown>): Promise<unknown>;
  setup(ctx: ServeExtensionContext): Promise<ServeExtensionHandle | undefined>;
}

/** Registered extensions; add-ons append themselves here (one import line each). */
export const SERVE_EXTENSIONS: ServeExtension[] = [];

/** Combine handles' server options with the base ones. */
export function mergeServerOptions<T extends ServerOptions>(base: T, handles: ServeExtensionHandle[]): T {
  const out: T = { ...base, onRequest: [...(base.onRequest ?? [])], extensions: [...(base.extensions ?? [])] };
  const before: Array<NonNullable<ServerOptions['beforeRoutes']>> = base.beforeRoutes ? [base.beforeRoutes] : [];
  for (const h of handles) {
    const s = h.server;
    if (!s) continue;
    const { onRequest, beforeRoutes, extensions, fastify, firstPlugins, ...rest } = s;
    Object.assign(out, rest);
    out.onRequest!.push(...(onRequest ?? []));
    out.extensions!.push(...(extensions ?? []));
    if (firstPlugins) out.firstPlugins = [...(out.firstPlugins ?? []), ...firstPlugins];
    if (beforeRoutes) before.push(beforeRoutes);
    if (fastify) out.fastify = { ...out.fastify, ...fastify };
  }
  out.beforeRoutes = (app) => before.forEach((b) => b(app));
  return out;
}

// Everything `mlctl serve` registers beside the core and the routes, from its configuration: the security plugins
// (hygiene, audit, API keys), hot reload and model control, the metrics port, gRPC, the page and the docs. The
// order is not this list's: buildServer registers them by what each declares it depends on.
import type { Logger } from '../util/log.js';
import type { ServeConfig } from './config.js';
import { grpcPlugin } from './grpc/server.js';
import { metricsPortPlugin } from './metrics-port.js';
import { modelDirPlugins } from './model-dir.js';
import { prepareSecurity, securityPlugins, type PreparedSecurity } from './security.js';
import { plug } from './server.js';
import type { StartOptions } from './start.js';
import type { ModelRepository } from './types.js';
import { webPlugins } from './web.js';

export type AssembledServe = Required<Pick<StartOptions, 'plugins' | 'info' | 'docs'>> & Pick<StartOptions, 'fastify' | 'trustProxyHeader'>;

export interface AssembleContext {
  repo: ModelRepository;
  logger: Logger;
  /** What prepareSecurity() returned (read before models load); read now when absent. */
  prepared?: PreparedSecurity;
}

export async function assembleServe(config: ServeConfig, ctx: AssembleContext): Promise<AssembledServe> {
  const prepared = ctx.prepared ?? (await prepareSecurity(config.security));
  const security = securityPlugins(config, prepared, ctx);
  const control = await modelDirPlugins(config, { ...ctx, audit: security.audit });
  const web = webPlugins(config.web);
  const { host } = config;
  return {
    plugins: [
      ...security.plugins,
      ...(config.metricsPort !== undefined ? [plug(metricsPortPlugin, { host, port: config.metricsPort })] : []),
      ...control,
      ...(config.grpc ? [plug(grpcPlugin, { host, port: config.grpc.port, tls: prepared.tls, access: prepared.access, logger: ctx.logger, maxMessageBytes: config.grpc.maxMessageBytes })] : []),
      ...web.pages,
    ],
    docs: web.docs,
    fastify: security.fastify,
    info: { ...security.info, ...web.info },
    ...(config.security.trustProxyHeader ? { trustProxyHeader: config.security.trustProxyHeader } : {}),
  };
}

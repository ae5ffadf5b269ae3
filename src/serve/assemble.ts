// The plugin list `mlctl serve` runs with, in registration order: the OpenAPI collector (sees every route), the
// security plugins (hygiene, audit, auth, metrics port, model control, gRPC), then the page and the docs.
import { securityPlugins, type SecurityContext } from './security.js';
import type { StartOptions } from './start.js';
import { webPlugins } from './web.js';

export type AssembledServe = Required<Pick<StartOptions, 'plugins' | 'info'>> & Pick<StartOptions, 'fastify' | 'trustProxyHeader'>;

export async function assembleServe(ctx: SecurityContext): Promise<AssembledServe> {
  const security = await securityPlugins(ctx);
  const web = webPlugins(ctx.opts);
  return {
    plugins: [...web.first, ...security.plugins, ...web.pages],
    fastify: security.fastify,
    info: { ...security.info, ...web.info },
    ...(security.trustProxyHeader ? { trustProxyHeader: security.trustProxyHeader } : {}),
  };
}

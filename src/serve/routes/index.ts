// Every REST route of mlctl serve, one plugin per protocol: adding a protocol is one module and one line here.
// Routes carry `config.kind` (health, metadata, inference, metrics), which auth and the batching hooks read.
import type { FastifyInstance } from 'fastify';
import { predictRoutes } from './predict.js';
import { tfServingRoutes } from './tfserving.js';
import { v2Routes } from './v2.js';
import { metricsSchema } from './schemas.js';

async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { metrics } = app.mlctl;
  app.get('/metrics', { config: { kind: 'metrics' }, schema: metricsSchema }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

export async function serveRoutes(app: FastifyInstance): Promise<void> {
  await app.register(metricsRoutes);
  await app.register(predictRoutes);
  await app.register(v2Routes);
  await app.register(tfServingRoutes);
}

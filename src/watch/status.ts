// The status port: /metrics (Prometheus), /healthz (200 while frames are being classified, 503 when inference
// keeps failing), /status (cameras, backlog, counts as JSON) and /snapshots/<camera>/<file> for snapshot links.
import Fastify, { type FastifyInstance } from 'fastify';
import type { WatchMetrics } from './metrics.js';
import type { SnapshotStore } from './snapshots.js';

export interface StatusSource {
  healthy(): { ok: boolean; reason?: string };
  status(): Record<string, unknown>;
}

export interface StatusServer {
  url: string;
  close(): Promise<void>;
}

export async function startStatusServer(opts: { port: number; host: string; metrics: WatchMetrics; snapshots: SnapshotStore; source: StatusSource }): Promise<StatusServer> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics()));
  app.get('/healthz', async (_req, reply) => {
    const h = opts.source.healthy();
    return reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'failing', ...(h.reason ? { reason: h.reason } : {}) });
  });
  app.get('/status', async () => opts.source.status());
  app.get<{ Params: { camera: string; file: string } }>('/snapshots/:camera/:file', async (req, reply) => {
    const { camera, file } = req.params;
    if (!/^[A-Za-z0-9_.-]+$/.test(camera) || camera.startsWith('.') || !/^[0-9a-f-]+\.jpg$/.test(file)) return reply.code(404).send({ error: 'no such snapshot' });
    const data = await opts.snapshots.read(`${camera}/${file}`);
    if (!data) return reply.code(404).send({ error: 'no such snapshot (removed by retention, or never taken)' });
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=86400, immutable').send(data);
  });
  await app.listen({ port: opts.port, host: opts.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return { url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`, close: () => app.close() };
}

// --metrics-port: GET /metrics on a port of its own (no API key), so Prometheus can scrape from inside the cluster
// while the main port keeps /metrics behind a key with the /metrics scope. Starts on listen, stops when close() begins.
import http from 'node:http';
import fp from 'fastify-plugin';
import { MlctlError } from '../errors.js';

export interface MetricsPortOptions {
  host: string;
  /** 0 = an ephemeral port. */
  port: number;
}

export const metricsPortPlugin = fp<MetricsPortOptions>(
  async (app, opts) => {
    const { registry } = app.mlctl.metrics;
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'this port serves GET /metrics only', code: 'ROUTE_NOT_FOUND' }));
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    server.keepAliveTimeout = 5000;
    app.addHook('onReady', async () => {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new MlctlError('LISTEN_FAILED', [`cannot serve metrics on ${opts.host}:${opts.port}: ${err.message}`], { cause: err })));
        server.listen(opts.port, opts.host, () => resolve());
      });
      const addr = server.address();
      app.mlctl.info.metrics = `${opts.host}:${typeof addr === 'object' && addr ? addr.port : opts.port}`;
    });
    app.addHook('preClose', async () => {
      server.close();
      server.closeAllConnections();
    });
  },
  { name: 'mlctl-metrics-port', dependencies: ['mlctl-core'], decorators: { fastify: ['mlctl'] } },
);

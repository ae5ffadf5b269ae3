// Prometheus metrics for mlctl serve (prom-client, one Registry per server so several servers can share a
// process). REST routes, the batching queue and the gRPC service all record into the same ServeMetrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  /** Requests by protocol route and status code (REST: route pattern; gRPC: method name with protocol "grpc"). */
  requests: Counter<'protocol' | 'route' | 'status'>;
  requestSeconds: Histogram<'protocol' | 'route'>;
  /** Engine wall time per batch, by model and version. */
  inferenceSeconds: Histogram<'model' | 'version'>;
  batchSize: Histogram<'model' | 'version'>;
  queueDepth: Gauge<'model' | 'version'>;
  modelsLoaded: Gauge;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createServeMetrics(opts: { prefix?: string; defaultMetrics?: boolean } = {}): ServeMetrics {
  const registry = new Registry();
  const p = opts.prefix ?? 'mlctl_';
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: p });
    // prom-client's nodejs_active_{handles,requests,resources}_total are gauges with a counter's suffix (promtool:
    // "non-counter metrics should not have _total suffix"); the same gauges without _total, by type, remain —
    // sum(mlctl_nodejs_active_handles) is the total.
    for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`${p}nodejs_active_${name}_total`);
  }
  return {
    registry,
    requests: new Counter({ name: `${p}requests_total`, help: 'Requests by protocol, route and status code', labelNames: ['protocol', 'route', 'status'], registers: [registry] }),
    requestSeconds: new Histogram({ name: `${p}request_duration_seconds`, help: 'Request latency from arrival to response', labelNames: ['protocol', 'route'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    inferenceSeconds: new Histogram({ name: `${p}inference_duration_seconds`, help: 'Engine time per batch', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    batchSize: new Histogram({ name: `${p}batch_size`, help: 'Examples per engine batch', labelNames: ['model', 'version'], buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128], registers: [registry] }),
    queueDepth: new Gauge({ name: `${p}queue_depth`, help: 'Examples waiting in the batching queue', labelNames: ['model', 'version'], registers: [registry] }),
    modelsLoaded: new Gauge({ name: `${p}models_loaded`, help: 'Model versions loaded and ready', registers: [registry] }),
  };
}

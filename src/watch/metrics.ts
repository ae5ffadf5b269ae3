// Prometheus metrics for mlctl watch (prom-client, own Registry), named the promtool way: counters end in
// _total, durations are _seconds histograms, gauges (camera up, backlog) carry no _total.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WatchMetrics {
  registry: Registry;
  framesReceived: Counter<'camera'>;
  framesClassified: Counter<'camera'>;
  framesDropped: Counter<'camera' | 'reason'>;
  framesCorrupt: Counter<'camera'>;
  inferenceSeconds: Histogram;
  batchSize: Histogram;
  /** Frame arrival → classification result. */
  frameLatencySeconds: Histogram<'camera'>;
  events: Counter<'camera' | 'type' | 'rule'>;
  deliveries: Counter<'sink' | 'outcome'>;
  deliverySeconds: Histogram<'sink'>;
  backlog: Gauge<'sink'>;
  cameraUp: Gauge<'camera'>;
  reconnects: Counter<'camera'>;
  spoolErrors: Counter;
  inferenceErrors: Counter<'camera'>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createWatchMetrics(opts: { defaultMetrics?: boolean } = {}): WatchMetrics {
  const registry = new Registry();
  const p = 'mlctl_watch_';
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'mlctl_' }); // the same process metrics as mlctl serve
  const r = [registry];
  return {
    registry,
    framesReceived: new Counter({ name: `${p}frames_received_total`, help: 'Frames delivered by camera sources (before sampling)', labelNames: ['camera'], registers: r }),
    framesClassified: new Counter({ name: `${p}frames_classified_total`, help: 'Frames classified', labelNames: ['camera'], registers: r }),
    framesDropped: new Counter({ name: `${p}frames_dropped_total`, help: 'Sampled frames not classified: busy (a newer frame replaced it), stale or failed inference', labelNames: ['camera', 'reason'], registers: r }),
    framesCorrupt: new Counter({ name: `${p}frames_corrupt_total`, help: 'Frames skipped as truncated, garbage or undecodable', labelNames: ['camera'], registers: r }),
    inferenceSeconds: new Histogram({ name: `${p}inference_duration_seconds`, help: 'Engine (or inference server) time per batch', buckets: LATENCY_BUCKETS, registers: r }),
    batchSize: new Histogram({ name: `${p}batch_size`, help: 'Frames per engine batch', buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32], registers: r }),
    frameLatencySeconds: new Histogram({ name: `${p}frame_latency_seconds`, help: 'Frame arrival to classification result', labelNames: ['camera'], buckets: LATENCY_BUCKETS, registers: r }),
    events: new Counter({ name: `${p}events_total`, help: 'Events accepted (spooled)', labelNames: ['camera', 'type', 'rule'], registers: r }),
    deliveries: new Counter({ name: `${p}deliveries_total`, help: 'Delivery attempts by outcome: delivered, retry, dead (gave up), skipped (filtered out)', labelNames: ['sink', 'outcome'], registers: r }),
    deliverySeconds: new Histogram({ name: `${p}delivery_duration_seconds`, help: 'Time of a successful delivery attempt', labelNames: ['sink'], buckets: LATENCY_BUCKETS, registers: r }),
    backlog: new Gauge({ name: `${p}delivery_backlog`, help: 'Events waiting for delivery per notifier', labelNames: ['sink'], registers: r }),
    cameraUp: new Gauge({ name: `${p}camera_up`, help: '1 while the camera delivers frames, 0 while it is down', labelNames: ['camera'], registers: r }),
    reconnects: new Counter({ name: `${p}camera_reconnects_total`, help: 'Source reconnects (failed, stalled or ended streams)', labelNames: ['camera'], registers: r }),
    spoolErrors: new Counter({ name: `${p}spool_write_errors_total`, help: 'Failed event spool writes (e.g. disk full); the event is kept in memory and retried', registers: r }),
    inferenceErrors: new Counter({ name: `${p}inference_errors_total`, help: 'Frames whose inference failed (engine or server error)', labelNames: ['camera'], registers: r }),
  };
}

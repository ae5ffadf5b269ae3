// mlctl watch as a library: wires cameras → pipeline (classify) → rules → events → spool → notifiers, plus the
// events log, snapshots, metrics and status port; stop() shuts down in order without losing an accepted event.
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { openSource, startCamera, type CameraHandle, type Frame } from './camera.js';
import { openLocalClassifier, openRemoteClassifier, type Classifier } from './classify.js';
import { checkRules } from './config/rules.js';
import type { EventType, RoiSpec, Severity, WatchConfig } from './config/types.js';
import { createEventLog } from './eventlog.js';
import { uuidv7, type WatchEvent } from './events.js';
import { lockStateDir } from './lock.js';
import { createWatchMetrics, type WatchMetrics } from './metrics.js';
import { startDelivery, type DeliveryLoop } from './notify/deliver.js';
import { createSinks } from './notify/index.js';
import type { Sink } from './notify/types.js';
import { createPipeline } from './pipeline.js';
import { createRuleEngine, type Detection } from './rules.js';
import { checkFfmpeg } from './sources/ffmpeg.js';
import { createSnapshotStore } from './snapshots.js';
import { openSpool, type Spool } from './spool.js';
import { startStatusServer, type StatusServer } from './status.js';
import type { Region } from './roi.js';
import { createAcceptor } from './accept.js';

export interface WatchOptions {
  config: WatchConfig;
  logger: Logger;
  version: string;
  /** Every accepted event, as it is accepted (the --json stream). */
  onEvent?(event: WatchEvent): void;
  /** Metrics registry to record into (tests and benchmarks read it); a new one by default. */
  metrics?: WatchMetrics;
}

export interface CameraSummary {
  state: ReturnType<CameraHandle['state']>;
  received: number;
  classified: number;
  corrupt: number;
  events: number;
}

export interface WatchSummary {
  reason: string;
  seconds: number;
  cameras: Record<string, CameraSummary>;
  events: number;
  /** Events still in the spool per notifier (delivered on the next start). */
  backlog: Record<string, number>;
  statusUrl?: string;
}

export interface Watcher {
  readonly classifier: Classifier;
  readonly metrics: WatchMetrics;
  readonly spool: Spool;
  readonly statusUrl?: string;
  /** Resolves with the summary once the watcher has stopped (stop() or every source ended). */
  readonly done: Promise<WatchSummary>;
  stop(reason?: string): Promise<WatchSummary>;
}

async function openClassifier(config: WatchConfig, logger: Logger, metrics: WatchMetrics): Promise<Classifier> {
  const inf = config.inference;
  if (inf.server) return openRemoteClassifier({ ...inf.server, ...(inf.labels ? { labels: inf.labels } : {}), logger });
  return openLocalClassifier({
    model: inf.model!,
    engine: inf.engine,
    maxBatch: inf.maxBatch,
    maxDelayMs: inf.maxDelayMs,
    logger,
    onBatch: (size, seconds) => {
      metrics.batchSize.observe(size);
      metrics.inferenceSeconds.observe(seconds);
    },
  });
}

export async function startWatch(opts: WatchOptions): Promise<Watcher> {
  const { config, logger } = opts;
  const started = Date.now();
  for (const c of config.cameras) if (c.source.kind === 'ffmpeg') checkFfmpeg(c.name);
  const unlock = await lockStateDir(config.stateDir);
  const cleanups: Array<() => Promise<void>> = [unlock];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    return await assemble(opts, started, cleanups, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function assemble(opts: WatchOptions, started: number, cleanups: Array<() => Promise<void>>, cleanup: () => Promise<void>): Promise<Watcher> {
  const { config, logger } = opts;
  const metrics = opts.metrics ?? createWatchMetrics();
  const classifier = await openClassifier(config, logger, metrics);
  cleanups.push(() => classifier.close());
  checkRules(config.rules, classifier.labels, config.cameras.map((c) => c.name));
  logger.info(`watch: ${classifier.description}; ${config.cameras.length} camera(s), ${config.rules.length} rule(s), ${config.sinks.length} notifier(s); state in ${config.stateDir}`);
  if (!config.rules.length) logger.warn('no rules: frames are classified but no detection event can fire (add rules: or --rules FILE)');

  const snapshots = createSnapshotStore({ dir: path.join(config.stateDir, 'snapshots'), ...config.snapshots, logger });
  const spool = await openSpool(path.join(config.stateDir, 'spool'), config.sinks.map((s) => s.name), logger);
  const eventLog = createEventLog(config.stateDir, config.eventsLog);
  const rulesFor = (camera: string) => config.rules.filter((r) => !r.cameras || r.cameras.includes(camera)).map((r) => r.name);
  const sinks: Sink[] = createSinks(config.sinks, { cameras: config.cameras.map((c) => c.name), rulesFor, version: opts.version, logger });
  for (const s of sinks) {
    await s.start?.();
    cleanups.push(() => s.close());
  }
  const loops: DeliveryLoop[] = sinks.map((sink) =>
    startDelivery({
      spool,
      sink,
      metrics,
      logger,
      snapshot: (e) => (e.snapshot ? { snapshot: () => snapshots.read(e.snapshot!.file), snapshotPath: snapshots.absolute(e.snapshot.file) } : { snapshot: async () => undefined }),
    }),
  );

  const stats = new Map<string, CameraSummary>(config.cameras.map((c) => [c.name, { state: 'starting', received: 0, classified: 0, corrupt: 0, events: 0 }]));
  const acceptor = createAcceptor({ spool, eventLog, metrics, logger, onEvent: (e) => {
    stats.get(e.camera)!.events++;
    opts.onEvent?.(e);
  } });
  const rules = createRuleEngine(config.rules);
  const base = { model: classifier.model };
  const publicUrl = config.status.publicUrl;
  let statusUrl: string | undefined;
  let failuresInARow = 0;
  let lastFailure = '';
  const progress = createProgress({ label: 'watch', unit: 'frames', logger, plainIntervalMs: 30_000 });
  const limiter = new Map<string, number>();
  const sometimes = (key: string) => {
    const n = (limiter.get(key) ?? 0) + 1;
    limiter.set(key, n);
    return (n & (n - 1)) === 0; // 1st, 2nd, 4th, 8th …
  };

  const systemEvent = (type: EventType, camera: string, severity: Severity, message: string, extra: Partial<WatchEvent>) =>
    void acceptor.accept({ id: uuidv7(), type, time: new Date().toISOString(), camera, severity, message, ...extra });

  async function detectionEvent(frame: Frame, d: Detection, top: Array<{ label: string; score: number }>, region: Region | undefined): Promise<void> {
    const id = uuidv7();
    const score = Number(d.score.toFixed(4));
    let snapshot: WatchEvent['snapshot'];
    if (config.snapshots.enabled) {
      try {
        const file = await snapshots.save(frame.camera, id, frame.image, `${d.label} ${Math.round(d.score * 100)}% · ${d.rule.name}`, region);
        const url = publicUrl ?? statusUrl;
        snapshot = { file, ...(url ? { url: `${url}/snapshots/${file}` } : {}) };
      } catch (err) {
        logger.warn(`camera ${frame.camera}: snapshot for event ${id} not saved (${(err as Error).message})`);
      }
    }
    await acceptor.accept({
      id,
      type: 'detection',
      time: new Date().toISOString(),
      camera: frame.camera,
      severity: d.rule.severity,
      message: d.message,
      rule: d.rule.name,
      label: d.label,
      score,
      frame: { seq: frame.seq, at: new Date(frame.at).toISOString(), ...(frame.file ? { file: frame.file } : {}) },
      top,
      hits: { count: d.hits, window: d.window },
      ...(snapshot ? { snapshot } : {}),
      ...base,
    });
  }

  const rois = new Map<string, RoiSpec>(config.cameras.filter((c) => c.roi).map((c) => [c.name, c.roi!]));
  const pipeline = createPipeline(classifier, rois, metrics, {
    async result(frame, result, region) {
      failuresInARow = 0;
      const st = stats.get(frame.camera)!;
      st.classified++;
      progress.tick(1, statusLine());
      const top = Array.from(result.scores, (score, i) => ({ label: classifier.labels[i]!, score: Number(score.toFixed(4)) })).sort((a, b) => b.score - a.score).slice(0, 3);
      for (const d of rules.evaluate(frame.camera, classifier.labels, result.scores, frame.at)) await detectionEvent(frame, d, top, region);
    },
    corrupt: (camera, reason) => countCorrupt(camera, reason),
    failed(camera, err) {
      failuresInARow++;
      lastFailure = err.message;
      metrics.inferenceErrors.inc({ camera });
      metrics.framesDropped.inc({ camera, reason: 'inference' });
      if (sometimes('inference')) logger.error(`camera ${camera}: inference failed: ${err.message}`);
    },
    roiOutside(camera, w, h) {
      if (sometimes(`roi:${camera}`)) logger.error(`camera ${camera}: the region of interest lies outside the ${w}x${h} frame; frames are skipped (fix roi: in the config)`);
    },
  });

  const cameras: CameraHandle[] = config.cameras.map((cfg) => {
    metrics.cameraUp.set({ camera: cfg.name }, 0);
    const source = openSource(cfg, config.stateDir, logger);
    return startCamera(cfg, source, {
      frame: (f) => pipeline.offer(f),
      received: (c) => {
        stats.get(c)!.received++;
        metrics.framesReceived.inc({ camera: c });
      },
      corrupt: (c, reason) => countCorrupt(c, reason),
      up(c) {
        metrics.cameraUp.set({ camera: c }, 1);
        limiter.delete(`reconnect:${c}`);
      },
      down(c) {
        metrics.cameraUp.set({ camera: c }, 0);
      },
      offline(c, reason) {
        rules.reset(c);
        for (const s of sinks) s.cameraState?.(c, false);
        logger.warn(`camera ${c} is offline: ${reason}`);
        systemEvent('camera_offline', c, 'warning', `camera ${c} is offline: ${reason}`, { reason });
      },
      online(c, downtimeMs) {
        for (const s of sinks) s.cameraState?.(c, true);
        const secs = Math.round(downtimeMs / 1000);
        logger.info(`camera ${c} is back online after ${secs} s`);
        systemEvent('camera_online', c, 'info', `camera ${c} is back online after ${secs} s`, { downtime_seconds: secs });
      },
      reconnect(c, reason, delay) {
        metrics.reconnects.inc({ camera: c });
        if (sometimes(`reconnect:${c}`)) logger.warn(`camera ${c} (${cameraDescribe(c)}): ${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
      },
    }, logger);
  });
  function countCorrupt(c: string, reason: string) {
    stats.get(c)!.corrupt++;
    metrics.framesCorrupt.inc({ camera: c });
    if (sometimes(`corrupt:${c}`)) logger.warn(`camera ${c}: skipped a broken frame (${reason}); ${stats.get(c)!.corrupt} so far`);
  }
  function cameraDescribe(c: string) {
    return cameras.find((x) => x.name === c)?.describe ?? c;
  }
  function statusLine(): string {
    const up = cameras.filter((c) => c.state() === 'up').length;
    const backlog = config.sinks.reduce((a, s) => a + spool.backlog(s.name), 0);
    return `${up}/${cameras.length} camera(s) up, ${acceptor.count()} event(s), backlog ${backlog}`;
  }

  if (config.status.port !== undefined) {
    const server: StatusServer = await startStatusServer({
      port: config.status.port,
      host: config.status.host,
      metrics,
      snapshots,
      source: {
        healthy: () => (failuresInARow >= 20 ? { ok: false, reason: `the last ${failuresInARow} inferences failed: ${lastFailure}` } : { ok: true }),
        status: () => ({ cameras: Object.fromEntries(cameras.map((c) => [c.name, { ...stats.get(c.name)!, state: c.state() }])), backlog: Object.fromEntries(config.sinks.map((s) => [s.name, spool.backlog(s.name)])), events: acceptor.count(), uptime_seconds: Math.round((Date.now() - started) / 1000) }),
      },
    });
    statusUrl = server.url;
    cleanups.push(() => server.close());
    logger.info(`watch: status on ${server.url} (/metrics, /healthz, /status)`);
  }

  const sweep = async () => snapshots.sweep(await spool.pendingIds()).catch((err: Error) => logger.warn(`snapshots: retention sweep failed (${err.message})`));
  void sweep();
  const sweepTimer = setInterval(() => void sweep(), 60_000);
  sweepTimer.unref();

  let stopping: Promise<WatchSummary> | undefined;
  async function shutdown(reason: string): Promise<WatchSummary> {
    logger.info(`watch: stopping (${reason})`);
    clearInterval(sweepTimer);
    await Promise.all(cameras.map((c) => c.stop()));
    await pipeline.drain();
    await acceptor.flush();
    await drainDeliveries(config.drainMs);
    loops.forEach((l) => l.abort());
    spool.close();
    await Promise.all(loops.map((l) => l.done));
    await cleanup();
    const backlog = Object.fromEntries(config.sinks.map((s) => [s.name, spool.backlog(s.name)]));
    const waiting = Object.values(backlog).reduce((a, b) => a + b, 0);
    progress.done(`${acceptor.count()} event(s); ${waiting ? `${waiting} delivery(ies) left in the spool for the next start` : 'everything delivered'}`);
    for (const c of cameras) stats.get(c.name)!.state = c.state();
    return { reason, seconds: Math.round((Date.now() - started) / 1000), cameras: Object.fromEntries(stats), events: acceptor.count(), backlog, ...(statusUrl ? { statusUrl } : {}) };
  }
  async function drainDeliveries(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && config.sinks.some((s) => spool.backlog(s.name) > 0)) await new Promise((r) => setTimeout(r, 50));
  }
  let resolveDone!: (s: WatchSummary) => void;
  const done = new Promise<WatchSummary>((r) => (resolveDone = r));
  const stop = (reason = 'stop requested') => {
    if (!stopping) {
      stopping = shutdown(reason);
      void stopping.then(resolveDone, () => {});
    }
    return stopping;
  };
  // Every source ended (video files played to the end): finish the work and stop.
  void Promise.all(cameras.map((c) => c.finished)).then(() => {
    if (cameras.every((c) => c.state() === 'finished')) void stop('every source ended');
  });
  return { classifier, metrics, spool, ...(statusUrl ? { statusUrl } : {}), done, stop };
}

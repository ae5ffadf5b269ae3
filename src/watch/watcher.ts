// mlctl watch as a library: wires cameras → pipeline (classify) → rules → events → outputs (spool, notifiers,
// events log, snapshots), plus metrics and the status port; stop() shuts down in order without losing an event.
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createProgress, type Progress } from '../util/progress.js';
import { openSource, startCamera, type CameraHandle, type CameraHooks, type Frame } from './camera.js';
import { openLocalClassifier, openRemoteClassifier, type Classifier } from './classify.js';
import { checkRules } from './config/rules.js';
import type { RoiSpec, WatchConfig } from './config/types.js';
import { cameraEvent, detectionEvent, topLabels, uuidv7, type WatchEvent } from './events.js';
import { lockStateDir } from './lock.js';
import { createWatchMetrics, type WatchMetrics } from './metrics.js';
import { openOutputs, type Outputs } from './outputs.js';
import { cameraObjects, type CameraObjects } from './objects.js';
import { createPipeline, type PipelineHooks } from './pipeline.js';
import type { Region } from './roi.js';
import { createRuleEngine, type Detection, type ObjectView, type RuleEngine } from './rules.js';
import type { SnapshotMarks } from './snapshots.js';
import { checkFfmpeg } from './sources/ffmpeg.js';
import type { Spool } from './spool.js';
import { startStatusServer } from './status.js';

export interface WatchOptions {
  config: WatchConfig;
  logger: Logger;
  version: string;
  /** Every accepted event, as it is accepted (the --json stream). */
  onEvent?(event: WatchEvent): void;
  /** Every classified frame, as its result arrives (before the rules): for embedders and bench/watch.ts's per-frame timing. */
  onClassified?(frame: Frame, scores: ArrayLike<number>): void;
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

/** What the hooks share: the parts, per-camera counts and a log limiter. */
interface Ctx {
  config: WatchConfig;
  logger: Logger;
  metrics: WatchMetrics;
  classifier: Classifier;
  outputs: Outputs;
  rules: RuleEngine;
  /** Detection models: each camera's zones and tracker. */
  objects: Map<string, CameraObjects>;
  stats: Map<string, CameraSummary>;
  progress: Progress;
  /** True on the 1st, 2nd, 4th, 8th … call per key: repeated trouble logs less and less. */
  sometimes(key: string): boolean;
  quiet(key: string): void;
  health: { failuresInARow: number; lastFailure: string };
  statusUrl?: string;
  cameras: CameraHandle[];
  /** Detections are turned into events one after another (see pipelineHooks). */
  detections: Promise<void>;
  onClassified?: WatchOptions['onClassified'];
}

async function openClassifier(config: WatchConfig, logger: Logger, metrics: WatchMetrics): Promise<Classifier> {
  const inf = config.inference;
  if (inf.server) return openRemoteClassifier({ ...inf.server, ...(inf.labels ? { labels: inf.labels } : {}), logger });
  return openLocalClassifier({
    model: inf.model!,
    engine: inf.engine,
    maxBatch: inf.maxBatch,
    maxDelayMs: inf.maxDelayMs,
    // A detector keeps every box some rule or tracker could read, however low the model's own threshold is set.
    minScore: Math.min(...config.rules.map((r) => r.minScore), ...config.cameras.map((c) => c.tracker.minScore)),
    logger,
    onBatch: (size, seconds) => {
      metrics.batchSize.observe(size);
      metrics.inferenceSeconds.observe(seconds);
    },
  });
}

/** The caption of a detection's snapshot: what fired, how sure, which rule. */
function caption(d: Detection): string {
  const pct = `${Math.round(d.score * 100)}%`;
  if (d.trigger === 'enter' || d.trigger === 'leave') {
    const o = d.objects![0]!;
    return `#${o.id} ${d.label} ${pct} ${d.trigger === 'enter' ? 'entered' : 'left'} ${d.zone ?? 'view'} · ${d.rule.name}`;
  }
  if (d.objects) return `${d.objects.length} × ${d.label || 'object'}${d.zone ? ` in ${d.zone}` : ''} (best ${pct}) · ${d.rule.name}`;
  return `${d.label} ${pct} · ${d.rule.name}`;
}

async function detect(ctx: Ctx, frame: Frame, d: Detection, top: Array<{ label: string; score: number }>, region: Region | undefined, size?: { width: number; height: number }): Promise<void> {
  const id = uuidv7();
  let snapshot: WatchEvent['snapshot'];
  if (ctx.config.snapshots.enabled) {
    try {
      const zone = d.zone && size ? ctx.objects.get(frame.camera)?.polygon(d.zone, size.width, size.height) : undefined;
      const marks: SnapshotMarks = { ...(d.objects ? { boxes: d.objects } : {}), ...(zone ? { zone } : {}) };
      const file = await ctx.outputs.snapshots.save(frame.camera, id, frame.image, caption(d), region, marks);
      const base = ctx.config.status.publicUrl ?? ctx.statusUrl;
      snapshot = { file, ...(base ? { url: `${base}/snapshots/${file}` } : {}) };
    } catch (err) {
      ctx.logger.warn(`camera ${frame.camera}: snapshot for event ${id} not saved (${(err as Error).message})`);
    }
  }
  await ctx.outputs.acceptor.accept(detectionEvent({ id, frame, detection: d, top, ...(snapshot ? { snapshot } : {}), model: ctx.classifier.model }));
}

function countCorrupt(ctx: Ctx, camera: string, reason: string): void {
  const st = ctx.stats.get(camera)!;
  st.corrupt++;
  ctx.metrics.framesCorrupt.inc({ camera });
  if (ctx.sometimes(`corrupt:${camera}`)) ctx.logger.warn(`camera ${camera}: skipped a broken frame (${reason}); ${st.corrupt} so far`);
}

function statusLine(ctx: Ctx): string {
  const up = ctx.cameras.filter((c) => c.state() === 'up').length;
  const backlog = Object.values(ctx.outputs.backlog()).reduce((a, b) => a + b, 0);
  return `${up}/${ctx.cameras.length} camera(s) up, ${ctx.outputs.acceptor.count()} event(s), backlog ${backlog}`;
}

function pipelineHooks(ctx: Ctx): PipelineHooks {
  const { logger, metrics } = ctx;
  return {
    result(frame, result, region) {
      if (ctx.health.failuresInARow >= 3) logger.info(`inference works again after ${ctx.health.failuresInARow} failure(s)`);
      ctx.health.failuresInARow = 0;
      ctx.quiet('inference');
      ctx.stats.get(frame.camera)!.classified++;
      ctx.onClassified?.(frame, result.scores);
      ctx.progress.tick(1, statusLine(ctx));
      let view: ObjectView | undefined;
      if (result.objects && result.frame) {
        const seen = ctx.objects.get(frame.camera)!.see(result.objects, result.frame.width, result.frame.height);
        view = seen.view;
        ctx.outputs.objectCounts(frame.camera, seen.counts);
      }
      const fired = ctx.rules.evaluate(frame.camera, ctx.classifier.labels, result.scores, frame.at, view);
      if (!fired.length) return Promise.resolve();
      const top = topLabels(ctx.classifier.labels, result.scores);
      // One at a time, in the order results arrive: a slow snapshot must not let a later event (and its later
      // UUIDv7 id) into the spool first, so delivery order is frame order and ids ascend.
      const turn = ctx.detections.then(async () => {
        for (const d of fired) await detect(ctx, frame, d, top, region, result.frame);
      });
      ctx.detections = turn.catch(() => {});
      return turn;
    },
    corrupt: (camera, reason) => countCorrupt(ctx, camera, reason),
    failed(camera, err) {
      ctx.health.failuresInARow++;
      ctx.health.lastFailure = err.message;
      metrics.inferenceErrors.inc({ camera });
      metrics.framesDropped.inc({ camera, reason: 'inference' });
      if (ctx.sometimes('inference')) logger.error(`camera ${camera}: inference failed: ${err.message}`);
    },
    roiOutside(camera, w, h) {
      if (ctx.sometimes(`roi:${camera}`)) logger.error(`camera ${camera}: the region of interest lies outside the ${w}x${h} frame; frames are skipped (fix roi: in the config)`);
    },
  };
}

function cameraHooks(ctx: Ctx, offer: (f: Frame) => Promise<void>): CameraHooks {
  const { logger, metrics, outputs } = ctx;
  const describe = (c: string) => ctx.cameras.find((x) => x.name === c)?.describe ?? c;
  return {
    frame: offer,
    received(c) {
      ctx.stats.get(c)!.received++;
      metrics.framesReceived.inc({ camera: c });
    },
    corrupt: (c, reason) => countCorrupt(ctx, c, reason),
    up(c) {
      metrics.cameraUp.set({ camera: c }, 1);
      ctx.quiet(`reconnect:${c}`);
    },
    down: (c) => metrics.cameraUp.set({ camera: c }, 0),
    offline(c, reason) {
      ctx.rules.reset(c);
      ctx.objects.get(c)?.reset();
      outputs.cameraState(c, false);
      logger.warn(`camera ${c} is offline: ${reason}`);
      void outputs.acceptor.accept(cameraEvent(c, false, { reason }));
    },
    online(c, downtimeMs) {
      outputs.cameraState(c, true);
      const e = cameraEvent(c, true, { downtimeMs });
      logger.info(e.message);
      void outputs.acceptor.accept(e);
    },
    reconnect(c, reason, delay) {
      metrics.reconnects.inc({ camera: c });
      if (ctx.sometimes(`reconnect:${c}`)) logger.warn(`${new MlctlError('WATCH_SOURCE', [c, describe(c), reason]).message}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    },
  };
}

function cameraStatus(ctx: Ctx, c: CameraHandle) {
  const reason = c.lastError();
  const error = reason ? new MlctlError('WATCH_SOURCE', [c.name, c.describe, reason]) : undefined;
  return { ...ctx.stats.get(c.name)!, state: c.state(), ...(error ? { error: { code: error.code, message: error.message } } : {}) };
}

async function startStatus(ctx: Ctx, started: number) {
  const { outputs } = ctx;
  const server = await startStatusServer({
    port: ctx.config.status.port!,
    host: ctx.config.status.host,
    metrics: ctx.metrics,
    snapshots: outputs.snapshots,
    source: {
      healthy: () => (ctx.health.failuresInARow >= 20 ? { ok: false, reason: `the last ${ctx.health.failuresInARow} inferences failed: ${ctx.health.lastFailure}` } : { ok: true }),
      status: () => ({
        cameras: Object.fromEntries(ctx.cameras.map((c) => [c.name, cameraStatus(ctx, c)])),
        notifiers: outputs.notifiers(),
        events: outputs.acceptor.count(),
        uptime_seconds: Math.round((Date.now() - started) / 1000),
      }),
    },
  });
  ctx.logger.info(`watch: status on ${server.url} (/metrics, /healthz, /status)`);
  return server;
}

export async function startWatch(opts: WatchOptions): Promise<Watcher> {
  const { config } = opts;
  for (const c of config.cameras) if (c.source.kind === 'ffmpeg') checkFfmpeg(c.name);
  const cleanups: Array<() => Promise<void>> = [await lockStateDir(config.stateDir, opts.logger)];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    return await assemble(opts, cleanups, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function assemble(opts: WatchOptions, cleanups: Array<() => Promise<void>>, cleanup: () => Promise<void>): Promise<Watcher> {
  const { config, logger } = opts;
  const started = Date.now();
  const metrics = opts.metrics ?? createWatchMetrics();
  const classifier = await openClassifier(config, logger, metrics);
  cleanups.push(() => classifier.close());
  checkRules(config.rules, classifier.labels, config.cameras, classifier.detects);
  logger.info(`watch: ${classifier.description}; ${config.cameras.length} camera(s), ${config.rules.length} rule(s), ${config.sinks.length} notifier(s); state in ${config.stateDir}`);
  if (!config.rules.length) logger.warn('no rules: frames are classified but no detection event can fire (add rules: or --rules FILE)');

  const stats = new Map<string, CameraSummary>(config.cameras.map((c) => [c.name, { state: 'starting', received: 0, classified: 0, corrupt: 0, events: 0 }]));
  const outputs = await openOutputs(config, {
    logger,
    metrics,
    version: opts.version,
    onEvent(e) {
      stats.get(e.camera)!.events++;
      opts.onEvent?.(e);
    },
  });
  const counts = new Map<string, number>();
  const ctx: Ctx = {
    config,
    logger,
    metrics,
    classifier,
    outputs,
    rules: createRuleEngine(config.rules),
    objects: new Map(classifier.detects ? config.cameras.map((c) => [c.name, cameraObjects(c)]) : []),
    stats,
    progress: createProgress({ label: 'watch', unit: 'frames', logger, plainIntervalMs: 30_000 }),
    sometimes(key) {
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return (n & (n - 1)) === 0;
    },
    quiet: (key) => void counts.delete(key),
    health: { failuresInARow: 0, lastFailure: '' },
    cameras: [],
    detections: Promise.resolve(),
    ...(opts.onClassified ? { onClassified: opts.onClassified } : {}),
  };
  if (config.status.port !== undefined) {
    const server = await startStatus(ctx, started).catch(async (err: Error) => {
      await outputs.close(0);
      throw err;
    });
    ctx.statusUrl = server.url;
    cleanups.push(() => server.close());
  }

  const rois = new Map<string, RoiSpec>(config.cameras.filter((c) => c.roi).map((c) => [c.name, c.roi!]));
  const pipeline = createPipeline(classifier, rois, metrics, pipelineHooks(ctx));
  const hooks = cameraHooks(ctx, (f) => pipeline.offer(f));
  for (const cfg of config.cameras) {
    metrics.cameraUp.set({ camera: cfg.name }, 0);
    ctx.cameras.push(startCamera(cfg, openSource(cfg, config.stateDir, logger), hooks, logger));
  }

  async function shutdown(reason: string): Promise<WatchSummary> {
    logger.info(`watch: stopping (${reason})`);
    await Promise.all(ctx.cameras.map((c) => c.stop()));
    await pipeline.drain();
    await outputs.close(config.drainMs);
    await cleanup();
    const backlog = outputs.backlog();
    const waiting = Object.values(backlog).reduce((a, b) => a + b, 0);
    ctx.progress.done(`${outputs.acceptor.count()} event(s); ${waiting ? `${waiting} delivery(ies) left in the spool for the next start` : 'everything delivered'}`);
    for (const c of ctx.cameras) stats.get(c.name)!.state = c.state();
    return { reason, seconds: Math.round((Date.now() - started) / 1000), cameras: Object.fromEntries(stats), events: outputs.acceptor.count(), backlog, ...(ctx.statusUrl ? { statusUrl: ctx.statusUrl } : {}) };
  }

  let stopping: Promise<WatchSummary> | undefined;
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
  void Promise.all(ctx.cameras.map((c) => c.finished)).then(() => {
    if (ctx.cameras.every((c) => c.state() === 'finished')) void stop('every source ended');
  });
  return { classifier, metrics, spool: outputs.spool, ...(ctx.statusUrl ? { statusUrl: ctx.statusUrl } : {}), done, stop };
}

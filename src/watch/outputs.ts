// Where accepted events go: the spool, the events log, snapshots (with their retention sweep) and one delivery
// loop per notifier. Opened once by the watcher; close() gives deliveries the drain time, then stops them.
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { createAcceptor, type Acceptor } from './accept.js';
import type { WatchConfig } from './config/types.js';
import { createEventLog } from './eventlog.js';
import type { WatchEvent } from './events.js';
import type { WatchMetrics } from './metrics.js';
import type { ObjectCounts } from './objects.js';
import { startDelivery } from './notify/deliver.js';
import { createSinks } from './notify/index.js';
import { createSnapshotStore, type SnapshotStore } from './snapshots.js';
import { openSpool, type Spool } from './spool.js';

export interface Outputs {
  spool: Spool;
  snapshots: SnapshotStore;
  acceptor: Acceptor;
  /** Tell notifiers that keep per-camera availability (MQTT) that a camera went up or down. */
  cameraState(camera: string, online: boolean): void;
  /** Hand a detection model's object counts to notifiers that publish live state (MQTT). */
  objectCounts(camera: string, counts: ObjectCounts): void;
  /** Events still to deliver, per notifier. */
  backlog(): Record<string, number>;
  /** Per notifier: its backlog and the failure it is retrying, if any (for /status). */
  notifiers(): Record<string, { backlog: number; error?: { code: string; message: string } }>;
  /** Write what is held in memory, give deliveries up to `drainMs`, stop them and close the notifiers. */
  close(drainMs: number): Promise<void>;
}

export interface OutputOptions {
  logger: Logger;
  metrics: WatchMetrics;
  version: string;
  onEvent(event: WatchEvent): void;
}

export async function openOutputs(config: WatchConfig, opts: OutputOptions): Promise<Outputs> {
  const { logger, metrics } = opts;
  const snapshots = createSnapshotStore({ dir: path.join(config.stateDir, 'snapshots'), ...config.snapshots, logger });
  const spool = await openSpool(path.join(config.stateDir, 'spool'), config.sinks.map((s) => s.name), logger);
  const rulesFor = (camera: string) => config.rules.filter((r) => !r.cameras || r.cameras.includes(camera)).map((r) => r.name);
  const sinks = createSinks(config.sinks, { cameras: config.cameras.map((c) => c.name), rulesFor, version: opts.version, logger });
  const started: typeof sinks = [];
  try {
    for (const s of sinks) {
      await s.start?.();
      started.push(s);
    }
  } catch (err) {
    for (const s of started) await s.close().catch(() => {});
    throw err;
  }
  const loops = sinks.map((sink) =>
    startDelivery({
      spool,
      sink,
      metrics,
      logger,
      snapshot: (e) => (e.snapshot ? { snapshot: () => snapshots.read(e.snapshot!.file), snapshotPath: snapshots.absolute(e.snapshot.file) } : { snapshot: async () => undefined }),
    }),
  );
  const acceptor = createAcceptor({ spool, eventLog: createEventLog(config.stateDir, config.eventsLog), metrics, logger, onEvent: opts.onEvent });
  const sweep = async () => snapshots.sweep(await spool.pendingIds()).catch((err: Error) => logger.warn(`snapshots: retention sweep failed (${err.message})`));
  void sweep();
  const sweepTimer = setInterval(() => void sweep(), 60_000);
  sweepTimer.unref();
  const backlog = () => Object.fromEntries(config.sinks.map((s) => [s.name, spool.backlog(s.name)]));

  return {
    spool,
    snapshots,
    acceptor,
    backlog,
    cameraState: (camera, online) => sinks.forEach((s) => s.cameraState?.(camera, online)),
    objectCounts: (camera, counts) => sinks.forEach((s) => s.objectCounts?.(camera, counts)),
    notifiers: () =>
      Object.fromEntries(
        sinks.map((s, i) => {
          const err = loops[i]!.failing();
          return [s.config.name, { backlog: spool.backlog(s.config.name), ...(err ? { error: { code: err.code, message: err.message } } : {}) }];
        }),
      ),
    async close(drainMs) {
      clearInterval(sweepTimer);
      await acceptor.flush();
      const until = Date.now() + drainMs;
      while (Date.now() < until && Object.values(backlog()).some((n) => n > 0)) await new Promise((r) => setTimeout(r, 50));
      loops.forEach((l) => l.abort());
      spool.close();
      await Promise.all(loops.map((l) => l.done));
      for (const s of sinks) await s.close().catch(() => {});
    },
  };
}

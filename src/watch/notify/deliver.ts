// One delivery loop per notifier: takes the notifier's next event from the spool (in sequence order), delivers
// it, and moves the notifier's cursor only after success; a delivered event is never sent again, even when the disk
// refuses the cursor. Failures are retried with exponential backoff and jitter (or the receiver's Retry-After);
// permanent failures and exhausted attempts go to the dead letters.
import { MlctlError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import type { WatchMetrics } from '../metrics.js';
import { sleep } from '../sources/types.js';
import type { Spool, SpooledEvent } from '../spool.js';
import { DeliveryError, wants, type DeliveryContext, type Sink } from './types.js';

export interface DeliveryOptions {
  spool: Spool;
  sink: Sink;
  metrics: WatchMetrics;
  logger: Logger;
  snapshot(event: SpooledEvent['event']): Pick<DeliveryContext, 'snapshot' | 'snapshotPath'>;
  /** Called after each delivered event (the --json stream reports deliveries). */
  onDelivered?(item: SpooledEvent, attempts: number): void;
}

export interface DeliveryLoop {
  /** Stop after the event in hand (which stays spooled if not delivered); close the spool to end a waiting loop. */
  abort(): void;
  readonly done: Promise<void>;
  /** The failure the notifier is retrying right now (undefined while deliveries succeed). */
  failing(): MlctlError | undefined;
}

/** Exponential backoff with jitter: attempt 1 waits about `initial`, doubling up to `max`. */
export function backoffMs(attempt: number, initial: number, max: number): number {
  const base = Math.min(max, initial * 2 ** (attempt - 1));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}

/** Log the 1st, 2nd, 4th, 8th … failure of an event: a long outage should not flood the log. */
const worthLogging = (attempt: number) => (attempt & (attempt - 1)) === 0;

export function startDelivery(opts: DeliveryOptions): DeliveryLoop {
  const { spool, sink, metrics, logger } = opts;
  const cfg = sink.config;
  const stopper = new AbortController();
  let failing: MlctlError | undefined;
  const gauge = () => metrics.backlog.set({ sink: cfg.name }, spool.backlog(cfg.name));

  async function deliverOne(item: SpooledEvent): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now();
      try {
        await sink.deliver(item.event, { attempt, signal: stopper.signal, ...opts.snapshot(item.event) });
      } catch (err) {
        if (stopper.signal.aborted) return false;
        const e = err instanceof DeliveryError ? err : new DeliveryError((err as Error).message);
        failing = new MlctlError('WATCH_DELIVERY', [sink.describe, item.event.id, e.message]);
        const exhausted = cfg.maxAttempts > 0 && attempt >= cfg.maxAttempts;
        if (e.permanent || exhausted) {
          metrics.deliveries.inc({ sink: cfg.name, outcome: 'dead' });
          const why = e.permanent ? `${e.message} (retrying cannot help)` : `${e.message} (gave up after ${attempt} attempts)`;
          logger.error(`${sink.describe}: event ${item.event.id} moved to ${spool.dir}/dead/${cfg.name}/: ${why}`);
          return keepDeadLetter(item, e.message, attempt);
        }
        metrics.deliveries.inc({ sink: cfg.name, outcome: 'retry' });
        const wait = e.retryAfterMs ?? backoffMs(attempt, cfg.backoff.initialMs, cfg.backoff.maxMs);
        if (worthLogging(attempt)) logger.warn(`${failing.message}; attempt ${attempt + 1} in ${(wait / 1000).toFixed(1)} s (${spool.backlog(cfg.name)} event(s) waiting)`);
        const ready = sink.whenReady?.(stopper.signal);
        await Promise.race([sleep(wait, stopper.signal), ...(ready ? [ready] : [])]);
        if (stopper.signal.aborted) return false;
        continue;
      }
      // Delivered. Nothing from here on may send it again: the ack keeps a cursor the disk refuses in memory.
      metrics.deliveries.inc({ sink: cfg.name, outcome: 'delivered' });
      metrics.deliverySeconds.observe({ sink: cfg.name }, (performance.now() - t0) / 1000);
      if (attempt > 1) logger.info(`${sink.describe}: event ${item.event.id} delivered after ${attempt - 1} failed attempt(s); ${spool.backlog(cfg.name) - 1} more waiting`);
      failing = undefined;
      await spool.ack(cfg.name, item.seq);
      opts.onDelivered?.(item, attempt);
      return true;
    }
  }

  /** Write the dead letter, waiting for the disk if it is full: the event stays spooled until it is kept. */
  async function keepDeadLetter(item: SpooledEvent, reason: string, attempts: number): Promise<boolean> {
    for (let tries = 1; ; tries++) {
      try {
        await spool.deadLetter(cfg.name, item, reason, attempts);
        return true;
      } catch (err) {
        if (worthLogging(tries)) logger.error(`${sink.describe}: event ${item.event.id} cannot be kept under ${spool.dir}/dead/${cfg.name}/ (${(err as Error).message}); trying again`);
        await sleep(backoffMs(tries, cfg.backoff.initialMs, cfg.backoff.maxMs), stopper.signal);
        if (stopper.signal.aborted) return false;
      }
    }
  }

  async function loop(): Promise<void> {
    gauge();
    for (;;) {
      const item = await spool.next(cfg.name);
      if (!item || stopper.signal.aborted) return;
      gauge();
      if (!wants(cfg, item.event)) {
        metrics.deliveries.inc({ sink: cfg.name, outcome: 'skipped' });
        await spool.ack(cfg.name, item.seq);
        continue;
      }
      if (!(await deliverOne(item))) return;
      gauge();
    }
  }

  const done = loop().catch((err: Error) => logger.error(`${sink.describe}: delivery stopped: ${err.message}`));
  return {
    done,
    abort: () => stopper.abort(),
    failing: () => failing,
  };
}

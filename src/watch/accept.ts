// Accepting an event: count it, stream it (--json), log it, and spool it for delivery. If the spool cannot be
// written (disk full), the event and every later one wait in memory, in order, and are written as soon as the
// spool works again; delivery of what is already spooled goes on meanwhile.
import type { Logger } from '../util/log.js';
import type { EventLog } from './eventlog.js';
import type { WatchEvent } from './events.js';
import type { WatchMetrics } from './metrics.js';
import type { Spool } from './spool.js';

/** Events held in memory while the spool cannot be written; beyond this the oldest are given up (and logged). */
const MAX_HELD = 10_000;
const RETRY_MS = 5000;

export interface Acceptor {
  accept(event: WatchEvent): Promise<void>;
  /** Try once more to write held events (shutdown). */
  flush(): Promise<void>;
  count(): number;
  /** Events waiting in memory for the spool. */
  held(): number;
}

export function createAcceptor(opts: { spool: Spool; eventLog: EventLog; metrics: WatchMetrics; logger: Logger; onEvent?(e: WatchEvent): void }): Acceptor {
  const { spool, metrics, logger } = opts;
  const held: WatchEvent[] = [];
  let accepted = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  async function writeHeld(): Promise<void> {
    while (held.length) {
      try {
        await spool.append(held[0]!);
      } catch (err) {
        metrics.spoolErrors.inc();
        logger.error(`${(err as Error).message} (${held.length} event(s) waiting in memory)`);
        timer ??= setTimeout(() => {
          timer = undefined;
          void write();
        }, RETRY_MS);
        timer.unref();
        return;
      }
      held.shift();
    }
  }
  const write = () => (writing = writing.then(writeHeld));

  return {
    async accept(event) {
      accepted++;
      metrics.events.inc({ camera: event.camera, type: event.type, rule: event.rule ?? '' });
      opts.onEvent?.(event);
      opts.eventLog.append(event).catch((err: Error) => logger.warn(`events log: ${err.message}`));
      held.push(event);
      if (held.length > MAX_HELD) {
        const lost = held.shift()!;
        logger.error(`event spool still failing with ${MAX_HELD} events in memory: gave up event ${lost.id} (${lost.type} on ${lost.camera}); it is in the events log`);
      }
      await write();
    },
    async flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await write();
      if (held.length) logger.error(`${held.length} event(s) could not be spooled before exit; they are in the events log only`);
    },
    count: () => accepted,
    held: () => held.length,
  };
}

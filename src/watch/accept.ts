// Accepting an event means spooling it: only once it is on disk is it counted, streamed (--json), logged to the
// events log and handed to the notifiers, so whatever a script or a person saw is never lost. If the spool cannot
// be written (disk full), the event and every later one wait in memory, in order, and are written as soon as the
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
  /** Spool the event (or hold it in memory while the spool fails); resolves once that was tried. */
  accept(event: WatchEvent): Promise<void>;
  /** Try once more to write held events (shutdown). */
  flush(): Promise<void>;
  /** Events spooled so far. */
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
      const event = held.shift()!;
      accepted++;
      metrics.events.inc({ camera: event.camera, type: event.type, rule: event.rule ?? '' });
      opts.onEvent?.(event);
      opts.eventLog.append(event).catch((err: Error) => logger.warn(`events log: ${err.message}`));
    }
  }
  const write = () => (writing = writing.then(writeHeld));

  return {
    async accept(event) {
      held.push(event);
      if (held.length > MAX_HELD) {
        const lost = held.shift()!;
        logger.error(`event spool still failing with ${MAX_HELD} events in memory: gave up the oldest: ${JSON.stringify(lost)}`);
      }
      await write();
    },
    async flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await write();
      // The last resort for events the disk never took: the log stream (stderr, usually kept by the supervisor).
      for (const e of held) logger.error(`event not spooled before exit: ${JSON.stringify(e)}`);
    },
    count: () => accepted,
    held: () => held.length,
  };
}

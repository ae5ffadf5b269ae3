// grpc.health.v1 Health/Watch (grpc/grpc doc/health-checking.md): a server stream that sends the serving status at
// once and again on every change, until the client cancels or the server shuts down (then NOT_SERVING, and the stream
// ends so the drain is not held up by watchers).
import * as grpc from '@grpc/grpc-js';

/** A service's status as grpc.health.v1 reports it. */
export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
type Status = HealthStatus;
type WatchCall = grpc.ServerWritableStream<{ service?: string }, { status: Status }>;

export interface HealthWatch {
  handler: grpc.handleServerStreamingCall<{ service?: string }, { status: Status }>;
  /** Tell every watcher NOT_SERVING and end their streams (shutdown). */
  close(): void;
}

/**
 * `status(service)` is the current status of a service name ("" = the whole server); it is polled every
 * `intervalMs` while anyone watches — readiness changes come from model loads, warm-ups and shutdown alike.
 */
export function createHealthWatch(status: (service: string) => Status, intervalMs = 200): HealthWatch {
  const watchers = new Map<WatchCall, Status>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const send = (call: WatchCall, s: Status) => {
    watchers.set(call, s);
    call.write({ status: s });
  };
  const tick = () => {
    for (const [call, last] of watchers) {
      const now = status(call.request.service ?? '');
      if (now !== last) send(call, now);
    }
  };
  const drop = (call: WatchCall) => {
    watchers.delete(call);
    if (!watchers.size && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    handler(call) {
      if (closed) {
        call.write({ status: 'NOT_SERVING' });
        call.end();
        return;
      }
      // Unknown service names are not an error for Watch: the status says so and may change (health-checking.md).
      send(call, status(call.request.service ?? ''));
      call.on('cancelled', () => drop(call));
      call.on('close', () => drop(call));
      call.on('error', () => drop(call));
      if (!timer) {
        timer = setInterval(tick, intervalMs);
        timer.unref();
      }
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const call of [...watchers.keys()]) {
        if (watchers.get(call) !== 'NOT_SERVING') call.write({ status: 'NOT_SERVING' });
        call.end();
      }
      watchers.clear();
    },
  };
}

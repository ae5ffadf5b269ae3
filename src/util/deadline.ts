// One deadline for a whole network exchange (connect + send + answer), as an AbortSignal that also follows a parent
// signal. Not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal inside any() is held
// only weakly and can be garbage-collected before it fires, and the exchange then waits forever (nodejs/node#57736).

export interface Deadline {
  /** Aborts when the deadline passes or the parent aborts. */
  readonly signal: AbortSignal;
  /** True once the deadline (not the parent) aborted the signal. */
  expired(): boolean;
  /** The exchange is over: stop the timer and let go of the parent. */
  clear(): void;
}

export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let expired = false;
  // The timer's closure holds the controller strongly, so the deadline fires whatever the garbage collector does.
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
  }, ms);
  const onParent = () => controller.abort(parent!.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    expired: () => expired,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** Run `fn` under a deadline of `ms` (and `parent`), clearing it however `fn` ends. */
export async function withDeadline<T>(ms: number, parent: AbortSignal | undefined, fn: (signal: AbortSignal, d: Deadline) => Promise<T>): Promise<T> {
  const d = deadline(ms, parent);
  try {
    return await fn(d.signal, d);
  } finally {
    d.clear();
  }
}

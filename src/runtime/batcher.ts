// Dynamic batching for one engine (serve's model versions, watch's cameras): concurrent requests are gathered until --max-batch examples are
// waiting or the oldest has waited --max-delay-ms, run as one engine call, and the output is split back.
// One batch runs at a time per engine (the engine itself uses every core); the queue is bounded and shared fairly:
// each client (API key or connection) has its own FIFO, batches take from them round-robin, and when the queue is
// full a newcomer displaces the newest work of the client holding the most (so one client cannot fill it for all).
import { MlctlError } from '../errors.js';

/** What the batcher needs from an engine: sizes per example and a batched run. */
export interface BatchRunner {
  inputSize: number;
  outputSize: number;
  run(x: Float32Array, batch: number): Promise<Float32Array>;
}

export interface BatcherOptions {
  maxBatch: number;
  /** 0 = run as soon as the engine is free (no waiting for company). */
  maxDelayMs: number;
  /** Most examples waiting (not counting the running batch) before new requests are refused with 503. */
  maxQueue: number;
  onBatch?: (size: number, seconds: number) => void;
  onDepth?: (depth: number) => void;
  /**
   * Requests still being prepared (decoded) that will join this queue. When none are on their way, waiting
   * for company cannot help, so a lone request runs at once instead of paying --max-delay-ms.
   */
  incoming?: () => number;
}

export interface BatchResult {
  /** n * outputSize floats for the submitted examples. */
  y: Float32Array;
  inferenceMs: number;
  batchSize: number;
}

export interface Batcher {
  /**
   * Queue `n` examples packed in `x` for `client` (default: one shared client); resolves with their outputs. Throws
   * QUEUE_FULL (503 + Retry-After) when the queue is full and this client already holds at least its share.
   */
  submit(x: Float32Array, n: number, client?: string): Promise<BatchResult>;
  /** Examples waiting. */
  depth(): number;
  /** Resolves once nothing is queued or running (new submissions are still accepted). */
  idle(): Promise<void>;
  /** Re-check whether to run now (call when `incoming` drops without a submission, e.g. a decode failed). */
  poke(): void;
}

interface Item {
  x: Float32Array;
  n: number;
  at: number;
  client: string;
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
}

export function createBatcher(engine: BatchRunner, opts: BatcherOptions): Batcher {
  const perExample = engine.inputSize;
  const outSize = engine.outputSize;
  // Per-client FIFOs in round-robin order (Map keeps insertion order; a served client moves to the back).
  const queues = new Map<string, Item[]>();
  const held = new Map<string, number>();
  let pending = 0;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];

  const setDepth = () => opts.onDepth?.(pending);

  const oldest = () => {
    let at = Infinity;
    for (const q of queues.values()) at = Math.min(at, q[0]!.at);
    return at;
  };

  function schedule(): void {
    if (running || queues.size === 0) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const full = pending >= opts.maxBatch || (opts.incoming !== undefined && opts.incoming() === 0);
    const wait = full ? 0 : oldest() + opts.maxDelayMs - performance.now();
    if (wait <= 0) {
      void runBatch();
    } else {
      timer = setTimeout(() => {
        timer = undefined;
        void runBatch();
      }, wait);
    }
  }

  const release = (it: Item) => {
    pending -= it.n;
    const h = (held.get(it.client) ?? 0) - it.n;
    if (h > 0) held.set(it.client, h);
    else held.delete(it.client);
  };

  /** Up to maxBatch examples, one item per client per turn, clients in round-robin order. */
  function takeBatch(): { items: Item[]; total: number } {
    const items: Item[] = [];
    let total = 0;
    let progress = true;
    while (progress && queues.size) {
      progress = false;
      for (const [client, q] of [...queues]) {
        const it = q[0]!;
        if (items.length > 0 && total + it.n > opts.maxBatch) continue;
        q.shift();
        queues.delete(client);
        if (q.length) queues.set(client, q); // to the back of the round
        items.push(it);
        total += it.n;
        release(it);
        progress = true;
        if (total >= opts.maxBatch) return { items, total };
      }
    }
    return { items, total };
  }

  async function runBatch(): Promise<void> {
    if (running || queues.size === 0) return;
    running = true;
    const { items, total } = takeBatch();
    setDepth();
    let x: Float32Array;
    if (items.length === 1) x = items[0]!.x;
    else {
      x = new Float32Array(total * perExample);
      let off = 0;
      for (const it of items) {
        x.set(it.x.subarray(0, it.n * perExample), off);
        off += it.n * perExample;
      }
    }
    const t0 = performance.now();
    try {
      const y = await engine.run(x, total);
      const ms = performance.now() - t0;
      opts.onBatch?.(total, ms / 1000);
      let off = 0;
      for (const it of items) {
        it.resolve({ y: y.slice(off * outSize, (off + it.n) * outSize), inferenceMs: ms, batchSize: total });
        off += it.n;
      }
    } catch (err) {
      for (const it of items) it.reject(err);
    } finally {
      running = false;
      if (queues.size) schedule();
      else {
        const waiters = idleWaiters;
        idleWaiters = [];
        waiters.forEach((w) => w());
      }
    }
  }

  function enqueue(x: Float32Array, n: number, client: string): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      const q = queues.get(client);
      const item = { x, n, at: performance.now(), client, resolve, reject };
      if (q) q.push(item);
      else queues.set(client, [item]);
      pending += n;
      held.set(client, (held.get(client) ?? 0) + n);
      setDepth();
      schedule();
    });
  }

  const queueFull = () => new MlctlError('QUEUE_FULL', [`the inference queue is full (${pending} examples waiting, limit ${opts.maxQueue}); retry shortly`]);

  /**
   * Room for `n` more examples of `client`: when the queue is full, the newest work of the client holding the most
   * (more than `client` would after this submission) is refused instead, so a flood from one client only ever
   * displaces its own requests. False when `client` itself is the one holding too much.
   */
  function makeRoom(n: number, client: string): boolean {
    while (pending + n > opts.maxQueue) {
      let heaviest: string | undefined;
      for (const [c, h] of held) if (!heaviest || h > held.get(heaviest)!) heaviest = c;
      if (heaviest === undefined || heaviest === client || held.get(heaviest)! <= (held.get(client) ?? 0) + n) return false;
      const q = queues.get(heaviest)!;
      const victim = q.pop()!;
      if (!q.length) queues.delete(heaviest);
      release(victim);
      victim.reject(queueFull());
    }
    setDepth();
    return true;
  }

  return {
    async submit(x, n, client = '') {
      if (n < 1) throw new MlctlError('INPUT_INVALID', ['no examples to run']);
      if (x.length !== n * perExample) throw new MlctlError('INPUT_INVALID', [`expected ${n * perExample} input values for ${n} example(s), got ${x.length}`]);
      if (n > opts.maxQueue || !makeRoom(n, client)) throw queueFull();
      if (n <= opts.maxBatch) return enqueue(x, n, client);
      // Larger than one batch: run it in max-batch chunks and stitch the outputs back together.
      const parts: Array<Promise<BatchResult>> = [];
      for (let i = 0; i < n; i += opts.maxBatch) {
        const k = Math.min(opts.maxBatch, n - i);
        parts.push(enqueue(x.subarray(i * perExample, (i + k) * perExample), k, client));
      }
      const done = await Promise.all(parts);
      const y = new Float32Array(n * outSize);
      let off = 0;
      for (const r of done) {
        y.set(r.y, off);
        off += r.y.length;
      }
      return { y, inferenceMs: done.reduce((a, r) => a + r.inferenceMs, 0), batchSize: Math.max(...done.map((r) => r.batchSize)) };
    },
    depth: () => pending,
    poke: schedule,
    idle() {
      if (!running && queues.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}

// Dynamic batching for one engine (serve's model versions, watch's cameras): concurrent requests are gathered until --max-batch examples are
// waiting or the oldest has waited --max-delay-ms, run as one engine call, and the output is split back.
// One batch runs at a time per engine (the engine itself uses every core); the queue is bounded.
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
  /** Queue `n` examples packed in `x`; resolves with their outputs. Throws QUEUE_FULL (503 + Retry-After) when the queue is full. */
  submit(x: Float32Array, n: number): Promise<BatchResult>;
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
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
}

export function createBatcher(engine: BatchRunner, opts: BatcherOptions): Batcher {
  const perExample = engine.inputSize;
  const outSize = engine.outputSize;
  const queue: Item[] = [];
  let pending = 0;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];

  const setDepth = () => opts.onDepth?.(pending);

  function schedule(): void {
    if (running || queue.length === 0) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const full = pending >= opts.maxBatch || (opts.incoming !== undefined && opts.incoming() === 0);
    const wait = full ? 0 : queue[0]!.at + opts.maxDelayMs - performance.now();
    if (wait <= 0) {
      void runBatch();
    } else {
      timer = setTimeout(() => {
        timer = undefined;
        void runBatch();
      }, wait);
    }
  }

  async function runBatch(): Promise<void> {
    if (running || queue.length === 0) return;
    running = true;
    const items: Item[] = [];
    let total = 0;
    while (queue.length && (items.length === 0 || total + queue[0]!.n <= opts.maxBatch)) {
      const it = queue.shift()!;
      items.push(it);
      total += it.n;
    }
    pending -= total;
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
      if (queue.length) schedule();
      else {
        const waiters = idleWaiters;
        idleWaiters = [];
        waiters.forEach((w) => w());
      }
    }
  }

  function enqueue(x: Float32Array, n: number): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      queue.push({ x, n, at: performance.now(), resolve, reject });
      pending += n;
      setDepth();
      schedule();
    });
  }

  return {
    async submit(x, n) {
      if (n < 1) throw new MlctlError('INPUT_INVALID', ['no examples to run']);
      if (x.length !== n * perExample) throw new MlctlError('INPUT_INVALID', [`expected ${n * perExample} input values for ${n} example(s), got ${x.length}`]);
      if (pending + n > opts.maxQueue) {
        throw new MlctlError('QUEUE_FULL', [`the inference queue is full (${pending} examples waiting, limit ${opts.maxQueue}); retry shortly`]);
      }
      if (n <= opts.maxBatch) return enqueue(x, n);
      // Larger than one batch: run it in max-batch chunks and stitch the outputs back together.
      const parts: Array<Promise<BatchResult>> = [];
      for (let i = 0; i < n; i += opts.maxBatch) {
        const k = Math.min(opts.maxBatch, n - i);
        parts.push(enqueue(x.subarray(i * perExample, (i + k) * perExample), k));
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
      if (!running && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}

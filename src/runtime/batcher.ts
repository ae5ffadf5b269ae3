// Dynamic batching for one engine (serve's model versions, watch's cameras): concurrent requests are gathered until --max-batch examples are
// waiting or the oldest has waited --max-delay-ms, stacked along the leading dimension of every input, run as one
// engine call, and every output is split back (as views, no copies). A model without a batch dimension runs one
// request per call.
// One batch runs at a time per engine instance (`concurrency`: an engine pool's instance count, runtime/pool.ts; a
// single instance uses every core); the queue is bounded and shared fairly:
// each client (API key or connection) has its own FIFO, batches take from them round-robin, and when the queue is
// full a newcomer displaces the newest work of the client holding the most (so one client cannot fill it for all).
import { MlctlError } from '../errors.js';
import type { RunOptions } from './engine.js';
import { concatBatch, sliceBatch, type Tensor } from './tensor.js';

/** What the batcher needs from an engine (an InferenceEngine is one): whether it takes a batch, and a run. */
export interface BatchRunner {
  /** Every input and output has a leading batch dimension: requests are stacked along it. */
  batched: boolean;
  run(feeds: readonly Tensor[], fetches?: readonly string[], opts?: RunOptions): Promise<Tensor[]>;
}

export interface BatcherOptions {
  maxBatch: number;
  /** 0 = run as soon as the engine is free (no waiting for company). */
  maxDelayMs: number;
  /** Most examples waiting (not counting the running batch) before new requests are refused with 503. */
  maxQueue: number;
  /** Batches that may run at once (default 1): the engine's instances (runtime/pool.ts), each running one. */
  concurrency?: number;
  onBatch?: (size: number, seconds: number) => void;
  onDepth?: (depth: number) => void;
  /**
   * Requests still being prepared (decoded) that will join this queue. When none are on their way, waiting
   * for company cannot help, so a lone request runs at once instead of paying --max-delay-ms.
   */
  incoming?: () => number;
}

export interface SubmitOptions {
  /**
   * The submitter is done with the feeds' arrays (e.g. it decoded them for this request): a lone run hands them to
   * the engine, which may take them without a copy (engine.run's handOver). Shared batches always hand over the
   * stacked arrays the batcher made.
   */
  handOver?: boolean;
}

export interface BatchResult {
  /** Every output of the run for the submitted examples (views into the batch's outputs when it was shared). */
  outputs: Tensor[];
  inferenceMs: number;
  batchSize: number;
}

export interface Batcher {
  /**
   * Queue `n` examples (the leading dimension of every feed; 1 for a model without a batch dimension) for `client`
   * (default: one shared client); resolves with their outputs. Throws QUEUE_FULL (503 + Retry-After) when the queue
   * is full and this client already holds at least its share.
   */
  submit(feeds: readonly Tensor[], n: number, client?: string, opts?: SubmitOptions): Promise<BatchResult>;
  /** Examples waiting. */
  depth(): number;
  /** Resolves once nothing is queued or running (new submissions are still accepted). */
  idle(): Promise<void>;
  /** Re-check whether to run now (call when `incoming` drops without a submission, e.g. a decode failed). */
  poke(): void;
}

interface Item {
  feeds: readonly Tensor[];
  /** Datatypes and per-example shapes of the feeds: only items that agree stack into one batch. */
  kind: string;
  n: number;
  at: number;
  client: string;
  handOver: boolean;
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
}

/** What must agree for requests to share a batch: names, datatypes and every dimension but the leading one. */
const kindOf = (feeds: readonly Tensor[]) => feeds.map((t) => `${t.name}:${t.datatype}:${t.shape.slice(1).join('x')}`).join('|');

/** Outputs of a shared run, split back to the items in batch order (views, no copies). */
function splitOutputs(outputs: Tensor[], items: readonly Item[], total: number): Tensor[][] {
  for (const o of outputs) {
    if (o.shape[0] !== total) throw new MlctlError('INTERNAL', [`the model answered ${o.name} with shape [${o.shape.join(', ')}] for a batch of ${total}: its leading dimension is not the batch`]);
  }
  let off = 0;
  return items.map((it) => {
    const parts = outputs.map((o) => sliceBatch(o, off, off + it.n));
    off += it.n;
    return parts;
  });
}

export function createBatcher(engine: BatchRunner, opts: BatcherOptions): Batcher {
  // A model without a batch dimension takes one request per run, whatever --max-batch says.
  const maxBatch = engine.batched ? opts.maxBatch : 1;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  // Per-client FIFOs in round-robin order (Map keeps insertion order; a served client moves to the back).
  const queues = new Map<string, Item[]>();
  const held = new Map<string, number>();
  let pending = 0;
  let running = 0;
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];

  const setDepth = () => opts.onDepth?.(pending);

  const oldest = () => {
    let at = Infinity;
    for (const q of queues.values()) at = Math.min(at, q[0]!.at);
    return at;
  };

  function schedule(): void {
    if (running >= concurrency || queues.size === 0) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const full = pending >= maxBatch || (opts.incoming !== undefined && opts.incoming() === 0);
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

  /** Up to maxBatch examples that stack together, one item per client per turn, clients in round-robin order. */
  function takeBatch(): { items: Item[]; total: number } {
    const items: Item[] = [];
    let total = 0;
    let progress = true;
    while (progress && queues.size) {
      progress = false;
      for (const [client, q] of [...queues]) {
        const it = q[0]!;
        if (items.length > 0 && (total + it.n > maxBatch || it.kind !== items[0]!.kind)) continue;
        q.shift();
        queues.delete(client);
        if (q.length) queues.set(client, q); // to the back of the round
        items.push(it);
        total += it.n;
        release(it);
        progress = true;
        if (total >= maxBatch) return { items, total };
      }
    }
    return { items, total };
  }

  async function runBatch(): Promise<void> {
    if (running >= concurrency || queues.size === 0) return;
    running++;
    const { items, total } = takeBatch();
    setDepth();
    // Another instance may be free for what is left.
    if (queues.size) schedule();
    const t0 = performance.now();
    try {
      // A lone request runs on its own tensors; a shared batch stacks each input along its leading dimension.
      const lone = items.length === 1;
      const feeds = lone ? items[0]!.feeds : items[0]!.feeds.map((f) => concatBatch(items.map((it) => it.feeds.find((g) => g.name === f.name)!)));
      const outputs = await engine.run(feeds, undefined, { handOver: lone ? items[0]!.handOver : true });
      const ms = performance.now() - t0;
      opts.onBatch?.(total, ms / 1000);
      const parts = items.length === 1 ? [outputs] : splitOutputs(outputs, items, total);
      items.forEach((it, i) => it.resolve({ outputs: parts[i]!, inferenceMs: ms, batchSize: total }));
    } catch (err) {
      for (const it of items) it.reject(err);
    } finally {
      running--;
      if (queues.size) schedule();
      else if (running === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        waiters.forEach((w) => w());
      }
    }
  }

  function enqueue(feeds: readonly Tensor[], n: number, client: string, handOver: boolean): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      const q = queues.get(client);
      const item = { feeds, kind: kindOf(feeds), n, at: performance.now(), client, handOver, resolve, reject };
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
    async submit(feeds, n, client = '', submitOpts = {}) {
      if (n < 1 || !feeds.length) throw new MlctlError('INPUT_INVALID', ['no examples to run']);
      if (!engine.batched && n !== 1) throw new MlctlError('INPUT_INVALID', [`the model has no batch dimension: it runs one request at a time, not ${n} examples`]);
      const off = engine.batched ? feeds.find((f) => f.shape[0] !== n) : undefined;
      if (off) throw new MlctlError('INPUT_INVALID', [`input ${off.name} has shape [${off.shape.join(', ')}]; every input needs the ${n} example(s) along its first dimension`]);
      if (n > opts.maxQueue || !makeRoom(n, client)) throw queueFull();
      if (n <= maxBatch) return enqueue(feeds, n, client, submitOpts.handOver === true);
      // Larger than one batch: run it in max-batch chunks (views) and stitch the outputs back together.
      const parts: Array<Promise<BatchResult>> = [];
      for (let i = 0; i < n; i += maxBatch) {
        const k = Math.min(maxBatch, n - i);
        // Views into the submitter's arrays: never handed over (a transfer would take the whole buffer).
        parts.push(enqueue(feeds.map((f) => sliceBatch(f, i, i + k)), k, client, false));
      }
      const done = await Promise.all(parts);
      const outputs = done[0]!.outputs.map((o, j) => concatBatch(done.map((r) => r.outputs[j]!)));
      return { outputs, inferenceMs: done.reduce((a, r) => a + r.inferenceMs, 0), batchSize: Math.max(...done.map((r) => r.batchSize)) };
    },
    depth: () => pending,
    poke: schedule,
    idle() {
      if (running === 0 && queues.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}

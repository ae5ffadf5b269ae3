// Inference speed of an engine: batch-1 latency percentiles over a fixed number of warm runs, and throughput at
// the best of a few batch sizes. Inputs are a real preprocessed example when given (values don't change timing).
import { performance } from 'node:perf_hooks';
import type { InferenceEngine } from './engine.js';
import { floatIO, runFloat } from './float.js';

export interface LatencyOptions {
  /** Untimed runs before measuring (JIT, allocator and kernel caches warm up). */
  warmup?: number;
  /** Timed batch-1 runs. */
  runs?: number;
  /** Batch sizes tried for throughput; the best is reported. */
  batchSizes?: number[];
  /** Timed runs per throughput batch size (after one untimed run); at most this many. */
  throughputRuns?: number;
  /** Stop timing a throughput batch size after this long (at least one run always counts): big models stay bounded. */
  throughputBudgetMs?: number;
  /** One example's input (prod(inputShape) floats); zeros when absent. */
  example?: Float32Array;
  /** Called after each timed run (progress). */
  onRun?: () => void;
  /** How a batch is run; default the engine's one float input and output (runFloat). */
  runner?: LatencyRunner;
}

/**
 * What is timed: `batch` examples packed in `x` through the engine as its caller runs them (e.g. a detector's every
 * output, one run per picture without a batch dimension), and one example's input shape (-1 where free).
 */
export interface LatencyRunner {
  inputShape: readonly number[];
  run(x: Float32Array, batch: number): Promise<unknown>;
}

/** The default: the engine's one float tensor in and out. */
const floatRunner = (engine: InferenceEngine): LatencyRunner => ({ inputShape: floatIO(engine).inputShape, run: (x, batch) => runFloat(engine, x, batch) });

export interface ThroughputPoint {
  batchSize: number;
  imagesPerSecond: number;
}

export interface LatencyResult {
  engine: string;
  engineDescription: string;
  batchSize: 1;
  warmup: number;
  runs: number;
  /** Milliseconds; percentiles by linear interpolation between order statistics (numpy's default). */
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
  throughput: { best: ThroughputPoint; tried: ThroughputPoint[] };
}

export const DEFAULT_LATENCY = { warmup: 3, runs: 20, batchSizes: [1, 4, 16], throughputRuns: 3, throughputBudgetMs: 5000 } as const;

/** q-th percentile (0..100) of already sorted values, linear interpolation. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q / 100));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function batchInput(inputShape: readonly number[], batch: number, example?: Float32Array): Float32Array {
  // Models with free dimensions (-1) are timed at the example's size.
  const fixed = inputShape.every((d) => d > 0);
  if (!fixed && !example) throw new RangeError(`the engine's input shape [${inputShape.join(', ')}] has free dimensions: pass an example input`);
  const per = fixed ? inputShape.reduce((a, d) => a * d, 1) : example!.length;
  const x = new Float32Array(per * batch);
  if (example) {
    if (example.length !== per) throw new RangeError(`example has ${example.length} values, the engine expects ${per}`);
    for (let i = 0; i < batch; i++) x.set(example, i * per);
  }
  return x;
}

export async function measureLatency(engine: InferenceEngine, opts: LatencyOptions = {}): Promise<LatencyResult> {
  const warmup = Math.max(0, opts.warmup ?? DEFAULT_LATENCY.warmup);
  const runs = Math.max(1, opts.runs ?? DEFAULT_LATENCY.runs);
  const throughputRuns = Math.max(1, opts.throughputRuns ?? DEFAULT_LATENCY.throughputRuns);
  const batchSizes = [...new Set(opts.batchSizes ?? DEFAULT_LATENCY.batchSizes)].filter((b) => b >= 1).sort((a, b) => a - b);

  const runner = opts.runner ?? floatRunner(engine);
  const one = batchInput(runner.inputShape, 1, opts.example);
  for (let i = 0; i < warmup; i++) await runner.run(one, 1);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await runner.run(one, 1);
    times.push(performance.now() - t0);
    opts.onRun?.();
  }
  times.sort((a, b) => a - b);

  const tried: ThroughputPoint[] = [];
  for (const b of batchSizes) {
    let seconds: number;
    if (b === 1) {
      // Batch 1 was just measured warm: reuse it rather than spend more runs.
      seconds = times.reduce((a, t) => a + t, 0) / 1000 / runs;
    } else {
      const x = batchInput(runner.inputShape, b, opts.example);
      await runner.run(x, b);
      const budget = opts.throughputBudgetMs ?? DEFAULT_LATENCY.throughputBudgetMs;
      const t0 = performance.now();
      let done = 0;
      while (done < throughputRuns && (done === 0 || performance.now() - t0 < budget)) {
        await runner.run(x, b);
        done++;
        opts.onRun?.();
      }
      seconds = (performance.now() - t0) / 1000 / done;
    }
    tried.push({ batchSize: b, imagesPerSecond: b / seconds });
  }
  const best = tried.reduce((a, p) => (p.imagesPerSecond > a.imagesPerSecond ? p : a), tried[0] ?? { batchSize: 1, imagesPerSecond: 0 });
  return {
    engine: engine.name,
    engineDescription: engine.description,
    batchSize: 1,
    warmup,
    runs,
    meanMs: times.reduce((a, t) => a + t, 0) / runs,
    p50Ms: percentile(times, 50),
    p95Ms: percentile(times, 95),
    p99Ms: percentile(times, 99),
    minMs: times[0]!,
    maxMs: times[times.length - 1]!,
    throughput: { best, tried },
  };
}

/** Number of timed engine runs measureLatency makes (for progress totals). */
export function latencyRunCount(opts: LatencyOptions = {}): number {
  const runs = Math.max(1, opts.runs ?? DEFAULT_LATENCY.runs);
  const sizes = [...new Set(opts.batchSizes ?? DEFAULT_LATENCY.batchSizes)].filter((b) => b > 1);
  return runs + sizes.length * Math.max(1, opts.throughputRuns ?? DEFAULT_LATENCY.throughputRuns);
}

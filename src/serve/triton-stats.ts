// Triton's statistics extension for mlctl serve (docs/protocol/extension_statistics.md, ModelStatistics in
// grpc_service.proto): per model version, successful and failed requests with their cumulative durations, time in
// the queue, input preparation and engine time, executions (batches) by size — counted from the repository's infer
// and batch events, whichever transport carried the request.
import type { ModelRepository, StatisticDuration, TritonStats } from './types.js';

type Duration = StatisticDuration;

interface VersionStats {
  lastInference: number;
  inferenceCount: number;
  executionCount: number;
  success: Duration;
  fail: Duration;
  queue: Duration;
  computeInput: Duration;
  computeInfer: Duration;
  computeOutput: Duration;
  batches: Map<number, Duration>;
}

const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));
const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ms: number, count = 1) => {
  d.count += count;
  d.ns += ns(ms);
};

export function createTritonStats(repo: ModelRepository): TritonStats {
  const byVersion = new Map<string, VersionStats>();
  const keyOf = (name: string, version: number) => `${name}\u0000${version}`;
  const entry = (name: string, version: number): VersionStats => {
    const k = keyOf(name, version);
    let s = byVersion.get(k);
    if (!s) {
      s = { lastInference: 0, inferenceCount: 0, executionCount: 0, success: zero(), fail: zero(), queue: zero(), computeInput: zero(), computeInfer: zero(), computeOutput: zero(), batches: new Map() };
      byVersion.set(k, s);
    }
    return s;
  };

  const offInfer = repo.onInfer((e) => {
    if (e.result) {
      const s = entry(e.result.model.name, e.result.model.version);
      const t = e.result.timing;
      s.lastInference = Date.now();
      // Each example of a batched request counts (Triton's inference_count); the request counts once elsewhere.
      s.inferenceCount += e.result.outputs[0]?.shape[0] ?? 1;
      add(s.success, e.latencyMs);
      add(s.queue, t?.queueMs ?? 0);
      add(s.computeInput, t?.inputMs ?? 0);
      add(s.computeInfer, t?.inferMs ?? e.result.inferenceMs);
      // Outputs are handed over as they come from the batch: the rest of the request's time after the engine.
      add(s.computeOutput, t ? Math.max(0, e.latencyMs - t.inputMs - t.queueMs - t.inferMs) : 0);
      return;
    }
    // A failure counts against the version it was for, when that version is loaded (unknown models have no stats).
    const model = repo.get(e.name, e.version);
    if (model) add(entry(model.name, model.version).fail, e.latencyMs);
  });
  const offBatch = repo.onBatch((b) => {
    const s = entry(b.name, b.version);
    s.executionCount++;
    const d = s.batches.get(b.size) ?? zero();
    add(d, b.seconds * 1000);
    s.batches.set(b.size, d);
  });

  return {
    modelStats(name, version) {
      return repo
        .list()
        .filter((m) => (name === undefined || m.name === name) && (version === undefined || m.version === version))
        .map((m) => {
          const s = byVersion.get(keyOf(m.name, m.version)) ?? entry(m.name, m.version);
          return {
            name: m.name,
            version: String(m.version),
            last_inference: s.lastInference,
            inference_count: s.inferenceCount,
            execution_count: s.executionCount,
            inference_stats: {
              success: { ...s.success },
              fail: { ...s.fail },
              queue: { ...s.queue },
              compute_input: { ...s.computeInput },
              compute_infer: { ...s.computeInfer },
              compute_output: { ...s.computeOutput },
              cache_hit: zero(),
              cache_miss: zero(),
            },
            batch_stats: [...s.batches]
              .sort(([a], [b]) => a - b)
              .map(([size, d]) => ({ batch_size: size, compute_input: { count: d.count, ns: 0 }, compute_infer: { ...d }, compute_output: { count: d.count, ns: 0 } })),
            memory_usage: [],
            response_stats: {},
          };
        });
    },
    close() {
      offInfer();
      offBatch();
    },
  };
}

// Side-by-side comparison of several evaluations on the same data: each model's headline figures and its delta
// against the first (the baseline) — the before/after view optimize's results need.
import type { EvaluationResult } from './run.js';

export interface ComparisonRow {
  model: string;
  engine: string;
  accuracy: number;
  macroF1: number;
  sizeRawBytes: number;
  sizeGzipBytes: number;
  p50Ms?: number;
  imagesPerSecond?: number;
  /** Differences vs the baseline (this row minus the first); ratios for size and speed. */
  delta?: {
    accuracy: number;
    macroF1: number;
    sizeRawRatio: number;
    sizeGzipRatio: number;
    p50Ms?: number;
    imagesPerSecondRatio?: number;
  };
}

export function compareResults(results: readonly EvaluationResult[]): ComparisonRow[] {
  const rows: ComparisonRow[] = results.map((r) => ({
    model: `${r.model.name} v${r.model.version}`,
    engine: r.engine.description,
    accuracy: r.metrics.accuracy,
    macroF1: r.metrics.macro.f1,
    sizeRawBytes: r.size.rawBytes,
    sizeGzipBytes: r.size.gzipBytes,
    ...(r.latency ? { p50Ms: r.latency.p50Ms, imagesPerSecond: r.latency.throughput.best.imagesPerSecond } : {}),
  }));
  const base = rows[0];
  if (!base) return rows;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
  for (const row of rows.slice(1)) {
    row.delta = {
      accuracy: row.accuracy - base.accuracy,
      macroF1: row.macroF1 - base.macroF1,
      sizeRawRatio: ratio(row.sizeRawBytes, base.sizeRawBytes),
      sizeGzipRatio: ratio(row.sizeGzipBytes, base.sizeGzipBytes),
      ...(row.p50Ms !== undefined && base.p50Ms !== undefined ? { p50Ms: row.p50Ms - base.p50Ms } : {}),
      ...(row.imagesPerSecond !== undefined && base.imagesPerSecond !== undefined ? { imagesPerSecondRatio: ratio(row.imagesPerSecond, base.imagesPerSecond) } : {}),
    };
  }
  return rows;
}

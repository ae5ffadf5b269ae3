// Quality gates for CI: thresholds on accuracy, macro F1 (classifiers), R² (regression), COCO mAP and AP50 (detection) and batch-1 latency. Every gate is checked for every
// model; each failure becomes one line saying which gate, the measured value, the threshold and by how much.
import type { RegressionMetrics } from '../tasks/regression/metrics.js';
import type { ClassificationMetrics } from '../tasks/classification/metrics.js';
import type { DetectionMetrics } from '../tasks/detection/evaluate.js';
import type { EvaluationResult } from './run.js';

/** What a gate looks at: an image/tabular classifier's result or a tabular regression result. */
export type GatedResult = Pick<EvaluationResult, 'model' | 'engine' | 'latency'> & { metrics: ClassificationMetrics | RegressionMetrics | DetectionMetrics };

export type LatencyPercentile = 'p50' | 'p95' | 'p99';

export interface GateThresholds {
  minAccuracy?: number;
  minF1?: number;
  /** Regression only. */
  minR2?: number;
  /** Detection only: COCO AP@[.50:.05:.95] and AP@.50. */
  minMap?: number;
  minAp50?: number;
  maxLatencyMs?: number;
  /** Which batch-1 percentile --max-latency-ms applies to (default p95). */
  latencyPercentile?: LatencyPercentile;
}

export interface GateCheck {
  gate: 'min-accuracy' | 'min-f1' | 'min-r2' | 'min-map' | 'min-ap50' | 'max-latency-ms';
  model: string;
  metric: string;
  threshold: number;
  actual: number;
  passed: boolean;
  /** Distance to the threshold when failed (positive), 0 when passed. */
  shortBy: number;
  message: string;
}

const fmt = (x: number, digits = 4) => Number(x.toFixed(digits)).toString();

export function modelRef(r: Pick<EvaluationResult, 'model'>): string {
  return `${r.model.name} v${r.model.version}`;
}

/** Accuracy/F1 gates apply to classifiers, --min-r2 to regression and --min-map/--min-ap50 to detection results; the command refuses mismatches up front. */
export function checkGates(results: readonly GatedResult[], t: GateThresholds): GateCheck[] {
  const checks: GateCheck[] = [];
  const pct = t.latencyPercentile ?? 'p95';
  for (const r of results) {
    const model = modelRef(r);
    const min = (gate: GateCheck['gate'], metric: string, actual: number, threshold: number) => {
      const passed = actual >= threshold;
      const shortBy = passed ? 0 : threshold - actual;
      checks.push({
        gate, model, metric, threshold, actual, passed, shortBy,
        message: passed ? `${model}: ${metric} ${fmt(actual)} ≥ --${gate} ${fmt(threshold)}` : `${model}: ${metric} ${fmt(actual)} is below --${gate} ${fmt(threshold)} by ${fmt(shortBy)}`,
      });
    };
    const m = r.metrics;
    if ('accuracy' in m) {
      if (t.minAccuracy !== undefined) min('min-accuracy', 'accuracy', m.accuracy, t.minAccuracy);
      if (t.minF1 !== undefined) min('min-f1', 'macro F1', m.macro.f1, t.minF1);
    } else if ('coco' in m) {
      // COCO's -1 (no ground truth at all) is below any threshold: an empty evaluation never passes a gate.
      if (t.minMap !== undefined) min('min-map', 'mAP@[.50:.95]', m.coco.AP, t.minMap);
      if (t.minAp50 !== undefined) min('min-ap50', 'AP50', m.coco.AP50, t.minAp50);
    } else if (t.minR2 !== undefined) min('min-r2', 'R²', m.r2, t.minR2);
    if (t.maxLatencyMs !== undefined && r.latency) {
      const actual = r.latency[`${pct}Ms`];
      const passed = actual <= t.maxLatencyMs;
      const shortBy = passed ? 0 : actual - t.maxLatencyMs;
      const metric = `${pct} latency (batch 1, ${r.engine.description})`;
      checks.push({
        gate: 'max-latency-ms', model, metric, threshold: t.maxLatencyMs, actual, passed, shortBy,
        message: passed ? `${model}: ${metric} ${fmt(actual, 2)} ms ≤ --max-latency-ms ${fmt(t.maxLatencyMs, 2)}` : `${model}: ${metric} ${fmt(actual, 2)} ms is above --max-latency-ms ${fmt(t.maxLatencyMs, 2)} by ${fmt(shortBy, 2)} ms`,
      });
    }
  }
  return checks;
}

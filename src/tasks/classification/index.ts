// Classification: a model that scores every label (probabilities, or logits/decision scores softmaxed here). Two
// tasks share it — image-classification (images through data/preprocess.ts) and tabular-classification (CSV rows) —
// and differ only in their input. Post-processing, rendering for serve/predict/watch/audit, metrics and report.
import type { Manifest } from '../../artifacts/manifest.js';
import { MlctlError } from '../../errors.js';
import { toNumbers, type Tensor } from '../../runtime/tensor.js';
import { exampleRows, outputOf } from '../outputs.js';
import { ROUND, softmaxRows, topK, type LabelScore } from '../scores.js';
import type { InputKind, MetricsAccumulator, MetricsOptions, Task, TaskModel } from '../types.js';
import { addPredictions, createAccumulator, finalizeMetrics, type ClassificationMetrics } from './metrics.js';
import { classificationReport } from './report.js';

/** One example's classification. */
export interface ClassificationResult {
  /** The model's output as it came: probabilities, or logits / decision scores (output kind "scores"). */
  scores: Float32Array | Float64Array;
  /** Probabilities: the scores softmaxed when the model outputs logits, else the scores themselves. */
  probabilities: Float32Array | Float64Array;
}

/**
 * How each surface writes a score (their documented formats); the ranking is the same everywhere. (watch events round
 * to 4 decimals in watch/events.ts, from the scores any task gives its rules.)
 */
const SCORE_ROUNDING = {
  /** POST /predict and TF Serving :classify: as the model computed it. */
  serve: ROUND.none,
  /** predict's CSV and JSON Lines rows: 6 significant digits. */
  rows: ROUND.significant(6),
  /** serve --audit-log lines: 6 decimals. */
  audit: ROUND.decimals(6),
};

/** A batch of outputs → per-example scores and probabilities (one softmax over the batch when the output is logits). */
export function classificationResults(outputs: readonly Tensor[], m: TaskModel): ClassificationResult[] {
  const out = outputOf(outputs, m);
  const scores = exampleRows(out);
  if (m.output.kind !== 'scores' || !scores.length) return scores.map((s) => ({ scores: s, probabilities: s }));
  const all = toNumbers(out);
  const width = scores[0]!.length;
  // A copy in the output's own precision: the softmax of float32 logits is float32, as the model's would be.
  const probs = softmaxRows(all.slice(0, scores.length * width), width);
  return scores.map((s, i) => ({ scores: s, probabilities: probs.subarray(i * width, (i + 1) * width) }));
}

/** The k best labels of one result's scores or probabilities, written with `round`. */
export function topLabels(values: ArrayLike<number>, labels: readonly string[], k: number, round = ROUND.none): LabelScore[] {
  return topK(values, 0, labels, k, { width: values.length, round });
}

function accumulator(m: TaskModel, opts: MetricsOptions = {}): MetricsAccumulator<ClassificationResult, ClassificationMetrics> {
  const acc = createAccumulator(m.labels.length, opts);
  return {
    get count() {
      return acc.count;
    },
    add(results, truth, refs) {
      results.forEach((r, i) => addPredictions(acc, r.probabilities, [truth[i]!], refs ? [refs[i]!] : undefined));
    },
    finish: () => finalizeMetrics(acc, m.labels),
  };
}

function classificationTask(id: string, input: InputKind, summary: string): Task<ClassificationResult, ClassificationMetrics> {
  return {
    id,
    summary,
    input,
    check(m: Manifest, where: string) {
      if (m.input.kind !== input) throw new MlctlError('PACKAGE_INVALID', [where, `its task is ${id} but its input is ${m.input.kind}`]);
      if (m.output.kind === 'regression') throw new MlctlError('PACKAGE_INVALID', [where, `its task is ${id} but its output is a regression value, not scores per label`]);
    },
    outputSize: (m) => m.labels.length,
    results: classificationResults,
    serve: {
      predict(results, m, { topK: k }) {
        const predictions = results.map((r) => Array.from(r.scores));
        // A classifier without labels still answers its raw scores.
        return m.labels.length > 0 ? { predictions, labels: results.map((r) => topLabels(r.scores, m.labels, k, SCORE_ROUNDING.serve)) } : { predictions };
      },
      tfServing: { method: 'classify', answer: (r, m, { topK: k }) => topLabels(r.scores, m.labels, k, SCORE_ROUNDING.serve).map((t) => [t.label, t.score]) },
    },
    rows(m, opts) {
      const k = Math.max(1, Math.min(opts.topK, m.labels.length));
      const top = (r: ClassificationResult) => topLabels(r.probabilities, m.labels, k, SCORE_ROUNDING.rows);
      return {
        columns: Array.from({ length: k }, (_, i) => [`label_${i + 1}`, `score_${i + 1}`]).flat(),
        topK: k,
        cells: (r) => {
          const t = top(r);
          return Array.from({ length: k }, (_, i) => [t[i]?.label, t[i]?.score]).flat();
        },
        fields: (r) => ({ predictions: top(r) }),
      };
    },
    audit(r, m) {
      const [best] = topLabels(r.scores, m.labels, 1, SCORE_ROUNDING.audit);
      return best ? { label: best.label, score: best.score } : {};
    },
    watch: { scores: (r) => r.probabilities },
    metrics: accumulator,
    report: classificationReport(input),
  };
}

export const imageClassification = classificationTask('image-classification', 'image', 'classifies an image into one of its labels');
export const tabularClassification = classificationTask('tabular-classification', 'tabular', 'classifies a table row into one of its labels');

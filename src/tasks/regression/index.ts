// tabular-regression: a model that predicts one number per table row (classic linear / epsilon-SVR models). Its
// label is the target column's name. Post-processing, rendering for serve/predict/audit, metrics (R², MAE, RMSE).
import type { Manifest } from '../../artifacts/manifest.js';
import { MlctlError } from '../../errors.js';
import { f4 } from '../../util/table.js';
import { exampleRows, outputOf } from '../outputs.js';
import { ROUND } from '../scores.js';
import type { Task } from '../types.js';
import { regressionMetrics, type RegressionMetrics } from './metrics.js';

/** One example's prediction. */
export interface RegressionResult {
  value: number;
}

/** predict rows keep 7 significant digits (float32 carries about 7); the audit log 6 decimals; serve as computed. */
const ROWS = ROUND.significant(7);
const AUDIT = ROUND.decimals(6);

export const tabularRegression: Task<RegressionResult, RegressionMetrics> = {
  id: 'tabular-regression',
  summary: 'predicts a number from a table row',
  input: 'tabular',
  check(m: Manifest, where: string) {
    if (m.input.kind !== 'tabular') throw new MlctlError('PACKAGE_INVALID', [where, `its task is tabular-regression but its input is ${m.input.kind}`]);
    if (m.output.kind !== 'regression' || m.output.size !== 1) throw new MlctlError('PACKAGE_INVALID', [where, `its task is tabular-regression but its output is ${m.output.size} ${m.output.kind} value(s), not one regression value`]);
  },
  outputSize: () => 1,
  results: (outputs, m) => exampleRows(outputOf(outputs, m)).map((row) => ({ value: row[0]! })),
  serve: {
    predict: (results) => ({ predictions: results.map((r) => [r.value]) }),
    tfServing: { method: 'regress', answer: (r) => r.value },
  },
  rows: () => ({
    columns: ['value'],
    topK: 0,
    cells: (r) => [ROWS(r.value)],
    fields: (r) => ({ value: ROWS(r.value) }),
  }),
  audit: (r, m) => ({ label: m.labels[0] ?? '0', score: AUDIT(r.value) }),
  metrics() {
    const truth: number[] = [];
    const predicted: number[] = [];
    return {
      get count() {
        return truth.length;
      },
      add(results, t) {
        results.forEach((r, i) => {
          truth.push(t[i]!);
          predicted.push(r.value);
        });
      },
      finish: () => regressionMetrics(truth, predicted),
    };
  },
  report: {
    summary: (m) => [
      ['R²', f4(m.r2)],
      ['MAE', f4(m.mae)],
      ['RMSE', f4(m.rmse)],
    ],
  },
};

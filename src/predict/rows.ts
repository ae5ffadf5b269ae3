// Prediction rows as written by `mlctl predict`: CSV (index, input, then the columns of the model task — label_1,
// score_1, …, label_k, score_k for classifiers, value for regression — then error) or JSON Lines (index, input, then
// the fields of the task or the error). One input → one line; CSV cells go through the one CSV writer (data/csv.ts
// csvLine: quoted when needed, text that a spreadsheet would run as a formula defused).
import path from 'node:path';
import { csvLine } from '../data/csv.js';
import type { RowRendering } from '../tasks/index.js';

export type OutputFormat = 'csv' | 'jsonl';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['csv', 'jsonl'];

export interface PredictionRow<R = unknown> {
  index: number;
  input: string;
  /** The model's result for the input, as its task post-processed it. */
  result?: R;
  /** Why there is no prediction (the image could not be read or decoded). */
  error?: string;
}

/** A run's row format: the file format and the task's columns (classification: top-k labels; regression: value). */
export interface RowLayout<R = unknown> {
  format: OutputFormat;
  task: RowRendering<R>;
}

/** The format a file name implies: .jsonl/.ndjson → jsonl, anything else csv. */
export function formatForPath(file: string | undefined): OutputFormat {
  return file && /\.(jsonl|ndjson)$/i.test(path.basename(file)) ? 'jsonl' : 'csv';
}

export function csvHeader(layout: RowLayout): string {
  return ['index', 'input', ...layout.task.columns, 'error'].join(',') + '\n';
}

/** The line(s) that start a new output file: the CSV header, nothing for JSON Lines. */
export function fileHeader(layout: RowLayout): string {
  return layout.format === 'csv' ? csvHeader(layout) : '';
}

export function formatRow<R>(row: PredictionRow<R>, layout: RowLayout<R>): string {
  const done = row.error === undefined && row.result !== undefined;
  if (layout.format === 'jsonl') {
    const doc = { index: row.index, input: row.input, ...(done ? layout.task.fields(row.result!) : { error: row.error }) };
    return JSON.stringify(doc) + '\n';
  }
  const cells = done ? layout.task.cells(row.result!) : layout.task.columns.map(() => undefined);
  return csvLine([row.index, row.input, ...cells, row.error]);
}

// Prediction rows as written by `mlctl predict`: CSV (index, input, then the columns of the model task — label_1,
// score_1, …, label_k, score_k for classifiers, value for regression — then error) or JSON Lines (index, input, then
// the fields of the task or the error). One input → one line, or one line per part for a task that splits its result
// (detection: one per box; an image without boxes still gets one line, so --resume knows it is done). CSV cells go through the one CSV writer (data/csv.ts
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
  const parts = done && layout.task.split ? layout.task.split(row.result!) : undefined;
  if (parts && parts.length > 1) return parts.map((part) => formatRow({ ...row, result: part }, { ...layout, task: { ...layout.task, split: undefined } })).join('');
  const result = parts ? parts[0] : row.result;
  if (layout.format === 'jsonl') {
    const doc = { index: row.index, input: row.input, ...(done ? (result !== undefined ? layout.task.fields(result) : {}) : { error: row.error }) };
    return JSON.stringify(doc) + '\n';
  }
  const cells = done && result !== undefined ? layout.task.cells(result) : [];
  return csvLine([row.index, row.input, ...layout.task.columns.map((_, i) => cells[i]), row.error]);
}

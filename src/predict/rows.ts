// Prediction rows as written by `mlctl predict`: CSV (index,input,label_1,score_1,…,label_k,score_k,error, or
// index,input,value,error for regression) or JSON Lines. One input → one line; CSV text cells go through the one CSV
// writer (data/csv.ts csvLine: quoted when needed, spreadsheet formulas defused).
import path from 'node:path';
import { csvLine } from '../data/csv.js';

export type OutputFormat = 'csv' | 'jsonl';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['csv', 'jsonl'];

export interface LabelScore {
  label: string;
  score: number;
}

export interface PredictionRow {
  index: number;
  input: string;
  /** Classification: the top-k labels, best first. */
  top?: LabelScore[];
  /** Regression: the predicted value. */
  value?: number;
  /** Why there is no prediction (the image could not be read or decoded). */
  error?: string;
}

export interface RowLayout {
  format: OutputFormat;
  kind: 'labels' | 'value';
  /** Label/score column pairs in CSV (classification). */
  topK: number;
}

/** The format a file name implies: .jsonl/.ndjson → jsonl, anything else csv. */
export function formatForPath(file: string | undefined): OutputFormat {
  return file && /\.(jsonl|ndjson)$/i.test(path.basename(file)) ? 'jsonl' : 'csv';
}

/** Scores and values keep 6 significant digits (float32 outputs carry about 7). */
export function roundScore(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
}

/** The k best of `scores` (row `r` of n x labels.length), highest first; ties keep the lower class index first. */
export function topK(scores: Float32Array, r: number, labels: readonly string[], k: number): LabelScore[] {
  const n = labels.length;
  const o = r * n;
  const idx: number[] = [];
  for (let j = 0; j < n; j++) {
    // Insertion into a short sorted list: k is small, n may be 1000.
    const s = scores[o + j]!;
    if (idx.length === k && !(s > scores[o + idx[k - 1]!]!)) continue;
    let p = Math.min(idx.length, k - 1);
    if (idx.length < k) idx.push(j);
    else idx[p] = j;
    while (p > 0 && s > scores[o + idx[p - 1]!]!) {
      idx[p] = idx[p - 1]!;
      idx[p - 1] = j;
      p--;
    }
  }
  return idx.map((j) => ({ label: labels[j]!, score: roundScore(scores[o + j]!) }));
}

export function csvHeader(layout: RowLayout): string {
  const cols = ['index', 'input'];
  if (layout.kind === 'value') cols.push('value');
  else for (let i = 1; i <= layout.topK; i++) cols.push(`label_${i}`, `score_${i}`);
  cols.push('error');
  return cols.join(',') + '\n';
}

/** The line(s) that start a new output file: the CSV header, nothing for JSON Lines. */
export function fileHeader(layout: RowLayout): string {
  return layout.format === 'csv' ? csvHeader(layout) : '';
}

export function formatRow(row: PredictionRow, layout: RowLayout): string {
  if (layout.format === 'jsonl') {
    const doc: Record<string, unknown> = { index: row.index, input: row.input };
    if (row.error !== undefined) doc.error = row.error;
    else if (layout.kind === 'value') doc.value = row.value;
    else doc.predictions = row.top;
    return JSON.stringify(doc) + '\n';
  }
  const cells: Array<string | number | undefined> = [row.index, row.input];
  if (layout.kind === 'value') cells.push(row.value);
  else for (let i = 0; i < layout.topK; i++) cells.push(row.top?.[i]?.label, row.top?.[i]?.score);
  cells.push(row.error);
  return csvLine(cells);
}

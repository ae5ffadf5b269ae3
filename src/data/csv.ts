// Tabular data from CSV (csv-parse): header row, numeric feature columns, categorical columns one-hot encoded.
// Missing and non-numeric cells are reported by line and column in one error, never silently dropped or zeroed.
import { parse } from 'csv-parse/sync';
import { promises as fs } from 'node:fs';
import { MlctlError } from '../errors.js';

/** Cells read as missing values. */
export const MISSING_TOKENS = new Set(['', 'na', 'n/a', 'nan', 'null', 'none', '?']);

/** A non-numeric cell in an otherwise numeric column is an error (not a category) when at least this share of the column is numeric. */
export const NUMERIC_COLUMN_SHARE = 0.9;

export type ColumnEncoding = { name: string; kind: 'numeric' } | { name: string; kind: 'categorical'; categories: string[] };

/** How raw columns become the model's feature vector; recorded in the manifest (input.transform.encoding). */
export interface TabularEncoding {
  columns: ColumnEncoding[];
}

export interface CsvTable {
  file: string;
  header: string[];
  rows: string[][];
  /** 1-based file line of each row (the header is line 1 for a plain file). */
  lines: number[];
}

export interface CellProblem {
  line: number;
  column: string;
  value: string;
  why: 'missing' | 'not a number' | 'unknown category';
}

export interface TabularData {
  /** Encoded feature names: numeric columns as-is, one-hot columns as "column=category". */
  features: string[];
  /** n x features.length, row-major. */
  x: Float64Array;
  rows: number;
  encoding: TabularEncoding;
  target: string;
  /** Raw target cells, one per row. */
  targetValues: string[];
  /** Lines dropped for missing values (missing: 'drop'). */
  dropped: number;
}

export interface CsvOptions {
  target: string;
  /** Columns forced to categorical (e.g. integer-coded ids). */
  categorical?: string[];
  /** Columns to ignore (ids, free text). */
  ignore?: string[];
  /** Target must be numeric (regression). */
  numericTarget?: boolean;
  /** 'error' (default) reports missing cells; 'drop' removes rows that have any. */
  missing?: 'error' | 'drop';
  /** Apply a fitted encoding (evaluation/serving) instead of inferring one. */
  encoding?: TabularEncoding;
}

const MAX_REPORTED = 10;

export function isMissing(cell: string): boolean {
  return MISSING_TOKENS.has(cell.trim().toLowerCase());
}

export function parseNumber(cell: string): number | undefined {
  const t = cell.trim();
  if (t === '') return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

function detectDelimiter(text: string): string {
  const first = text.slice(0, text.indexOf('\n') >= 0 ? text.indexOf('\n') : text.length);
  const counts = [',', ';', '\t', '|'].map((d) => [d, first.split(d).length - 1] as const);
  const best = counts.reduce((a, b) => (b[1] > a[1] ? b : a));
  return best[1] > 0 ? best[0] : ',';
}

export function parseCsvText(text: string, file: string): CsvTable {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, { bom: true, info: true, skip_empty_lines: true, trim: true, delimiter: detectDelimiter(text) }) as unknown as typeof records;
  } catch (err) {
    throw new MlctlError('CSV_INVALID', [file, `${(err as Error).message} (every line needs the same number of fields as the header; quote fields that contain the delimiter)`], { cause: err });
  }
  if (records.length === 0) throw new MlctlError('CSV_INVALID', [file, 'it is empty; expected a header row and data rows']);
  const header = records[0]!.record;
  const seen = new Set<string>();
  header.forEach((h, i) => {
    if (!h) throw new MlctlError('CSV_INVALID', [file, `header column ${i + 1} has no name`]);
    if (seen.has(h)) throw new MlctlError('CSV_INVALID', [file, `header has column "${h}" twice`]);
    seen.add(h);
  });
  const rows = records.slice(1).map((r) => r.record);
  if (rows.length === 0) throw new MlctlError('CSV_INVALID', [file, 'it has a header but no data rows']);
  return { file, header, rows, lines: records.slice(1).map((r) => r.info.lines) };
}

export async function readCsv(file: string): Promise<CsvTable> {
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new MlctlError('CSV_INVALID', [file, err.code === 'ENOENT' ? 'it does not exist' : err.message], { cause: err });
  });
  return parseCsvText(text, file);
}

function describeProblems(problems: CellProblem[], advice: string): string {
  const shown = problems.slice(0, MAX_REPORTED).map((p) => (p.why === 'missing' ? `line ${p.line}, column "${p.column}": missing value` : `line ${p.line}, column "${p.column}": ${p.why} (${JSON.stringify(p.value)})`));
  const more = problems.length > MAX_REPORTED ? `; and ${problems.length - MAX_REPORTED} more` : '';
  return `${problems.length} bad cell(s): ${shown.join('; ')}${more}. ${advice}`;
}

/** Infer each feature column's encoding from the training rows. */
export function inferEncoding(table: CsvTable, opts: CsvOptions): TabularEncoding {
  const forced = new Set(opts.categorical ?? []);
  const columns: ColumnEncoding[] = [];
  table.header.forEach((name, c) => {
    if (name === opts.target || opts.ignore?.includes(name)) return;
    let present = 0, numeric = 0;
    const cats = new Set<string>();
    for (const r of table.rows) {
      const cell = r[c]!;
      if (isMissing(cell)) continue;
      present++;
      if (parseNumber(cell) !== undefined) numeric++;
      cats.add(cell);
    }
    if (!forced.has(name) && present > 0 && numeric / present >= NUMERIC_COLUMN_SHARE) columns.push({ name, kind: 'numeric' });
    else columns.push({ name, kind: 'categorical', categories: [...cats].sort() });
  });
  return { columns };
}

export function encodedFeatureNames(enc: TabularEncoding): string[] {
  return enc.columns.flatMap((c) => (c.kind === 'numeric' ? [c.name] : c.categories.map((v) => `${c.name}=${v}`)));
}

/**
 * Turn a CSV table into a feature matrix and raw target values. Any missing value, non-numeric cell in a numeric
 * column or unseen category fails with every bad cell located by line and column (the first ten listed).
 */
export function tabularFromCsv(table: CsvTable, opts: CsvOptions): TabularData {
  const colIndex = new Map(table.header.map((h, i) => [h, i]));
  const ti = colIndex.get(opts.target);
  if (ti === undefined) throw new MlctlError('CSV_INVALID', [table.file, `it has no target column "${opts.target}" (columns: ${table.header.join(', ')}); pass --target with one of them`]);
  for (const c of [...(opts.categorical ?? []), ...(opts.ignore ?? [])]) {
    if (!colIndex.has(c)) throw new MlctlError('CSV_INVALID', [table.file, `it has no column "${c}" (columns: ${table.header.join(', ')})`]);
  }
  const encoding = opts.encoding ?? inferEncoding(table, opts);
  for (const col of encoding.columns) {
    if (!colIndex.has(col.name)) throw new MlctlError('CSV_INVALID', [table.file, `it has no column "${col.name}", which the model was trained on`]);
  }
  const features = encodedFeatureNames(encoding);
  const width = features.length;
  if (width === 0) throw new MlctlError('CSV_INVALID', [table.file, `it has no feature columns besides the target "${opts.target}"`]);
  const problems: CellProblem[] = [];
  const keep: number[] = [];
  let dropped = 0;
  table.rows.forEach((r, i) => {
    const line = table.lines[i]!;
    const rowProblems: CellProblem[] = [];
    const check = (name: string, cell: string) => isMissing(cell) && rowProblems.push({ line, column: name, value: cell, why: 'missing' });
    check(opts.target, r[ti]!);
    for (const col of encoding.columns) check(col.name, r[colIndex.get(col.name)!]!);
    if (rowProblems.length && opts.missing === 'drop') {
      dropped++;
      return;
    }
    problems.push(...rowProblems);
    keep.push(i);
  });
  const x = new Float64Array(keep.length * width);
  const targetValues: string[] = [];
  keep.forEach((i, k) => {
    const r = table.rows[i]!;
    const line = table.lines[i]!;
    let o = k * width;
    for (const col of encoding.columns) {
      const cell = r[colIndex.get(col.name)!]!;
      if (col.kind === 'numeric') {
        const v = parseNumber(cell);
        if (v === undefined && !isMissing(cell)) problems.push({ line, column: col.name, value: cell, why: 'not a number' });
        x[o++] = v ?? 0;
      } else {
        const at = col.categories.indexOf(cell);
        if (at < 0 && !isMissing(cell)) problems.push({ line, column: col.name, value: cell, why: 'unknown category' });
        if (at >= 0) x[o + at] = 1;
        o += col.categories.length;
      }
    }
    const t = r[ti]!;
    if (opts.numericTarget && !isMissing(t) && parseNumber(t) === undefined) problems.push({ line, column: opts.target, value: t, why: 'not a number' });
    targetValues.push(t);
  });
  if (problems.length) {
    problems.sort((a, b) => a.line - b.line);
    const advice = problems.some((p) => p.why === 'missing')
      ? 'Fill in or remove those cells (or pass --missing drop to skip rows with missing values); numeric columns need plain numbers.'
      : problems.some((p) => p.why === 'unknown category')
        ? 'The model only knows the categories it was trained on.'
        : 'Fix those cells, or pass --categorical COLUMN if the column holds categories rather than numbers.';
    throw new MlctlError('CSV_INVALID', [table.file, describeProblems(problems, advice)], { details: problems });
  }
  if (keep.length === 0) throw new MlctlError('CSV_INVALID', [table.file, 'every row has a missing value; nothing is left to train on']);
  return { features, x, rows: keep.length, encoding, target: opts.target, targetValues, dropped };
}

/**
 * Encode JSON rows (column → value objects, as serve receives them) with a fitted encoding into a float32 matrix.
 * Throws FEATURES_INVALID naming the row and column for a missing, non-numeric or unknown value.
 */
export function encodeObjects(rows: ReadonlyArray<Record<string, unknown>>, enc: TabularEncoding, model = 'model'): Float32Array {
  const width = encodedFeatureNames(enc).length;
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new MlctlError('FEATURES_INVALID', [model, `row ${i} is not an object of column → value`]);
    let o = i * width;
    for (const col of enc.columns) {
      const v = r[col.name];
      if (v === undefined || v === null || (typeof v === 'string' && isMissing(v))) throw new MlctlError('FEATURES_INVALID', [model, `row ${i} has no value for column "${col.name}"`]);
      if (col.kind === 'numeric') {
        const n = typeof v === 'number' ? v : typeof v === 'string' ? parseNumber(v) : undefined;
        if (n === undefined || !Number.isFinite(n)) throw new MlctlError('FEATURES_INVALID', [model, `row ${i}, column "${col.name}": ${JSON.stringify(v)} is not a number`]);
        out[o++] = n;
      } else {
        const at = col.categories.indexOf(String(v));
        if (at < 0) throw new MlctlError('FEATURES_INVALID', [model, `row ${i}, column "${col.name}": unknown category ${JSON.stringify(v)} (known: ${col.categories.slice(0, 20).join(', ')})`]);
        out[o + at] = 1;
        o += col.categories.length;
      }
    }
  });
  return out;
}

// Tabular data from CSV (csv-parse): header row, numeric feature columns, categorical columns one-hot encoded.
// Missing and non-numeric cells are reported by line and column in one error, never silently dropped or zeroed.
import { parse } from 'csv-parse/sync';
import { isUtf8 } from 'node:buffer';
import { promises as fs } from 'node:fs';
import { MlctlError } from '../errors.js';
import { formatSize } from '../util/units.js';

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
  /** Memory limit in bytes for the encoded matrix (default DEFAULT_MAX_MEMORY): one-hot columns can multiply the width. */
  maxMemory?: number;
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

const PARSE_ADVICE = 'every line needs the same number of fields as the header; quote fields that contain the delimiter';

/** 1-based line of the opening quote that is never closed, scanning from the start of line `fromLine`. */
function unclosedQuoteLine(text: string, fromLine: number): number {
  let line = 1, i = 0;
  while (line < fromLine && i < text.length) if (text.charCodeAt(i++) === 10) line++;
  let inQuote = false, openedAt = fromLine;
  // "" inside a quoted field toggles twice, so the last toggle into a quote is the unmatched opener.
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) line++;
    else if (c === 34) {
      inQuote = !inQuote;
      if (inQuote) openedAt = line;
    }
  }
  return openedAt;
}

/**
 * csv-parse's errors as CSV_INVALID, located at the line where the failing record (or, given the whole `text`, its
 * unclosed quote) starts.
 */
export function csvParseError(file: string, err: unknown, recordLine: number, text?: string): MlctlError {
  const e = err as Error & { code?: string };
  if (e.code === 'CSV_QUOTE_NOT_CLOSED') {
    const q = text === undefined ? recordLine : unclosedQuoteLine(text, recordLine);
    const where = q === recordLine ? `line ${q}` : `line ${q} (in the record that starts on line ${recordLine})`;
    return new MlctlError('CSV_INVALID', [file, `a quoted field opened on ${where} is never closed; close the quote, and double quotes inside quoted fields ("")`], { cause: err, details: { line: q, recordLine } });
  }
  const message = e.code?.startsWith('CSV_') ? e.message.replace(/\b(on|at) line \d+/, `$1 line ${recordLine}`) : e.message;
  return new MlctlError('CSV_INVALID', [file, `${message} (${PARSE_ADVICE})`], { cause: err, details: { line: recordLine } });
}

/** Characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"), and the escape itself. */
const FORMULA_START = /^[=+\-@\t\r']/;

/**
 * One text cell of a CSV file mlctl writes: a cell that starts with = + - @ tab or CR is prefixed with ' (OWASP's
 * advice against formula injection in spreadsheets), as is one that starts with ' itself so the prefix can be told
 * apart and removed when mlctl reads the file back (csvTextOf); quoted (RFC 4180) when it holds a comma, quote, line
 * break or edge whitespace. Numbers mlctl formats itself are written as they are (csvLine).
 */
export function csvCell(v: string): string {
  const safe = FORMULA_START.test(v) ? `'${v}` : v;
  return /[",\r\n]|^\s|\s$/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The text a cell written by csvCell held (its ' prefix removed), from the parsed cell. */
export function csvTextOf(cell: string): string {
  return cell.startsWith("'") ? cell.slice(1) : cell;
}

/** One CSV line: strings through csvCell, numbers as JavaScript prints them, undefined as an empty cell. */
export function csvLine(cells: ReadonlyArray<string | number | undefined>): string {
  return cells.map((c) => (c === undefined ? '' : typeof c === 'number' ? String(c) : csvCell(c))).join(',') + '\n';
}

export function parseCsvText(text: string, file: string): CsvTable {
  // csv-parse reports the line where a record ends; a record starts after the previous one and any skipped blank lines.
  const starts: number[] = [];
  let prevEnd = 0, prevEmpty = 0;
  const onRecord = (record: string[], ctx: { lines: number; empty_lines: number }) => {
    starts.push(prevEnd + 1 + (ctx.empty_lines - prevEmpty));
    prevEnd = ctx.lines;
    prevEmpty = ctx.empty_lines;
    return record;
  };
  let records: string[][];
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, trim: true, delimiter: detectDelimiter(text), on_record: onRecord }) as string[][];
  } catch (err) {
    const skipped = (err as { empty_lines?: number }).empty_lines ?? prevEmpty;
    throw csvParseError(file, err, prevEnd + 1 + Math.max(0, skipped - prevEmpty), text);
  }
  if (records.length === 0) throw new MlctlError('CSV_INVALID', [file, 'it is empty; expected a header row and data rows']);
  const header = records[0]!;
  const seen = new Set<string>();
  header.forEach((h, i) => {
    if (!h) throw new MlctlError('CSV_INVALID', [file, `header column ${i + 1} has no name`]);
    if (seen.has(h)) throw new MlctlError('CSV_INVALID', [file, `header has column "${h}" twice`]);
    seen.add(h);
  });
  const rows = records.slice(1);
  if (rows.length === 0) throw new MlctlError('CSV_INVALID', [file, 'it has a header but no data rows']);
  return { file, header, rows, lines: starts.slice(1) };
}

export interface CsvReadOptions {
  /**
   * Text encoding: utf8 (default; invalid bytes are an error, never silently replaced), latin1 (ISO-8859-1), or any
   * WHATWG label such as windows-1252, utf-16le or shift_jis.
   */
  encoding?: string;
  /** Refuse a file whose estimated memory to load and train exceeds this many bytes (default DEFAULT_MAX_MEMORY). */
  maxMemory?: number;
}

/** The memory guard's default: 2 GiB (raise it with --max-memory or MLCTL_MAX_MEMORY). */
export const DEFAULT_MAX_MEMORY = 2 * 1024 ** 3;

/** Bytes per parsed cell: a small JS string plus its array slot. */
const CELL_BYTES = 40;
/** Copies of the encoded feature matrix a training run holds (encoded, standardised, train/validation split). */
const MATRIX_COPIES = 3;
/** Feature-length f64 vectors a model's solver keeps per feature (weights, gradients, L-BFGS history). */
const MODEL_VECTORS = 32;

/** Estimated peak bytes to read, parse, encode and fit a table of `rows` x `columns` cells with `width` features. */
export function estimateCsvMemory(fileBytes: number, rows: number, columns: number, width = columns): number {
  return fileBytes * 3 + rows * columns * CELL_BYTES + rows * width * 8 * MATRIX_COPIES + width * 8 * MODEL_VECTORS;
}

function checkMemory(what: string, estimate: number, limit: number, advice: string): void {
  if (estimate > limit) throw new MlctlError('INPUT_TOO_LARGE', [what, formatSize(estimate), formatSize(limit), advice], { details: { estimateBytes: estimate, limitBytes: limit } });
}

const WIDE_ADVICE = 'leave out columns you do not need (--drop-columns), use fewer rows, or raise --max-memory if the machine has the memory';

/** Before parsing: rows from the line count, columns from the header line, so nothing large is built first. */
function checkFileMemory(file: string, buf: Buffer, limit: number): void {
  let lines = buf.length > 0 && buf[buf.length - 1] !== 10 ? 1 : 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) lines++;
  const rows = Math.max(0, lines - 1); // the header is one of the lines
  const nl = buf.indexOf(10);
  const head = buf.subarray(0, nl >= 0 ? nl : buf.length);
  const delimiter = detectDelimiter(head.subarray(0, 65536).toString('latin1')).charCodeAt(0);
  // Fields of the header line: delimiters outside quotes, counted on the bytes (no strings for a million names).
  let columns = 1, quoted = false;
  for (let i = 0; i < head.length; i++) {
    const c = head[i]!;
    if (c === 34) quoted = !quoted;
    else if (c === delimiter && !quoted) columns++;
  }
  checkMemory(`CSV file ${file} (${columns.toLocaleString('en-US')} columns x ${rows.toLocaleString('en-US')} rows)`, estimateCsvMemory(buf.length, rows, columns), limit, WIDE_ADVICE);
}

/** Offset of the first byte that is not valid UTF-8 (RFC 3629: no overlong forms, surrogates or code points > U+10FFFF), or −1. */
export function invalidUtf8Offset(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) (need = 2), (lo = 0xa0);
    else if (c === 0xed) (need = 2), (hi = 0x9f);
    else if (c >= 0xe1 && c <= 0xef) need = 2;
    else if (c === 0xf0) (need = 3), (lo = 0x90);
    else if (c === 0xf4) (need = 3), (hi = 0x8f);
    else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else return i;
    if (i + need >= b.length) return i; // truncated sequence at the end
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}

const LATIN1 = new Set(['latin1', 'latin-1', 'iso-8859-1', 'iso8859-1', 'l1', 'binary']);

/** Bytes → text in the given encoding; undecodable bytes are an error located by line and byte offset, never U+FFFD. */
export function decodeCsv(file: string, buf: Buffer, encoding = 'utf8'): string {
  const enc = encoding.trim().toLowerCase();
  if (enc === 'utf8' || enc === 'utf-8') {
    if (isUtf8(buf)) return buf.toString('utf8');
    const at = invalidUtf8Offset(buf);
    let line = 1;
    for (let i = buf.indexOf(10); i >= 0 && i < at; i = buf.indexOf(10, i + 1)) line++;
    const bom16 = buf[0] === 0xff && buf[1] === 0xfe ? 'utf-16le' : buf[0] === 0xfe && buf[1] === 0xff ? 'utf-16be' : undefined;
    const advice = bom16
      ? `it starts with a ${bom16.toUpperCase()} byte-order mark: pass --encoding ${bom16}`
      : 'pass --encoding with the file\'s encoding (e.g. --encoding latin1 or windows-1252 for files from Excel on Windows), or convert it to UTF-8 (iconv -f latin1 -t utf-8)';
    throw new MlctlError('CSV_ENCODING', [file, 'UTF-8', `byte 0x${buf[at]!.toString(16).padStart(2, '0')} at line ${line} (byte offset ${at}) is not UTF-8; ${advice}`], { details: { line, offset: at } });
  }
  if (LATIN1.has(enc)) return buf.toString('latin1');
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(enc, { fatal: true });
  } catch {
    throw new MlctlError('OPTION_INVALID', [`--encoding ${encoding} is not a known text encoding: use utf8 (default), latin1, windows-1252, utf-16le, shift_jis or another WHATWG encoding label`]);
  }
  try {
    return decoder.decode(buf);
  } catch (err) {
    throw new MlctlError('CSV_ENCODING', [file, decoder.encoding, `its bytes do not decode as ${decoder.encoding}; check --encoding`], { cause: err });
  }
}

export async function readCsv(file: string, opts: CsvReadOptions = {}): Promise<CsvTable> {
  const limit = opts.maxMemory ?? DEFAULT_MAX_MEMORY;
  const fail = (err: NodeJS.ErrnoException): never => {
    throw new MlctlError('CSV_INVALID', [file, err.code === 'ENOENT' ? 'it does not exist' : err.message], { cause: err });
  };
  const size = (await fs.stat(file).catch(fail)).size;
  // The file's bytes and their UTF-16 text alone would pass the limit: refuse before reading it.
  checkMemory(`CSV file ${file} (${formatSize(size)})`, size * 3, limit, 'use a smaller file or raise --max-memory if the machine has the memory');
  const buf = await fs.readFile(file).catch(fail);
  checkFileMemory(file, buf, limit);
  return parseCsvText(decodeCsv(file, buf, opts.encoding), file);
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
  const widest = encoding.columns.reduce((a, c) => (c.kind === 'categorical' && c.categories.length > a.length ? { name: c.name, length: c.categories.length } : a), { name: '', length: 0 });
  checkMemory(
    `CSV file ${table.file} (${table.rows.length.toLocaleString('en-US')} rows x ${width.toLocaleString('en-US')} encoded features)`,
    table.rows.length * width * 8 * MATRIX_COPIES + width * 8 * MODEL_VECTORS,
    opts.maxMemory ?? DEFAULT_MAX_MEMORY,
    widest.length > 1000 ? `categorical column "${widest.name}" alone becomes ${widest.length} one-hot features: leave it out (--drop-columns) or raise --max-memory` : WIDE_ADVICE,
  );
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

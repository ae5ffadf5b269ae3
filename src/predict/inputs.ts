// What `mlctl predict` runs on, listed lazily in a deterministic order: image files, folders (walked recursively,
// names sorted), text/CSV lists of paths or http(s) URLs, and `-` (paths on stdin). Nothing is held but the
// directory being walked, so a listing of any length streams in constant memory.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { IMAGE_EXTENSIONS } from '../data/imagefolder.js';
import { csvParseError } from '../data/csv.js';
import { MlctlError } from '../errors.js';

export interface InputItem {
  /** Position in the whole listing (before sharding or resuming): the `index` column, the merge order. */
  index: number;
  /** The input as listed (path as written, or URL): the `input` column, the shard and resume key. */
  key: string;
  /** Where to read it: a file path (resolved) or an http(s) URL. */
  source: string;
  kind: 'file' | 'url';
  /** Known before reading (e.g. an unsupported URL scheme): becomes the row's error. */
  error?: string;
}

/** Files read as lists of inputs (one per line, or a CSV column) rather than as images. */
export const LIST_EXTENSIONS = ['.txt', '.lst', '.list', '.csv', '.tsv'];
/** CSV list columns recognised as the input column (case-insensitive); otherwise the first column. */
export const LIST_COLUMNS = ['input', 'path', 'file', 'filename', 'image', 'url', 'uri'];

const URL_RE = /^https?:\/\//i;
const SCHEME_RE = /^([a-z][a-z0-9+.-]*):\/\//i;

export function isImagePath(p: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(p).toLowerCase());
}

export function isListPath(p: string): boolean {
  return LIST_EXTENSIONS.includes(path.extname(p).toLowerCase());
}

/** One listed entry → an item; relative paths are relative to `base` (the list file's folder, or the cwd). */
function itemOf(entry: string, base: string): Omit<InputItem, 'index'> {
  if (URL_RE.test(entry)) return { key: entry, source: entry, kind: 'url' };
  const scheme = SCHEME_RE.exec(entry);
  if (scheme && scheme[1]!.length > 1) {
    return { key: entry, source: entry, kind: 'url', error: `unsupported URL scheme ${scheme[1]}: (predict reads http and https URLs; mount the storage and list local paths instead)` };
  }
  return { key: entry, source: path.resolve(base, entry), kind: 'file' };
}

/** Image files under `dir`, depth first, names in code-point order; hidden entries are skipped. */
async function* walk(dir: string, shown: string): AsyncGenerator<Omit<InputItem, 'index'>> {
  const entries = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    const key = path.join(shown, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) isDir = await fs.stat(full).then((s) => s.isDirectory(), () => false);
    if (isDir) yield* walk(full, key);
    else if (isImagePath(e.name)) yield { key, source: full, kind: 'file' };
  }
}

async function* lines(stream: Readable): AsyncGenerator<string> {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const raw of rl) {
    const line = raw.trim();
    if (line && !line.startsWith('#')) yield line;
  }
}

/**
 * A CSV list: the column named like LIST_COLUMNS if the first row is such a header, else the first column. A row
 * without a value in that column becomes an error row (keyed FILE:LINE), never a silent gap; a file csv-parse cannot
 * read (an unclosed quote) is CSV_INVALID naming the line.
 */
async function* csvColumn(file: string, base: string): AsyncGenerator<Omit<InputItem, 'index'>> {
  const delimiter = path.extname(file).toLowerCase() === '.tsv' ? '\t' : ',';
  const parser = createReadStream(file).pipe(parse({ bom: true, delimiter, relax_column_count: true, skip_empty_lines: true, trim: true, info: true }));
  let column = 0;
  let name: string | undefined;
  let first = true;
  // Where the record being read starts: after the previous record's last line and any blank lines.
  let prevEnd = 0;
  let prevEmpty = 0;
  let start = 1;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number; empty_lines: number } }>) {
      start = prevEnd + 1 + (info.empty_lines - prevEmpty);
      prevEnd = info.lines;
      prevEmpty = info.empty_lines;
      if (first) {
        first = false;
        const named = record.findIndex((h) => LIST_COLUMNS.includes(h.toLowerCase()));
        if (named >= 0) {
          column = named;
          name = record[named];
          continue;
        }
      }
      const cell = record[column];
      if (cell) yield itemOf(cell, base);
      else {
        const where = `${file}:${start}`;
        yield { key: where, source: where, kind: 'file', error: `line ${start} of ${file} has no ${name ? `"${name}"` : 'first'} column value (${record.length} field(s)): nothing to predict` };
      }
    }
  } catch (err) {
    const e = err as { code?: string };
    if (e.code?.startsWith('CSV_')) throw csvParseError(file, err, prevEnd + 1);
    throw err;
  }
}

/** Check every argument before any work: a missing path is a mistake to report, not an empty listing. */
export async function checkInputArgs(args: readonly string[]): Promise<void> {
  if (args.length === 0) throw new MlctlError('PREDICT_INPUT', ['(none)', 'give image files, folders, a list file (.txt/.csv) or - for paths on stdin']);
  if (args.filter((a) => a === '-').length > 1) throw new MlctlError('PREDICT_INPUT', ['-', 'stdin can be read only once']);
  for (const arg of args) {
    if (arg === '-' || URL_RE.test(arg)) continue;
    const stat = await fs.stat(arg).catch(() => undefined);
    if (!stat) throw new MlctlError('PREDICT_INPUT', [arg, 'no such file or folder']);
    if (stat.isFile() && !isImagePath(arg) && !isListPath(arg)) {
      throw new MlctlError('PREDICT_INPUT', [arg, `is neither an image (${IMAGE_EXTENSIONS.join(', ')}) nor a list of inputs (${LIST_EXTENSIONS.join(', ')})`]);
    }
  }
}

export interface ListOptions {
  /** Readable for `-` (default process.stdin). */
  stdin?: Readable;
}

async function* entriesOf(arg: string, opts: ListOptions): AsyncGenerator<Omit<InputItem, 'index'>> {
  if (arg === '-') {
    for await (const line of lines(opts.stdin ?? process.stdin)) yield itemOf(line, process.cwd());
    return;
  }
  if (URL_RE.test(arg)) {
    yield itemOf(arg, process.cwd());
    return;
  }
  const stat = await fs.stat(arg);
  if (stat.isDirectory()) {
    yield* walk(path.resolve(arg), arg);
    return;
  }
  if (isImagePath(arg)) {
    yield { key: arg, source: path.resolve(arg), kind: 'file' };
    return;
  }
  const base = path.dirname(path.resolve(arg));
  const ext = path.extname(arg).toLowerCase();
  if (ext === '.csv' || ext === '.tsv') yield* csvColumn(arg, base);
  else for await (const entry of lines(createReadStream(arg))) yield itemOf(entry, base);
}

/** Every input of every argument, in order, numbered. */
export async function* listInputs(args: readonly string[], opts: ListOptions = {}): AsyncGenerator<InputItem> {
  let index = 0;
  for (const arg of args) {
    for await (const entry of entriesOf(arg, opts)) yield { index: index++, ...entry };
  }
}

/** True when the listing can be read twice (no stdin): then a first pass can count it for the progress bar. */
export function isReListable(args: readonly string[]): boolean {
  return !args.includes('-');
}

// Where prediction rows go: stdout, or a file that only ever grows by whole lines — each chunk is one append
// followed by fsync, and a failed append is cut back — so a killed run leaves a file `--resume` can continue.
// A finished run leaves <out>.summary.json beside it (what ran, on which shard): `--merge` checks it.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { FingerprintSet } from './fingerprints.js';
import { fileHeader, type OutputFormat, type RowLayout } from './rows.js';

export interface RowSink {
  /** Append whole lines (already formatted); durable before it resolves when writing a file. */
  write(text: string): Promise<void>;
  close(): Promise<void>;
  /** Inputs already in the file (resume), by key; empty for a new file. */
  done: FingerprintSet;
  /** Rows found in the file when resuming. */
  resumedRows: number;
  /** Errors among the resumed rows. */
  resumedErrors: number;
  /** The output file (undefined for stdout). */
  file?: string;
}

export interface OutputOptions {
  layout: RowLayout;
  resume?: boolean;
  force?: boolean;
  logger?: Logger;
}

export interface StoredRow {
  index: number;
  input: string;
  error: boolean;
  /** The row exactly as stored, ending in a newline. */
  raw: string;
}

export const SUMMARY_SUFFIX = '.summary.json';
export const summaryPath = (out: string) => `${out}${SUMMARY_SUFFIX}`;

/** Rows of an output file in stored order (CSV header skipped), with their raw text for merging. */
export async function* readRows(file: string, format: OutputFormat): AsyncGenerator<StoredRow> {
  if (format === 'jsonl') {
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      line++;
      if (!text.trim()) continue;
      let doc: { index?: unknown; input?: unknown; error?: unknown };
      try {
        doc = JSON.parse(text) as typeof doc;
      } catch {
        throw new MlctlError('PREDICT_OUTPUT', [file, `line ${line} is not JSON; it was not written by mlctl predict --format jsonl`]);
      }
      if (typeof doc.index !== 'number' || typeof doc.input !== 'string') throw new MlctlError('PREDICT_OUTPUT', [file, `line ${line} has no index/input`]);
      yield { index: doc.index, input: doc.input, error: typeof doc.error === 'string', raw: text + '\n' };
    }
    return;
  }
  let first = true;
  let errorCol = -1;
  const parser = createReadStream(file).pipe(parse({ raw: true, relax_column_count: true, bom: true }));
  for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
    if (first) {
      first = false;
      if (record[0] !== 'index' || record[1] !== 'input') throw new MlctlError('PREDICT_OUTPUT', [file, `its header is "${record.slice(0, 3).join(',')}…", not mlctl predict's "index,input,…"`]);
      errorCol = record.indexOf('error');
      continue;
    }
    const index = Number(record[0]);
    if (!Number.isInteger(index)) throw new MlctlError('PREDICT_OUTPUT', [file, `a row has index "${record[0]}"`]);
    yield { index, input: record[1] ?? '', error: errorCol >= 0 && Boolean(record[errorCol]), raw: raw.endsWith('\n') ? raw : raw + '\n' };
  }
}

/** The first line of a file (the CSV header), without reading the rest. */
async function firstLine(file: string): Promise<string> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) return line + '\n';
  return '';
}

/**
 * Cut a trailing partial line (a write interrupted by power loss or a full disk): everything after the last
 * newline. Returns the bytes removed.
 */
export async function trimPartialLine(file: string): Promise<number> {
  const handle = await fs.open(file, 'r+');
  try {
    const { size } = await handle.stat();
    let end = size;
    const buf = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await handle.read(buf, 0, end - start, start);
      const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl >= 0) {
        const keep = start + nl + 1;
        if (keep < size) await handle.truncate(keep);
        return size - keep;
      }
      end = start;
    }
    if (size > 0) await handle.truncate(0);
    return size;
  } finally {
    await handle.close();
  }
}

function stdoutSink(): RowSink {
  return {
    done: new FingerprintSet(),
    resumedRows: 0,
    resumedErrors: 0,
    write: (text) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
      }),
    close: async () => {},
  };
}

/** Append `text` in one write + fsync; on failure cut the file back to where it was, so no partial line stays. */
async function appendDurably(handle: fs.FileHandle, text: string, file: string): Promise<void> {
  const { size } = await handle.stat();
  const bytes = Buffer.from(text, 'utf8');
  try {
    let off = 0;
    while (off < bytes.length) off += (await handle.write(bytes, off, bytes.length - off)).bytesWritten;
    await handle.sync();
  } catch (err) {
    await handle.truncate(size).catch(() => {});
    throw new MlctlError('PREDICT_OUTPUT', [file, `writing failed (${(err as Error).message}); the rows written before are intact, continue with --resume`], { cause: err });
  }
}

/** Open the output: stdout when `file` is undefined, else a new file, a replaced one (--force) or a resumed one. */
export async function openOutput(file: string | undefined, opts: OutputOptions): Promise<RowSink> {
  const header = fileHeader(opts.layout);
  if (file === undefined) {
    if (header) process.stdout.write(header);
    return stdoutSink();
  }
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat && !stat.isFile()) throw new MlctlError('PREDICT_OUTPUT', [file, 'it is a folder (or not a regular file): give --out a file name, e.g. predictions.csv']);
  const exists = Boolean(stat);
  if (exists && !opts.resume && !opts.force) throw new MlctlError('PREDICT_OUTPUT', [file, 'it exists: pass --resume to continue it, or --force to start it again']);
  await fs.rm(summaryPath(file), { force: true });
  const done = new FingerprintSet();
  let resumedRows = 0;
  let resumedErrors = 0;
  if (exists && opts.resume) {
    const cut = await trimPartialLine(file);
    if (cut > 0) opts.logger?.warn(`${file}: removed an unfinished last line (${cut} bytes) left by an interrupted write`);
    const existing = await firstLine(file);
    if (header && existing && existing !== header) {
      throw new MlctlError('PREDICT_OUTPUT', [file, `it has columns "${existing.trim()}", this run writes "${header.trim()}": resume with the same --format and --top-k, or start a new file`]);
    }
    if (existing) {
      for await (const row of readRows(file, opts.layout.format)) {
        done.add(row.input);
        resumedRows++;
        if (row.error) resumedErrors++;
      }
    }
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const handle = await fs.open(file, exists && opts.resume ? 'a' : 'w');
  if ((await handle.stat()).size === 0 && header) await appendDurably(handle, header, file);
  return {
    file,
    done,
    resumedRows,
    resumedErrors,
    write: (text) => appendDurably(handle, text, file),
    close: () => handle.close(),
  };
}

/** What a finished (shard) run records beside its output; --merge checks these agree and cover every shard. */
export interface RunSummary {
  kind: 'mlctl-predict';
  format: OutputFormat;
  shard: { index: number; count: number };
  model: { name: string; version: number; manifestSha256: string };
  topK: number;
  inputs: string[];
  rows: number;
  errors: number;
  finishedAt: string;
}

export async function writeSummary(out: string, summary: RunSummary): Promise<void> {
  await writeJsonAtomic(summaryPath(out), summary);
}

export async function readSummary(out: string): Promise<RunSummary | undefined> {
  const text = await fs.readFile(summaryPath(out), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const doc = JSON.parse(text) as RunSummary;
  if (doc.kind !== 'mlctl-predict') throw new MlctlError('PREDICT_MERGE', [`${summaryPath(out)} is not an mlctl predict summary`]);
  return doc;
}

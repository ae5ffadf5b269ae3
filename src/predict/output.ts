// Where prediction rows go: stdout, or a file that only ever grows by whole lines — each chunk is one append
// followed by fsync, and a failed append is cut back — so a killed run leaves a file `--resume` can continue.
// Beside the file, <out>.summary.json records the run (model, inputs, shard, columns) and the file's size and sha256
// as mlctl left it, written ahead of every append: --resume continues only the same run over an unchanged file, and
// --merge takes only finished, unchanged shard outputs.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { writeFileAtomic } from '../artifacts/atomic.js';
import { csvTextOf } from '../data/csv.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { FingerprintSet } from './fingerprints.js';
import { fileHeader, type OutputFormat, type RowLayout } from './rows.js';

export interface RowSink {
  /** Append whole lines (already formatted); durable before it resolves when writing a file. */
  write(text: string): Promise<void>;
  /** The run is complete: record it as finished with its counts (a file output; nothing for stdout). */
  finish(counts: { rows: number; errors: number }): Promise<void>;
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
  /** What this run is: a resumed file must have been written by the same one. */
  run: RunIdentity;
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
    yield { index, input: csvTextOf(record[1] ?? ''), error: errorCol >= 0 && Boolean(record[errorCol]), raw: raw.endsWith('\n') ? raw : raw + '\n' };
  }
}

/** The first line of a file (the CSV header), without reading the rest. */
async function firstLine(file: string): Promise<string> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) return line + '\n';
  return '';
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
    finish: async () => {},
    close: async () => {},
  };
}

/** Append `text` in one write + fsync; on failure cut the file back to where it was, so no partial line stays. */
async function appendDurably(handle: fs.FileHandle, bytes: Buffer, file: string): Promise<void> {
  const { size } = await handle.stat();
  try {
    let off = 0;
    while (off < bytes.length) off += (await handle.write(bytes, off, bytes.length - off)).bytesWritten;
    await handle.sync();
  } catch (err) {
    await handle.truncate(size).catch(() => {});
    throw new MlctlError('PREDICT_OUTPUT', [file, `writing failed (${(err as Error).message}); the rows written before are intact, continue with --resume`], { cause: err });
  }
}

/** A file's size and the sha256 of its first `bytes` bytes (all of it by default). */
export async function fileState(file: string, bytes?: number): Promise<FileState> {
  const hash = createHash('sha256');
  let n = 0;
  if (bytes !== 0) {
    for await (const chunk of createReadStream(file, bytes === undefined ? {} : { end: bytes - 1 })) {
      hash.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
  }
  return { bytes: n, sha256: hash.digest('hex') };
}

const sameState = (a: FileState | undefined, b: FileState | undefined) => Boolean(a && b && a.bytes === b.bytes && a.sha256 === b.sha256);
const describeState = (s: FileState) => `${s.bytes} bytes, sha256 ${s.sha256.slice(0, 12)}…`;

/** Why `record` (the run that wrote a file) is not the run `run` asks to continue; undefined when it is. */
function otherRun(record: RunSummary, run: RunIdentity): string | undefined {
  const m = record.model;
  if (m.manifestSha256 !== run.model.manifestSha256) return `it holds rows of ${m.name} v${m.version} (mlctl.json sha256 ${m.manifestSha256.slice(0, 12)}…), this run uses ${run.model.name} v${run.model.version} (${run.model.manifestSha256.slice(0, 12)}…): rows of two models must not mix`;
  if (JSON.stringify(record.inputs) !== JSON.stringify(run.inputs)) return `it was made from the inputs ${JSON.stringify(record.inputs)}, this run lists ${JSON.stringify(run.inputs)}: its index column would not match`;
  if (record.shard.index !== run.shard.index || record.shard.count !== run.shard.count) return `it is shard ${record.shard.index}/${record.shard.count}, this run is ${run.shard.index}/${run.shard.count}`;
  if (record.format !== run.format || record.topK !== run.topK) return `it was written as ${record.format} with --top-k ${record.topK}, this run writes ${run.format} with --top-k ${run.topK}`;
  if (JSON.stringify(record.detection ?? {}) !== JSON.stringify(run.detection ?? {})) return `it was written with detection limits ${JSON.stringify(record.detection ?? {})}, this run has ${JSON.stringify(run.detection ?? {})} (--min-score, --max-detections)`;
  return undefined;
}

/**
 * Check a file to resume against what mlctl recorded of it, cutting back an append a crash interrupted. Returns the
 * state to continue from; PREDICT_RESUME when the file holds anything mlctl did not write (edited, added or removed
 * rows).
 */
async function settleFile(file: string, record: RunSummary, logger?: Logger): Promise<FileState> {
  const now = await fileState(file);
  if (sameState(now, record.written)) return now;
  if (sameState(now, record.appending)) return now; // the append landed; only its record did not follow
  const base = record.written;
  if (now.bytes > base.bytes && sameState(await fileState(file, base.bytes), base)) {
    // Beyond the intact part: an append cut short (shorter than the one recorded ahead of it), or a torn last line.
    const tail = now.bytes - base.bytes;
    const torn = record.appending ? now.bytes < record.appending.bytes : !(await hasNewlineAfter(file, base.bytes));
    if (torn) {
      await fs.truncate(file, base.bytes);
      logger?.warn(`${file}: removed the end of an interrupted write (${tail} bytes); its rows are done again`);
      return base;
    }
  }
  throw new MlctlError('PREDICT_RESUME', [file, `it changed after mlctl wrote it (now ${describeState(now)}; mlctl left ${describeState(base)}): rows were added, edited or removed, so none of it can be trusted — start it again with --force`]);
}

async function hasNewlineAfter(file: string, offset: number): Promise<boolean> {
  for await (const chunk of createReadStream(file, { start: offset })) if ((chunk as Buffer).includes(0x0a)) return true;
  return false;
}

/**
 * Open the output: stdout when `file` is undefined, else a new file, a replaced one (--force) or a resumed one (the
 * same run, over a file exactly as mlctl left it).
 */
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
  const resuming = exists && Boolean(opts.resume);
  const done = new FingerprintSet();
  let resumedRows = 0;
  let resumedErrors = 0;
  let state: FileState = { bytes: 0, sha256: createHash('sha256').digest('hex') };
  let startedAt = new Date().toISOString();
  if (resuming) {
    const record = await readSummary(file).catch(() => undefined);
    if (!record) throw new MlctlError('PREDICT_RESUME', [file, `there is no run record (${path.basename(summaryPath(file))}) beside it, so which model and inputs wrote it cannot be checked: start it again with --force`]);
    const other = otherRun(record, opts.run);
    if (other) throw new MlctlError('PREDICT_RESUME', [file, `${other}; resume with the same model, inputs, --shard, --format and --top-k, or start it again with --force`]);
    state = await settleFile(file, record, opts.logger);
    startedAt = record.startedAt ?? startedAt;
    const existing = await firstLine(file);
    if (header && existing && existing !== header) {
      throw new MlctlError('PREDICT_OUTPUT', [file, `it has columns "${existing.trim()}", this run writes "${header.trim()}": resume with the same --format and --top-k, or start a new file`]);
    }
    if (existing) {
      let last: number | undefined;
      for await (const row of readRows(file, opts.layout.format)) {
        // Inputs, not lines: a task may write several lines per input (detection: one per box).
        if (row.index === last) continue;
        last = row.index;
        done.add(row.input);
        resumedRows++;
        if (row.error) resumedErrors++;
      }
    }
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const handle = await fs.open(file, resuming ? 'a' : 'w');
  // The hash of what is in the file so far, carried forward append by append.
  const hash: Hash = createHash('sha256');
  if (state.bytes) for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const record = (extra: Partial<RunSummary> = {}): RunSummary => ({ kind: 'mlctl-predict', ...opts.run, startedAt, written: state, ...extra });
  const save = (doc: RunSummary) => writeFileAtomic(summaryPath(file), JSON.stringify(doc, null, 2) + '\n', { syncDir: true });
  const append = async (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    const next: FileState = { bytes: state.bytes + bytes.length, sha256: hash.copy().update(bytes).digest('hex') };
    // Written ahead: after a crash the file is `written`, `appending`, or cut short in between.
    await save(record({ appending: next }));
    await appendDurably(handle, bytes, file);
    hash.update(bytes);
    state = next;
  };
  let finished = false;
  try {
    await save(record());
    if (state.bytes === 0 && header) await append(header);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return {
    file,
    done,
    resumedRows,
    resumedErrors,
    write: append,
    async finish({ rows, errors }) {
      await save(record({ rows: rows + resumedRows, errors: errors + resumedErrors, finishedAt: new Date().toISOString() }));
      finished = true;
    },
    async close() {
      // An unfinished run (interrupted, failed) leaves a record of exactly what is in the file, for --resume.
      if (!finished) await save(record()).catch(() => {});
      await handle.close();
    },
  };
}

/** What a run is: --resume continues only the same one, --merge joins shards of the same one. */
export interface RunIdentity {
  format: OutputFormat;
  shard: { index: number; count: number };
  model: { name: string; version: number; manifestSha256: string };
  topK: number;
  inputs: string[];
  /** Detection limits the run was given (--min-score, --max-detections), when any. */
  detection?: { minScore?: number; maxDetections?: number };
}

/** Size and sha256 of an output file. */
export interface FileState {
  bytes: number;
  sha256: string;
}

/** The record beside an output (<out>.summary.json): the run, and the file as mlctl left it. */
export interface RunSummary extends RunIdentity {
  kind: 'mlctl-predict';
  startedAt: string;
  /** The output as mlctl last left it: --resume and --merge refuse a file that differs. */
  written: FileState;
  /** An append in progress, recorded before it starts. */
  appending?: FileState;
  /** Rows and error rows in the file, once the run finished. */
  rows?: number;
  errors?: number;
  /** Set once every input of the run (its shard) has a row. */
  finishedAt?: string;
}

export async function writeSummary(out: string, summary: RunSummary): Promise<void> {
  await writeFileAtomic(summaryPath(out), JSON.stringify(summary, null, 2) + '\n', { syncDir: true });
}

export async function readSummary(out: string): Promise<RunSummary | undefined> {
  const text = await fs.readFile(summaryPath(out), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let doc: RunSummary;
  try {
    doc = JSON.parse(text) as RunSummary;
  } catch {
    throw new MlctlError('PREDICT_MERGE', [`${summaryPath(out)} is not JSON`]);
  }
  if (doc.kind !== 'mlctl-predict' || !doc.written) throw new MlctlError('PREDICT_MERGE', [`${summaryPath(out)} is not an mlctl predict run record`]);
  return doc;
}

// `mlctl predict --merge`: join the per-shard outputs of an Indexed Job into the file one unsharded run writes.
// Each shard's rows are in listing order, so a k-way merge on the `index` column restores the whole order while
// holding one row per shard. Refuses sets that are incomplete, mixed or overlapping, and shard outputs that are not
// exactly what their run left (a row deleted or added after it finished).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { fileState, readRows, readSummary, SUMMARY_SUFFIX, summaryPath, writeSummary, type RunSummary, type StoredRow } from './output.js';
import { formatForPath } from './rows.js';

export interface MergeResult {
  out: string;
  shards: number;
  rows: number;
  errors: number;
  format: RunSummary['format'];
  model: RunSummary['model'];
}

/** Shard outputs named on the command line; a folder stands for every finished output in it. */
async function expand(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const stat = await fs.stat(p).catch(() => undefined);
    if (!stat) throw new MlctlError('PREDICT_MERGE', [`${p} does not exist`]);
    if (!stat.isDirectory()) {
      files.push(p);
      continue;
    }
    const names = (await fs.readdir(p)).filter((n) => n.endsWith(SUMMARY_SUFFIX)).sort();
    files.push(...names.map((n) => path.join(p, n.slice(0, -SUMMARY_SUFFIX.length))));
  }
  if (files.length === 0) throw new MlctlError('PREDICT_MERGE', [`no finished shard outputs in ${paths.join(', ')} (each has a ${SUMMARY_SUFFIX} beside it)`]);
  return [...new Set(files.map((f) => path.resolve(f)))];
}

/** The summaries agree (same model, format, columns, inputs, shard count) and name every shard exactly once. */
export function checkShardSet(entries: Array<{ file: string; summary: RunSummary }>): void {
  const first = entries[0]!.summary;
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const { file, summary: s } of entries) {
    const differs =
      s.model.manifestSha256 !== first.model.manifestSha256 ? `model ${s.model.name} v${s.model.version} vs ${first.model.name} v${first.model.version}` :
      s.format !== first.format ? `format ${s.format} vs ${first.format}` :
      s.topK !== first.topK ? `--top-k ${s.topK} vs ${first.topK}` :
      s.shard.count !== first.shard.count ? `${s.shard.count} shards vs ${first.shard.count}` :
      !same(s.inputs, first.inputs) ? `inputs ${JSON.stringify(s.inputs)} vs ${JSON.stringify(first.inputs)}` : undefined;
    if (differs) throw new MlctlError('PREDICT_MERGE', [`${file} comes from a different run than ${entries[0]!.file} (${differs})`]);
  }
  const n = first.shard.count;
  const seen = new Map<number, string>();
  for (const { file, summary } of entries) {
    const prior = seen.get(summary.shard.index);
    if (prior) throw new MlctlError('PREDICT_MERGE', [`${prior} and ${file} are both shard ${summary.shard.index}/${n}`]);
    seen.set(summary.shard.index, file);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) throw new MlctlError('PREDICT_MERGE', [`shard(s) ${missing.slice(0, 20).map((i) => `${i}/${n}`).join(', ')}${missing.length > 20 ? ', …' : ''} missing: pass every shard's output`]);
}

interface Head {
  row: StoredRow;
  it: AsyncIterator<StoredRow>;
  file: string;
}

/** Min-heap on row index. */
function heapPush(h: Head[], x: Head): void {
  h.push(x);
  for (let i = h.length - 1; i > 0; ) {
    const p = (i - 1) >> 1;
    if (h[p]!.row.index <= h[i]!.row.index) break;
    [h[p], h[i]] = [h[i]!, h[p]!];
    i = p;
  }
}

function heapPop(h: Head[]): Head {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length) {
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.row.index < h[m]!.row.index) m = l;
      if (r < h.length && h[r]!.row.index < h[m]!.row.index) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
  return top;
}

/** Buffered output: stdout, or a temporary sibling renamed over `out` once complete and fsync'd. */
async function openMergeTarget(out: string | undefined, force: boolean) {
  if (!out) {
    return { write: async (s: string) => void (await new Promise<void>((res, rej) => process.stdout.write(s, (e) => (e ? rej(e) : res())))), commit: async () => {}, abort: async () => {} };
  }
  if (!force && (await fs.stat(out).then(() => true, () => false))) throw new MlctlError('PREDICT_OUTPUT', [out, 'it exists: pass --force to replace it']);
  await fs.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await fs.open(tmp, 'w');
  return {
    write: async (s: string) => void (await handle.write(s)),
    commit: async () => {
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, out);
    },
    abort: async () => {
      await handle.close().catch(() => {});
      await fs.rm(tmp, { force: true });
    },
  };
}

export async function mergeShards(paths: readonly string[], out: string | undefined, opts: { force?: boolean; logger?: Logger } = {}): Promise<MergeResult> {
  const files = await expand(paths);
  const entries: Array<{ file: string; summary: RunSummary }> = [];
  for (const file of files) {
    const summary = await readSummary(file);
    if (!summary?.finishedAt) throw new MlctlError('PREDICT_MERGE', [`${file} ${summary ? 'is unfinished' : `has no ${path.basename(summaryPath(file))}`}: its run did not finish (run it again with --resume)`]);
    // The rows must be exactly what the run left: a row removed (or added) later would go missing from the merge.
    const now = await fileState(file).catch(() => undefined);
    if (!now) throw new MlctlError('PREDICT_MERGE', [`${file} cannot be read`]);
    if (now.bytes !== summary.written.bytes || now.sha256 !== summary.written.sha256) {
      throw new MlctlError('PREDICT_MERGE', [`${file} changed after its run finished (now ${now.bytes} bytes, sha256 ${now.sha256.slice(0, 12)}…; the run left ${summary.written.bytes} bytes, ${summary.written.sha256.slice(0, 12)}…): rows were removed, added or edited — run that shard again with --force`]);
    }
    entries.push({ file, summary });
  }
  checkShardSet(entries);
  const first = entries[0]!.summary;
  if (out && formatForPath(out) !== first.format && /\.(csv|jsonl|ndjson)$/i.test(out)) {
    throw new MlctlError('PREDICT_MERGE', [`the shards are ${first.format} but --out ${out} names another format`]);
  }
  const target = await openMergeTarget(out, Boolean(opts.force));
  try {
    const heap: Head[] = [];
    for (const { file } of entries) {
      const it = readRows(file, first.format)[Symbol.asyncIterator]();
      const next = await it.next();
      if (!next.done) heapPush(heap, { row: next.value, it, file });
    }
    if (first.format === 'csv') {
      const header = (await fs.readFile(entries[0]!.file, 'utf8').then((t) => t.slice(0, t.indexOf('\n') + 1)));
      await target.write(header);
    }
    let rows = 0;
    let errors = 0;
    let last = -1;
    let lastFile = '';
    let buf = '';
    while (heap.length) {
      const head = heapPop(heap);
      const { row } = head;
      // Several lines of one input (detection: one per box) follow each other in its shard's file.
      const sameInput = row.index === last && head.file === lastFile;
      if (row.index < last || (row.index === last && !sameInput)) throw new MlctlError('PREDICT_MERGE', [`${head.file}: row index ${row.index} comes after ${last} (a shard listed its inputs in another order, or two shards wrote the same input): re-run that shard`]);
      last = row.index;
      lastFile = head.file;
      buf += row.raw;
      if (!sameInput) {
        rows++;
        if (row.error) errors++;
      }
      if (buf.length > 1 << 20) {
        await target.write(buf);
        buf = '';
      }
      const next = await head.it.next();
      if (!next.done) heapPush(heap, { ...head, row: next.value });
    }
    const expected = entries.reduce((a, e) => a + (e.summary.rows ?? 0), 0);
    if (expected !== rows) throw new MlctlError('PREDICT_MERGE', [`the shard runs wrote ${expected} rows but their files hold ${rows}: run the shards again with --force`]);
    await target.write(buf);
    await target.commit();
    if (out) {
      const now = new Date().toISOString();
      const { startedAt: _s, appending: _a, ...run } = first;
      await writeSummary(out, { ...run, shard: { index: 0, count: 1 }, startedAt: now, written: await fileState(out), rows, errors, finishedAt: now });
    }
    return { out: out ?? '-', shards: first.shard.count, rows, errors, format: first.format, model: first.model };
  } catch (err) {
    await target.abort();
    throw err;
  }
}

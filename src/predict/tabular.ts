// `mlctl predict` for tabular (classic) packages: each CSV file's rows encoded with the package's recorded encoding
// (data/tabular.ts tabularRowsForPackage, as evaluate does), one output row per CSV row keyed "<file>:<line>".
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { tabularRowsForPackage } from '../data/tabular.js';
import { MlctlError } from '../errors.js';
import { runFloat } from '../runtime/float.js';
import { createProgress } from '../util/progress.js';
import { formatShard, inShard, WHOLE } from '../util/shard.js';
import { chunkRows, finishRun, layoutFor, openCheckedEngine, rowWriter, startRun, type PredictOptions, type PredictResult } from './run.js';

export async function predictTabular(pkg: LoadedPackage, opts: PredictOptions): Promise<PredictResult> {
  const m = pkg.manifest;
  const bad = opts.inputs.find((f) => f === '-' || !/\.(csv|tsv|txt)$/i.test(f));
  if (bad !== undefined) throw new MlctlError('PREDICT_INPUT', [bad, `model ${m.name} takes tabular rows: pass CSV files with the columns it was trained on`]);
  if (opts.format === 'coco') throw new MlctlError('OPTION_CONFLICT', [`--format coco writes detections; ${m.name} v${m.version} predicts table rows: use --format csv or jsonl`]);
  const shard = opts.shard ?? WHOLE;
  const layout = layoutFor(pkg, opts.format, opts.topK);
  const sink = await startRun(pkg, opts, layout);
  let engine: Awaited<ReturnType<typeof openCheckedEngine>> | undefined;
  try {
    const t0 = performance.now();
    const progress = createProgress({ label: `predicting with ${m.name} v${m.version}${shard.count > 1 ? ` shard ${formatShard(shard)}` : ''}`, unit: 'rows', logger: opts.logger });
    const writer = rowWriter(sink, layout, progress);
    let index = 0;
    let interrupted = false;
    for (const file of opts.inputs) {
      const encoded = await tabularRowsForPackage(m, path.resolve(file));
      const width = encoded.x.length / Math.max(1, encoded.rows);
      engine ??= await openCheckedEngine(pkg, [width], opts);
      const todo: Array<{ index: number; key: string; row: number }> = [];
      for (let r = 0; r < encoded.rows; r++) {
        const key = `${file}:${encoded.lines[r]!}`;
        if (inShard(key, shard) && !sink.done.has(key)) todo.push({ index: index + r, key, row: r });
      }
      index += encoded.rows;
      for (let s = 0; s < todo.length && !interrupted; s += opts.batchSize) {
        const items = todo.slice(s, s + opts.batchSize);
        const x = new Float32Array(items.length * width);
        items.forEach((it, i) => x.set(encoded.x.subarray(it.row * width, (it.row + 1) * width), i * width));
        const out = await runFloat(engine, x, items.length);
        writer.push(chunkRows(items, items.map(() => undefined), out, pkg));
        interrupted = Boolean(opts.shouldStop?.());
      }
      if (interrupted) break;
    }
    await writer.flush();
    progress.done(`${writer.counts().rows} row(s)`);
    // Every input file has at least one row (readCsv refuses empty ones), so the engine was opened.
    return await finishRun(pkg, engine!, opts, sink, writer, layout, t0, interrupted, undefined);
  } finally {
    await engine?.dispose();
    await sink.close();
  }
}

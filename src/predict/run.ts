// `mlctl predict` for image packages: list → shard/resume filter → decode (prefetching the next chunks while the
// engine runs) → one engine batch per chunk → top-k rows appended durably in input order. Memory is a few chunk
// buffers whatever the number of inputs.
import type { Readable } from 'node:stream';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { LoadedPackage } from '../artifacts/package.js';
import { defaultConcurrency } from '../data/batches.js';
import { imageTensorShape } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import { floatIO, runFloat } from '../runtime/float.js';
import { requireTask, type DetectionLimits, type ResultContext } from '../tasks/index.js';
import { detectorEngine, isImportedDetector, runDetector, type DetectorRun } from '../tasks/detection/engine.js';
import { floatOutputs } from '../tasks/outputs.js';
import type { Logger } from '../util/log.js';
import { createProgress, type Progress } from '../util/progress.js';
import { formatShard, inShard, WHOLE, type Shard } from '../util/shard.js';
import { decodeChunk, limiter, type DecodedChunk, type DecodeOptions } from './decode.js';
import { isReListable, listInputs, type InputItem } from './inputs.js';
import { openOutput, type RowSink } from './output.js';
import { cocoRowsPath, readCocoImageIds, writeCocoResults } from './coco.js';
import { formatRow, type OutputFormat, type PredictionRow, type RowLayout } from './rows.js';

export interface PredictOptions {
  inputs: string[];
  /** Output file; stdout when undefined. */
  out?: string;
  /** Row files, or a COCO results file (detection; its rows are kept beside it, see coco.ts). */
  format: OutputFormat | 'coco';
  /** --format coco: a COCO annotations file whose image ids the results use (else listing position + 1). */
  cocoImages?: string;
  topK: number;
  /** Detection models: score threshold and most boxes per image (absent: the manifest's). */
  detection?: DetectionLimits;
  batchSize: number;
  engine?: EngineChoice;
  /** Decodes (and downloads) in flight (default 2 x cores). */
  concurrency?: number;
  shard?: Shard;
  resume?: boolean;
  force?: boolean;
  decode?: DecodeOptions;
  logger: Logger;
  stdin?: Readable;
  /** Checked between chunks: true stops after the current chunk is written (SIGINT/SIGTERM). */
  shouldStop?: () => boolean;
}

export interface PredictResult {
  model: { name: string; version: number; manifestSha256: string };
  engine: { name: string; description: string };
  out: string;
  format: OutputFormat | 'coco';
  shard: string;
  /** --format coco: the rows the results file was made from, and what it holds. */
  coco?: { rows: string; detections: number; images: number };
  /** Inputs this run predicted (rows written now), how many failed, and how many a resumed file already had. */
  rows: number;
  errors: number;
  resumed: { rows: number; errors: number };
  /** Inputs of the listing in this shard and not yet done, when the listing could be counted. */
  planned?: number;
  seconds: number;
  imagesPerSecond: number;
  interrupted: boolean;
}

/** The rows a package's task writes: its columns (top-k labels, a value …) in the chosen file format. */
export function layoutFor(pkg: LoadedPackage, format: OutputFormat, k: number): RowLayout {
  const m = pkg.manifest;
  return { format, task: requireTask(m, 'predict', pkg.dir).rows(m, { topK: k }) };
}

/** The engine for a package, checked against the manifest's input and its task's output size. */
export async function openCheckedEngine(pkg: LoadedPackage, want: number[], opts: { engine?: EngineChoice; logger: Logger }): Promise<InferenceEngine> {
  const m = pkg.manifest;
  const outputs = requireTask(m, 'predict', pkg.dir).outputSize(m);
  const engine = await openEngine(pkg, { engine: opts.engine ?? 'auto', logger: opts.logger });
  let io: ReturnType<typeof floatIO>;
  try {
    io = floatIO(engine);
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  const shapeOk = io.inputShape.length === want.length && io.inputShape.every((d, i) => d === -1 || d === want[i]);
  if (!shapeOk || (io.outputSize !== outputs && io.outputSize !== -1)) {
    await engine.dispose();
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `the model takes [${io.inputShape.join(', ')}] and outputs ${io.outputSize} values, but the manifest describes [${want.join(', ')}] and ${outputs} outputs`]);
  }
  return engine;
}

/** An imported detector's engine as the detection task runs it (checked against the manifest's image input). */
async function openDetector(pkg: LoadedPackage, opts: { engine?: EngineChoice; logger: Logger }): Promise<InferenceEngine> {
  const engine = await openEngine(pkg, { engine: opts.engine ?? 'auto', logger: opts.logger });
  try {
    return detectorEngine(engine, pkg.manifest, pkg.dir);
  } catch (err) {
    await engine.dispose();
    throw err;
  }
}

/**
 * Rows for a chunk: the task's results for the decoded items (`decoded` of them in `out`, with where their pictures
 * landed and any detection limits in `ctx`), errors in place, in item order.
 */
export function chunkRows(items: readonly Pick<InputItem, 'index' | 'key'>[], errors: ReadonlyArray<string | undefined>, out: Float32Array | readonly DetectorRun[] | undefined, pkg: LoadedPackage, ctx: ResultContext = {}): PredictionRow[] {
  const m = pkg.manifest;
  const decoded = errors.filter((e) => e === undefined).length;
  const task = requireTask(m, 'predict', pkg.dir);
  let results: unknown[] = [];
  if (out instanceof Float32Array) results = decoded ? task.results(floatOutputs(m, out, decoded), m, ctx) : [];
  else if (out) {
    // A detector's runs (one per picture for a model without a batch dimension): each answers its own pictures.
    let at = 0;
    for (const run of out) {
      results.push(...task.results(run.outputs, m, { ...ctx, ...(ctx.images ? { images: ctx.images.slice(at, at + run.n) } : {}) }));
      at += run.n;
    }
  }
  let r = 0;
  return items.map((item, i) => {
    const base = { index: item.index, input: item.key };
    return errors[i] !== undefined ? { ...base, error: errors[i] } : { ...base, result: results[r++] };
  });
}

/** Items of the listing that this run still has to do. */
async function* pending(opts: PredictOptions, sink: RowSink, shard: Shard): AsyncGenerator<InputItem> {
  for await (const item of listInputs(opts.inputs, { stdin: opts.stdin })) {
    if (inShard(item.key, shard) && !sink.done.has(item.key)) yield item;
  }
}

async function* chunked<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let chunk: T[] = [];
  for await (const item of items) {
    chunk.push(item);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** Count what `pending` will yield (a second pass over the listing) so the progress bar can show an ETA. */
async function countPending(opts: PredictOptions, sink: RowSink, shard: Shard): Promise<number | undefined> {
  if (!isReListable(opts.inputs)) return undefined;
  let n = 0;
  for await (const _ of pending(opts, sink, shard)) n++;
  return n;
}

export interface RowWriter {
  /** Queue a chunk's rows; writes happen in call order while the caller carries on. */
  push(rows: PredictionRow[]): void;
  /** Wait for every queued write (throws the first write error). */
  flush(): Promise<void>;
  counts(): { rows: number; errors: number };
}

export function rowWriter(sink: RowSink, layout: RowLayout, progress?: Progress): RowWriter {
  let chain: Promise<void> = Promise.resolve();
  let failed: unknown;
  let rows = 0;
  let errors = 0;
  return {
    push(chunk) {
      if (failed) throw failed;
      const text = chunk.map((r) => formatRow(r, layout)).join('');
      const bad = chunk.filter((r) => r.error !== undefined).length;
      chain = chain.then(async () => {
        await sink.write(text);
        rows += chunk.length;
        errors += bad;
        progress?.tick(chunk.length, errors ? `${errors} unreadable` : undefined);
      });
      chain.catch((err) => (failed ??= err));
    },
    flush: () => chain,
    counts: () => ({ rows, errors }),
  };
}

/** Shared ending: summary beside a finished file, the result document. */
export async function finishRun(pkg: LoadedPackage, engine: InferenceEngine, opts: PredictOptions, sink: RowSink, writer: RowWriter, layout: RowLayout, t0: number, interrupted: boolean, planned: number | undefined): Promise<PredictResult> {
  const m = pkg.manifest;
  const shard = opts.shard ?? WHOLE;
  const { rows, errors } = writer.counts();
  const seconds = (performance.now() - t0) / 1000;
  const model = { name: m.name, version: m.version, manifestSha256: pkg.manifestSha256 };
  if (!interrupted) await sink.finish({ rows, errors });
  return {
    model,
    engine: { name: engine.name, description: engine.description },
    out: opts.out ?? '-',
    format: layout.format,
    shard: formatShard(shard),
    rows,
    errors,
    resumed: { rows: sink.resumedRows, errors: sink.resumedErrors },
    ...(planned !== undefined ? { planned } : {}),
    seconds,
    imagesPerSecond: seconds > 0 ? (rows - errors) / seconds : 0,
    interrupted,
  };
}

/** Open the output and say what a resume or a shard leaves to do. */
export async function startRun(pkg: LoadedPackage, opts: PredictOptions, layout: RowLayout): Promise<RowSink> {
  if (opts.resume && !opts.out) throw new MlctlError('OPTION_CONFLICT', ['--resume needs --out FILE: it continues the rows already in that file']);
  const m = pkg.manifest;
  const run = {
    format: layout.format,
    shard: { ...(opts.shard ?? WHOLE) },
    model: { name: m.name, version: m.version, manifestSha256: pkg.manifestSha256 },
    topK: layout.task.topK,
    inputs: opts.inputs,
    // Boxes kept depend on these: a resumed file must not mix two thresholds.
    ...(opts.detection && (opts.detection.minScore !== undefined || opts.detection.maxDetections !== undefined) ? { detection: { ...opts.detection } } : {}),
  };
  const sink = await openOutput(opts.out, { layout, run, resume: opts.resume, force: opts.force, logger: opts.logger });
  if (sink.resumedRows) opts.logger.info(`resuming ${opts.out}: ${sink.resumedRows} input(s) already done`);
  return sink;
}

export async function predictImages(pkg: LoadedPackage, opts: PredictOptions): Promise<PredictResult> {
  const m = pkg.manifest;
  if (requireTask(m, 'predict', pkg.dir).input !== 'image' || m.input.kind !== 'image') throw new MlctlError('PREDICT_INPUT', [opts.inputs.join(' '), `model ${m.name} takes ${m.input.kind} rows: pass CSV files`]);
  if (opts.format !== 'coco') return predictRows(pkg, { ...opts, format: opts.format });
  // COCO results: rows to <out>.rows.jsonl as any run, then the results file from them once every input is done.
  const out = opts.out;
  if (!out) throw new MlctlError('OPTION_REQUIRED', ['--format coco writes a results file: add --out FILE (e.g. results.json)']);
  if (m.task !== 'detection') throw new MlctlError('OPTION_CONFLICT', [`--format coco writes detections; ${m.name} v${m.version} is ${m.task ?? 'a generic tensor model'}: use --format csv or jsonl`]);
  const ids = opts.cocoImages ? await readCocoImageIds(opts.cocoImages) : undefined;
  if (!opts.resume && !opts.force && (await fileExists(out))) throw new MlctlError('PREDICT_OUTPUT', [out, 'it exists: pass --resume to continue its run, or --force to start it again']);
  const rows = cocoRowsPath(out);
  const res = await predictRows(pkg, { ...opts, format: 'jsonl', out: rows });
  if (res.interrupted) return { ...res, format: 'coco', out };
  const written = await writeCocoResults(rows, out, m, ids);
  return { ...res, format: 'coco', out, coco: { rows, ...written } };
}

const fileExists = (file: string) => import('node:fs').then((fs) => fs.promises.stat(file).then(() => true, () => false));

/** Image inputs → CSV or JSON Lines rows. */
async function predictRows(pkg: LoadedPackage, opts: PredictOptions & { format: OutputFormat }): Promise<PredictResult> {
  const m = pkg.manifest;
  if (m.input.kind !== 'image') throw new MlctlError('PREDICT_INPUT', [opts.inputs.join(' '), `model ${m.name} takes ${m.input.kind} rows: pass CSV files`]);
  const spec: ImageInputSpec = m.input;
  const shard = opts.shard ?? WHOLE;
  const layout = layoutFor(pkg, opts.format, opts.topK);
  const per = spec.height * spec.width * 3;
  const batch = Math.max(1, opts.batchSize);
  const sink = await startRun(pkg, opts, layout);
  let engine: InferenceEngine | undefined;
  try {
    // An imported detector (yolo or torchvision head) is run for every output its head decodes.
    const imported = isImportedDetector(m);
    engine = imported ? await openDetector(pkg, opts) : await openCheckedEngine(pkg, imageTensorShape(spec), opts);
    const planned = await countPending(opts, sink, shard);
    const what = `${m.name} v${m.version}${shard.count > 1 ? ` shard ${formatShard(shard)}` : ''}`;
    const progress = createProgress({ label: `predicting with ${what}`, total: planned, unit: 'img', logger: opts.logger });
    const writer = rowWriter(sink, layout, progress);
    const limit = limiter(Math.max(1, opts.concurrency ?? defaultConcurrency()));
    // depth chunks decode while the engine runs one: a buffer per chunk in flight, reused round-robin.
    const depth = 2;
    const buffers = Array.from({ length: depth + 1 }, () => new Float32Array(batch * per));
    const chunks = chunked(pending(opts, sink, shard), batch)[Symbol.asyncIterator]();
    const inflight: Array<Promise<DecodedChunk>> = [];
    let started = 0;
    let exhausted = false;
    const refill = async () => {
      while (!exhausted && inflight.length < depth + 1 && !opts.shouldStop?.()) {
        const next = await chunks.next();
        if (next.done) exhausted = true;
        else inflight.push(decodeChunk(next.value, spec, buffers[started++ % buffers.length]!, limit, opts.decode));
      }
    };
    const t0 = performance.now();
    let interrupted = false;
    await refill();
    while (inflight.length) {
      const chunk = await inflight.shift()!;
      const out = !chunk.decoded ? undefined : imported ? await runDetector(engine, spec, chunk.x, chunk.decoded) : await runFloat(engine, chunk.x, chunk.decoded);
      writer.push(chunkRows(chunk.items, chunk.errors, out, pkg, { ...opts.detection, images: chunk.images }));
      if (opts.shouldStop?.()) {
        interrupted = true;
        // Chunks already decoding are dropped: their inputs are not in the file, so --resume does them.
        await Promise.allSettled(inflight.splice(0));
        break;
      }
      await refill();
    }
    await writer.flush();
    const { rows, errors } = writer.counts();
    progress.done(`${rows} input(s), ${errors} unreadable${sink.resumedRows ? `, ${sink.resumedRows} done before` : ''}`);
    return await finishRun(pkg, engine, opts, sink, writer, layout, t0, interrupted, planned);
  } finally {
    await engine?.dispose();
    await sink.close();
  }
}

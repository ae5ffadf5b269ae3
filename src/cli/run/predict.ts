// Runs `mlctl predict` (loaded on demand): batch prediction through src/predict, or `--merge` of shard outputs.
// Ctrl-C finishes the rows being written and exits 130; --resume continues.
import { loadPackage } from '../../artifacts/package.js';
import { MlctlError } from '../../errors.js';
import { formatForPath, mergeShards, predict, type PredictResult } from '../../predict/index.js';
import { parseShard } from '../../util/shard.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { PredictContext } from '../commands/predict.js';
import { interruptFlag, startBackend, startDevice } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';

function summaryLine(r: PredictResult): string {
  const resumed = r.resumed.rows ? `, ${r.resumed.rows} already done` : '';
  const coco = r.coco ? ` — ${r.coco.detections} detection(s) in ${r.coco.images} image(s), rows in ${r.coco.rows}` : '';
  return `${r.rows} row(s) → ${r.out} (${r.format}${r.shard !== '0/1' ? `, shard ${r.shard}` : ''}): ${r.errors} unreadable${resumed}; ${r.imagesPerSecond.toFixed(1)}/s with ${r.engine.description}${coco}`;
}

async function runMerge(ctx: PredictContext, files: string[]): Promise<CommandResult> {
  const { opts, logger } = ctx;
  if (!files.length) throw new MlctlError('ARGUMENT_MISSING', ['--merge needs the shard outputs (files, or a folder holding them)']);
  const res = await mergeShards(files, opts.out, { force: opts.force, logger });
  const text = `merged ${res.shards} shard(s) of ${res.model.name} v${res.model.version}: ${res.rows} row(s), ${res.errors} unreadable → ${res.out}`;
  if (!opts.out) logger.info(text);
  return { result: { ...res }, ...(opts.out ? { text } : {}) };
}

export async function run(ctx: PredictContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const positional = [ctx.args[0], ...ctx.args[1]].filter((a): a is string => a !== undefined);
  const out = opts.out;
  if (ctx.json && !out) throw new MlctlError('OPTION_CONFLICT', ['--json prints the run summary on stdout, so the rows need a file: add --out FILE']);
  if (opts.merge) return runMerge(ctx, positional);
  const [model, ...inputs] = positional;
  if (!model) throw new MlctlError('ARGUMENT_MISSING', ['predict needs a model and inputs: mlctl predict MODEL INPUT… (or --merge SHARD_OUTPUTS…)']);
  if (!inputs.length) throw new MlctlError('ARGUMENT_MISSING', [`no inputs: give image files, folders, a list file or - (paths on stdin) after ${model}`]);
  if (opts.resume && opts.force) throw new MlctlError('OPTION_CONFLICT', ['--resume continues --out and --force replaces it: pick one']);
  const format = opts.format ?? formatForPath(out);
  if (opts.cocoImages !== undefined && format !== 'coco') throw new MlctlError('OPTION_CONFLICT', ['--coco-images gives the image ids of --format coco results; add --format coco']);
  if (out && opts.format && formatForPath(out) !== opts.format && /\.(csv|jsonl|ndjson)$/i.test(out)) throw new MlctlError('OPTION_CONFLICT', [`--format ${opts.format} does not match --out ${out}`]);
  const shard = opts.shard !== undefined ? parseShard(opts.shard) : undefined;
  const decode = { maxPixels: opts.maxPixels, timeoutMs: parseDuration(opts.timeout, '--timeout'), maxDownloadBytes: parseSize(opts.maxDownload, '--max-download') };
  const pkg = await loadPackage(model, await packageAccessFrom(opts, { logger }));
  if (pkg.manifest.status === 'rejected') logger.warn(`${pkg.manifest.name} v${pkg.manifest.version} is marked rejected${pkg.manifest.statusReason ? `: ${pkg.manifest.statusReason}` : ''}; predicting with it because of --allow-rejected`);
  await startBackend(ctx);
  await startDevice(ctx);
  const flag = interruptFlag(ctx, 'finishing the rows being written (continue later with --resume)');
  let res: PredictResult;
  try {
    res = await predict(pkg, {
      inputs,
      out,
      format,
      topK: opts.topK,
      ...(opts.minScore !== undefined || opts.maxDetections !== undefined ? { detection: { ...(opts.minScore !== undefined ? { minScore: opts.minScore } : {}), ...(opts.maxDetections !== undefined ? { maxDetections: opts.maxDetections } : {}) } } : {}),
      ...(opts.cocoImages !== undefined ? { cocoImages: opts.cocoImages } : {}),
      batchSize: opts.batchSize,
      engine: opts.engine,
      concurrency: opts.concurrency,
      shard,
      resume: opts.resume,
      force: opts.force,
      decode,
      logger,
      shouldStop: flag.stop,
    });
  } finally {
    flag.release();
  }
  if (res.interrupted) {
    throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'} after ${res.rows} row(s); ${out ? `continue with the same command and --resume (${out} holds whole rows only)` : 'rows so far are on stdout'}`]);
  }
  if (res.errors) logger.warn(`${res.errors} input(s) could not be read or decoded: see the error column`);
  const text = summaryLine(res);
  if (!out) logger.info(text);
  return { result: { ...res }, ...(out ? { text } : {}) };
}

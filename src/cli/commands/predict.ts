// `mlctl predict MODEL INPUT…`: batch prediction to CSV/JSON Lines (src/predict), and `--merge` of shard outputs.
import { loadPackage } from '../../artifacts/package.js';
import { MlctlError, usageError } from '../../errors.js';
import { formatForPath, mergeShards, OUTPUT_FORMATS, predict, type OutputFormat, type PredictResult } from '../../predict/index.js';
import { ENGINES, type EngineChoice } from '../../runtime/engine.js';
import { parseShard } from '../../util/shard.js';
import { parseDuration, parseSize } from '../../util/units.js';
import { interruptFlag, startBackend } from '../context.js';
import type { CommandResult, CommandSpec, RunContext } from '../spec.js';

function summaryLine(r: PredictResult): string {
  const resumed = r.resumed.rows ? `, ${r.resumed.rows} already done` : '';
  return `${r.rows} row(s) → ${r.out} (${r.format}${r.shard !== '0/1' ? `, shard ${r.shard}` : ''}): ${r.errors} unreadable${resumed}; ${r.imagesPerSecond.toFixed(1)}/s with ${r.engine.description}`;
}

async function runMerge(ctx: RunContext, files: string[]): Promise<CommandResult> {
  const { opts, logger } = ctx;
  if (!files.length) throw usageError('--merge needs the shard outputs (files, or a folder holding them)');
  const res = await mergeShards(files, opts.out as string | undefined, { force: Boolean(opts.force), logger });
  const text = `merged ${res.shards} shard(s) of ${res.model.name} v${res.model.version}: ${res.rows} row(s), ${res.errors} unreadable → ${res.out}`;
  if (!opts.out) logger.info(text);
  return { result: { ...res }, ...(opts.out ? { text } : {}) };
}

export const predictCommand: CommandSpec = {
  name: 'predict',
  summary: 'batch prediction over image files, folders, lists or URLs (or CSV rows) to CSV / JSON Lines',
  description: [
    'Predict every input and write one row per input: index (position in the listing), input (as listed), the top-k labels and scores (or the value, for regression), and an error column for inputs that could not be read or decoded (counted, never fatal).',
    '',
    'Inputs: image files; folders (walked recursively, names sorted); .txt/.lst lists (one path or http(s) URL per line, # comments; relative paths are relative to the list) and .csv/.tsv lists (a column named input/path/file/image/url, else the first); - for paths on stdin. Tabular packages take CSV files of feature rows instead (one output row per CSV row, input "<file>:<line>").',
    '',
    'Rows stream in input order with constant memory; each chunk is appended in one write and fsync\'d, so a killed run never leaves half a line. --resume continues such a file, skipping inputs already in it. A finished run writes <out>.summary.json beside the output.',
    '',
    '--shard i/n predicts the inputs whose sha256(input) mod n is i (0-based): n pods (a Kubernetes Indexed Job, see export --format bundle) list the same inputs and each does its share; --merge joins their outputs into the rows one unsharded run writes (checking the set is complete and from one run).',
  ].join('\n'),
  args: ['[model]', '[inputs...]'],
  options: [
    { flags: '-o, --out <file>', description: 'output file (default: stdout); .jsonl/.ndjson imply --format jsonl' },
    { flags: '-f, --format <format>', description: 'output format (default: from --out, else csv)', choices: OUTPUT_FORMATS },
    { flags: '--top-k <k>', description: 'labels per row (capped at the number of labels)', type: 'int', default: 5, min: 1 },
    { flags: '--batch-size <n>', description: 'inputs per engine batch (and per durable append)', type: 'int', default: 16, min: 1, max: 4096 },
    { flags: '--engine <name>', description: 'inference engine: auto prefers ONNX Runtime, then TF.js', choices: ENGINES, default: 'auto' },
    { flags: '--concurrency <n>', description: 'decodes and downloads in flight (default: 2 x cores)', type: 'int', min: 1, max: 256 },
    { flags: '--shard <i/n>', description: 'predict only shard i of n (0-based), e.g. $(JOB_COMPLETION_INDEX)/8 in an Indexed Job' },
    { flags: '--resume', description: 'continue --out: skip inputs already in it (same --format and --top-k)', type: 'boolean' },
    { flags: '--force', description: 'replace an existing --out', type: 'boolean' },
    { flags: '--merge', description: 'join shard outputs (the arguments: files or folders) into --out', type: 'boolean' },
    { flags: '--max-pixels <n>', description: 'largest image decoded, in pixels (decompression-bomb guard)', type: 'int', default: 64 * 1024 * 1024, min: 1 },
    { flags: '--timeout <duration>', description: 'per-URL download time limit', default: '30s' },
    { flags: '--max-download <size>', description: 'largest URL download accepted', default: '50mb' },
  ],
  examples: [
    'mlctl predict sample photos/ --out predictions.csv',
    'mlctl predict sample:production urls.txt --format jsonl --top-k 3 > predictions.jsonl',
    'find /data -name "*.jpg" | mlctl predict sample - --out predictions.csv --resume',
    'mlctl predict sample /data --shard 2/8 --out out/predictions-2-of-8.csv --resume',
    'mlctl predict --merge out/ --out predictions.csv',
    'mlctl predict prices houses.csv --out prices.csv   # a tabular package: one row per CSV row',
  ],
  async run(ctx) {
    const { opts, logger } = ctx;
    const positional = [ctx.args[0] as string | undefined, ...((ctx.args[1] as string[] | undefined) ?? [])].filter((a): a is string => a !== undefined);
    const out = opts.out as string | undefined;
    if (ctx.json && !out) throw usageError('--json prints the run summary on stdout, so the rows need a file: add --out FILE');
    if (opts.merge) return runMerge(ctx, positional);
    const [model, ...inputs] = positional;
    if (!model) throw usageError('predict needs a model and inputs: mlctl predict MODEL INPUT… (or --merge SHARD_OUTPUTS…)');
    if (!inputs.length) throw usageError(`no inputs: give image files, folders, a list file or - (paths on stdin) after ${model}`);
    if (opts.resume && opts.force) throw usageError('--resume continues --out and --force replaces it: pick one');
    const format = (opts.format as OutputFormat | undefined) ?? formatForPath(out);
    if (out && opts.format && formatForPath(out) !== opts.format && /\.(csv|jsonl|ndjson)$/i.test(out)) throw usageError(`--format ${String(opts.format)} does not match --out ${out}`);
    const shard = opts.shard !== undefined ? parseShard(String(opts.shard)) : undefined;
    const decode = { maxPixels: opts.maxPixels as number, timeoutMs: parseDuration(opts.timeout as string, '--timeout'), maxDownloadBytes: parseSize(opts.maxDownload as string, '--max-download') };
    const pkg = await loadPackage(model);
    if (pkg.manifest.status === 'rejected') logger.warn(`${pkg.manifest.name} v${pkg.manifest.version} is marked rejected${pkg.manifest.statusReason ? `: ${pkg.manifest.statusReason}` : ''}`);
    await startBackend(ctx);
    const flag = interruptFlag(ctx, 'finishing the rows being written (continue later with --resume)');
    let res: PredictResult;
    try {
      res = await predict(pkg, {
        inputs,
        out,
        format,
        topK: opts.topK as number,
        batchSize: opts.batchSize as number,
        engine: opts.engine as EngineChoice,
        concurrency: opts.concurrency as number | undefined,
        shard,
        resume: Boolean(opts.resume),
        force: Boolean(opts.force),
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
  },
};

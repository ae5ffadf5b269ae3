// `mlctl evaluate MODEL... --data DIR`: metrics, calibration, latency and size for one or more packages on the same
// split, a delta table vs the first model, an optional report folder, and CI quality gates (exit 3).
import type { LoadedPackage } from '../../artifacts/package.js';
import { loadPackage } from '../../artifacts/package.js';
import { EXIT, usageError } from '../../errors.js';
import { compareResults } from '../../evaluate/compare.js';
import { DEFAULT_SPLIT_PARAMS, EVAL_SPLITS, loadEvaluationData, mapToModelLabels, type EvalSplit, type SplitParams } from '../../evaluate/data.js';
import { formatRegressionText, formatText } from '../../evaluate/format.js';
import { checkGates, type LatencyPercentile } from '../../evaluate/gates.js';
import { DEFAULT_LATENCY } from '../../evaluate/latency.js';
import { buildReport, writeReport } from '../../evaluate/report.js';
import { evaluatePackage, type EvaluateOptions, type EvaluationResult } from '../../evaluate/run.js';
import { evaluateTabularClassifier, evaluateTabularRegression, isTabularPackage, loadTabularEvaluationData } from '../../evaluate/tabular.js';
import { ENGINES, type EngineChoice } from '../../runtime/engine.js';
import { startBackend } from '../context.js';
import type { CommandResult, CommandSpec, RunContext } from '../spec.js';

/** Split parameters: flags first, else what the (first) model recorded at training, else train's defaults. */
function splitParams(opts: Record<string, unknown>, pkg: LoadedPackage, ctx: RunContext): SplitParams {
  const training = (pkg.manifest.training ?? {}) as Record<string, unknown>;
  const pick = (flag: string, key: keyof SplitParams): number => {
    if (typeof opts[key] === 'number') return opts[key] as number;
    const recorded = training[key];
    if (typeof recorded === 'number' && Number.isFinite(recorded)) {
      ctx.logger.debug(`--${flag} ${recorded} (recorded by training in ${pkg.manifest.name} v${pkg.manifest.version})`);
      return recorded;
    }
    return DEFAULT_SPLIT_PARAMS[key];
  };
  return { seed: pick('seed', 'seed'), validationSplit: pick('validation-split', 'validationSplit'), testSplit: pick('test-split', 'testSplit') };
}

/** Tabular (classic) packages on a CSV file: one task for all models, the classic trainer's split. */
function evaluateOptions(ctx: RunContext): EvaluateOptions {
  const { opts, logger } = ctx;
  const latencyRuns = opts.latencyRuns as number;
  return {
    engine: opts.engine as EngineChoice,
    batchSize: opts.batchSize as number,
    topK: opts.topK as number,
    worst: opts.worst as number,
    logger,
    latency: latencyRuns > 0 ? { runs: latencyRuns, batchSizes: [...new Set([...DEFAULT_LATENCY.batchSizes, opts.batchSize as number])] } : false,
  };
}

function gateThresholds(opts: Record<string, unknown>) {
  return {
    minAccuracy: opts.minAccuracy as number | undefined,
    minF1: opts.minF1 as number | undefined,
    minR2: opts.minR2 as number | undefined,
    maxLatencyMs: opts.maxLatencyMs as number | undefined,
    latencyPercentile: opts.latencyPercentile as LatencyPercentile,
  };
}

/** One line per failed gate on stderr; exit 3 when any failed. */
function gateExitCode(gates: ReturnType<typeof checkGates>, ctx: RunContext): number {
  const failed = gates.filter((g) => !g.passed);
  for (const g of failed) ctx.logger.error(`gate failed: ${g.message}`);
  return failed.length > 0 ? EXIT.GATE : EXIT.OK;
}

/** Classification results (images or tabular rows) → deltas, gates, optional report folder, the command result. */
async function finishClassification(
  ctx: RunContext,
  data: Parameters<typeof buildReport>[0],
  results: EvaluationResult[],
  extra: { result?: Record<string, unknown>; unit?: 'rows' },
): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const comparison = results.length > 1 ? compareResults(results) : undefined;
  const gates = checkGates(results, gateThresholds(opts));
  const report = buildReport(data, results, comparison, gates);
  let reportFiles: string[] | undefined;
  if (opts.report) {
    reportFiles = await writeReport(opts.report as string, report);
    logger.info(`report written to ${opts.report} (${reportFiles.join(', ')})`);
  }
  return {
    exitCode: gateExitCode(gates, ctx),
    result: { ...extra.result, ...report, ...(reportFiles ? { reportDir: opts.report, reportFiles } : {}) } as unknown as Record<string, unknown>,
    text: formatText(results, comparison, { dataRoot: data.root, split: data.split, gates, ...(extra.unit ? { unit: extra.unit } : {}) }),
  };
}

async function runTabular(ctx: RunContext, pkgs: LoadedPackage[], params: SplitParams): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const task = pkgs[0]!.manifest.task;
  const odd = pkgs.find((p) => p.manifest.task !== task || !isTabularPackage(p));
  if (odd) throw usageError(`evaluate one kind of model at a time: ${pkgs[0]!.manifest.name} is ${task} but ${odd.manifest.name} is ${odd.manifest.task}`);
  const regression = task === 'tabular-regression';
  if (regression && (opts.minAccuracy !== undefined || opts.minF1 !== undefined)) throw usageError('--min-accuracy and --min-f1 are for classifiers; gate a regression model with --min-r2');
  if (!regression && opts.minR2 !== undefined) throw usageError('--min-r2 is for regression models; gate a classifier with --min-accuracy or --min-f1');
  if (regression && opts.report) throw usageError('--report writes classification figures; for a regression model save the --json output instead');
  const { data, rows } = await loadTabularEvaluationData(pkgs, opts.data as string, opts.split as EvalSplit, params);
  logger.info(`data: ${data.root} — ${data.split} split, ${data.samples.length} rows (seed ${params.seed}, validation ${params.validationSplit})`);
  if (data.split === 'train' || data.split === 'all') logger.warn(`the ${data.split} split contains the rows the model was trained on: its scores overstate how the model does on new data`);
  const evalOpts = evaluateOptions(ctx);
  if (regression) {
    const results = [];
    for (const [i, pkg] of pkgs.entries()) results.push(await evaluateTabularRegression(pkg, rows[i]!, evalOpts));
    const gates = checkGates(results, gateThresholds(opts));
    const where = { root: data.root, layout: data.layout, split: data.split, seed: params.seed, validationSplit: params.validationSplit, rows: data.samples.length };
    return {
      exitCode: gateExitCode(gates, ctx),
      result: { data: where, results, gates, gatesPassed: gates.every((g) => g.passed) } as unknown as Record<string, unknown>,
      text: formatRegressionText(results, { dataRoot: data.root, split: data.split, gates }),
    };
  }
  const results: EvaluationResult[] = [];
  for (const [i, pkg] of pkgs.entries()) results.push(await evaluateTabularClassifier(pkg, rows[i]!, evalOpts));
  return finishClassification(ctx, data, results, { unit: 'rows' });
}

export const evaluateCommand: CommandSpec = {
  name: 'evaluate',
  summary: 'accuracy, per-class metrics, calibration, latency and size of one or more models; CI gates',
  description:
    'Evaluate model packages on an image folder, or tabular (classic) packages on a CSV file. Uses the same deterministic split as train (same --seed, --validation-split and ' +
    '--test-split; when not given, the values the first model recorded at training, else 42 / 0.2 / 0). With several models, each is ' +
    'evaluated on the same images and a delta table vs the first is printed. Any failed --min-*/--max-* gate exits with code 3. ' +
    'Ties: the predicted class is the first (lowest-index) of equal top scores, and top-k ranks equal scores by lower index. ' +
    'Log loss clips probabilities to [1e-7, 1-1e-7]; ECE uses 15 equal-width confidence bins; macro averages cover the classes present ' +
    'in the data or the predictions. CSV data is encoded with each package\'s recorded encoding and split like `train --model ...` did ' +
    '(no test split: auto = val); wrong rows are listed by CSV line. Regression packages report R², MAE and RMSE; their gate is --min-r2 ' +
    '(--min-accuracy/--min-f1 are for classifiers) and --report is for classifiers.',
  args: ['<models...>'],
  options: [
    { flags: '-d, --data <dir>', description: 'image folder (one subfolder per class, or train/ val/ test/ subfolders), or a CSV file for tabular packages' },
    { flags: '--split <name>', description: 'which images: auto = test if the data has a test split, else val', choices: EVAL_SPLITS, default: 'auto' },
    { flags: '--top-k <k>', description: 'k for top-k accuracy (capped at the number of classes)', type: 'int', default: 5, min: 1 },
    { flags: '--engine <name>', description: 'inference engine: auto prefers ONNX Runtime when the package allows it, else TF.js', choices: ENGINES, default: 'auto' },
    { flags: '--batch-size <n>', description: 'images per inference batch', type: 'int', default: 16, min: 1, max: 4096 },
    { flags: '--report <dir>', description: 'write report.json, report.md and PNG figures (confusion matrix, reliability) into this folder' },
    { flags: '--min-accuracy <x>', description: 'gate: fail (exit 3) when accuracy is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-f1 <x>', description: 'gate: fail (exit 3) when macro F1 is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-r2 <x>', description: 'gate (regression packages): fail (exit 3) when R² is below x', type: 'float', max: 1 },
    { flags: '--max-latency-ms <ms>', description: 'gate: fail (exit 3) when batch-1 latency (--latency-percentile) is above ms', type: 'float', min: 0 },
    { flags: '--latency-percentile <p>', description: 'which batch-1 latency percentile --max-latency-ms checks', choices: ['p50', 'p95', 'p99'], default: 'p95' },
    { flags: '--latency-runs <n>', description: 'timed batch-1 runs for latency percentiles (0 skips latency and throughput)', type: 'int', default: DEFAULT_LATENCY.runs, min: 0, max: 100000 },
    { flags: '--worst <n>', description: 'list the n most confidently wrong images', type: 'int', default: 10, min: 0, max: 10000 },
    { flags: '--seed <n>', description: 'split seed (default: the model\'s training seed, else 42)', type: 'int' },
    { flags: '--validation-split <f>', description: 'validation fraction (default: the model\'s, else 0.2)', type: 'float', min: 0, max: 0.9 },
    { flags: '--test-split <f>', description: 'test fraction (default: the model\'s, else 0)', type: 'float', min: 0, max: 0.9 },
  ],
  examples: [
    'mlctl evaluate sample --data artifacts/sample-data',
    'mlctl evaluate sample --data artifacts/sample-data --split all --report reports/sample',
    'mlctl evaluate sample@1 sample@2 --data artifacts/sample-data   # side-by-side deltas vs sample@1',
    'mlctl evaluate sample --data artifacts/sample-data --min-accuracy 0.9 --max-latency-ms 50 --json > eval.json',
    'mlctl evaluate prices --data houses.csv --min-r2 0.8   # a tabular regression package (train --model linear)',
  ],
  async run(ctx) {
    const { opts, logger } = ctx;
    const refs = (ctx.args[0] as string[] | undefined) ?? [];
    if (!opts.data) throw usageError('evaluate needs --data DIR (an image folder with one subfolder per class) or --data FILE.csv for tabular packages');
    const latencyRuns = opts.latencyRuns as number;
    if (opts.maxLatencyMs !== undefined && latencyRuns === 0) throw usageError('--max-latency-ms needs latency measurement; drop --latency-runs 0');

    // Load (and hash-check) every package before any slow work, so a bad reference fails fast.
    const pkgs: LoadedPackage[] = [];
    for (const ref of refs) pkgs.push(await loadPackage(ref));
    const params = splitParams(opts, pkgs[0]!, ctx);
    if (pkgs.some(isTabularPackage)) return runTabular(ctx, pkgs, params);
    if (opts.minR2 !== undefined) throw usageError('--min-r2 is for tabular regression packages; gate image classifiers with --min-accuracy or --min-f1');
    const data = await loadEvaluationData(opts.data as string, opts.split as EvalSplit, params);
    logger.info(`data: ${data.root} — ${data.split} split, ${data.samples.length} images in ${data.classes.length} classes (seed ${params.seed}, validation ${params.validationSplit}, test ${params.testSplit})`);
    if (data.split === 'train' || data.split === 'all') {
      logger.warn(`the ${data.split} split contains the images the model was trained on: its accuracy overstates how the model does on new data`);
    }
    const mapped = pkgs.map((p) => mapToModelLabels(data, p.manifest.labels));
    for (const p of pkgs) {
      if (p.manifest.status === 'rejected') logger.warn(`${p.manifest.name} v${p.manifest.version} is marked rejected${p.manifest.statusReason ? `: ${p.manifest.statusReason}` : ''}`);
    }
    const backend = await startBackend(ctx);

    const results: EvaluationResult[] = [];
    for (const [i, pkg] of pkgs.entries()) results.push(await evaluatePackage(pkg, mapped[i]!, evaluateOptions(ctx)));

    return finishClassification(ctx, data, results, { result: { backend: backend.name } });
  },
};

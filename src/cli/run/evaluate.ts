// Runs `mlctl evaluate` (loaded on demand): loads and hash-checks every package, evaluates them on one split, and
// reports deltas, gates (GATE_FAILED, exit 3, with the results still printed) and an optional report folder.
import type { LoadedPackage } from '../../artifacts/package.js';
import { loadPackage } from '../../artifacts/package.js';
import { MlctlError } from '../../errors.js';
import { compareResults } from '../../evaluate/compare.js';
import { loadEvaluationData, mapToModelLabels } from '../../data/evaluation.js';
import { describeParams, resolveSplitParams, unusedSplitOptions, type ResolvedSplitParams, type SplitParams } from '../../data/splits.js';
import { formatRegressionText, formatText } from '../../evaluate/format.js';
import { checkGates } from '../../evaluate/gates.js';
import { DEFAULT_LATENCY } from '../../runtime/latency.js';
import { buildReport, writeReport } from '../../evaluate/report.js';
import { evaluatePackage, type EvaluateOptions, type EvaluationResult } from '../../evaluate/run.js';
import { evaluateTabularClassifier, evaluateTabularRegression, isTabularPackage, loadTabularEvaluationData } from '../../evaluate/tabular.js';
import type { EvaluateContext } from '../commands/evaluate.js';
import { requireTask } from '../../tasks/index.js';
import { tabularRegression } from '../../tasks/regression/index.js';
import { parseSize } from '../../util/units.js';
import { outputColumns } from '../../util/terminal.js';
import { startBackend, startDevice } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';

type Opts = EvaluateContext['opts'];

/** Split parameters: flags first, else what the (first) model recorded at training, else train's defaults. */
function splitParams(ctx: EvaluateContext, pkg: LoadedPackage): ResolvedSplitParams {
  const r = resolveSplitParams(ctx.opts, pkg.manifest.training);
  ctx.logger.debug(`split: ${describeParams(r)}${Object.values(r.from).includes('model') ? ` (recorded by training in ${pkg.manifest.name} v${pkg.manifest.version})` : ''}`);
  return r;
}

function evaluateOptions(ctx: EvaluateContext): EvaluateOptions {
  const { opts, logger } = ctx;
  return {
    engine: opts.engine,
    batchSize: opts.batchSize,
    topK: opts.topK,
    worst: opts.worst,
    logger,
    latency: opts.latencyRuns > 0 ? { runs: opts.latencyRuns, batchSizes: [...new Set([...DEFAULT_LATENCY.batchSizes, opts.batchSize])] } : false,
  };
}

function gateThresholds(opts: Opts) {
  return { minAccuracy: opts.minAccuracy, minF1: opts.minF1, minR2: opts.minR2, maxLatencyMs: opts.maxLatencyMs, latencyPercentile: opts.latencyPercentile };
}

/** One line per failed gate on stderr; GATE_FAILED (exit 3) naming every failed gate when any failed. */
function gateFailure(gates: ReturnType<typeof checkGates>, ctx: EvaluateContext): MlctlError | undefined {
  const failed = gates.filter((g) => !g.passed);
  for (const g of failed) ctx.logger.error(`gate failed: ${g.message}`);
  if (!failed.length) return undefined;
  return new MlctlError('GATE_FAILED', [`${failed.length} gate(s) failed: ${failed.map((g) => g.message).join('; ')}`]);
}

/** Classification results (images or tabular rows) → deltas, gates, optional report folder, the command result. */
async function finishClassification(
  ctx: EvaluateContext,
  data: Parameters<typeof buildReport>[0],
  results: EvaluationResult[],
  extra: { result?: Record<string, unknown> },
): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const comparison = results.length > 1 ? compareResults(results) : undefined;
  const gates = checkGates(results, gateThresholds(opts));
  const report = buildReport(data, results, comparison, gates);
  let reportFiles: string[] | undefined;
  if (opts.report) {
    reportFiles = await writeReport(opts.report, report);
    logger.info(`report written to ${opts.report} (${reportFiles.join(', ')})`);
  }
  return {
    error: gateFailure(gates, ctx),
    result: { ...extra.result, ...report, ...(reportFiles ? { reportDir: opts.report, reportFiles } : {}) },
    text: formatText(results, comparison, { dataRoot: data.root, split: data.split, gates, columns: outputColumns() }),
  };
}

/** Tabular (classic) packages on a CSV file: one task for all models, the classic trainer's split. */
async function runTabular(ctx: EvaluateContext, pkgs: LoadedPackage[], params: SplitParams): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const task = requireTask(pkgs[0]!.manifest, 'evaluate', pkgs[0]!.dir);
  const odd = pkgs.find((p) => requireTask(p.manifest, 'evaluate', p.dir) !== task);
  if (odd) throw new MlctlError('OPTION_CONFLICT', [`evaluate one kind of model at a time: ${pkgs[0]!.manifest.name} is ${task.id} but ${odd.manifest.name} is ${odd.manifest.task}`]);
  const regression = task === tabularRegression;
  if (regression && (opts.minAccuracy !== undefined || opts.minF1 !== undefined)) throw new MlctlError('OPTION_CONFLICT', ['--min-accuracy and --min-f1 are for classifiers; gate a regression model with --min-r2']);
  if (!regression && opts.minR2 !== undefined) throw new MlctlError('OPTION_CONFLICT', ['--min-r2 is for regression models; gate a classifier with --min-accuracy or --min-f1']);
  if (opts.report && !task.report.sections) throw new MlctlError('OPTION_CONFLICT', [`--report writes a task's figures and ${task.id} models have none; save the --json output instead`]);
  const { data, rows } = await loadTabularEvaluationData(pkgs, opts.data, opts.split, params, { encoding: opts.encoding, maxMemory: parseSize(opts.maxMemory, '--max-memory') });
  logger.info(`data: ${data.root} — ${data.split} split: ${data.origin}, ${data.samples.length} rows`);
  if (data.split === 'train' || data.split === 'all') logger.warn(`the ${data.split} split contains the rows the model was trained on: its scores overstate how the model does on new data`);
  const evalOpts = evaluateOptions(ctx);
  if (regression) {
    const results = [];
    for (const [i, pkg] of pkgs.entries()) results.push(await evaluateTabularRegression(pkg, rows[i]!, evalOpts));
    const gates = checkGates(results, gateThresholds(opts));
    const where = { root: data.root, layout: data.layout, split: data.split, seed: params.seed, validationSplit: params.validationSplit, rows: data.samples.length };
    return {
      error: gateFailure(gates, ctx),
      result: { data: where, results, gates, gatesPassed: gates.every((g) => g.passed) },
      text: formatRegressionText(results, { dataRoot: data.root, split: data.split, gates }),
    };
  }
  const results: EvaluationResult[] = [];
  for (const [i, pkg] of pkgs.entries()) results.push(await evaluateTabularClassifier(pkg, rows[i]!, evalOpts));
  return finishClassification(ctx, data, results, {});
}

export async function run(ctx: EvaluateContext): Promise<CommandResult> {
  const { opts, logger } = ctx;
  // Before any data is read: a device this machine cannot run fails now.
  await startDevice(ctx);
  const [refs] = ctx.args;
  if (opts.maxLatencyMs !== undefined && opts.latencyRuns === 0) throw new MlctlError('OPTION_CONFLICT', ['--max-latency-ms needs latency measurement; drop --latency-runs 0']);

  // Load (and hash-check) every package before any slow work, so a bad reference fails fast.
  const pkgs: LoadedPackage[] = [];
  const access = await packageAccessFrom(opts, { logger });
  for (const ref of refs) pkgs.push(await loadPackage(ref, access));
  const resolved = splitParams(ctx, pkgs[0]!);
  const params = resolved.params;
  if (pkgs.some(isTabularPackage)) return runTabular(ctx, pkgs, params);
  if (opts.minR2 !== undefined) throw new MlctlError('OPTION_CONFLICT', ['--min-r2 is for tabular regression packages; gate image classifiers with --min-accuracy or --min-f1']);
  const data = await loadEvaluationData(opts.data, opts.split, params);
  for (const w of unusedSplitOptions(data.plan, resolved.from)) logger.warn(w);
  logger.info(`data: ${data.root} — ${data.split} split: ${data.origin}, ${data.samples.length} images in ${data.classes.length} classes`);
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
}

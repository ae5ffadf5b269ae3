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
import { compareDetectionResults, detectionComparisonRows, evaluateDetectionPackage, isDetectionPackage, loadDetectionEvaluationData, mapDetectionLabels, type DetectionEvaluationResult } from '../../evaluate/detection.js';
import { evaluateTabularClassifier, evaluateTabularRegression, isTabularPackage, loadTabularEvaluationData } from '../../evaluate/tabular.js';
import type { EvaluateContext } from '../commands/evaluate.js';
import { requireTask } from '../../tasks/index.js';
import { tabularRegression } from '../../tasks/regression/index.js';
import { parseSize } from '../../util/units.js';
import { renderTable } from '../../util/table.js';
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
  return { minAccuracy: opts.minAccuracy, minF1: opts.minF1, minR2: opts.minR2, minMap: opts.minMap, minAp50: opts.minAp50, maxLatencyMs: opts.maxLatencyMs, latencyPercentile: opts.latencyPercentile };
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

/** Detection packages on a COCO/YOLO/VOC dataset: COCO metrics, --min-map/--min-ap50, the report's curves and pictures. */
async function runDetection(ctx: EvaluateContext, pkgs: LoadedPackage[], params: SplitParams): Promise<CommandResult> {
  const { opts, logger } = ctx;
  const odd = pkgs.find((p) => !isDetectionPackage(p));
  if (odd) throw new MlctlError('OPTION_CONFLICT', [`evaluate one kind of model at a time: ${pkgs[0]!.manifest.name} ${isDetectionPackage(pkgs[0]!) ? 'is' : 'is not'} a detection model but ${odd.manifest.name} ${isDetectionPackage(odd) ? 'is' : 'is not'}`]);
  const misplaced = ([['--min-accuracy', opts.minAccuracy], ['--min-f1', opts.minF1], ['--min-r2', opts.minR2]] as const).filter(([, v]) => v !== undefined).map(([f]) => f);
  if (misplaced.length) throw new MlctlError('OPTION_CONFLICT', [`${misplaced.join(' and ')} ${misplaced.length > 1 ? 'are' : 'is'} not for detection models; gate them with --min-map or --min-ap50`]);
  const data = await loadDetectionEvaluationData(opts.data, opts.split, params);
  logger.info(`data: ${data.root} — ${data.layout} dataset, ${data.split} split: ${data.origin}, ${data.samples.length} images, ${data.samples.reduce((n, s) => n + s.boxes.length, 0)} boxes in ${data.classes.length} classes`);
  if (data.split === 'train' || data.split === 'all') logger.warn(`the ${data.split} split contains the images the model was trained on: its mAP overstates how the model does on new data`);
  const mapped = pkgs.map((p) => mapDetectionLabels(data, p.manifest.labels));
  const backend = await startBackend(ctx);
  const results: DetectionEvaluationResult[] = [];
  for (const [i, pkg] of pkgs.entries()) results.push(await evaluateDetectionPackage(pkg, mapped[i]!, evaluateOptions(ctx)));
  const gates = checkGates(results, gateThresholds(opts));
  const report = buildReport({ ...data, params: { seed: params.seed, validationSplit: params.validationSplit, testSplit: params.testSplit } }, results, undefined, gates);
  // Several models (a package and its quantized version): COCO's figures side by side, deltas vs the first.
  const comparison = results.length > 1 ? compareDetectionResults(results) : undefined;
  let reportFiles: string[] | undefined;
  if (opts.report) {
    reportFiles = await writeReport(opts.report, report);
    logger.info(`report written to ${opts.report} (${reportFiles.join(', ')})`);
  }
  return {
    error: gateFailure(gates, ctx),
    result: { backend: backend.name, ...report, ...(comparison ? { comparison } : {}), ...(reportFiles ? { reportDir: opts.report, reportFiles } : {}) },
    text: formatText(results, undefined, { dataRoot: data.root, split: data.split, gates, columns: outputColumns() }) + (comparison ? `\nComparison vs ${comparison[0]!.model} (same ${data.split} split):\n${renderTable(detectionComparisonRows(comparison))}\n` : ''),
  };
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
  if (pkgs.some(isDetectionPackage)) return runDetection(ctx, pkgs, params);
  if (opts.minMap !== undefined || opts.minAp50 !== undefined) throw new MlctlError('OPTION_CONFLICT', ['--min-map and --min-ap50 are for detection packages; gate classifiers with --min-accuracy or --min-f1']);
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

// Runs `mlctl quantize|prune|tune|optimize` (loaded on demand): calls src/optimize and prints the before/after
// table; a step whose accuracy drop exceeds --max-accuracy-drop is kept, marked rejected, and fails as GATE_FAILED.
import Table from 'cli-table3';
import { loadPackage, type LoadedPackage } from '../../artifacts/package.js';
import { assertNotEncrypted } from '../../artifacts/package-security.js';
import { EXIT, MlctlError } from '../../errors.js';
import { figuresTable } from '../../optimize/measure.js';
import { optimizePipeline } from '../../optimize/pipeline.js';
import { prunePackage, type LayerSparsity } from '../../optimize/prune.js';
import { lineageChain, quantizePackage } from '../../optimize/quantize.js';
import { quantizeInt8Package } from '../../optimize/quantize-int8.js';
import type { StepOptions, StepReport } from '../../optimize/step.js';
import { parseSearch } from '../../optimize/tune.js';
import { tunePipeline } from '../../optimize/tune-run.js';
import type { OptimizeContext, PruneContext, QuantizeContext, TuneContext } from '../commands/optimize.js';
import { startBackend } from '../context.js';
import { resolveSplitParams } from '../../data/splits.js';
import type { CommandResult } from '../spec.js';

/**
 * The package to optimize. Encrypted ones are refused: the result would hold the weights in the clear. Optimize
 * the plaintext version the encrypted one was made from, then encrypt the result (lineage names that version).
 */
async function loadSource(ref: string): Promise<LoadedPackage> {
  const pkg = await loadPackage(ref);
  const from = pkg.manifest.lineage.findLast((l) => l.op === 'encrypt')?.from;
  assertNotEncrypted(pkg, `optimizing it would write its weights in the clear; optimize the plaintext version${from ? ` it was encrypted from (${from.name}@${from.version})` : ''} and encrypt the result`);
  return pkg;
}

function stepOptions(ctx: QuantizeContext | PruneContext | OptimizeContext): StepOptions {
  const o = ctx.opts;
  return {
    logger: ctx.logger,
    data: o.data,
    maxAccuracyDrop: o.maxAccuracyDrop,
    ...('maxMapDrop' in o ? { maxMapDrop: o.maxMapDrop } : {}),
    validationSplit: o.validationSplit,
    testSplit: o.testSplit,
    seed: o.seed,
    name: o.name,
    engine: o.engine,
    latencyRuns: o.latencyRuns,
  };
}

function stepResult(r: StepReport): Record<string, unknown> {
  const from = r.package.manifest.lineage[r.package.manifest.lineage.length - 1]?.from;
  return {
    package: { name: r.package.manifest.name, version: r.package.manifest.version, dir: r.package.dir },
    ...(from ? { source: from } : {}),
    lineage: lineageChain(r.package),
    status: r.status,
    ...(r.statusReason ? { statusReason: r.statusReason } : {}),
    before: r.before,
    after: r.after,
  };
}

/** Detection packages are scored by COCO mAP@[.5:.95] (optimize/measure's accuracy slot), classifiers by accuracy. */
const metricLabel = (task: string | undefined) => (task === 'detection' ? 'val mAP' : 'val accuracy');

function stepText(r: StepReport): string {
  const lines = [figuresTable([r.before, r.after], metricLabel(r.package.manifest.task)), `saved ${r.package.dir}`, `lineage: ${lineageChain(r.package)}`];
  if (r.status === 'rejected') lines.push(`REJECTED: ${r.statusReason}`);
  return lines.join('\n');
}

/** The accuracy gate's verdict as the command's error: GATE_FAILED (exit 3) naming the rejected package. */
function rejection(exitCode: number, r: StepReport | undefined): MlctlError | undefined {
  if (exitCode !== EXIT.GATE || !r) return undefined;
  return new MlctlError('GATE_FAILED', [`${r.package.manifest.name} v${r.package.manifest.version} rejected: ${r.statusReason ?? 'accuracy gate failed'}`]);
}

export async function quantize(ctx: QuantizeContext): Promise<CommandResult> {
  const { opts } = ctx;
  await startBackend(ctx);
  const source = await loadSource(ctx.args[0]);
  if (opts.dtype === 'int8') {
    const r = await quantizeInt8Package(source, { ...stepOptions(ctx), calibration: opts.calibration, force: opts.force });
    return {
      error: rejection(r.exitCode, r),
      result: { ...stepResult(r), dtype: r.dtype, quantizedNodes: r.quantizedNodes, calibrationImages: r.calibrationImages, fp32OnnxBytes: r.fp32OnnxBytes, int8OnnxBytes: r.int8OnnxBytes, activationRange: r.activationRange, floatNodes: r.floatNodes },
      text: [stepText(r), ...r.floatNodes.map((f) => `kept in float: ${f.node} (${f.reason})`), `activation ranges: ${r.activationRange}`].join('\n'),
    };
  }
  const r = await quantizePackage(source, opts.dtype, { ...stepOptions(ctx), force: opts.force });
  return {
    error: rejection(r.exitCode, r),
    result: { ...stepResult(r), dtype: r.dtype, quantizedWeights: r.quantizedWeights, weightBytesBefore: r.weightBytesBefore, weightBytesAfter: r.weightBytesAfter },
    text: stepText(r),
  };
}

export async function prune(ctx: PruneContext): Promise<CommandResult> {
  const o = ctx.opts;
  await startBackend(ctx);
  const source = await loadSource(ctx.args[0]);
  const r = await prunePackage(source, {
    ...stepOptions(ctx),
    sparsity: o.sparsity,
    schedule: o.schedule,
    epochs: o.epochs,
    layers: o.layers,
    lr: o.lr,
    batchSize: o.batchSize,
  });
  return {
    error: rejection(r.exitCode, r),
    result: { ...stepResult(r), sparsity: r.sparsity, layers: r.layers, history: r.history, schedule: r.schedule, ...(r.features ? { features: r.features } : {}) },
    text: [o.verbose ? layerTable(r.layers) : pruneSummary(r.layers), stepText(r)].join('\n'),
  };
}

/** Every prunable layer, pruned or dense (prune --verbose). */
function layerTable(layers: LayerSparsity[]): string {
  const t = new Table({ head: ['layer', 'kind', 'params', 'zeros', 'sparsity', 'method'], style: { head: [], border: [] } });
  for (const l of layers) t.push([l.layer, l.kind, l.params, l.zeros, `${(l.sparsity * 100).toFixed(2)}%`, l.method]);
  return t.toString();
}

/** "pruned fc1 (Dense, 1,310,720 weights: 80.00% zeros, scheduled); 36 other Dense/Conv2D layers stay dense (--verbose lists them)". */
export function pruneSummary(layers: LayerSparsity[]): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const pruned = layers.filter((l) => l.pruned);
  const dense = layers.length - pruned.length;
  const each = pruned.map((l) => `${l.layer} (${l.kind}, ${n(l.params)} weights: ${(l.sparsity * 100).toFixed(2)}% zeros, ${l.method})`);
  const shown = each.length > 6 ? [...each.slice(0, 6), `and ${each.length - 6} more`] : each;
  return `pruned ${shown.join(', ')}; ${dense} other Dense/Conv2D layer(s) stay dense${layers.length > 1 ? ' (--verbose lists every layer)' : ''}`;
}

export async function tune(ctx: TuneContext): Promise<CommandResult> {
  const o = ctx.opts;
  await startBackend(ctx);
  const r = await tunePipeline({
    data: o.data,
    name: o.name,
    trials: o.trials,
    strategy: o.strategy,
    search: parseSearch(o.search),
    backbone: o.backbone,
    ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
    imageSize: o.imageSize,
    weights: o.weights,
    pooling: o.head,
    epochs: o.epochs,
    patience: o.patience,
    ...resolveSplitParams(o).params,
    engine: o.engine,
    logger: ctx.logger,
  });
  const table = new Table({ head: ['rank', 'trial', 'lr', 'units', 'dropout', 'batch', 'val acc', 'val loss', 'epochs', 'time'], style: { head: [], border: [] } });
  r.results.forEach((t, i) =>
    table.push([i + 1, t.trial, t.params.lr, t.params.units, t.params.dropout, t.params.batchSize, `${(t.valAccuracy * 100).toFixed(2)}%`, t.valLoss.toFixed(4), `${t.epochs}${t.stoppedEarly ? ' (early stop)' : ''}`, `${t.seconds.toFixed(1)}s`]),
  );
  const pkg = { name: r.package.manifest.name, version: r.package.manifest.version, dir: r.package.dir };
  return {
    result: { package: pkg, best: r.results[0], trials: r.results, features: r.features, ...(r.gridSize !== undefined ? { gridSize: r.gridSize } : {}) },
    text: [table.toString(), `best: trial ${r.results[0]!.trial} (val accuracy ${(r.results[0]!.valAccuracy * 100).toFixed(2)}%) saved as ${r.package.dir}`].join('\n'),
  };
}

export async function optimize(ctx: OptimizeContext): Promise<CommandResult> {
  const o = ctx.opts;
  if (o.prune === undefined && o.quantize === undefined) throw new MlctlError('OPTION_REQUIRED', ['nothing to do: pass --prune SPARSITY and/or --quantize DTYPE']);
  await startBackend(ctx);
  const source = await loadSource(ctx.args[0]);
  const r = await optimizePipeline(source, {
    ...stepOptions(ctx),
    ...(o.prune !== undefined ? { prune: { sparsity: o.prune, schedule: o.schedule, epochs: o.epochs, layers: o.layers, lr: o.lr, batchSize: o.batchSize } } : {}),
    ...(o.quantize !== undefined ? { quantize: o.quantize, calibration: o.calibration, force: o.force } : {}),
  });
  const rejected = r.steps.find((s) => s.report.status === 'rejected');
  const final = { name: r.final.manifest.name, version: r.final.manifest.version, dir: r.final.dir };
  return {
    error: rejection(r.exitCode, rejected?.report),
    exitCode: r.exitCode,
    result: { package: final, status: rejected ? 'rejected' : 'ok', rows: r.rows, steps: r.steps.map((s) => ({ op: s.op, ...stepResult(s.report) })) },
    text: [figuresTable(r.rows, metricLabel(r.final.manifest.task)), `final: ${r.final.dir}`, ...(rejected ? [`REJECTED: ${rejected.report.statusReason}`] : [])].join('\n'),
  };
}

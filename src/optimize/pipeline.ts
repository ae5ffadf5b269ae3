// `mlctl optimize`: prune then quantize in one run, each step a new package version whose lineage points at the
// previous one. --max-accuracy-drop bounds the drop over the whole pipeline (each step gets what is left of it);
// a step the gate rejects is kept (marked rejected) and ends the pipeline with exit 3.
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { gateValidationSet, type Figures } from './measure.js';
import { prunePackage, type PruneOptions, type PruneReport } from './prune.js';
import { alreadyQuantized, isQuantized, quantizationOf, quantizePackage, type QuantizeReport } from './quantize.js';
import { quantizeInt8Package, type Int8Report } from './quantize-int8.js';
import type { StepOptions } from './step.js';
import type { WeightDtype } from '../artifacts/weight-quant.js';

export interface PipelineOptions extends StepOptions {
  prune?: Omit<PruneOptions, keyof StepOptions>;
  quantize?: WeightDtype | 'int8';
  /** int8: calibration images. */
  calibration?: number;
  /** Quantize even when the weights already went through quantization. */
  force?: boolean;
}

export interface PipelineReport {
  steps: Array<{ op: 'prune'; report: PruneReport } | { op: 'quantize'; report: QuantizeReport | Int8Report }>;
  /** Source first, then one row per step. */
  rows: Figures[];
  final: LoadedPackage;
  exitCode: number;
}

export async function optimizePipeline(source: LoadedPackage, opts: PipelineOptions): Promise<PipelineReport> {
  if (!opts.prune && !opts.quantize) throw new MlctlError('OPTION_REQUIRED', ['nothing to do: pass --prune SPARSITY and/or --quantize DTYPE']);
  // Refuse before any step runs: a prune of an already quantized package would be wasted work.
  if (opts.quantize && !opts.force) {
    const state = await quantizationOf(source);
    if (isQuantized(state)) throw alreadyQuantized(source, state, opts.quantize);
  }
  // One validation set for every step, found before the first one starts (prune keeps the training record).
  const validation = await gateValidationSet(source, opts, opts.logger);
  if (validation) opts = { ...opts, validation };
  const steps: PipelineReport['steps'] = [];
  const rows: Figures[] = [];
  let current = source;
  let accuracy: number | undefined;
  let original: number | undefined;
  const maxDrop = opts.maxAccuracyDrop ?? 0.01;
  const budget = () => (original !== undefined && accuracy !== undefined ? Math.max(0, maxDrop - (original - accuracy)) : maxDrop);
  if (opts.prune) {
    const r = await prunePackage(current, { ...opts, ...opts.prune });
    steps.push({ op: 'prune', report: r });
    rows.push(r.before, r.after);
    current = r.package;
    accuracy = r.after.accuracy;
    original = r.before.accuracy;
    if (r.exitCode !== 0) return { steps, rows, final: current, exitCode: r.exitCode };
  }
  if (opts.quantize) {
    const stepOpts = { ...opts, accuracyBefore: accuracy, maxAccuracyDrop: budget(), maxAccuracyDropGiven: maxDrop };
    // int8 compares fp32 ONNX with int8 ONNX itself, so it measures its own "before" on the same runtime.
    const r = opts.quantize === 'int8' ? await quantizeInt8Package(current, { ...stepOpts, accuracyBefore: undefined }) : await quantizePackage(current, opts.quantize, stepOpts);
    steps.push({ op: 'quantize', report: r });
    if (rows.length === 0) rows.push(r.before);
    rows.push(r.after);
    current = r.package;
    if (r.exitCode !== 0) return { steps, rows, final: current, exitCode: r.exitCode };
  }
  return { steps, rows, final: current, exitCode: 0 };
}

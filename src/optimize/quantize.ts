// `mlctl quantize` for TF.js weights: re-encode a package's float32 weights as float16/uint8/uint16 the way the
// tfjs converter does, gate on validation accuracy, and save the result as a new package version. A package whose
// weights went through quantization already is refused (rounding errors stack) unless the caller forces it.
import type { LineageEntry } from '../artifacts/manifest.js';
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import type { ModelJson } from '../artifacts/tfjs-io.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { gateValidationSet } from './measure.js';
import { modelArtifacts, finishStep, type StepOptions, type StepReport } from './step.js';
import { quantizeWeightData, type WeightDtype } from '../artifacts/weight-quant.js';

export interface QuantizeReport extends StepReport {
  dtype: WeightDtype;
  quantizedWeights: number;
  keptWeights: number;
  weightBytesBefore: number;
  weightBytesAfter: number;
}

/** How a package's weights are already quantized, and the package version each quantization started from. */
export interface QuantizationState {
  /** Storage dtypes of the TF.js weights (e.g. ['uint8']), empty for plain float32. */
  weights: string[];
  /** True when the package carries an int8 ONNX model from `quantize --dtype int8`. */
  int8: boolean;
  /** The quantize steps in the package's lineage, oldest first. */
  steps: Array<{ dtype: string; from?: LineageEntry['from'] }>;
}

export async function quantizationOf(pkg: LoadedPackage): Promise<QuantizationState> {
  const m = pkg.manifest;
  const weights = new Set<string>();
  if (m.formats.tfjs) {
    const json = JSON.parse(new TextDecoder().decode(await readModelFile(pkg, m.formats.tfjs))) as ModelJson;
    for (const g of json.weightsManifest) for (const w of g.weights) if (w.quantization) weights.add(w.quantization.dtype);
  }
  const steps = m.lineage.filter((e) => e.op === 'quantize').map((e) => ({ dtype: String(e.params?.dtype ?? '?'), ...(e.from ? { from: e.from } : {}) }));
  return { weights: [...weights], int8: Boolean(m.architecture.int8), steps };
}

/** "shapes v1 (train) → shapes v2 (prune) → shapes v3 (quantize uint8)": the package's lineage as a chain of versions. */
export function lineageChain(pkg: LoadedPackage): string {
  const m = pkg.manifest;
  const hops = m.lineage.filter((e) => !e.op.startsWith('export'));
  const parts = hops.map((e, i) => {
    const label = e.op === 'quantize' ? `quantize ${String(e.params?.dtype ?? '')}`.trim() : e.op;
    // An entry's `from` is the version it started from; the version it made is the next entry's `from` (or this package).
    const made = hops[i + 1]?.from ?? { name: m.name, version: m.version };
    return `${made.name} v${made.version} (${label}${e.params?.force ? ', --force' : ''})`;
  });
  const origin = hops[0]?.from;
  if (origin) parts.unshift(`${origin.name} v${origin.version}`);
  return parts.length ? parts.join(' → ') : `${m.name} v${m.version}`;
}

export function isQuantized(state: QuantizationState): boolean {
  return state.weights.length > 0 || state.int8 || state.steps.length > 0;
}

/** ALREADY_QUANTIZED for `pkg`: what its quantization is, where it came from, and the command that avoids stacking. */
export function alreadyQuantized(pkg: LoadedPackage, state: QuantizationState, dtype: string): MlctlError {
  const m = pkg.manifest;
  const last = state.steps[state.steps.length - 1];
  const what = state.weights.length ? `its weights are stored as ${state.weights.join('+')}` : state.int8 ? 'it carries an int8 ONNX model' : `its weights went through quantize ${last?.dtype}`;
  const origin = last?.from ? `${last.from.name}@${last.from.version}` : undefined;
  return new MlctlError('ALREADY_QUANTIZED', [
    `${m.name} v${m.version} is already quantized: ${what}${last?.from ? ` (quantize ${last.dtype} of ${last.from.name} v${last.from.version})` : ''}. ` +
      `Quantizing it to ${dtype} would stack a second rounding on the first. ${origin ? `Quantize the float32 version instead (mlctl quantize ${origin} --dtype ${dtype}), or pass --force to quantize this one anyway.` : 'Pass --force to quantize it anyway.'}`,
  ]);
}

/**
 * Say which version quantization starts from; refuse a package whose weights are already quantized (a float16 copy
 * of a uint8 model carries both roundings) unless `force`, pointing at the float32 version it came from.
 */
export async function checkQuantizeSource(pkg: LoadedPackage, dtype: string, force: boolean, logger: Logger): Promise<QuantizationState> {
  const m = pkg.manifest;
  const state = await quantizationOf(pkg);
  logger.info(`quantizing ${m.name} v${m.version} (${pkg.dir}; weights ${state.weights.length ? state.weights.join('+') : 'float32'}${state.int8 ? ', int8 ONNX' : ''}) to ${dtype}`);
  logger.info(`lineage: ${lineageChain(pkg)}`);
  if (!isQuantized(state)) return state;
  const err = alreadyQuantized(pkg, state, dtype);
  if (!force) throw err;
  logger.warn(`--force: ${err.message.split('. ')[0]}; quantizing it to ${dtype} anyway (both roundings apply)`);
  return state;
}

export async function quantizePackage(source: LoadedPackage, dtype: WeightDtype, opts: StepOptions & { accuracyBefore?: number; force?: boolean }): Promise<QuantizeReport> {
  const state = await checkQuantizeSource(source, dtype, Boolean(opts.force), opts.logger);
  // The gate's images are found (and the split checked) before any weight is touched.
  const validation = await gateValidationSet(source, opts, opts.logger);
  // Going through the loaded model yields plain float32 weights even when the source was itself quantized.
  const model = await loadTfjsModel(source);
  let artifacts;
  try {
    artifacts = await modelArtifacts(model);
  } finally {
    model.dispose();
  }
  const q = quantizeWeightData(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs ?? [], dtype);
  opts.logger.info(`quantized ${q.quantized.length} weight tensor(s) to ${dtype}: ${q.bytesBefore} → ${q.bytesAfter} bytes`);
  const requantized = isQuantized(state);
  const report = await finishStep(
    {
      source,
      op: 'quantize',
      params: { dtype, sourceWeights: state.weights.length ? state.weights.join('+') : 'float32', ...(requantized ? { force: true } : {}) },
      artifacts: { ...artifacts, weightData: q.weightData, weightSpecs: q.specs },
      accuracyBefore: opts.accuracyBefore,
      architecture: { weightQuantization: { dtype, format: 'tfjs-weights-manifest', quantizedWeights: q.quantized.length, weightBytes: q.bytesAfter, float32WeightBytes: q.bytesBefore } },
    },
    { ...opts, ...(validation ? { validation } : {}) },
  );
  return { ...report, dtype, quantizedWeights: q.quantized.length, keptWeights: q.kept.length, weightBytesBefore: q.bytesBefore, weightBytesAfter: q.bytesAfter };
}

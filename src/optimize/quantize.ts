// `mlctl quantize` for TF.js weights: re-encode a package's float32 weights as float16/uint8/uint16 the way the
// tfjs converter does, gate on validation accuracy, and save the result as a new package version.
import { loadTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import { modelArtifacts, finishStep, type StepOptions, type StepReport } from './step.js';
import { quantizeWeightData, type WeightDtype } from './weight-quant.js';

export interface QuantizeReport extends StepReport {
  dtype: WeightDtype;
  quantizedWeights: number;
  keptWeights: number;
  weightBytesBefore: number;
  weightBytesAfter: number;
}

export async function quantizePackage(source: LoadedPackage, dtype: WeightDtype, opts: StepOptions & { accuracyBefore?: number }): Promise<QuantizeReport> {
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
  const report = await finishStep(
    {
      source,
      op: 'quantize',
      params: { dtype },
      artifacts: { ...artifacts, weightData: q.weightData, weightSpecs: q.specs },
      accuracyBefore: opts.accuracyBefore,
      architecture: { weightQuantization: { dtype, format: 'tfjs-weights-manifest', quantizedWeights: q.quantized.length, weightBytes: q.bytesAfter, float32WeightBytes: q.bytesBefore } },
    },
    opts,
  );
  return { ...report, dtype, quantizedWeights: q.quantized.length, keptWeights: q.kept.length, weightBytesBefore: q.bytesBefore, weightBytesAfter: q.bytesAfter };
}

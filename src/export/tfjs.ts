// `--format tfjs`: the package's TF.js layers model (model.json + shards, copied byte for byte so quantized entries
// stay as they are, or re-quantized with --quantize) plus labels.json and metadata.json, for stock tf.loadLayersModel.
// The model's input is named as the manifest names it (older packages said Keras's "input_1": renamed here).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { alignModelInputName, MODEL_JSON, modelInputName, readLayersModel, writeLayersModel, type ModelJson } from '../artifacts/tfjs-io.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { exportMetadata } from './source.js';
import { quantizeWeightData, type WeightDtype } from '../artifacts/weight-quant.js';

export const LABELS_JSON = 'labels.json';
export const METADATA_JSON = 'metadata.json';

export interface TfjsExportOptions {
  /** Re-encode plain float32 weights (already-quantized entries are kept as they are). */
  quantize?: WeightDtype;
  logger?: Logger;
}

/** The package's model.json path, or a clear error for packages without a TF.js model (e.g. some tabular models). */
export function packageModelJson(pkg: LoadedPackage): string {
  const rel = pkg.manifest.formats.tfjs;
  if (!rel) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has no TF.js model (formats.tfjs), so there is nothing to export as tfjs']);
  return path.join(pkg.dir, rel);
}

/** Storage dtypes present in a weights manifest, e.g. { float32: 10 } or { uint8: 8, float32: 2 }. */
function weightDtypes(json: ModelJson): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const group of json.weightsManifest) {
    for (const w of group.weights) {
      const d = w.quantization?.dtype ?? w.dtype;
      counts[d] = (counts[d] ?? 0) + 1;
    }
  }
  return counts;
}

export async function writeTfjsExport(pkg: LoadedPackage, dir: string, opts: TfjsExportOptions = {}): Promise<Record<string, unknown>> {
  const modelJsonPath = packageModelJson(pkg);
  const srcDir = path.dirname(modelJsonPath);
  const json = JSON.parse(await fs.readFile(modelJsonPath, 'utf8')) as ModelJson;
  if (opts.quantize) {
    const artifacts = await readLayersModel(modelJsonPath);
    opts.logger?.info(`quantizing float32 weights to ${opts.quantize}`);
    const q = quantizeWeightData(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs ?? [], opts.quantize);
    await writeLayersModel(dir, { ...artifacts, weightSpecs: q.specs, weightData: q.weightData, convertedBy: 'mlctl export' }, q.specs);
    opts.logger?.info(`weights ${(q.bytesBefore / 2 ** 20).toFixed(1)} MiB → ${(q.bytesAfter / 2 ** 20).toFixed(1)} MiB (${q.quantized.length} quantized, ${q.kept.length} kept as they were)`);
  } else {
    // Byte-for-byte copies: the exported files keep the sha256 recorded in the source package.
    await fs.copyFile(modelJsonPath, path.join(dir, MODEL_JSON));
    for (const group of json.weightsManifest) {
      for (const p of group.paths) {
        const target = path.join(dir, p);
        if (path.relative(dir, target).startsWith('..')) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `model.json references a weight file outside the package: ${p}`]);
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.copyFile(path.join(srcDir, p), target);
      }
    }
  }
  // Packages written before the TF.js input carried the manifest's name (Keras's "input_1") get it in the export.
  const renamedFrom = await alignModelInputName(path.join(dir, MODEL_JSON), pkg.manifest.input.name!);
  if (renamedFrom) opts.logger?.info(`model.json: input "${renamedFrom}" renamed "${pkg.manifest.input.name}", the name ONNX, Triton and V2 use (weights unchanged)`);
  const written = JSON.parse(await fs.readFile(path.join(dir, MODEL_JSON), 'utf8')) as ModelJson;
  const details = {
    modelJson: MODEL_JSON,
    inputName: modelInputName(written.modelTopology),
    ...(renamedFrom ? { renamedInput: { from: renamedFrom, to: pkg.manifest.input.name } } : {}),
    weightFiles: written.weightsManifest.flatMap((g) => g.paths),
    weightDtypes: weightDtypes(written),
    quantization: opts.quantize ?? 'none',
    labelsFile: LABELS_JSON,
  };
  await writeJsonAtomic(path.join(dir, LABELS_JSON), pkg.manifest.labels);
  await writeJsonAtomic(path.join(dir, METADATA_JSON), exportMetadata(pkg, 'tfjs', details));
  return details;
}

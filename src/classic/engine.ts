// InferenceEngine over a classic package (classic-model.json): rows of encoded features — or NHWC images for
// pixel-feature packages, flattened as-is — in, probabilities / scores / regression values out. Pure JS, exact.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import type { EngineOptions, InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { CLASSIC_FILE, predict, validateClassicModel, type ClassicModel } from './model.js';

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, interactive: false, color: false };

export function isClassicPackage(pkg: LoadedPackage): boolean {
  return Boolean(pkg.manifest.formats.classic);
}

export async function loadClassicModel(pkg: LoadedPackage): Promise<ClassicModel> {
  const rel = pkg.manifest.formats.classic ?? CLASSIC_FILE;
  const file = path.join(pkg.dir, rel);
  const text = await fs.readFile(file, 'utf8').catch((err: Error) => {
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `cannot read ${rel} (${err.message})`]);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `${rel} is not valid JSON (${(err as Error).message})`]);
  }
  return validateClassicModel(parsed, pkg.dir);
}

/** Engine over an in-memory classic model; `inputShape` defaults to one flat row. */
export function classicEngine(model: ClassicModel, inputShape: number[] = [model.inputSize]): InferenceEngine {
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (per !== model.inputSize) throw new Error(`input shape [${inputShape.join(', ')}] does not hold ${model.inputSize} features`);
  return {
    name: 'classic',
    description: `mlctl classic ${model.model}${model.svm ? ` (${model.svm.kernel.type} kernel, ${model.svm.supportVectors.length} support vectors)` : ''} in JS`,
    inputShape,
    outputSize: model.output.size,
    async run(x, batch) {
      return predict(model, x, batch);
    },
    async dispose() {},
  };
}

/**
 * The engine for a classic package. Packages trained on VGG16 features (formats.backbone) run the stored pooled
 * backbone first — through onnxruntime-node when available, else TF.js — so callers feed images either way.
 */
export async function openClassicEngine(pkg: LoadedPackage, opts: EngineOptions = {}): Promise<InferenceEngine> {
  const model = await loadClassicModel(pkg);
  const input = pkg.manifest.input;
  if (!pkg.manifest.formats.backbone) {
    const shape = input.kind === 'image' ? [input.height, input.width, input.channels] : [model.inputSize];
    return classicEngine(model, shape);
  }
  const { loadLayersModelFromDir } = await import('../artifacts/tfjs-io.js');
  const { openBackboneEngine } = await import('../train/features.js');
  const backbone = await loadLayersModelFromDir(path.dirname(path.join(pkg.dir, pkg.manifest.formats.backbone)));
  const features = await openBackboneEngine(backbone, opts.engine === 'tfjs' ? 'tfjs' : 'auto', `classic-backbone-${pkg.manifest.files[pkg.manifest.formats.backbone]?.sha256 ?? pkg.manifestSha256}`, opts.logger ?? silentLogger);
  if (features.outputSize !== model.inputSize) {
    await features.dispose();
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `its backbone outputs ${features.outputSize} features but ${CLASSIC_FILE} expects ${model.inputSize}`]);
  }
  return {
    name: 'classic',
    description: `mlctl classic ${model.model} on VGG16 features (${features.description})`,
    inputShape: features.inputShape,
    outputSize: model.output.size,
    async run(x, batch) {
      return predict(model, await features.run(x, batch), batch);
    },
    async dispose() {
      await features.dispose();
      // The TF.js engine owns (and has just disposed) the model it runs.
      if (features.name !== 'tfjs') backbone.dispose();
    },
  };
}

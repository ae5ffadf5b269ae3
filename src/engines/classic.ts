// The classic engine (classic-model.json): rows of encoded features — or NHWC images for pixel-feature packages,
// flattened as-is — in, probabilities / scores / regression values out. Pure JS, exact.
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { CLASSIC_FILE, predict, validateClassicModel, type ClassicModel } from '../classic/model.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineOptions, type EngineSource, type EngineProvenance, type InferenceEngine } from '../runtime/engine.js';

export async function loadClassicModel(pkg: LoadedPackage): Promise<ClassicModel> {
  const rel = pkg.manifest.formats.classic ?? CLASSIC_FILE;
  const bytes = await readModelFile(pkg, rel).catch((err: Error) => {
    if (err instanceof MlctlError) throw err;
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `cannot read ${rel} (${err.message})`]);
  });
  const text = Buffer.from(bytes).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `${rel} is not valid JSON (${(err as Error).message})`]);
  }
  return validateClassicModel(parsed, pkg.dir);
}

/** Engine over a classic model; `inputShape` defaults to one flat row. */
export function classicEngine(model: ClassicModel, inputShape: number[] = [model.inputSize], provenance: EngineProvenance = { verified: false, source: 'in-memory model' }): InferenceEngine {
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (per !== model.inputSize) throw new Error(`input shape [${inputShape.join(', ')}] does not hold ${model.inputSize} features`);
  return {
    name: 'classic',
    platform: 'mlctl_classic',
    description: `mlctl classic ${model.model}${model.svm ? ` (${model.svm.kernel.type} kernel, ${model.svm.supportVectors.length} support vectors)` : ''} in JS`,
    inputShape,
    outputSize: model.output.size,
    provenance,
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
async function openClassicEngine(pkg: LoadedPackage, opts: EngineOptions): Promise<InferenceEngine> {
  const model = await loadClassicModel(pkg);
  const input = pkg.manifest.input;
  const provenance: EngineProvenance = { verified: pkg.verified, source: `package ${pkg.manifest.formats.classic} (manifest sha256)` };
  if (!pkg.manifest.formats.backbone) {
    const shape = input.kind === 'image' ? [input.height, input.width, input.channels] : [model.inputSize];
    return classicEngine(model, shape, provenance);
  }
  const rel = pkg.manifest.formats.backbone;
  const backbone = await loadTfjsModel(pkg, rel);
  let features: InferenceEngine;
  try {
    features = await openEngine(
      { kind: 'model', model: backbone, identity: `classic-backbone-${pkg.manifest.files[rel]?.sha256 ?? pkg.manifestSha256}`, label: `${pkg.manifest.name} v${pkg.manifest.version}'s backbone` },
      // An encrypted package's backbone is converted in memory only: its plaintext never reaches the cache.
      { ...opts, engine: opts.engine === 'tfjs' ? 'tfjs' : 'auto', worker: false, memoryOnly: opts.memoryOnly || Boolean(pkg.manifest.encryption) },
    );
  } catch (err) {
    backbone.dispose();
    throw err;
  }
  if (features.outputSize !== model.inputSize) {
    await features.dispose();
    backbone.dispose();
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `its backbone outputs ${features.outputSize} features but ${CLASSIC_FILE} expects ${model.inputSize}`]);
  }
  return {
    name: 'classic',
    platform: 'mlctl_classic',
    description: `mlctl classic ${model.model} on backbone features (${features.description})`,
    inputShape: features.inputShape,
    outputSize: model.output.size,
    provenance,
    async run(x, batch) {
      return predict(model, await features.run(x, batch), batch);
    },
    async dispose() {
      // The features engine borrowed the backbone: it is released here, after the engine.
      await features.dispose();
      backbone.dispose();
    },
  };
}

export async function openClassic(source: EngineSource, opts: EngineOptions): Promise<InferenceEngine> {
  if (source.kind !== 'package') throw new Error('not a classic package');
  return openClassicEngine(source.pkg, opts);
}

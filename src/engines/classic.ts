// The classic engine (classic-model.json): rows of encoded features — or NHWC images for pixel-feature packages,
// flattened as-is — in, probabilities / scores / regression values out. Pure JS, exact.
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { CLASSIC_FILE, predict, validateClassicModel, type ClassicModel } from '../classic/model.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineOptions, type EngineSource, type EngineProvenance, type InferenceEngine } from '../runtime/engine.js';
import { floatIO, runFloat } from '../runtime/float.js';
import { checkFeeds, type TensorSpec } from '../runtime/tensor.js';

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

/** The one FP32 input and output a classic engine declares, batch first. */
function classicTensors(model: ClassicModel, inputShape: number[], names: { input: string; output: string }): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  return { inputs: [{ name: names.input, datatype: 'FP32', shape: [-1, ...inputShape] }], outputs: [{ name: names.output, datatype: 'FP32', shape: [-1, model.output.size] }] };
}

/** The names a package gives its input and output (the classic model file has none of its own). */
function packageNames(pkg: LoadedPackage): { input: string; output: string } {
  const { input, output } = pkg.manifest;
  return { input: input.name ?? 'input', output: output.name ?? 'output' };
}

/** Engine over a classic model; `inputShape` defaults to one flat row. */
export function classicEngine(
  model: ClassicModel,
  inputShape: number[] = [model.inputSize],
  provenance: EngineProvenance = { verified: false, source: 'in-memory model' },
  names = { input: 'input', output: 'output' },
): InferenceEngine {
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (per !== model.inputSize) throw new Error(`input shape [${inputShape.join(', ')}] does not hold ${model.inputSize} features`);
  const { inputs, outputs } = classicTensors(model, inputShape, names);
  return {
    name: 'classic',
    platform: 'mlctl_classic',
    description: `mlctl classic ${model.model}${model.svm ? ` (${model.svm.kernel.type} kernel, ${model.svm.supportVectors.length} support vectors)` : ''} in JS`,
    inputs,
    outputs,
    batched: true,
    provenance,
    async run(feeds, fetches) {
      checkFeeds('classic', inputs, feeds);
      checkFetches(outputs, fetches);
      const x = feeds[0]!;
      const n = x.shape[0]!;
      return [{ name: outputs[0]!.name, datatype: 'FP32', shape: [n, model.output.size], data: predict(model, x.data as Float32Array, n) }];
    },
    async dispose() {},
  };
}

function checkFetches(outputs: readonly TensorSpec[], fetches: readonly string[] | undefined): void {
  const bad = fetches?.find((f) => f !== outputs[0]!.name);
  if (bad !== undefined) throw new RangeError(`the classic model has no output ${bad} (its output: ${outputs[0]!.name})`);
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
    return classicEngine(model, shape, provenance, packageNames(pkg));
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
  let io: ReturnType<typeof floatIO>;
  try {
    io = floatIO(features);
    if (io.outputSize !== model.inputSize) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `its backbone outputs ${io.outputSize} features but ${CLASSIC_FILE} expects ${model.inputSize}`]);
  } catch (err) {
    await features.dispose();
    backbone.dispose();
    throw err;
  }
  const { inputs, outputs } = classicTensors(model, io.inputShape, packageNames(pkg));
  return {
    name: 'classic',
    platform: 'mlctl_classic',
    description: `mlctl classic ${model.model} on backbone features (${features.description})`,
    inputs,
    outputs,
    batched: true,
    provenance,
    async run(feeds, fetches) {
      checkFeeds('classic', inputs, feeds);
      checkFetches(outputs, fetches);
      const x = feeds[0]!;
      const n = x.shape[0]!;
      return [{ name: outputs[0]!.name, datatype: 'FP32', shape: [n, model.output.size], data: predict(model, await runFloat(features, x.data as Float32Array, n), n) }];
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

// InferenceEngine over a classic package (classic-model.json): rows of encoded features — or NHWC images for
// pixel-feature packages, flattened as-is — in, probabilities / scores / regression values out. Pure JS, exact.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import type { InferenceEngine } from '../runtime/engine.js';
import { CLASSIC_FILE, predict, validateClassicModel, type ClassicModel } from './model.js';

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

export async function openClassicEngine(pkg: LoadedPackage): Promise<InferenceEngine> {
  const model = await loadClassicModel(pkg);
  const input = pkg.manifest.input;
  const shape = input.kind === 'image' ? [input.height, input.width, input.channels] : [model.inputSize];
  return classicEngine(model, shape);
}

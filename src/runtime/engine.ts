// The one inference interface used by train (feature extraction), evaluate and serve: load a package's model,
// run NHWC float32 batches, report which engine ran. Implementations: tfjs (any backend) and onnx (onnxruntime-node).
import * as tf from '@tensorflow/tfjs';
import type { LoadedPackage } from '../artifacts/package.js';
import { loadTfjsModel } from '../artifacts/package.js';
import type { Logger } from '../util/log.js';

export const ENGINES = ['auto', 'onnx', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINES)[number];
/** 'classic': the JS engine for linear/logistic/SVM packages (src/classic/engine.ts). */
export type EngineName = Exclude<EngineChoice, 'auto'> | 'classic';

export interface InferenceEngine {
  readonly name: EngineName;
  /** Human-readable detail, e.g. "onnxruntime-node 1.23 (cpu, 2 threads)" or "tfjs wasm". */
  readonly description: string;
  /** Per-example input shape without the batch dimension, e.g. [224, 224, 3]. */
  readonly inputShape: number[];
  /** Values per example in the output. */
  readonly outputSize: number;
  /** Run `batch` examples packed in `x` (length batch * prod(inputShape)); returns batch * outputSize floats. */
  run(x: Float32Array, batch: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  engine?: EngineChoice;
  logger?: Logger;
}

/** TF.js engine over an in-memory LayersModel, on whatever backend is selected. */
export function tfjsEngine(model: tf.LayersModel): InferenceEngine {
  const inputShape = (model.inputs[0]!.shape as Array<number | null>).slice(1).map((d) => d ?? -1);
  const outShape = model.outputs[0]!.shape as Array<number | null>;
  const outputSize = outShape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
  return {
    name: 'tfjs',
    description: `tfjs ${tf.getBackend()}`,
    inputShape,
    outputSize,
    async run(x, batch) {
      const y = tf.tidy(() => {
        const input = tf.tensor(x, [batch, ...inputShape]);
        const out = model.predict(input) as tf.Tensor;
        return out.reshape([batch, -1]);
      });
      try {
        return (await y.data()) as Float32Array;
      } finally {
        y.dispose();
      }
    },
    async dispose() {
      model.dispose();
    },
  };
}

/**
 * Open the inference engine for a package. `auto` prefers ONNX Runtime when the package has (or can be given)
 * an ONNX model; the ONNX path is provided by runtime/onnx-engine.ts once available.
 */
export async function openEngine(pkg: LoadedPackage, opts: EngineOptions = {}): Promise<InferenceEngine> {
  const choice = opts.engine ?? 'auto';
  // Classic packages (linear/logistic/SVM) run in their own exact JS engine unless ONNX is asked for explicitly.
  if (pkg.manifest.formats.classic && !(choice === 'onnx' && pkg.manifest.formats.onnx)) {
    const { openClassicEngine } = await import('../classic/engine.js');
    return openClassicEngine(pkg, opts);
  }
  if (choice === 'onnx' || choice === 'auto') {
    const onnx = await import('./onnx-engine.js').catch(() => undefined);
    if (onnx) {
      try {
        return await onnx.openOnnxEngine(pkg, opts);
      } catch (err) {
        if (choice === 'onnx') throw err;
        opts.logger?.warn(`ONNX engine unavailable for ${pkg.manifest.name} v${pkg.manifest.version} (${(err as Error).message}); using tfjs`);
      }
    } else if (choice === 'onnx') {
      throw new Error('the ONNX engine is not available in this build');
    }
  }
  return tfjsEngine(await loadTfjsModel(pkg));
}

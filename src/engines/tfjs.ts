// The TF.js engine: a layers model on the selected backend (tensorflow, wasm or cpu). A package's model is loaded
// and owned by the engine; an in-memory model is borrowed and left to its owner.
import * as tf from '@tensorflow/tfjs';
import { loadTfjsModel } from '../artifacts/package.js';
import type { EngineProvenance, EngineSource, InferenceEngine } from '../runtime/engine.js';

export interface TfjsEngineOptions {
  /** Dispose the model with the engine (default true; false for a borrowed model). */
  owned?: boolean;
  provenance?: EngineProvenance;
}

export function tfjsEngine(model: tf.LayersModel, opts: TfjsEngineOptions = {}): InferenceEngine {
  const inputShape = (model.inputs[0]!.shape as Array<number | null>).slice(1).map((d) => d ?? -1);
  const outShape = model.outputs[0]!.shape as Array<number | null>;
  const outputSize = outShape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
  return {
    name: 'tfjs',
    platform: 'tensorflowjs',
    description: `tfjs ${tf.getBackend()}`,
    inputShape,
    outputSize,
    provenance: opts.provenance ?? { verified: false, source: 'in-memory model' },
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
      if (opts.owned !== false) model.dispose();
    },
  };
}

/** A package's model (owned) or an in-memory model (borrowed) on the selected TF.js backend. */
export async function openTfjs(source: EngineSource): Promise<InferenceEngine> {
  if (source.kind === 'model') return tfjsEngine(source.model, { owned: source.owned === true });
  if (source.kind !== 'package') throw new Error('tfjs cannot open an ONNX model');
  const { pkg } = source;
  return tfjsEngine(await loadTfjsModel(pkg), { provenance: { verified: pkg.verified, source: `package ${pkg.manifest.formats.tfjs} (manifest sha256)` } });
}

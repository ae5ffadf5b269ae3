// The TF.js engine: a layers model on the selected backend (tensorflow, wasm or cpu). A package's model is loaded
// and owned by the engine; an in-memory model is borrowed and left to its owner.
import * as tf from '@tensorflow/tfjs';
import { loadTfjsModel } from '../artifacts/package.js';
import { ensureBackend } from '../runtime/backend.js';
import { alignTensors, manifestTensors, type DeclaredTensors } from '../runtime/declared.js';
import type { EngineProvenance, EngineSource, InferenceEngine } from '../runtime/engine.js';
import { batchable, checkFeeds, type Datatype, type Tensor, type TensorSpec } from '../runtime/tensor.js';

export interface TfjsEngineOptions {
  /** Dispose the model with the engine (default true; false for a borrowed model). */
  owned?: boolean;
  provenance?: EngineProvenance;
  /** What a package declares: its names (and sizes) for the model's tensors. */
  declared?: DeclaredTensors;
}

/** TF.js dtypes as V2 datatypes (layers models compute in float32; int32 and bool appear in inputs). */
const DATATYPE_OF: Partial<Record<tf.DataType, Datatype>> = { float32: 'FP32', int32: 'INT32', bool: 'BOOL' };
const TF_DTYPE_OF: Partial<Record<Datatype, 'float32' | 'int32' | 'bool'>> = { FP32: 'float32', INT32: 'int32', BOOL: 'bool' };

function specOf(name: string, t: tf.SymbolicTensor): TensorSpec {
  const datatype = DATATYPE_OF[t.dtype];
  if (!datatype) throw new Error(`tensor ${name} is ${t.dtype}, which the TF.js engine cannot feed or read`);
  return { name, datatype, shape: (t.shape as Array<number | null>).map((d) => d ?? -1) };
}

export function tfjsEngine(model: tf.LayersModel, opts: TfjsEngineOptions = {}): InferenceEngine {
  const ins = alignTensors(model.inputs.map((t, i) => specOf(model.inputNames[i]!, t)), opts.declared?.inputs);
  const outs = alignTensors(model.outputs.map((t, i) => specOf(model.outputNames[i]!, t)), opts.declared?.outputs);
  const inputs = ins.specs;
  const outputs = outs.specs;
  const all = outputs.map((t) => t.name);
  return {
    name: 'tfjs',
    platform: 'tensorflowjs',
    description: `tfjs ${tf.getBackend()}`,
    inputs,
    outputs,
    batched: batchable(inputs) && batchable(outputs),
    provenance: opts.provenance ?? { verified: false, source: 'in-memory model' },
    async run(feeds, fetches = all) {
      checkFeeds('tfjs', inputs, feeds);
      const which = fetches.map((f) => {
        const i = all.indexOf(f);
        if (i < 0) throw new RangeError(`the TF.js model has no output ${f} (its outputs: ${all.join(', ')})`);
        return i;
      });
      const ys = tf.tidy(() => {
        const xs = inputs.map((spec) => {
          const t = feeds.find((f) => f.name === spec.name)!;
          return tf.tensor(t.data as Float32Array | Int32Array | Uint8Array, t.shape, TF_DTYPE_OF[t.datatype]);
        });
        const out = model.predict(xs.length === 1 ? xs[0]! : xs);
        const list = Array.isArray(out) ? out : [out];
        return which.map((i) => list[i]!);
      });
      try {
        const data = await Promise.all(ys.map((y) => y.data()));
        return which.map((i, j) => ({ name: all[i]!, datatype: outputs[i]!.datatype, shape: ys[j]!.shape, data: data[j] }) as Tensor);
      } finally {
        ys.forEach((y) => y.dispose());
      }
    },
    async dispose() {
      if (opts.owned !== false) model.dispose();
    },
  };
}

/** A package's model (owned) or an in-memory model (borrowed) on the selected TF.js backend. */
export async function openTfjs(source: EngineSource): Promise<InferenceEngine> {
  await ensureBackend();
  if (source.kind === 'model') return tfjsEngine(source.model, { owned: source.owned === true });
  if (source.kind !== 'package') throw new Error('tfjs cannot open an ONNX model');
  const { pkg } = source;
  return tfjsEngine(await loadTfjsModel(pkg), { provenance: { verified: pkg.verified, source: `package ${pkg.manifest.formats.tfjs} (manifest sha256)` }, declared: manifestTensors(pkg.manifest, pkg.dir) });
}

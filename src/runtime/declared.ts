// The tensors a package declares (its manifest) and how an engine's own declarations (the model file's) are named
// and sized after them: a package's lone input and output go by the manifest's names everywhere (V2, TF Serving,
// Triton), and where the model file leaves a dimension free the manifest's size is used.
import type { Manifest } from '../artifacts/manifest.js';
import { dimMatches, specOf, type TensorSpec } from './tensor.js';

export interface DeclaredTensors {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/**
 * What a manifest says the model takes and answers, batch dimension first: an image or tabular model's one FP32
 * input and output, or a generic tensor model's lists. Tabular manifests without feature names leave the width free.
 */
export function manifestTensors(m: Manifest, where = `${m.name} v${m.version}`): DeclaredTensors {
  const input = m.input;
  const output = m.output;
  if (input.kind === 'tensors' || output.kind === 'tensors') {
    return {
      inputs: input.kind === 'tensors' ? input.tensors.map((t) => specOf(t, where)) : [],
      outputs: output.kind === 'tensors' ? output.tensors.map((t) => specOf(t, where)) : [],
    };
  }
  const shape = input.kind === 'image' ? [input.height, input.width, input.channels] : [input.features.length || -1];
  return { inputs: [{ name: input.name, datatype: 'FP32', shape: [-1, ...shape] }], outputs: [{ name: output.name, datatype: 'FP32', shape: [-1, output.size] }] };
}

/** One side (inputs or outputs) of a model file's declarations, named and sized as declared. */
export interface AlignedTensors {
  specs: TensorSpec[];
  /** The model file's own name of each spec (what the runtime is fed or fetches under). */
  own: string[];
}

/**
 * A model file's tensors as a package declares them: matched by name, or — one tensor on each side — by position
 * (a package written before its model's tensors were renamed); free dimensions take the declared size when the
 * ranks agree and every fixed size matches. Without declarations the model's own are used as they are.
 */
export function alignTensors(model: readonly TensorSpec[], declared: readonly TensorSpec[] | undefined): AlignedTensors {
  const lone = declared?.length === 1 && model.length === 1;
  const specs = model.map((t) => {
    const d = lone ? declared[0]! : declared?.find((x) => x.name === t.name);
    if (!d) return { ...t, shape: [...t.shape] };
    const fits = d.shape.length === t.shape.length && t.shape.every((v, i) => dimMatches(v, d.shape[i]!) || dimMatches(d.shape[i]!, v));
    return { name: d.name, datatype: t.datatype, shape: fits ? t.shape.map((v, i) => (v < 0 ? d.shape[i]! : v)) : [...t.shape] };
  });
  return { specs, own: model.map((t) => t.name) };
}

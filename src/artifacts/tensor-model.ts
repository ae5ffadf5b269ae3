// A package around a bare ONNX model: a generic tensor model (no task; its tensors listed) that serve runs by its declared
// tensors — no labels to read off an output, no preprocessing. What `mlctl import` builds on; the model's tensors
// come from the caller (engines/onnx.ts onnxTensors reads them from the file as ONNX Runtime sees them).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import type { TensorRecord } from './manifest.js';
import { savePackage, type LoadedPackage } from './package.js';

export const TENSOR_MODEL_FILE = 'model.onnx';

export interface TensorModelOptions {
  name: string;
  /** Artifacts root (default MLCTL_ARTIFACTS or ./artifacts). */
  root?: string;
  /** Fixed version instead of the next free one. */
  version?: number;
  /** The ONNX model's bytes, stored as model.onnx. */
  onnx: Uint8Array;
  /** Its inputs and outputs (V2 datatypes, batch dimension first, -1 where dynamic). */
  tensors: { inputs: readonly TensorRecord[]; outputs: readonly TensorRecord[] };
  /** Free-form facts about the model (framework, opset …), kept in the manifest's architecture. */
  architecture?: Record<string, unknown>;
  /** Where the model came from (a file, a URL), recorded in its lineage. */
  origin?: string;
}

/** Write a generic tensor model package (model.onnx + mlctl.json) atomically; returns it loaded. */
export async function saveTensorModelPackage(opts: TensorModelOptions): Promise<LoadedPackage> {
  const { inputs, outputs } = opts.tensors;
  if (!inputs.length || !outputs.length) throw new MlctlError('PACKAGE_INVALID', [opts.name, 'a tensor model needs at least one input and one output tensor']);
  const copy = (t: TensorRecord): TensorRecord => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] });
  return savePackage({
    name: opts.name,
    root: opts.root,
    version: opts.version,
    draft: {
      labels: [],
      input: { kind: 'tensors', tensors: inputs.map(copy) },
      output: { kind: 'tensors', tensors: outputs.map(copy) },
      architecture: { type: 'onnx', ...opts.architecture },
      formats: { onnx: TENSOR_MODEL_FILE },
      lineage: [{ op: 'import', at: new Date().toISOString(), tool: 'mlctl', ...(opts.origin ? { params: { origin: opts.origin } } : {}) }],
    },
    write: (dir) => fs.writeFile(path.join(dir, TENSOR_MODEL_FILE), opts.onnx),
  });
}

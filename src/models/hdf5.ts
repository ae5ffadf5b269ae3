// Load Keras HDF5 weight files (e.g. vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) into a TF.js model with
// h5wasm, following the file's own layer_names / weight_names attributes as Keras's legacy_h5_format does.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../errors.js';

type H5 = typeof import('h5wasm');
type H5Group = import('h5wasm').Group;
type H5File = import('h5wasm').File;

let h5: H5 | undefined;
async function h5wasm(): Promise<H5> {
  if (!h5) {
    const mod = (await import('h5wasm/node')) as unknown as H5 & { default?: H5 };
    const lib = mod.default && 'File' in mod.default ? mod.default : mod;
    await lib.ready;
    h5 = lib;
  }
  return h5;
}

/** One layer of a Keras weights file: its name and its weights (name, shape, values) in weight_names order. */
export interface H5Layer {
  name: string;
  weights: Array<{ name: string; shape: number[]; values: Float32Array }>;
}

function decodeStrings(value: unknown): string[] {
  const one = (v: unknown): string => (typeof v === 'string' ? v : v instanceof Uint8Array ? new TextDecoder().decode(v).replace(/\0+$/, '') : String(v));
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.map(one);
  if (typeof value === 'string') return [value];
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array)) return Array.from(value as unknown as ArrayLike<unknown>).map(one);
  return [one(value)];
}

/** A list attribute that Keras may have split into name0, name1, … when it exceeded the HDF5 header limit. */
function readListAttr(group: H5Group, name: string): string[] | undefined {
  const attrs = group.attrs;
  if (name in attrs) return decodeStrings(attrs[name]!.value);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...decodeStrings(attrs[`${name}${i}`]!.value));
  return out;
}

function toFloat32(value: unknown): Float32Array {
  if (value instanceof Float32Array) return value;
  // int64 datasets (e.g. a Normalization layer's count) arrive as BigInt64Array, or a bigint for a scalar.
  if (typeof value === 'bigint') return Float32Array.of(Number(value));
  if (value instanceof BigInt64Array || value instanceof BigUint64Array) return Float32Array.from(value, (v) => Number(v));
  if (typeof value === 'number') return Float32Array.of(value);
  if (ArrayBuffer.isView(value)) return Float32Array.from(value as unknown as ArrayLike<number>);
  if (Array.isArray(value)) return Float32Array.from(value.flat(Infinity) as number[]);
  throw new Error('dataset is not numeric');
}

/** HDF5 superblock signature, at offset 0, 512, 1024, 2048, … (checked first so h5wasm never prints C-level errors). */
async function hasHdf5Signature(file: string): Promise<boolean> {
  const sig = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
  const fh = await fs.open(file, 'r');
  try {
    for (const offset of [0, 512, 1024, 2048, 4096]) {
      const buf = Buffer.alloc(8);
      const { bytesRead } = await fh.read(buf, 0, 8, offset);
      if (bytesRead < 8) return false;
      if (buf.equals(sig)) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

/** Read every layer (in the file's order) with its weights. Throws WEIGHTS_INVALID when the file is not a Keras weights file. */
export async function readKerasH5(file: string): Promise<H5Layer[]> {
  const lib = await h5wasm();
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new MlctlError('WEIGHTS_INVALID', [file, 'no such file']);
  if (!(await hasHdf5Signature(file))) throw new MlctlError('WEIGHTS_INVALID', [file, 'not an HDF5 file (no HDF5 signature); expected a Keras .h5 weights file']);
  let f: H5File;
  try {
    f = new lib.File(path.resolve(file), 'r');
  } catch (err) {
    throw new MlctlError('WEIGHTS_INVALID', [file, `not a readable HDF5 file (${(err as Error).message})`], { cause: err });
  }
  try {
    let root: H5Group = f;
    let layerNames = readListAttr(root, 'layer_names');
    if (!layerNames) {
      // Whole-model files (model.save) keep the weights under model_weights/.
      const mw = f.get('model_weights');
      if (mw && mw instanceof lib.Group) {
        root = mw;
        layerNames = readListAttr(root, 'layer_names');
      }
    }
    if (!layerNames) throw new MlctlError('WEIGHTS_INVALID', [file, 'it has no layer_names attribute (not a Keras weights file)']);
    const layers: H5Layer[] = [];
    for (const name of layerNames) {
      const g = root.get(name);
      if (!g || !(g instanceof lib.Group)) throw new MlctlError('WEIGHTS_INVALID', [file, `layer_names lists ${name} but the file has no group ${name}`]);
      const weightNames = readListAttr(g, 'weight_names') ?? [];
      const weights = weightNames.map((wn) => {
        const ds = g.get(wn);
        if (!ds || !(ds instanceof lib.Dataset)) throw new MlctlError('WEIGHTS_INVALID', [file, `layer ${name} lists weight ${wn} but the file has no dataset ${name}/${wn}`]);
        return { name: wn, shape: ds.shape ?? [], values: toFloat32(ds.value) };
      });
      layers.push({ name, weights });
    }
    return layers;
  } catch (err) {
    if (err instanceof MlctlError) throw err;
    throw new MlctlError('WEIGHTS_INVALID', [file, (err as Error).message], { cause: err });
  } finally {
    f.close();
  }
}

/**
 * The model_config a whole-model Keras file (model.save('x.h5')) keeps as a root attribute: the architecture as
 * Keras's JSON. Undefined for a weights-only file. Throws WEIGHTS_INVALID when the file is not HDF5.
 */
export async function readKerasModelConfig(file: string): Promise<unknown | undefined> {
  const lib = await h5wasm();
  if (!(await hasHdf5Signature(file).catch(() => false))) throw new MlctlError('WEIGHTS_INVALID', [file, 'not an HDF5 file (no HDF5 signature); expected a Keras .h5 file']);
  const f = new lib.File(path.resolve(file), 'r');
  try {
    const attr = f.attrs['model_config'];
    if (!attr) return undefined;
    const v = attr.value;
    const text = typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v);
    return JSON.parse(text) as unknown;
  } finally {
    f.close();
  }
}

/**
 * A layer without TF.js weights that takes its values from a Keras file's weights for the layer of the same name
 * (e.g. EfficientNet's Normalization statistics, folded into a Rescaling). Found on the model by duck typing.
 */
export interface KerasWeightsAdapter {
  readonly name: string;
  /** The Keras weight names expected, in weight_names order (e.g. mean, variance, count). */
  readonly kerasWeightNames: string[];
  setKerasWeights(weights: H5Layer['weights']): void;
}

function isAdapter(layer: unknown): layer is KerasWeightsAdapter {
  return typeof (layer as KerasWeightsAdapter).setKerasWeights === 'function' && Array.isArray((layer as KerasWeightsAdapter).kerasWeightNames);
}

export interface LoadWeightsResult {
  /** Model layers that received weights, in model order. */
  layers: string[];
  tensors: number;
  /** Layers in the file that carry weights the model has no layer for (ignored, like Keras's skip_mismatch). */
  unused: string[];
}

/**
 * Load a Keras HDF5 weights file into `model`: every model layer that has weights must have a layer of the same
 * name in the file with the same number of weights and the same shapes (Keras's by_name loading), else a clear
 * WEIGHTS_INVALID naming the layer. Nothing is assigned unless every layer checks out.
 */
export async function loadKerasH5Weights(file: string, model: tf.LayersModel, opts: { layers?: string[] } = {}): Promise<LoadWeightsResult> {
  const fileLayers = new Map((await readKerasH5(file)).filter((l) => l.weights.length > 0).map((l) => [l.name, l]));
  const targets = model.layers.filter((l) => l.weights.length > 0 && (!opts.layers || opts.layers.includes(l.name)));
  const adapters = model.layers.filter((l) => isAdapter(l) && (!opts.layers || opts.layers.includes(l.name))) as unknown as KerasWeightsAdapter[];
  for (const a of adapters) {
    const src = fileLayers.get(a.name);
    const names = src?.weights.map((w) => w.name.split('/').pop()!.replace(/:\d+$/, ''));
    if (!src || names!.slice(0, a.kerasWeightNames.length).join(',') !== a.kerasWeightNames.join(',')) {
      throw new MlctlError('WEIGHTS_INVALID', [file, `layer ${a.name} needs weights ${a.kerasWeightNames.join(', ')} in the file, found ${names?.join(', ') ?? 'no such layer'}`]);
    }
  }
  const assignments: Array<{ layer: tf.layers.Layer; values: tf.Tensor[] }> = [];
  try {
    for (const layer of targets) {
      const src = fileLayers.get(layer.name);
      if (!src) throw new MlctlError('WEIGHTS_INVALID', [file, `it has no weights for layer ${layer.name} (file layers: ${[...fileLayers.keys()].join(', ') || 'none'})`]);
      if (src.weights.length !== layer.weights.length) {
        throw new MlctlError('WEIGHTS_INVALID', [file, `layer ${layer.name} has ${src.weights.length} weight(s) in the file, the model expects ${layer.weights.length}`]);
      }
      const values = layer.weights.map((w, i) => {
        const s = src.weights[i]!;
        if (s.shape.join(',') !== w.shape.join(',')) {
          throw new MlctlError('WEIGHTS_INVALID', [file, `weight ${layer.name}/${s.name} has shape [${s.shape.join(', ')}], the model expects [${w.shape.join(', ')}] (${w.name})`]);
        }
        return tf.tensor(s.values, w.shape as number[], 'float32');
      });
      assignments.push({ layer, values });
    }
    for (const a of assignments) a.layer.setWeights(a.values);
    for (const a of adapters) a.setKerasWeights(fileLayers.get(a.name)!.weights);
  } finally {
    for (const a of assignments) tf.dispose(a.values);
  }
  const used = new Set([...targets.map((l) => l.name), ...adapters.map((a) => a.name)]);
  const loaded = model.layers.filter((l) => used.has(l.name)).map((l) => l.name);
  return { layers: loaded, tensors: assignments.reduce((n, a) => n + a.values.length, 0), unused: [...fileLayers.keys()].filter((n) => !used.has(n)) };
}

export interface H5WriteLayer {
  name: string;
  /** float32 weights; dtype int64 stores integral values as int64 (e.g. a Normalization layer's count). */
  weights: Array<{ name: string; shape: number[]; values: Float32Array; dtype?: 'int64' }>;
}

/**
 * Write a Keras-layout weights file (layer_names / weight_names attributes, one group per layer, datasets named by
 * weight_names relative to the layer group). Used by tests and to export weights for Keras; groups are created one
 * level at a time because h5wasm does not create intermediate groups.
 */
export async function writeKerasH5(file: string, layers: H5WriteLayer[], opts: { splitLayerNames?: number } = {}): Promise<void> {
  const lib = await h5wasm();
  const f = new lib.File(path.resolve(file), 'w');
  try {
    const names = layers.map((l) => l.name);
    const split = opts.splitLayerNames ?? 0;
    if (split > 0) {
      for (let i = 0, k = 0; i < names.length; i += split, k++) f.create_attribute(`layer_names${k}`, names.slice(i, i + split));
    } else {
      f.create_attribute('layer_names', names);
    }
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('keras_version', '2.2.4');
    for (const layer of layers) {
      const g = f.create_group(layer.name);
      g.create_attribute('weight_names', layer.weights.map((w) => w.name));
      for (const w of layer.weights) {
        const parts = w.name.split('/');
        let parent: H5Group = g;
        for (const part of parts.slice(0, -1)) parent = (parent.get(part) as H5Group | null) ?? parent.create_group(part);
        parent.create_dataset({ name: parts[parts.length - 1]!, data: w.dtype === 'int64' ? BigInt64Array.from(w.values, (v) => BigInt(v)) : w.values, shape: w.shape, dtype: w.dtype === 'int64' ? '<q' : '<f' });
      }
    }
  } finally {
    f.close();
  }
}

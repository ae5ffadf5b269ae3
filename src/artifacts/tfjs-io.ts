// File-system IOHandler for TF.js layers models: what tfjs-node's `file://` handler gives, for the wasm/cpu path.
// Writes the standard layers format (model.json + weight shards) that stock tf.loadLayersModel reads.
import type * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** TF.js, imported when a model is written or loaded (reading files needs none): serve may never need it. */
export const tfjs = (): Promise<typeof tf> => import('@tensorflow/tfjs');

export const MODEL_JSON = 'model.json';
/** Shard size as the TF.js converter uses (4 MiB). */
export const SHARD_BYTES = 4 * 1024 * 1024;

export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: unknown;
  trainingConfig?: unknown;
  weightsManifest: tf.io.WeightsManifestConfig;
  userDefinedMetadata?: { [key: string]: {} };
}

function shardName(i: number, n: number): string {
  return `group1-shard${i + 1}of${n}.bin`;
}

/** Split a weight buffer into converter-style shards. */
function splitShards(data: ArrayBuffer): Uint8Array[] {
  const bytes = new Uint8Array(data);
  const n = Math.max(1, Math.ceil(bytes.byteLength / SHARD_BYTES));
  return Array.from({ length: n }, (_, i) => bytes.subarray(i * SHARD_BYTES, Math.min(bytes.byteLength, (i + 1) * SHARD_BYTES)));
}

type LayerJson = { class_name: string; name?: string; config: Record<string, unknown>; inbound_nodes?: unknown };

/**
 * Give a layers-model topology's single input the name `name` (in place; true when it changed): a functional model's
 * InputLayer is renamed with every reference to it; a Sequential model gets an explicit InputLayer of that name first
 * (TF.js otherwise names it "<first layer>_input"). Weights are untouched: an InputLayer has none.
 */
export function nameModelInput(topology: unknown, name: string): boolean {
  const top = topology as { class_name?: string; config?: { layers?: LayerJson[]; input_layers?: unknown[][] } } | undefined;
  const layers = top?.config?.layers;
  if (!top || !Array.isArray(layers) || !layers.length) return false;
  if (layers.some((l) => (l.name ?? l.config.name) === name)) return false; // already so named, or taken by another layer
  if (top.class_name === 'Sequential') {
    const first = layers[0]!;
    if (first.class_name === 'InputLayer') {
      first.config.name = name;
      return true;
    }
    const shape = first.config.batch_input_shape;
    if (!Array.isArray(shape)) return false;
    layers.unshift({ class_name: 'InputLayer', config: { batch_input_shape: shape, dtype: first.config.dtype ?? 'float32', sparse: false, name } });
    return true;
  }
  const inputs = top.config!.input_layers;
  if (!Array.isArray(inputs) || inputs.length !== 1) return false;
  const old = inputs[0]![0];
  const layer = layers.find((l) => l.class_name === 'InputLayer' && (l.name ?? l.config.name) === old);
  if (!layer || typeof old !== 'string') return false;
  layer.name = name;
  layer.config.name = name;
  inputs[0]![0] = name;
  // inbound_nodes: [[[layerName, nodeIndex, tensorIndex, kwargs], …], …]
  for (const l of layers) {
    for (const node of (l.inbound_nodes as unknown[][][] | undefined) ?? []) for (const ref of node) if (Array.isArray(ref) && ref[0] === old) ref[0] = name;
  }
  return true;
}

/** Rename the input of the model.json at `file` to `name` when it differs (see nameModelInput); returns the old name or undefined. */
export async function alignModelInputName(file: string, name: string): Promise<string | undefined> {
  let json: ModelJson;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8')) as ModelJson;
  } catch {
    // Not a layers-model JSON (a placeholder, a graph model): nothing to name; loading it will say what is wrong.
    return undefined;
  }
  const old = modelInputName(json?.modelTopology);
  if (old === name || !nameModelInput(json?.modelTopology, name)) return undefined;
  await fs.writeFile(file, JSON.stringify(json));
  return old ?? '(implicit)';
}

/** The single input's name as TF.js will load it (a Sequential model without an InputLayer: "<first layer>_input"). */
export function modelInputName(topology: unknown): string | undefined {
  const top = topology as { class_name?: string; config?: { layers?: LayerJson[]; input_layers?: unknown[][] } } | undefined;
  const layers = top?.config?.layers;
  if (!Array.isArray(layers) || !layers.length) return undefined;
  if (top!.class_name === 'Sequential') {
    const first = layers[0]!;
    const n = String(first.name ?? first.config.name);
    return first.class_name === 'InputLayer' ? n : `${n}_input`;
  }
  const inputs = top!.config!.input_layers;
  return Array.isArray(inputs) && inputs.length === 1 ? String(inputs[0]![0]) : undefined;
}

/** Write model.json + shards into `dir` (which must exist). Returns the file names written. */
export async function writeLayersModel(dir: string, artifacts: tf.io.ModelArtifacts, specsOverride?: tf.io.WeightsManifestEntry[]): Promise<string[]> {
  const tf = await tfjs();
  const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const shards = splitShards(weightData);
  const paths = shards.map((_, i) => shardName(i, shards.length));
  const json: ModelJson = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? 'mlctl',
    modelTopology: artifacts.modelTopology,
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    weightsManifest: [{ paths, weights: specsOverride ?? artifacts.weightSpecs ?? [] }],
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  await Promise.all(shards.map((s, i) => fs.writeFile(path.join(dir, paths[i]!), s)));
  await fs.writeFile(path.join(dir, MODEL_JSON), JSON.stringify(json));
  return [MODEL_JSON, ...paths];
}

/**
 * Read model.json and its shards into ModelArtifacts (quantized entries are decoded by tf.loadLayersModel).
 * `readShard` reads a shard by its path relative to model.json (a package passes its decrypting reader).
 */
export async function readLayersModel(modelJsonPath: string, readShard?: (rel: string) => Promise<Uint8Array>): Promise<tf.io.ModelArtifacts> {
  const dir = path.dirname(modelJsonPath);
  const json = JSON.parse(await fs.readFile(modelJsonPath, 'utf8')) as ModelJson;
  const read = readShard ?? ((rel: string) => fs.readFile(path.join(dir, rel)));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  // Shards are read concurrently: a decrypting reader works on one shard while the next one is still being read.
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    buffers.push(...(await Promise.all(group.paths.map((p) => read(p)))));
  }
  const total = buffers.reduce((a, b) => a + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    trainingConfig: json.trainingConfig as tf.io.ModelArtifacts['trainingConfig'],
    weightSpecs: specs,
    weightData: weightData.buffer,
    userDefinedMetadata: json.userDefinedMetadata,
  };
}

/** IOHandler usable with model.save() / tf.loadLayersModel(): save writes into `dir`, load reads `dir/model.json`. */
export function fileIO(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await fs.mkdir(dir, { recursive: true });
      await writeLayersModel(dir, artifacts);
      return { modelArtifactsInfo: (await tfjs()).io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      return readLayersModel(path.join(dir, MODEL_JSON));
    },
  };
}

export async function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  return (await tfjs()).loadLayersModel(fileIO(dir));
}

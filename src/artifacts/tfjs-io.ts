// File-system IOHandler for TF.js layers models: what tfjs-node's `file://` handler gives, for the wasm/cpu path.
// Writes the standard layers format (model.json + weight shards) that stock tf.loadLayersModel reads.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';

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

/** Write model.json + shards into `dir` (which must exist). Returns the file names written. */
export async function writeLayersModel(dir: string, artifacts: tf.io.ModelArtifacts, specsOverride?: tf.io.WeightsManifestEntry[]): Promise<string[]> {
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
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(await read(p));
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
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      return readLayersModel(path.join(dir, MODEL_JSON));
    },
  };
}

export async function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileIO(dir));
}

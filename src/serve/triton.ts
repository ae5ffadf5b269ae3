// Triton's extensions of the V2 protocol shared by mlctl serve's REST routes and gRPC service: a served model's
// configuration (the ModelConfig `export --format triton` writes for the same package), the classification output
// parameter ("score:index:label" strings, as Triton's classification.cc writes them) and the repository index.
import { variantProps, type WeightsVariant } from '../artifacts/variant.js';
import { toNumbers, type Tensor } from '../runtime/tensor.js';
import { tritonConfig } from '../triton/config.js';
import { topIndices } from '../tasks/scores.js';
import { badRequest } from './errors.js';
import type { InferOutput, InferResult, ModelRepository, ServedModel, ServeState, UnavailableVersion } from './types.js';

/** The extensions mlctl serve implements, as GET /v2 and ServerMetadata name them (Triton's names). */
export const TRITON_EXTENSIONS = ['model_configuration', 'statistics', 'classification', 'model_repository'] as const;

/**
 * The ModelConfig of a served model: its tensors as it is served, its labels, the variant parameters, and the
 * batching it is served with (max_batch_size = --max-batch, max_queue_delay_microseconds = --max-delay-ms, instance_group
 * count = --instances) — for an
 * image or tabular model equal to what `export --format triton` writes for the same package with the same batching.
 * A model without a batch dimension has max_batch_size 0 and its full shapes as served: an imported detector's batch
 * of one [1, …] (the export writes the file's own shapes, e.g. torchvision's [3, h, w]).
 */
export async function servedModelConfig(m: ServedModel, batching: ModelRepository['batching']): Promise<Record<string, unknown>> {
  const metadataProps = m.manifest.input.kind === 'tensors' ? {} : variantProps(m.manifest, { input: 'preprocessed', weights: m.weights as WeightsVariant });
  return tritonConfig(m.manifest, { inputs: m.inputs, outputs: m.outputs, metadataProps }, {
    name: m.name,
    platform: m.platform,
    maxBatch: m.batched ? batching.maxBatch : 0,
    queueDelayUs: Math.round(batching.maxDelayMs * 1000),
    instances: batching.instances,
  });
}

/** The "classification" parameter of a requested output: how many classes to return, or undefined when absent. */
export function classificationCount(raw: unknown, output: string): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const n = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw badRequest(`output "${output}": parameters.classification must be a whole number ≥ 0 (the number of classes to return), got ${JSON.stringify(String(raw))}`);
  return n;
}

/** Triton's std::to_string(float): fixed notation, six decimals. */
const toStdString = (v: number) => (Number.isFinite(v) ? v.toFixed(6) : String(v).toLowerCase());

/**
 * Replace an FP32 output with its top-`k` classes per example: BYTES [batch, k] of "score:index:label" (label left
 * out when the model has none), highest score first, ties by index (the one ranking, tasks/scores.ts) — Triton's
 * classification extension, which applies to any output tensor the model has.
 */
export function classify(out: InferOutput, k: number, labels: string[]): Tensor<'BYTES'> {
  if (out.datatype === 'BYTES') throw badRequest(`output "${out.name}" is BYTES: the classification parameter needs a numeric output`);
  const values = toNumbers(out);
  const batch = out.shape[0] ?? 1;
  const width = values.length / Math.max(1, batch);
  const count = Math.min(k, width);
  const data: Uint8Array[] = [];
  for (let b = 0; b < batch; b++) {
    const row = values.subarray(b * width, (b + 1) * width);
    for (const i of topIndices(row, count)) data.push(Buffer.from(`${toStdString(row[i]!)}:${i}${labels[i] !== undefined && labels[i] !== '' ? `:${labels[i]}` : ''}`, 'utf8'));
  }
  return { name: out.name, datatype: 'BYTES', shape: [batch, count], data };
}

/**
 * The outputs a V2 request asked for (all when it named none), each as the model produced it or — with the
 * classification parameter — as its top classes. Unknown output names are a 400 naming the model's outputs.
 */
export function requestedOutputs(result: InferResult, requested: Array<{ name: unknown; classification?: number }> | undefined): Tensor[] {
  const outputs = result.outputs;
  const wanted = requested?.length ? requested : outputs.map((o) => ({ name: o.name, classification: undefined }));
  checkOutputNames(result.model, wanted.map((w) => w.name));
  return wanted.map((w) => {
    const out = outputs.find((o) => o.name === w.name)!;
    return w.classification ? classify(out, w.classification, result.model.manifest.labels) : out;
  });
}

/** Output names a request asks for, against the model's: unknown ones are a 400 naming the outputs there are. */
export function checkOutputNames(model: ServedModel, names: readonly unknown[]): void {
  const unknown = names.filter((n) => !model.outputs.some((o) => o.name === n));
  if (!unknown.length) return;
  const known = model.outputs.map((o) => `"${o.name}"`).join(', ');
  throw badRequest(`model ${model.name} has no output ${unknown.map((u) => JSON.stringify(u)).join(', ')}; its output${model.outputs.length > 1 ? 's are' : ' is'} ${known}`);
}

export interface IndexEntry {
  name: string;
  version: string;
  state: string;
  /** Why a version is not READY (absent when it is). */
  reason?: string;
}

/**
 * The repository index (Triton's RepositoryIndex): loaded versions (READY, or LOADING while warming), versions that
 * could not be served (UNAVAILABLE with the reason), and versions found on disk that are not loaded (UNAVAILABLE,
 * "not loaded"). With `readyOnly`, only READY ones.
 */
export function repositoryIndex(repo: ModelRepository, onDisk: Array<{ name: string; version: number }>, refused: UnavailableVersion[], readyOnly: boolean): IndexEntry[] {
  const seen = new Set<string>();
  const out: IndexEntry[] = [];
  const push = (e: IndexEntry) => {
    const k = `${e.name}\u0000${e.version}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push(e);
  };
  for (const m of repo.list()) push({ name: m.name, version: String(m.version), state: m.ready ? 'READY' : 'LOADING' });
  for (const u of [...refused, ...repo.unavailable()]) push({ name: u.name, version: String(u.version), state: 'UNAVAILABLE', reason: u.reason });
  for (const d of onDisk) push({ name: d.name, version: String(d.version), state: 'UNAVAILABLE', reason: 'not loaded' });
  const sorted = out.sort((a, b) => a.name.localeCompare(b.name) || Number(a.version) - Number(b.version));
  return readyOnly ? sorted.filter((e) => e.state === 'READY') : sorted;
}

/**
 * The index a server answers (REST and gRPC alike): with model control, what is on disk joins the loaded and refused
 * versions; `visible` keeps what the caller's API key may see.
 */
export async function servedIndex(state: ServeState, readyOnly: boolean, visible: (name: string) => boolean = () => true): Promise<IndexEntry[]> {
  const control = state.modelControl;
  const onDisk = control ? await control.available() : [];
  return repositoryIndex(state.repo, onDisk, control?.refused() ?? [], readyOnly).filter((e) => visible(e.name));
}

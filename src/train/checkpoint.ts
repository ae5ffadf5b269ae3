// Training checkpoints in a run directory (<artifacts>/.runs/<name>/): the run's config fingerprint plus, after every
// epoch, the head weights, best weights, Adam moments and history — enough for --resume to continue exactly. Heads are
// the classifier's Dense pair (HeadParams) or any head held as named arrays (the detection head's layer weights).
// Layout: checkpoint/state.json names the tensor files (and the fine-tune model folder) it belongs with. A save writes
// new files under fresh names and fsyncs them, then replaces state.json atomically, then removes what no state names:
// a crash at any point leaves the previous checkpoint whole. Best weights are written only when they change.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { RunIdentity } from './run-lock.js';
import { transposeMatrix, type EpochMetrics, type HeadParams, type HeadTrainState } from '../heads/head.js';

export const CHECKPOINT_VERSION = 2;

export function runDir(artifactsRoot: string, name: string): string {
  return path.join(artifactsRoot, '.runs', name);
}

export interface RunConfig {
  /** Everything that must match for --resume to make sense (data, size, head, weights, seed, …). */
  fingerprint: Record<string, unknown>;
  /** Which run wrote the checkpoint: --resume names it. */
  run?: RunIdentity;
  /** Rates the --find-lr range tests chose, per phase: a resumed run trains with them again. */
  lrFind?: { head?: number; fineTune?: number };
}

/** A head's weights as named arrays, in the order its trainer keeps them (Adam slots follow the same order). */
export interface NamedParams {
  tensors: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

export type CheckpointParams = HeadParams | NamedParams;

const isNamed = (p: CheckpointParams): p is NamedParams => 'tensors' in p;

export interface Checkpoint<P extends CheckpointParams = HeadParams, H = EpochMetrics> {
  phase: 'head' | 'fine-tune';
  head: HeadTrainState<P, H>;
  /** Fine-tune phase: epochs done in that phase and its history. */
  fineTune?: { epoch: number; history: H[]; bestEpoch: number; bestMonitor: number; wait: number };
  interrupted?: boolean;
  /** The fine-tune model folder this checkpoint goes with (absolute; set by loadCheckpoint). */
  modelDir?: string;
}

/** Where one tensor is: `file` in the checkpoint folder, float offset and length. */
interface TensorEntry {
  name: string;
  shape: number[];
  file: string;
  offset: number;
  length: number;
}

interface StateFile {
  version: number;
  /** 'named': the head's weights are NamedParams (absent: HeadParams, w1/b1/w2/b2). */
  params?: 'named';
  savedAt: string;
  phase: Checkpoint['phase'];
  interrupted: boolean;
  epoch: number;
  wait: number;
  best: { epoch: number; monitor: number | null };
  adamStep: number;
  history: unknown[];
  fineTune?: Checkpoint<CheckpointParams, unknown>['fineTune'];
  /** Folder (in the checkpoint folder) of the fine-tune model. */
  model?: string;
  tensors: TensorEntry[];
}

type Item = { name: string; shape: number[]; data: Float32Array };

function headItems(prefix: string, p: CheckpointParams): Item[] {
  if (isNamed(p)) return p.tensors.map((t) => ({ name: `${prefix}.${t.name}`, shape: t.shape, data: t.data }));
  return [
    { name: `${prefix}.w1`, shape: [p.inputSize, p.units], data: p.w1 },
    { name: `${prefix}.b1`, shape: [p.units], data: p.b1 },
    { name: `${prefix}.w2`, shape: [p.units, p.classes], data: p.w2 },
    { name: `${prefix}.b2`, shape: [p.classes], data: p.b2 },
  ];
}

async function writeAll(fh: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.byteLength; ) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}

/** Write items one after another into a new file (fsynced) and return their entries. */
async function writeTensorFile(dir: string, file: string, items: Item[]): Promise<TensorEntry[]> {
  const entries: TensorEntry[] = [];
  const fh = await fs.open(path.join(dir, file), 'w');
  try {
    let offset = 0;
    for (const it of items) {
      await writeAll(fh, new Uint8Array(it.data.buffer, it.data.byteOffset, it.data.byteLength), offset * 4);
      entries.push({ name: it.name, shape: it.shape, file, offset, length: it.data.length });
      offset += it.data.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return entries;
}

/** Best weights already on disk: reused while the best epoch stays the same. */
interface BestOnDisk {
  epoch: number;
  entries: TensorEntry[];
}

async function readState(dir: string): Promise<StateFile | undefined> {
  const text = await fs.readFile(path.join(dir, 'state.json'), 'utf8').catch(() => undefined);
  return text ? (JSON.parse(text) as StateFile) : undefined;
}

/** Remove files and folders of the checkpoint folder that `state` does not name (older saves, interrupted writes). */
async function prune(dir: string, state: StateFile): Promise<void> {
  const keep = new Set(['state.json', ...state.tensors.map((t) => t.file), ...(state.model ? [state.model] : [])]);
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!keep.has(name)) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Write a checkpoint (see the layout above). `extra` fills the fine-tune model folder. `bestOnDisk` carries the
 * best weights' entries from one save to the next so unchanged best weights are not written again.
 */
export async function saveCheckpoint<P extends CheckpointParams, H>(dir: string, config: RunConfig, ckpt: Checkpoint<P, H>, extra?: (modelDir: string) => Promise<void>, bestOnDisk?: { current?: BestOnDisk }): Promise<void> {
  const h = ckpt.head;
  const cdir = path.join(dir, 'checkpoint');
  await fs.mkdir(cdir, { recursive: true });
  const prev = await readState(cdir).catch(() => undefined);
  const gen = `${String(h.epoch).padStart(4, '0')}-${ckpt.phase}-${randomBytes(4).toString('hex')}`;
  const items = [...headItems('weights', h.weights), ...h.optimizer.m.map((m, i) => ({ name: `adam.m${i}`, shape: [m.length], data: m })), ...h.optimizer.v.map((v, i) => ({ name: `adam.v${i}`, shape: [v.length], data: v }))];
  const sameAsWeights = h.best.weights === h.weights || h.best.epoch === h.epoch;
  const reuse = bestOnDisk?.current && bestOnDisk.current.epoch === h.best.epoch && prev?.tensors?.some((t) => t.file === bestOnDisk.current!.entries[0]?.file);
  const entries = await writeTensorFile(cdir, `tensors-${gen}.bin`, items);
  let best: TensorEntry[];
  if (sameAsWeights) best = entries.filter((e) => e.name.startsWith('weights.')).map((e) => ({ ...e, name: e.name.replace('weights.', 'best.') }));
  else if (reuse) best = bestOnDisk!.current!.entries;
  else best = await writeTensorFile(cdir, `best-${gen}.bin`, headItems('best', h.best.weights));
  if (bestOnDisk) bestOnDisk.current = { epoch: h.best.epoch, entries: best };
  let model: string | undefined;
  if (extra) {
    model = `model-${gen}`;
    await fs.mkdir(path.join(cdir, model));
    await extra(path.join(cdir, model));
  }
  const state: StateFile = {
    version: CHECKPOINT_VERSION,
    ...(isNamed(h.weights) ? { params: 'named' as const } : {}),
    savedAt: new Date().toISOString(),
    phase: ckpt.phase,
    interrupted: ckpt.interrupted ?? false,
    epoch: h.epoch,
    wait: h.wait,
    best: { epoch: h.best.epoch, monitor: h.best.monitor },
    adamStep: h.optimizer.step,
    history: h.history,
    fineTune: ckpt.fineTune,
    model,
    tensors: [...entries, ...best],
  };
  await writeFileAtomic(path.join(cdir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
  // The config after the state: a crash between the two leaves a config that does not match (resume refuses), never
  // a matching config over another run's state.
  await writeJsonAtomic(path.join(dir, 'config.json'), config);
  await prune(cdir, state);
}

/**
 * Checkpoints written in the background: save() waits for the previous write (reporting its failure), then starts
 * this one and returns, so the next epoch computes while the bytes go to disk. flush() waits for the last one.
 */
export interface CheckpointWriter<P extends CheckpointParams = HeadParams, H = EpochMetrics> {
  save(ckpt: Checkpoint<P, H>, extra?: (modelDir: string) => Promise<void>): Promise<void>;
  flush(): Promise<void>;
}

export function checkpointWriter<P extends CheckpointParams = HeadParams, H = EpochMetrics>(dir: string, config: RunConfig): CheckpointWriter<P, H> {
  let pending: Promise<void> = Promise.resolve();
  const best: { current?: BestOnDisk } = {};
  return {
    async save(ckpt, extra) {
      await pending;
      pending = saveCheckpoint(dir, config, ckpt, extra, best);
      // Failures surface at the next save() or flush(), not as unhandled rejections.
      pending.catch(() => undefined);
    },
    flush: () => pending,
  };
}

export async function readRunConfig(dir: string): Promise<RunConfig | undefined> {
  const text = await fs.readFile(path.join(dir, 'config.json'), 'utf8').catch(() => undefined);
  return text ? (JSON.parse(text) as RunConfig) : undefined;
}

/** Tensors of a checkpoint by name, read from their files. */
async function tensorReader(cdir: string, entries: TensorEntry[]) {
  const files = new Map<string, Float32Array>();
  for (const file of new Set(entries.map((e) => e.file))) {
    const buf = await fs.readFile(path.join(cdir, file)).catch((err: NodeJS.ErrnoException) => {
      throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} is incomplete (${file}: ${err.code ?? err.message}); start a new run without --resume`]);
    });
    files.set(file, new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)));
  }
  return (name: string) => {
    const e = entries.find((i) => i.name === name);
    const all = e && files.get(e.file);
    if (!e || !all || e.offset + e.length > all.length) throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} is incomplete (no ${name}); start a new run without --resume`]);
    return { data: all.slice(e.offset, e.offset + e.length), shape: e.shape };
  };
}

/** The named arrays under `prefix.` in the order the checkpoint lists them. */
function namedOf(entries: TensorEntry[], get: (name: string) => { data: Float32Array; shape: number[] }, prefix: string): NamedParams {
  return { tensors: entries.filter((e) => e.name.startsWith(`${prefix}.`)).map((e) => ({ name: e.name.slice(prefix.length + 1), ...get(e.name) })) };
}

function paramsOf(get: (name: string) => { data: Float32Array; shape: number[] }, prefix: string): HeadParams {
  const w1 = get(`${prefix}.w1`);
  const w2 = get(`${prefix}.w2`);
  return { inputSize: w1.shape[0]!, units: w1.shape[1]!, classes: w2.shape[1]!, w1: w1.data, b1: get(`${prefix}.b1`).data, w2: w2.data, b2: get(`${prefix}.b2`).data };
}

/** A version 1 checkpoint (one tensors.bin, fc1's Adam moments transposed): read into today's state. */
function fromV1(state: StateFile & { index: Array<Omit<TensorEntry, 'file'>> }): TensorEntry[] {
  return state.index.map((e) => ({ ...e, file: 'tensors.bin' }));
}

/**
 * Load a checkpoint, or undefined when there is none. `P` and `H` say what the caller's trainer wrote; a checkpoint
 * whose weights are held the other way (a classifier's run resumed as a detector) is CHECKPOINT_INVALID.
 */
export async function loadCheckpoint<P extends CheckpointParams = HeadParams, H = EpochMetrics>(dir: string, params: 'dense' | 'named' = 'dense'): Promise<Checkpoint<P, H> | undefined> {
  const cdir = path.join(dir, 'checkpoint');
  const state = await readState(cdir);
  if (!state) return undefined;
  if (state.version !== CHECKPOINT_VERSION && state.version !== 1) throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} has format version ${state.version}; this mlctl reads 1 and ${CHECKPOINT_VERSION}. Start a new run without --resume`]);
  const v1 = state.version === 1;
  const entries = v1 ? fromV1(state as StateFile & { index: Array<Omit<TensorEntry, 'file'>> }) : state.tensors;
  if ((state.params === 'named') !== (params === 'named')) throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} holds ${state.params === 'named' ? 'a detection head' : 'a Dense classification head'}, not the head this run trains; start a new run without --resume`]);
  const get = await tensorReader(cdir, entries);
  const load = (prefix: string) => (state.params === 'named' ? namedOf(entries, get, prefix) : paramsOf(get, prefix)) as P;
  const weights = load('weights');
  const slots = entries.filter((i) => i.name.startsWith('adam.m')).length;
  const m: Float32Array[] = Array.from({ length: slots }, (_, i) => get(`adam.m${i}`).data);
  const v: Float32Array[] = Array.from({ length: slots }, (_, i) => get(`adam.v${i}`).data);
  if (v1 && slots) {
    // Version 1 kept fc1's moments in the TF.js trainer's layout [units, in].
    const w = weights as HeadParams;
    m[0] = transposeMatrix(m[0]!, w.units, w.inputSize);
    v[0] = transposeMatrix(v[0]!, w.units, w.inputSize);
  }
  const modelDir = state.model ?? (v1 ? 'model' : undefined);
  return {
    phase: state.phase,
    fineTune: state.fineTune as Checkpoint<P, H>['fineTune'],
    modelDir: modelDir ? path.join(cdir, modelDir) : undefined,
    head: {
      epoch: state.epoch,
      wait: state.wait,
      history: state.history as H[],
      weights,
      // JSON turns Infinity into null: an untouched "best" compares as worse than anything.
      best: { epoch: state.best.epoch, monitor: state.best.monitor ?? Infinity, weights: load('best') },
      optimizer: { step: state.adamStep, m, v },
    },
  };
}

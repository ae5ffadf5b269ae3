// Training checkpoints in a run directory (<artifacts>/.runs/<name>/): the run's config fingerprint plus, after every
// epoch, the head weights, best weights, Adam moments and history — enough for --resume to continue exactly.
import * as tf from '@tensorflow/tfjs';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { replaceDirAtomic, writeJsonAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import { holdFileLock } from '../util/lock.js';
import type { HeadWeights } from '../models/head.js';
import type { EpochMetrics, HeadTrainState } from './head.js';

export const CHECKPOINT_VERSION = 1;

export function runDir(artifactsRoot: string, name: string): string {
  return path.join(artifactsRoot, '.runs', name);
}

export interface RunConfig {
  /** Everything that must match for --resume to make sense (data, size, head, weights, seed, …). */
  fingerprint: Record<string, unknown>;
  /** Which run wrote the checkpoint: --resume names it. */
  run?: RunIdentity;
}

/** One `mlctl train` process working in a run folder. */
export interface RunIdentity {
  id: string;
  pid: number;
  startedAt: string;
}

export interface RunLock extends RunIdentity {
  release(): Promise<void>;
}

const OWNER_FILE = 'owner.json';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Hold the run folder for this process (util/lock.ts, `run.lock` in it, plus `owner.json` saying who): a second run
 * with the same --name fails with RUN_LOCKED naming the holder's pid, instead of both writing checkpoints over each
 * other. A lock left by a killed run is taken over: at once when its pid is gone on this host, else once stale.
 */
export async function lockRun(dir: string, name: string): Promise<RunLock> {
  const me: RunIdentity & { host: string } = { id: `${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${process.pid}`, pid: process.pid, startedAt: new Date().toISOString(), host: os.hostname() };
  const owner = path.join(dir, OWNER_FILE);
  const holder = (): (RunIdentity & { host?: string }) | undefined => {
    try {
      return JSON.parse(readFileSync(owner, 'utf8')) as RunIdentity & { host?: string };
    } catch {
      return undefined;
    }
  };
  const busy = () => {
    const h = holder();
    return new MlctlError('RUN_LOCKED', [name, h ? String(h.pid) : 'unknown', h?.startedAt ?? 'an unknown time']);
  };
  let release: () => Promise<void>;
  try {
    release = await holdFileLock(path.join(dir, 'run'), { waitMs: 0, busy });
  } catch (err) {
    const h = holder();
    if (!(err instanceof MlctlError) || !h || (h.host ?? os.hostname()) !== os.hostname() || processAlive(h.pid)) throw err;
    // The holder was killed on this host: its lock need not go stale first.
    await fs.rm(path.join(dir, 'run.lock'), { recursive: true, force: true });
    release = await holdFileLock(path.join(dir, 'run'), { waitMs: 0, busy });
  }
  await writeJsonAtomic(owner, me);
  return {
    id: me.id,
    pid: me.pid,
    startedAt: me.startedAt,
    release: async () => {
      await fs.rm(owner, { force: true });
      await release();
    },
  };
}

export interface Checkpoint {
  phase: 'head' | 'fine-tune';
  head: HeadTrainState;
  /** Fine-tune phase: epochs done in that phase and its history. */
  fineTune?: { epoch: number; history: EpochMetrics[]; bestEpoch: number; bestMonitor: number; wait: number };
  interrupted?: boolean;
}

interface TensorIndex {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

function packArrays(items: Array<{ name: string; shape: number[]; data: Float32Array }>): { index: TensorIndex[]; bytes: Uint8Array } {
  const total = items.reduce((n, i) => n + i.data.length, 0);
  const all = new Float32Array(total);
  const index: TensorIndex[] = [];
  let offset = 0;
  for (const it of items) {
    all.set(it.data, offset);
    index.push({ name: it.name, shape: it.shape, offset, length: it.data.length });
    offset += it.data.length;
  }
  return { index, bytes: new Uint8Array(all.buffer) };
}

function headItems(prefix: string, w: HeadWeights) {
  return (['w1', 'b1', 'w2', 'b2'] as const).map((k) => ({ name: `${prefix}.${k}`, shape: w[k].shape as number[], data: w[k].dataSync() as Float32Array }));
}

/** Write the checkpoint atomically (a crash mid-write keeps the previous one). `extra` writes more files (fine-tune model). */
export async function saveCheckpoint(dir: string, config: RunConfig, ckpt: Checkpoint, extra?: (tmp: string) => Promise<void>): Promise<void> {
  const h = ckpt.head;
  const items = [
    ...headItems('weights', h.weights),
    ...headItems('best', h.best.weights),
    ...h.optimizer.m.map((m, i) => ({ name: `adam.m${i}`, shape: [m.length], data: m })),
    ...h.optimizer.v.map((v, i) => ({ name: `adam.v${i}`, shape: [v.length], data: v })),
  ];
  const { index, bytes } = packArrays(items);
  await fs.mkdir(dir, { recursive: true });
  await writeJsonAtomic(path.join(dir, 'config.json'), config);
  await replaceDirAtomic(path.join(dir, 'checkpoint'), async (tmp) => {
    await fs.writeFile(path.join(tmp, 'tensors.bin'), bytes);
    const state = {
      version: CHECKPOINT_VERSION,
      savedAt: new Date().toISOString(),
      phase: ckpt.phase,
      interrupted: ckpt.interrupted ?? false,
      epoch: h.epoch,
      wait: h.wait,
      best: { epoch: h.best.epoch, monitor: h.best.monitor },
      adamStep: h.optimizer.step,
      history: h.history,
      fineTune: ckpt.fineTune,
      index,
    };
    await fs.writeFile(path.join(tmp, 'state.json'), JSON.stringify(state, null, 2) + '\n');
    await extra?.(tmp);
  });
}

export async function readRunConfig(dir: string): Promise<RunConfig | undefined> {
  const text = await fs.readFile(path.join(dir, 'config.json'), 'utf8').catch(() => undefined);
  return text ? (JSON.parse(text) as RunConfig) : undefined;
}

/** Load a checkpoint (caller disposes the tensors in head.weights / head.best.weights). */
export async function loadCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  const cdir = path.join(dir, 'checkpoint');
  const text = await fs.readFile(path.join(cdir, 'state.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const state = JSON.parse(text) as {
    version: number;
    phase: Checkpoint['phase'];
    epoch: number;
    wait: number;
    best: { epoch: number; monitor: number | null };
    adamStep: number;
    history: EpochMetrics[];
    fineTune?: Checkpoint['fineTune'];
    index: TensorIndex[];
  };
  if (state.version !== CHECKPOINT_VERSION) throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} has format version ${state.version}; this mlctl reads ${CHECKPOINT_VERSION}. Start a new run without --resume`]);
  const buf = await fs.readFile(path.join(cdir, 'tensors.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const get = (name: string) => {
    const e = state.index.find((i) => i.name === name);
    if (!e) throw new MlctlError('CHECKPOINT_INVALID', [`checkpoint in ${cdir} is incomplete (no ${name}); start a new run without --resume`]);
    return { data: all.slice(e.offset, e.offset + e.length), shape: e.shape };
  };
  const head = (prefix: string): HeadWeights => {
    const t = (k: string) => {
      const g = get(`${prefix}.${k}`);
      return tf.tensor(g.data, g.shape);
    };
    return { w1: t('w1') as tf.Tensor2D, b1: t('b1') as tf.Tensor1D, w2: t('w2') as tf.Tensor2D, b2: t('b2') as tf.Tensor1D };
  };
  const slots = state.index.filter((i) => i.name.startsWith('adam.m')).length;
  return {
    phase: state.phase,
    fineTune: state.fineTune,
    head: {
      epoch: state.epoch,
      wait: state.wait,
      history: state.history,
      weights: head('weights'),
      // JSON turns Infinity into null: an untouched "best" compares as worse than anything.
      best: { epoch: state.best.epoch, monitor: state.best.monitor ?? Infinity, weights: head('best') },
      optimizer: {
        step: state.adamStep,
        m: Array.from({ length: slots }, (_, i) => get(`adam.m${i}`).data),
        v: Array.from({ length: slots }, (_, i) => get(`adam.v${i}`).data),
      },
    },
  };
}

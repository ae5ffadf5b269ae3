// TF.js backend selection in one place: `auto` prefers tfjs-node's native `tensorflow`, then `wasm`, then `cpu`.
// Every subcommand calls selectBackend() once, before building or loading a model — or, when TF.js may not be needed
// at all (serve with ONNX models), deferBackend(), and whatever needs TF.js calls ensureBackend() first.
// TF.js itself is imported on first selection: a process that never needs it never loads it (15 MB of heap).
import type * as TF from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MlctlError } from '../errors.js';

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  name: BackendName;
  requested: BackendChoice;
  /** Why earlier candidates were passed over (for `auto`). */
  skipped: Array<{ name: BackendName; reason: string }>;
}

const require = createRequire(import.meta.url);
let tf: typeof TF;
let selected: BackendInfo | undefined;
let deferred: { choice: BackendChoice; announce?: (info: BackendInfo) => void } | undefined;

/** TF.js, imported once. */
async function loadTfjs(): Promise<typeof TF> {
  if (!tf) {
    tf = await import('@tensorflow/tfjs');
    // mlctl reports its backend choice itself; silence TF.js's "install tfjs-node" banner and debug-mode warnings.
    tf.env().set('PROD', true);
  }
  return tf;
}

async function tryTensorflow(): Promise<void> {
  // tfjs-node registers the 'tensorflow' backend on import; it is an optional dependency that
  // cannot install where libtensorflow cannot be downloaded.
  await import('@tensorflow/tfjs-node' as string);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node loaded but the tensorflow backend did not initialise');
}

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // In Node the .wasm binaries must be located on disk; point at the package's dist folder.
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(dist.endsWith(path.sep) ? dist : dist + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
}

async function tryCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
}

const LOADERS: Record<BackendName, () => Promise<void>> = { tensorflow: tryTensorflow, wasm: tryWasm, cpu: tryCpu };

export function parseBackendChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').toLowerCase();
  if (v === 'node' || v === 'tfjs-node') return 'tensorflow';
  if ((BACKENDS as readonly string[]).includes(v)) return v as BackendChoice;
  throw new MlctlError('OPTION_INVALID', [`unknown backend "${value}": choose one of ${BACKENDS.join(', ')}`]);
}

/**
 * Select and initialise a TF.js backend. `auto` tries tensorflow → wasm → cpu; a named backend that
 * fails is an error (the user asked for it explicitly). Idempotent for the same choice.
 */
export async function selectBackend(choice: BackendChoice = parseBackendChoice(process.env.MLCTL_BACKEND)): Promise<BackendInfo> {
  await loadTfjs();
  if (selected && (selected.requested === choice || choice === 'auto' || selected.name === choice)) {
    if (tf.getBackend() !== selected.name) await tf.setBackend(selected.name);
    return selected;
  }
  const candidates: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    try {
      await LOADERS[name]();
      await tf.ready();
      selected = { name, requested: choice, skipped };
      return selected;
    } catch (err) {
      const reason = firstLine(err);
      if (choice !== 'auto') throw new MlctlError('BACKEND_UNAVAILABLE', [name, reason], { cause: err });
      skipped.push({ name, reason });
    }
  }
  throw new MlctlError('BACKEND_UNAVAILABLE', ['auto', skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')]);
}

export function currentBackend(): BackendInfo | undefined {
  return selected;
}

/**
 * Select `choice` only when something first needs TF.js (ensureBackend), then tell `announce`: for commands that may
 * run without TF.js, such as serve with ONNX models. An explicit choice should be selected at once instead, so that a
 * backend that cannot start fails the command at start.
 */
export function deferBackend(choice: BackendChoice, announce?: (info: BackendInfo) => void): void {
  deferred = { choice, ...(announce ? { announce } : {}) };
}

/** The selected backend; the deferred choice (else `auto`) selected now if none is yet. Call before any TF.js work. */
export async function ensureBackend(): Promise<BackendInfo> {
  if (selected) return selected;
  const d = deferred;
  const info = await selectBackend(d?.choice ?? 'auto');
  if (d) {
    deferred = undefined;
    d.announce?.(info);
  }
  return info;
}

/** One line for stderr saying which backend runs and why. */
export function describeBackend(info: BackendInfo): string {
  const why = info.skipped.length ? ` (${info.skipped.map((s) => `${s.name} unavailable`).join(', ')})` : '';
  return `backend: ${info.name}${info.requested === 'auto' ? `, chosen automatically${why}` : ''}`;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]!.slice(0, 200);
}

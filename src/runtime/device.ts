// The --device vocabulary (cpu, cuda[:N], tensorrt[:N], openvino, coreml, dml[:N], auto): parsing and naming only, no
// ONNX Runtime import, so option tables and the export bundle use it without loading the add-on (runtime/ort.ts maps
// a device to execution providers and probes what this build has).
import { MlctlError } from '../errors.js';

export const DEVICE_KINDS = ['auto', 'cpu', 'cuda', 'tensorrt', 'openvino', 'coreml', 'dml'] as const;
export type DeviceChoiceName = (typeof DEVICE_KINDS)[number];
export type DeviceKind = Exclude<DeviceChoiceName, 'auto'>;

/** A concrete device: an execution provider kind and, for the ones that have several, the device ordinal. */
export interface Device {
  kind: DeviceKind;
  /** GPU ordinal (cuda, tensorrt, dml); undefined means 0. */
  index?: number;
}

export type DeviceChoice = 'auto' | Device;

/** Kinds that address one of several devices by ordinal ("cuda:1"). */
const INDEXED: ReadonlySet<DeviceKind> = new Set(['cuda', 'tensorrt', 'dml']);
/** Kinds that run on an NVIDIA GPU: a Kubernetes pod asks for `nvidia.com/gpu` for them. */
export const NVIDIA_KINDS: ReadonlySet<DeviceKind> = new Set(['cuda', 'tensorrt']);

/** "cuda", "cuda:1", "CPU", "auto" → a device choice; anything else is OPTION_INVALID naming the accepted forms. */
export function parseDevice(value: string | DeviceChoice | undefined): DeviceChoice {
  if (value === undefined) return { kind: 'cpu' };
  if (typeof value !== 'string') return value;
  const m = /^([a-z]+)(?::(\d{1,3}))?$/.exec(value.trim().toLowerCase());
  const kind = m?.[1] as DeviceChoiceName | undefined;
  if (!m || !kind || !(DEVICE_KINDS as readonly string[]).includes(kind)) {
    throw new MlctlError('OPTION_INVALID', [`unknown device "${value}": choose one of cpu, cuda[:N], tensorrt[:N], openvino, coreml, dml[:N], auto`]);
  }
  if (kind === 'auto') {
    if (m[2] !== undefined) throw new MlctlError('OPTION_INVALID', [`device "${value}": auto takes no device number`]);
    return 'auto';
  }
  if (m[2] !== undefined && !INDEXED.has(kind)) throw new MlctlError('OPTION_INVALID', [`device "${value}": only cuda, tensorrt and dml take a device number (e.g. cuda:1)`]);
  return m[2] === undefined ? { kind } : { kind, index: Number(m[2]) };
}

/** The canonical name: "cpu", "cuda:0", "tensorrt:1", "coreml". */
export function formatDevice(d: DeviceChoice): string {
  if (d === 'auto') return 'auto';
  return INDEXED.has(d.kind) ? `${d.kind}:${d.index ?? 0}` : d.kind;
}

/** Whether a device needs an NVIDIA GPU (container and Kubernetes manifests request one for it). */
export function needsNvidiaGpu(d: DeviceChoice): boolean {
  return d !== 'auto' && NVIDIA_KINDS.has(d.kind);
}

export const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimization = (typeof GRAPH_OPTIMIZATIONS)[number];

/**
 * How a session runs, as plain data (it crosses into worker threads): the device and ORT's thread pools and graph
 * optimisation. Defaults: cpu, every core intra-op, one inter-op thread, `all` optimisations.
 * (Unset fields take the process defaults: setSessionDefaults.)
 */
export interface SessionConfig {
  device?: Device;
  /** Threads one operator may use (ORT intraOpNumThreads; default: every core). */
  intraOpThreads?: number;
  /** Threads that run independent operators at once (ORT interOpNumThreads; >1 switches to parallel execution). */
  interOpThreads?: number;
  graphOptimization?: GraphOptimization;
}

let defaults: SessionConfig = {};

/**
 * The process-wide session settings, like the TF.js backend (runtime/backend.ts): the CLI sets them once from
 * --device/--intra-op-threads/… after resolving the device; engines opened without their own use them.
 */
export function setSessionDefaults(config: SessionConfig): void {
  defaults = { ...config };
}

export function sessionDefaults(): SessionConfig {
  return defaults;
}

/** A session config with the process defaults filled in where the caller left a field unset. */
export function withSessionDefaults(config: SessionConfig = {}): SessionConfig {
  const out: SessionConfig = { ...defaults };
  for (const [k, v] of Object.entries(config)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

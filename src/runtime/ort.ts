// ONNX Runtime for every mlctl module that runs a session (engines, the head trainer, calibration, export checks):
// the add-on loaded after its environment is set (runtime/ort-env.ts), its version, the one set of session options,
// and --device: the execution providers this build has (probed once) and the one mapping from a device to them.
import './ort-env.js'; // before onnxruntime-node initialises: no telemetry files or uploads
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { formatDevice, parseDevice, type Device, type DeviceChoice, type DeviceKind, type SessionConfig } from './device.js';

// The process-wide ORT logger (messages outside a session) at errors only, like every session below: ORT writes its
// warnings to stderr with colour codes whether or not stderr is a terminal.
ort.env.logLevel = 'error';

const require = createRequire(import.meta.url);
export const ORT_VERSION = (require('onnxruntime-node/package.json') as { version: string }).version;

export { ort };

/** An execution provider this onnxruntime-node build knows, and whether its libraries are here to load. */
export interface OrtProvider {
  name: string;
  /** Shipped inside the npm package. */
  bundled: boolean;
  /** Loadable now: bundled, or its provider library was installed next to the add-on. */
  installed: boolean;
}

/** The ORT execution provider that serves each device kind (openvino has none in onnxruntime-node's builds). */
const PROVIDER_OF: Record<DeviceKind, string> = { cpu: 'cpu', cuda: 'cuda', tensorrt: 'tensorrt', openvino: 'openvino', coreml: 'coreml', dml: 'dml' };

/** Provider libraries ORT loads at run time for the providers that are listed but not bundled (linux/x64: CUDA 12). */
const PROVIDER_LIBRARY: Record<string, Partial<Record<NodeJS.Platform, string>>> = {
  cuda: { linux: 'libonnxruntime_providers_cuda.so', win32: 'onnxruntime_providers_cuda.dll' },
  tensorrt: { linux: 'libonnxruntime_providers_tensorrt.so', win32: 'onnxruntime_providers_tensorrt.dll' },
};

let probed: OrtProvider[] | undefined;

/** The execution providers this onnxruntime-node build has (probed once: its own list, then the libraries on disk). */
export function ortProviders(): OrtProvider[] {
  if (probed) return probed;
  const binding = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  probed = ort.listSupportedBackends().map(({ name, bundled }) => {
    const lib = PROVIDER_LIBRARY[name]?.[process.platform];
    return { name, bundled, installed: bundled || (lib !== undefined && existsSync(path.join(binding, lib))) };
  });
  return probed;
}

/** What to install for a device, in one sentence (the DEVICE_UNAVAILABLE message's last part). */
export function installHint(kind: DeviceKind): string {
  const host = `${process.platform}/${process.arch}`;
  switch (kind) {
    case 'cuda':
    case 'tensorrt':
      if (host !== 'linux/x64' && host !== 'win32/x64') return `onnxruntime-node has no ${kind} provider for ${host}; run on linux/x64 or win32/x64 with an NVIDIA GPU, or use --device cpu`;
      return `Install the CUDA 12 provider libraries: reinstall onnxruntime-node with its install script allowed and ONNXRUNTIME_NODE_INSTALL=cuda12 (npm install onnxruntime-node --onnxruntime-node-install=cuda12), plus the NVIDIA driver, CUDA 12 and cuDNN 9${kind === 'tensorrt' ? ' and TensorRT 10' : ''} on the host (in Kubernetes: an nvidia.com/gpu node with the NVIDIA device plugin)`;
    case 'dml':
      return 'DirectML ships in onnxruntime-node for win32/x64 only: run on Windows 10+ with a DirectX 12 GPU, or use --device cpu';
    case 'coreml':
      return 'CoreML ships in onnxruntime-node for macOS only: run on darwin/arm64 or darwin/x64, or use --device cpu';
    case 'openvino':
      return 'onnxruntime-node ships no OpenVINO provider: build onnxruntime-node from source with --use_openvino (and the OpenVINO runtime installed), or use --device cpu on Intel CPUs';
    case 'cpu':
      return '';
  }
}

function describeProviders(list: readonly OrtProvider[]): string {
  return list.map((p) => (p.installed ? p.name : `${p.name} (listed, libraries not installed)`)).join(', ');
}

/** Why a device cannot run here, or undefined when its provider is installed (the probe; a session may still fail). */
export function deviceProblem(d: Device): string | undefined {
  const p = ortProviders().find((x) => x.name === PROVIDER_OF[d.kind]);
  if (!p) return `onnxruntime-node ${ORT_VERSION} for ${process.platform}/${process.arch} has no ${PROVIDER_OF[d.kind]} execution provider`;
  if (!p.installed) return `the ${p.name} provider's libraries (${PROVIDER_LIBRARY[p.name]?.[process.platform] ?? 'its shared library'}) are not installed next to onnxruntime-node`;
  return undefined;
}

/** The error for a device that cannot run here, naming what this build has and what to install. */
export function deviceUnavailable(d: Device, reason: string, cause?: unknown): MlctlError {
  return new MlctlError('DEVICE_UNAVAILABLE', [formatDevice(d), reason, ORT_VERSION, describeProviders(ortProviders()), installHint(d.kind)], cause === undefined ? undefined : { cause });
}

/** A device choice made concrete: what runs, what was asked for and, for auto, what was passed over. */
export interface ResolvedDevice {
  device: Device;
  requested: string;
  skipped: Array<{ device: string; reason: string }>;
}

/** The order `auto` tries: GPUs first, CPU always last (and always there). */
const AUTO_ORDER: readonly Device[] = [{ kind: 'cuda', index: 0 }, { kind: 'dml', index: 0 }, { kind: 'coreml' }, { kind: 'cpu' }];

/**
 * Resolve --device: a named device whose provider this build lacks is DEVICE_UNAVAILABLE (never a silent cpu run);
 * `auto` takes the first installed of cuda, dml, coreml, cpu and records why it passed over the others.
 */
export function resolveDevice(choice: string | DeviceChoice | undefined): ResolvedDevice {
  const parsed = parseDevice(choice);
  if (parsed !== 'auto') {
    const problem = deviceProblem(parsed);
    if (problem) throw deviceUnavailable(parsed, problem);
    return { device: parsed, requested: formatDevice(parsed), skipped: [] };
  }
  const skipped: ResolvedDevice['skipped'] = [];
  for (const d of AUTO_ORDER) {
    const problem = d.kind === 'cpu' ? undefined : deviceProblem(d);
    if (!problem) return { device: d, requested: 'auto', skipped };
    skipped.push({ device: formatDevice(d), reason: problem });
  }
  throw new Error('unreachable: cpu is always available');
}

/** One line for stderr saying which device runs and, for auto, why. */
export function describeDevice(r: ResolvedDevice): string {
  const why = r.skipped.length ? ` (${r.skipped.map((s) => `${s.device} unavailable`).join(', ')})` : '';
  return `device: ${formatDevice(r.device)}${r.requested === 'auto' ? `, chosen automatically${why}` : ''}`;
}

/**
 * A device as ORT execution providers, in priority order. TensorRT brings CUDA for the nodes it cannot build engines
 * for; ORT itself places any node no listed provider supports on its CPU provider (per node, not the whole model).
 */
export function executionProviders(d: Device = { kind: 'cpu' }): ort.InferenceSession.ExecutionProviderConfig[] {
  const deviceId = d.index ?? 0;
  switch (d.kind) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return [{ name: 'cuda', deviceId }];
    case 'tensorrt':
      return [{ name: 'tensorrt', deviceId }, { name: 'cuda', deviceId }];
    case 'dml':
      return [{ name: 'dml', deviceId }];
    case 'coreml':
      return [{ name: 'coreml' }];
    case 'openvino':
      return [{ name: 'openvino' }];
  }
}

/** The session options every mlctl ONNX session uses (a thread count alone: cpu); exported so benchmarks compare like with like. */
export function onnxSessionOptions(config: number | SessionConfig = {}): ort.InferenceSession.SessionOptions {
  const c: SessionConfig = typeof config === 'number' ? { intraOpThreads: config } : config;
  const inter = c.interOpThreads ?? 1;
  return {
    executionProviders: executionProviders(c.device),
    intraOpNumThreads: c.intraOpThreads ?? os.availableParallelism(),
    interOpNumThreads: inter,
    graphOptimizationLevel: c.graphOptimization ?? 'all',
    executionMode: inter > 1 ? 'parallel' : 'sequential',
    // ORT's own warnings (e.g. about serialising NCHWc-optimised graphs) are not the user's business: errors only.
    logSeverityLevel: 3,
    // Idle pool threads sleep instead of spin-waiting: CI runners and serve hosts share their cores, and mlctl's
    // runs are long enough (conv nets) that the wake-up cost does not show.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** A session on the configured device; a provider that fails to start (no GPU, driver or CUDA) is DEVICE_UNAVAILABLE. */
export async function createSession(model: Uint8Array, config: SessionConfig = {}): Promise<ort.InferenceSession> {
  const options = onnxSessionOptions(config);
  const device = config.device ?? { kind: 'cpu' };
  if (device.kind === 'cpu') return ort.InferenceSession.create(model, options);
  const problem = deviceProblem(device);
  if (problem) throw deviceUnavailable(device, problem);
  try {
    return await ort.InferenceSession.create(model, options);
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
    throw deviceUnavailable(device, `onnxruntime could not start its ${PROVIDER_OF[device.kind]} provider: ${first}`, err);
  }
}

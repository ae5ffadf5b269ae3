// The ONNX Runtime engine (onnxruntime-node on the --device's execution provider; cpu by default, every core). It runs only bytes it has checked: a package's own
// model.onnx against the manifest's sha256, a conversion from the cache against the code (HMAC, cache key outside
// the cache) recorded when it was written (a mismatch is rebuilt from the verified TF.js model), a caller's file
// against the sha256 it names.
import { promises as fs } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import { openCache, type Cache } from '../artifacts/cache.js';
import { sha256 } from '../artifacts/hash.js';
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { CONVERTER_VERSION } from '../onnx/version.js';
import { ensureBackend } from '../runtime/backend.js';
import { manifestTensors } from '../runtime/declared.js';
import type { EngineOptions, EngineProvenance, EngineSource, InferenceEngine } from '../runtime/engine.js';
import { withSessionDefaults, type SessionConfig } from '../runtime/device.js';
import { resolveDevice } from '../runtime/ort.js';
import { checkFeeds, type Tensor, type TensorSpec } from '../runtime/tensor.js';
import { withSpinner } from '../util/progress.js';
import { startWorkerClient } from '../util/worker.js';
import { onnxSessionEngine, type SessionEngineOptions } from './onnx-session.js';
import { forTransfer } from './transfer.js';

export { onnxTensors, type SessionEngineOptions } from './onnx-session.js';

/** An InferenceEngine over ONNX bytes already checked by the caller (or knowingly unchecked: see provenance). */
export async function onnxEngineFromBytes(bytes: Uint8Array, opts: SessionEngineOptions = {}): Promise<InferenceEngine> {
  // Settled here, in the opening thread: a worker gets the whole config (process defaults do not cross threads).
  const config = withSessionDefaults(opts.session);
  if (opts.worker) return onnxThreadEngine(bytes, { ...opts, session: config });
  return onnxSessionEngine(bytes, { ...opts, session: config });
}

/** What the worker says when it is ready: the engine's declarations and description. */
interface Declarations {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  batched: boolean;
  description: string;
}

/** The same session in a worker thread (onnx-worker.ts): feeds are posted to it, outputs come back transferred. */
async function onnxThreadEngine(bytes: Uint8Array, opts: SessionEngineOptions): Promise<InferenceEngine> {
  const own = bytes.slice();
  const { worker: _, provenance, ...sessionOpts } = opts;
  const client = await startWorkerClient<Declarations>(import.meta.url, 'onnx-worker', 'ONNX Runtime engine', { bytes: own, opts: sessionOpts }, [own.buffer as ArrayBuffer]);
  const { inputs, outputs, batched, description } = client.ready;
  return {
    name: 'onnx',
    platform: 'onnxruntime_onnx',
    description: `${description}, in a worker thread`,
    inputs,
    outputs,
    batched,
    provenance: provenance ?? { verified: false, source: 'ONNX bytes' },
    async run(feeds, fetches, runOpts) {
      checkFeeds('onnx', inputs, feeds);
      // Unless the caller hands them over, it keeps its arrays: the worker gets copies it owns (one copy, then a transfer).
      const { tensors, transfer } = forTransfer(feeds, !runOpts?.handOver);
      return client.call<Tensor[]>({ op: 'run', feeds: tensors, fetches }, transfer);
    },
    async dispose() {
      await client.call({ op: 'dispose' }).catch(() => undefined);
      await client.close();
    },
  };
}

/** The session settings an engine's options ask for: --device resolved (DEVICE_UNAVAILABLE when it cannot run here). */
export function sessionConfigOf(opts: EngineOptions): SessionConfig {
  return {
    device: opts.device === undefined ? undefined : resolveDevice(opts.device).device,
    intraOpThreads: opts.threads,
    interOpThreads: opts.interOpThreads,
    graphOptimization: opts.graphOptimization,
  };
}

/** Cache entry name of a conversion: the source's identity and the converter that wrote it. */
function conversionName(identity: string): string {
  const safe = /^[A-Za-z0-9._-]{1,100}$/.test(identity) ? identity : sha256(identity).slice(0, 32);
  return `${safe}-c${CONVERTER_VERSION}.onnx`;
}

/** Content key of an in-memory model without a given identity: topology + every weight's name, shape and values. */
export function modelCacheKey(model: tf.LayersModel): string {
  const parts: Uint8Array[] = [Buffer.from(JSON.stringify(model.toJSON(null, false)))];
  for (const w of model.weights) {
    const v = w.read().dataSync() as Float32Array;
    parts.push(Buffer.from(`${w.name}:${w.shape.join('x')}:${w.dtype}`), new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return `model-${sha256(Buffer.concat(parts)).slice(0, 32)}`;
}

interface Conversion {
  /** Cache identity of what is converted. */
  identity: string;
  /** What the conversion is made from, for messages. */
  label: string;
  convert: () => Promise<Uint8Array>;
  meta: Record<string, unknown>;
  /** Whether the source the conversion is made from was itself verified. */
  sourceVerified: boolean;
  /**
   * The source is signed: what runs must be anchored to the signature, so only an entry authenticated with the
   * cache key (which whoever writes the cache does not hold) may stand in for converting it now.
   */
  signed?: boolean;
}

/**
 * Bytes of a converted model. From the cache when the entry authenticates with the cache key (its code covers the
 * entry's name — the source's identity, e.g. the package's mlctl.json sha256 — and the bytes' sha256); else converted
 * now (a mismatching entry is reported once and rebuilt) and cached, authenticated, when the cache can be written.
 * Without a usable cache key an unsigned source may use an entry that matches its recorded sha256, reported as not
 * verified; a signed one is converted in memory.
 */
async function convertedBytes(c: Conversion, cache: Cache, opts: EngineOptions): Promise<{ bytes: Uint8Array; provenance: EngineProvenance }> {
  const text = `converting ${c.label} to ONNX for onnxruntime`;
  const convertNow = () => (opts.logger ? withSpinner(opts.logger, text, c.convert) : c.convert());
  if (opts.memoryOnly) return { bytes: await convertNow(), provenance: { verified: c.sourceVerified, source: `converted from ${c.label} in memory (not cached)` } };
  const name = conversionName(c.identity);
  const problem = await cache.keyProblem();
  const keyed = problem === undefined;
  if (c.signed && !keyed) {
    opts.logger?.warn(`${problem}: converting ${c.label} in memory, as at every start (a signed package runs from the cache only when the entry authenticates with a key kept outside the cache; set MLCTL_CACHE_KEY_FILE to a file only this user can read)`);
    return { bytes: await convertNow(), provenance: { verified: c.sourceVerified, source: `converted from ${c.label} in memory (signed, and no cache key to authenticate a cached conversion)` } };
  }
  const hit = await cache.readVerified('onnx', name);
  const where = cache.pathOf('onnx', name);
  if (hit.status === 'hit' && hit.authenticated) return { bytes: hit.bytes, provenance: { verified: c.sourceVerified, source: `cache ${where} (authenticated with the cache key)` } };
  if (hit.status === 'hit' && !keyed) return { bytes: hit.bytes, provenance: { verified: false, source: `cache ${where} (recorded sha256 only: no cache key)` } };
  if (hit.status === 'mismatch') opts.logger?.warn(`cached ONNX model failed verification (${hit.reason}); rebuilding it from ${c.label}`);
  if (hit.status === 'hit') opts.logger?.info(`cached ONNX model ${where} carries no authentication code (written without a cache key); rebuilding it from ${c.label}`);
  const bytes = await convertNow();
  const cached = await cache.putFile('onnx', name, bytes, { converter: CONVERTER_VERSION, ...c.meta });
  return { bytes, provenance: { verified: c.sourceVerified, source: cached ? `converted from ${c.label}, cached at ${where}` : `converted from ${c.label} in memory` } };
}

async function openPackage(pkg: LoadedPackage, opts: EngineOptions): Promise<InferenceEngine> {
  const m = pkg.manifest;
  const shapes = { declared: manifestTensors(m, pkg.dir), session: sessionConfigOf(opts), worker: opts.worker };
  if (m.formats.onnx) {
    const rel = m.formats.onnx;
    const bytes = await readModelFile(pkg, rel, { checkSha256: true });
    return onnxEngineFromBytes(bytes, { ...shapes, provenance: { verified: true, source: `package ${rel} (manifest sha256${m.encryption ? ', decrypted in memory' : ''})` } });
  }
  // An encrypted package's conversion stays in memory: a cached copy would be its weights in plaintext on disk.
  if (m.encryption) opts = { ...opts, memoryOnly: true };
  const cache = openCache({ root: opts.cacheRoot, logger: opts.logger });
  const { bytes, provenance } = await convertedBytes(
    {
      identity: `pkg-${pkg.manifestSha256}`,
      label: `${m.name} v${m.version}'s TF.js model`,
      sourceVerified: pkg.verified,
      signed: pkg.signature !== undefined,
      meta: { package: `${m.name}@${m.version}`, manifestSha256: pkg.manifestSha256 },
      convert: async () => {
        await ensureBackend();
        const { convertLayersModel } = await import('../onnx/index.js');
        const model = await loadTfjsModel(pkg);
        try {
          return convertLayersModel(model, {
            inputName: m.input.name,
            outputName: m.output.name,
            metadata: { 'mlctl.name': m.name, 'mlctl.version': String(m.version), 'mlctl.manifest_sha256': pkg.manifestSha256, 'mlctl.labels': JSON.stringify(m.labels) },
            docString: `${m.name} v${m.version}, converted from TF.js by mlctl`,
          });
        } finally {
          model.dispose();
        }
      },
    },
    cache,
    opts,
  );
  return onnxEngineFromBytes(bytes, { ...shapes, provenance });
}

async function openModel(model: tf.LayersModel, identity: string | undefined, label: string | undefined, opts: EngineOptions): Promise<InferenceEngine> {
  const inputShape = (model.inputs[0]!.shape as Array<number | null>).slice(1).map((d) => d ?? -1);
  if (inputShape.some((d) => d < 0)) throw new MlctlError('UNSUPPORTED_LAYER', [model.name, 'input', `the ONNX engine needs a static input shape, got [${inputShape.join(', ')}]`]);
  const cache = openCache({ root: opts.cacheRoot, logger: opts.logger });
  const { bytes, provenance } = await convertedBytes(
    {
      identity: identity ?? modelCacheKey(model),
      label: label ?? `model ${model.name}`,
      // The in-memory model is the reference: a conversion that matches its record is as good as converting it now.
      sourceVerified: true,
      meta: { model: model.name },
      convert: async () => (await import('../onnx/index.js')).convertLayersModel(model, { inputName: 'input', outputName: 'output' }),
    },
    cache,
    opts,
  );
  return onnxEngineFromBytes(bytes, { session: sessionConfigOf(opts), worker: opts.worker, provenance });
}

async function openFile(source: Extract<EngineSource, { kind: 'onnx' }>, opts: EngineOptions): Promise<InferenceEngine> {
  const label = source.label ?? (typeof source.model === 'string' ? source.model : 'the ONNX bytes');
  const bytes = typeof source.model === 'string' ? await fs.readFile(source.model) : source.model;
  if (source.sha256) {
    const actual = sha256(bytes);
    if (actual !== source.sha256) throw new MlctlError('ONNX_UNVERIFIED', [label, actual.slice(0, 12), source.sha256.slice(0, 12)]);
  }
  return onnxEngineFromBytes(bytes, { session: sessionConfigOf(opts), worker: opts.worker, provenance: { verified: Boolean(source.sha256), source: source.sha256 ? `${label} (sha256 checked)` : `${label} (not checked)` } });
}

/** Open any source in onnxruntime (the engine table in engines/index.ts decides when it is asked to). */
export async function openOnnx(source: EngineSource, opts: EngineOptions): Promise<InferenceEngine> {
  if (source.kind === 'package') return openPackage(source.pkg, opts);
  if (source.kind === 'model') {
    const engine = await openModel(source.model, source.identity, source.label, opts);
    // An owned model is not needed once converted; on failure it stays alive for the next engine to take.
    if (source.owned) source.model.dispose();
    return engine;
  }
  return openFile(source, opts);
}

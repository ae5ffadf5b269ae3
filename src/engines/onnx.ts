// The ONNX Runtime engine (onnxruntime-node, CPU, every core). It runs only bytes it has checked: a package's own
// model.onnx against the manifest's sha256, a conversion from the cache against the code (HMAC, cache key outside
// the cache) recorded when it was written (a mismatch is rebuilt from the verified TF.js model), a caller's file
// against the sha256 it names.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import { openCache, type Cache } from '../artifacts/cache.js';
import { sha256 } from '../artifacts/hash.js';
import { loadTfjsModel, readModelFile, type LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { CONVERTER_VERSION, convertLayersModel } from '../onnx/index.js';
import { ort, onnxSessionOptions, ORT_VERSION } from '../runtime/ort.js';
import type { EngineIO, EngineOptions, EngineProvenance, EngineSource, InferenceEngine } from '../runtime/engine.js';
import { withSpinner } from '../util/progress.js';
import { startWorkerClient } from '../util/worker.js';

/** Graph input/output default to the first; shapes default to the model's declarations without the batch dimension. */
export interface SessionEngineOptions extends EngineIO {
  threads?: number;
  provenance?: EngineProvenance;
  /**
   * Run the session in a worker thread. onnxruntime-node's run() computes on the calling thread, so in serve a batch
   * would hold the event loop for its whole duration: no request parsed, no decode started, no response sent.
   */
  worker?: boolean;
}

function declaredShape(meta: readonly ort.InferenceSession.ValueMetadata[], name: string): Array<number | string> | undefined {
  const m = meta.find((v) => v.name === name);
  return m && m.isTensor ? [...m.shape] : undefined;
}

/** An InferenceEngine over ONNX bytes already checked by the caller (or knowingly unchecked: see provenance). */
export async function onnxEngineFromBytes(bytes: Uint8Array, opts: SessionEngineOptions = {}): Promise<InferenceEngine> {
  if (opts.worker) return onnxThreadEngine(bytes, opts);
  const threads = opts.threads ?? os.availableParallelism();
  const session = await ort.InferenceSession.create(bytes, onnxSessionOptions(threads));
  try {
    return wrapSession(session, threads, opts);
  } catch (err) {
    await session.release();
    throw err;
  }
}

function checkInput(x: Float32Array, batch: number, inputShape: number[]): void {
  const perExample = inputShape.reduce((a, d) => a * d, 1);
  if (!Number.isInteger(batch) || batch < 1 || x.length !== batch * perExample) {
    throw new RangeError(`ONNX engine: expected ${batch} x [${inputShape.join(', ')}] = ${batch * perExample} floats, got ${x.length}`);
  }
}

/** The same session in a worker thread (onnx-worker.ts): batches are posted to it, outputs come back transferred. */
async function onnxThreadEngine(bytes: Uint8Array, opts: SessionEngineOptions): Promise<InferenceEngine> {
  const own = bytes.slice();
  const { worker: _, provenance, ...sessionOpts } = opts;
  const client = await startWorkerClient<{ inputShape: number[]; outputSize: number; description: string }>(import.meta.url, 'onnx-worker', 'ONNX Runtime engine', { bytes: own, opts: sessionOpts }, [own.buffer as ArrayBuffer]);
  const { inputShape, outputSize, description } = client.ready;
  return {
    name: 'onnx',
    platform: 'onnxruntime_onnx',
    description: `${description}, in a worker thread`,
    inputShape,
    outputSize,
    provenance: provenance ?? { verified: false, source: 'ONNX bytes' },
    async run(x, batch) {
      checkInput(x, batch, inputShape);
      // The caller keeps its array: the worker gets a copy it owns.
      const copy = x.slice();
      return client.call<Float32Array>({ op: 'run', x: copy, batch }, [copy.buffer as ArrayBuffer]);
    },
    async dispose() {
      await client.call({ op: 'dispose' }).catch(() => undefined);
      await client.close();
    },
  };
}

function wrapSession(session: ort.InferenceSession, threads: number, opts: SessionEngineOptions): InferenceEngine {
  const pick = (wanted: string | undefined, names: readonly string[], what: string) => {
    if (wanted && names.includes(wanted)) return wanted;
    if (!names.length) throw new Error(`the ONNX model has no ${what}`);
    return names[0]!;
  };
  const inputName = pick(opts.inputName, session.inputNames, 'input');
  const outputName = pick(opts.outputName, session.outputNames, 'output');
  const declaredIn = declaredShape(session.inputMetadata, inputName)?.slice(1);
  const inputShape = opts.inputShape ?? declaredIn?.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
  if (!inputShape || inputShape.some((d) => d < 0)) {
    throw new Error(`the ONNX input ${inputName} has a dynamic shape [${declaredIn?.join(', ')}] beyond the batch dimension; pass inputShape`);
  }
  const declaredOut = declaredShape(session.outputMetadata, outputName)?.slice(1);
  const outputSize = opts.outputSize ?? declaredOut?.reduce<number>((a, d) => a * (typeof d === 'number' && d > 0 ? d : 1), 1) ?? 1;
  return {
    name: 'onnx',
    platform: 'onnxruntime_onnx',
    description: `onnxruntime-node ${ORT_VERSION} (cpu, ${threads} thread${threads === 1 ? '' : 's'})`,
    inputShape,
    outputSize,
    provenance: opts.provenance ?? { verified: false, source: 'ONNX bytes' },
    async run(x, batch) {
      checkInput(x, batch, inputShape);
      const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [batch, ...inputShape]) }, [outputName]);
      const data = out[outputName]!.data;
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
    },
    async dispose() {
      await session.release();
    },
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

function packageShapes(pkg: LoadedPackage): SessionEngineOptions {
  const m = pkg.manifest;
  const inputShape = m.input.kind === 'image' ? [m.input.height, m.input.width, m.input.channels] : m.input.features.length ? [m.input.features.length] : undefined;
  return { inputName: m.input.name, outputName: m.output.name, inputShape, outputSize: m.output.size };
}

async function openPackage(pkg: LoadedPackage, opts: EngineOptions): Promise<InferenceEngine> {
  const m = pkg.manifest;
  const shapes = { ...packageShapes(pkg), threads: opts.threads, worker: opts.worker };
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
  const outShape = model.outputs[0]!.shape as Array<number | null>;
  if (inputShape.some((d) => d < 0)) throw new MlctlError('UNSUPPORTED_LAYER', [model.name, 'input', `the ONNX engine needs a static input shape, got [${inputShape.join(', ')}]`]);
  const cache = openCache({ root: opts.cacheRoot, logger: opts.logger });
  const { bytes, provenance } = await convertedBytes(
    {
      identity: identity ?? modelCacheKey(model),
      label: label ?? `model ${model.name}`,
      // The in-memory model is the reference: a conversion that matches its record is as good as converting it now.
      sourceVerified: true,
      meta: { model: model.name },
      convert: async () => convertLayersModel(model, { inputName: 'input', outputName: 'output' }),
    },
    cache,
    opts,
  );
  return onnxEngineFromBytes(bytes, { threads: opts.threads, worker: opts.worker, inputShape, outputSize: outShape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1), provenance });
}

async function openFile(source: Extract<EngineSource, { kind: 'onnx' }>, opts: EngineOptions): Promise<InferenceEngine> {
  const label = source.label ?? (typeof source.model === 'string' ? source.model : 'the ONNX bytes');
  const bytes = typeof source.model === 'string' ? await fs.readFile(source.model) : source.model;
  if (source.sha256) {
    const actual = sha256(bytes);
    if (actual !== source.sha256) throw new MlctlError('ONNX_UNVERIFIED', [label, actual.slice(0, 12), source.sha256.slice(0, 12)]);
  }
  return onnxEngineFromBytes(bytes, { ...source.io, threads: opts.threads, worker: opts.worker, provenance: { verified: Boolean(source.sha256), source: source.sha256 ? `${label} (sha256 checked)` : `${label} (not checked)` } });
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

// ONNX Runtime engine (onnxruntime-node, CPU, all cores): runs a package's ONNX model, or converts its TF.js model
// once and caches the .onnx under $MLCTL_CACHE/onnx; also wraps in-memory models (train's frozen backbone).
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../artifacts/atomic.js';
import { sha256 } from '../artifacts/hash.js';
import { loadTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { CONVERTER_VERSION, convertLayersModel } from '../onnx/index.js';
import type { Logger } from '../util/log.js';
import { withSpinner } from '../util/progress.js';
import type { EngineOptions, InferenceEngine } from './engine.js';

const require = createRequire(import.meta.url);
export const ORT_VERSION = (require('onnxruntime-node/package.json') as { version: string }).version;

export interface OnnxSessionOptions {
  /** Intra-op threads (default: every core, os.availableParallelism()). */
  threads?: number;
  logger?: Logger;
}

/** Where converted models are cached: $MLCTL_CACHE (default ~/.cache/mlctl) + /onnx. */
export function onnxCacheDir(): string {
  return path.join(process.env.MLCTL_CACHE || path.join(os.homedir(), '.cache', 'mlctl'), 'onnx');
}

/** The session options every mlctl ONNX session uses; exported so benchmarks compare like with like. */
export function onnxSessionOptions(threads = os.availableParallelism()): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Idle pool threads sleep instead of spin-waiting: CI runners and serve hosts share their cores, and mlctl's
    // runs are long enough (conv nets) that the wake-up cost does not show.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

export interface FileEngineOptions extends OnnxSessionOptions {
  /** Graph input/output to use (default: the first). */
  inputName?: string;
  outputName?: string;
  /** Per-example input shape; default: the model's declared input shape without the batch dimension. */
  inputShape?: number[];
  /** Values per example in the output; default: from the model's declared output shape. */
  outputSize?: number;
}

/** An InferenceEngine over an ONNX model file (or bytes). */
export async function onnxEngineFromFile(model: string | Uint8Array, opts: FileEngineOptions = {}): Promise<InferenceEngine> {
  const threads = opts.threads ?? os.availableParallelism();
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, onnxSessionOptions(threads)) : await ort.InferenceSession.create(model, onnxSessionOptions(threads));
  try {
    return wrapSession(session, threads, opts);
  } catch (err) {
    await session.release();
    throw err;
  }
}

function declaredShape(meta: readonly ort.InferenceSession.ValueMetadata[], name: string): Array<number | string> | undefined {
  const m = meta.find((v) => v.name === name);
  return m && m.isTensor ? [...m.shape] : undefined;
}

function wrapSession(session: ort.InferenceSession, threads: number, opts: FileEngineOptions): InferenceEngine {
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
  const perExample = inputShape.reduce((a, d) => a * d, 1);
  return {
    name: 'onnx',
    description: `onnxruntime-node ${ORT_VERSION} (cpu, ${threads} thread${threads === 1 ? '' : 's'})`,
    inputShape,
    outputSize,
    async run(x, batch) {
      if (!Number.isInteger(batch) || batch < 1 || x.length !== batch * perExample) {
        throw new RangeError(`ONNX engine: expected ${batch} x [${inputShape.join(', ')}] = ${batch * perExample} floats, got ${x.length}`);
      }
      const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [batch, ...inputShape]) }, [outputName]);
      const data = out[outputName]!.data;
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
    },
    async dispose() {
      await session.release();
    },
  };
}

/** Sidecar naming the converter version that wrote a cached package conversion (its name is fixed by the package). */
const stampOf = (file: string) => `${file}.converter`;

/**
 * Create a session from a cached file; an entry written by another converter version, or that does not load, is
 * removed so it gets rebuilt.
 */
async function tryCached(file: string, opts: FileEngineOptions, stamped = false): Promise<InferenceEngine | undefined> {
  const exists = await fs.stat(file).then((s) => s.isFile(), () => false);
  if (!exists) return undefined;
  if (stamped) {
    const stamp = await fs.readFile(stampOf(file), 'utf8').catch(() => '');
    if (stamp.trim() !== CONVERTER_VERSION) {
      opts.logger?.info(`cached ONNX model ${file} was written by another converter version; converting again`);
      return undefined;
    }
  }
  try {
    return await onnxEngineFromFile(file, opts);
  } catch (err) {
    opts.logger?.warn(`cached ONNX model ${file} does not load (${(err as Error).message.split('\n')[0]}); converting again`);
    await fs.rm(file, { force: true });
    return undefined;
  }
}

/**
 * The ONNX engine for a package: its own formats.onnx when present, else its TF.js model converted once and
 * cached as $MLCTL_CACHE/onnx/<manifestSha256>.onnx, stamped with the converter version in <file>.converter (the
 * package itself is never modified: its files are hashed).
 */
export async function openOnnxEngine(pkg: LoadedPackage, opts: EngineOptions & OnnxSessionOptions = {}): Promise<InferenceEngine> {
  const m = pkg.manifest;
  const inputShape = m.input.kind === 'image' ? [m.input.height, m.input.width, m.input.channels] : m.input.features.length ? [m.input.features.length] : undefined;
  const fileOpts: FileEngineOptions = { threads: opts.threads, logger: opts.logger, inputName: m.input.name, outputName: m.output.name, inputShape, outputSize: m.output.size };
  if (m.formats.onnx) return onnxEngineFromFile(path.join(pkg.dir, m.formats.onnx), fileOpts);

  const file = path.join(onnxCacheDir(), `${pkg.manifestSha256}.onnx`);
  const cached = await tryCached(file, fileOpts, true);
  if (cached) return cached;
  const convert = async (): Promise<Uint8Array> => {
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
  };
  // A spinner on a TTY (VGG16 takes seconds to load and convert), one plain line in CI.
  const text = `converting ${m.name} v${m.version} to ONNX for onnxruntime (cached at ${file})`;
  const bytes = opts.logger ? await withSpinner(opts.logger, text, convert) : await convert();
  await writeCache(file, bytes, opts.logger, true);
  return onnxEngineFromFile(bytes, fileOpts);
}

async function writeCache(file: string, bytes: Uint8Array, logger?: Logger, stamped = false): Promise<void> {
  try {
    await writeFileAtomic(file, bytes);
    if (stamped) await writeFileAtomic(stampOf(file), `${CONVERTER_VERSION}\n`);
  } catch (err) {
    // A read-only or full cache only costs a conversion next time.
    logger?.warn(`could not cache the ONNX model at ${file}: ${(err as Error).message}`);
  }
}

/** Content key of an in-memory model: topology + every weight's name, shape and values + converter version. */
export function modelCacheKey(model: tf.LayersModel): string {
  const parts: Array<string | Uint8Array> = [`converter ${CONVERTER_VERSION}`, JSON.stringify(model.toJSON(null, false))];
  for (const w of model.weights) {
    const v = w.read().dataSync() as Float32Array;
    parts.push(`${w.name}:${w.shape.join('x')}:${w.dtype}`, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return sha256(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
}

export interface ModelEngineOptions extends OnnxSessionOptions {
  /** Cache key (e.g. the base weights' sha256); default: a hash of the model's topology and weights. */
  cacheKey?: string;
}

/**
 * ONNX engine for an in-memory TF.js model (train's frozen-backbone feature extraction). The conversion is cached as
 * $MLCTL_CACHE/onnx/model-<key>.onnx. The caller keeps ownership of `model`.
 */
export async function onnxEngineFromModel(model: tf.LayersModel, opts: ModelEngineOptions = {}): Promise<InferenceEngine> {
  const key = opts.cacheKey ? sha256(`converter ${CONVERTER_VERSION}\n${opts.cacheKey}`) : modelCacheKey(model);
  const file = path.join(onnxCacheDir(), `model-${key}.onnx`);
  const inputShape = (model.inputs[0]!.shape as Array<number | null>).slice(1).map((d) => d ?? -1);
  const outShape = model.outputs[0]!.shape as Array<number | null>;
  const fileOpts: FileEngineOptions = { threads: opts.threads, logger: opts.logger, inputShape, outputSize: outShape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1) };
  if (inputShape.some((d) => d < 0)) throw new MlctlError('UNSUPPORTED_LAYER', [model.name, 'input', `the ONNX engine needs a static input shape, got [${inputShape.join(', ')}]`]);
  const cached = await tryCached(file, fileOpts);
  if (cached) return cached;
  opts.logger?.debug(`converting ${model.name} to ONNX (cached at ${file})`);
  const bytes = convertLayersModel(model, { inputName: 'input', outputName: 'output' });
  await writeCache(file, bytes, opts.logger);
  return onnxEngineFromFile(bytes, fileOpts);
}

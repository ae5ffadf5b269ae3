// Frame classification for watch, in one module (the only place watch touches the engine and the batcher):
// locally, a model package through openEngine with frames from every camera batched together; or remotely, each
// frame POSTed as an encoded JPEG (KServe V2 BYTES input, binary tensor extension) to mlctl serve or any V2
// server, so many watchers share one inference server.
import sharp from 'sharp';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { loadPackage } from '../artifacts/package.js';
import { imageToInput } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice } from '../runtime/engine.js';
import { createBatcher } from '../runtime/batcher.js';
import type { Logger } from '../util/log.js';
import type { Region } from './roi.js';

export interface ClassifyResult {
  /** One score per label (probabilities; logits are softmaxed). */
  scores: Float32Array;
  /** Engine (or server round-trip) time of the batch that carried this frame. */
  inferenceMs: number;
  batchSize: number;
}

export interface Classifier {
  readonly labels: string[];
  readonly model: { name: string; version?: number };
  readonly description: string;
  /** Frames to keep in flight so the engine never waits for the next decode. */
  readonly capacity: number;
  classify(image: Uint8Array, region?: Region): Promise<ClassifyResult>;
  close(): Promise<void>;
}

/** The frame itself is bad (undecodable): count it as corrupt, not as an inference failure. */
export class BadFrameError extends Error {
  override readonly name = 'BadFrameError';
}

/** Softmax in place when the model outputs logits ("scores"); probabilities pass through. */
function asProbabilities(y: Float32Array, kind: string): Float32Array {
  if (kind !== 'scores') return y;
  let max = -Infinity;
  for (const v of y) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += y[i] = Math.exp(y[i]! - max);
  for (let i = 0; i < y.length; i++) y[i]! /= sum;
  return y;
}

export interface LocalOptions {
  model: string;
  engine: EngineChoice;
  maxBatch: number;
  maxDelayMs: number;
  logger: Logger;
  onBatch?: (size: number, seconds: number) => void;
}

export async function openLocalClassifier(opts: LocalOptions): Promise<Classifier> {
  const pkg = await loadPackage(opts.model);
  const m = pkg.manifest;
  const ref = `${m.name} v${m.version}`;
  if (m.task !== 'image-classification' || m.input.kind !== 'image') throw new MlctlError('WATCH_MODEL_UNSUITABLE', [ref, `it is a ${m.task} model; watch needs an image classifier`]);
  if (!m.labels.length) throw new MlctlError('WATCH_MODEL_UNSUITABLE', [ref, 'its manifest lists no labels']);
  const spec: ImageInputSpec = m.input;
  // TF.js runs in a worker thread: a batch must never block the event loop that reads the camera streams.
  const engine = await openEngine(pkg, { engine: opts.engine, logger: opts.logger, worker: true });
  const inputSize = spec.height * spec.width * 3;
  let decoding = 0;
  const batcher = createBatcher(
    { inputSize, outputSize: engine.outputSize, run: (x, n) => engine.run(x, n) },
    // The queue is bounded by the watcher (capacity), so the batcher's own limit never refuses a frame.
    { maxBatch: opts.maxBatch, maxDelayMs: opts.maxDelayMs, maxQueue: 1 << 20, incoming: () => decoding, ...(opts.onBatch ? { onBatch: opts.onBatch } : {}) },
  );
  return {
    labels: m.labels,
    model: { name: m.name, version: m.version },
    description: `${ref} on ${engine.description}, batches of up to ${opts.maxBatch}`,
    capacity: opts.maxBatch * 2,
    async classify(image, region) {
      let x: Float32Array;
      decoding++;
      try {
        x = await imageToInput(image, spec, undefined, 0, region ? { region } : {});
      } catch (err) {
        throw new BadFrameError((err as Error).message);
      } finally {
        decoding--;
        batcher.poke();
      }
      const r = await batcher.submit(x, 1);
      return { scores: asProbabilities(r.y, m.output.kind), inferenceMs: r.inferenceMs, batchSize: r.batchSize };
    },
    async close() {
      await batcher.idle();
      await engine.dispose();
    },
  };
}

export interface RemoteOptions {
  url: string;
  model: string;
  version?: number;
  labels?: string[];
  timeoutMs: number;
  headers: Record<string, string>;
  maxInFlight: number;
  logger: Logger;
}

interface RemoteMeta {
  input: string;
  output: string;
  outputSize?: number;
  labels?: string[];
}

/** The V2 model metadata: input/output names and, when the server lists them, labels. */
async function fetchMeta(base: string, opts: RemoteOptions): Promise<RemoteMeta> {
  let res: Response;
  try {
    res = await fetch(base, { headers: opts.headers, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    throw new MlctlError('WATCH_SERVER', [opts.url, `cannot reach ${base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); is mlctl serve running?`]);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; inputs?: Array<{ name: string }>; outputs?: Array<{ name: string; shape?: number[] }>; parameters?: { labels?: unknown } };
  if (!res.ok) throw new MlctlError('WATCH_SERVER', [opts.url, `GET ${base} answered ${res.status}${body.error ? `: ${body.error}` : ''}`]);
  const out = body.outputs?.[0];
  const labels = Array.isArray(body.parameters?.labels) ? (body.parameters!.labels as unknown[]).map(String) : undefined;
  const size = out?.shape?.length ? out.shape[out.shape.length - 1] : undefined;
  return { input: body.inputs?.[0]?.name ?? 'input', output: out?.name ?? 'output', ...(size && size > 0 ? { outputSize: size } : {}), ...(labels ? { labels } : {}) };
}

/** The infer request: one BYTES element (the JPEG) in the binary tensor extension. */
function inferBody(meta: RemoteMeta, image: Uint8Array): { body: Buffer; headerLength: number } {
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: meta.input, shape: [1], datatype: 'BYTES', parameters: { binary_data_size: image.length + 4 } }], outputs: [{ name: meta.output, parameters: { binary_data: true } }] }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(image.length);
  return { body: Buffer.concat([header, len, image]), headerLength: header.length };
}

/** FP32 scores from a V2 answer, binary (Inference-Header-Content-Length) or JSON. */
function parseInferAnswer(res: Response, buf: Buffer): Float32Array {
  const hl = res.headers.get('inference-header-content-length');
  const json = JSON.parse((hl ? buf.subarray(0, Number(hl)) : buf).toString('utf8')) as { outputs?: Array<{ data?: number[]; datatype?: string; parameters?: { binary_data_size?: number } }> };
  const out = json.outputs?.[0];
  if (!out) throw new Error('the answer has no outputs');
  if (out.data) return Float32Array.from(out.data.flat(Infinity as 1) as number[]);
  const raw = buf.subarray(Number(hl), Number(hl) + (out.parameters?.binary_data_size ?? buf.length - Number(hl)));
  const y = new Float32Array(raw.length / 4);
  for (let i = 0; i < y.length; i++) y[i] = raw.readFloatLE(i * 4);
  return y;
}

export async function openRemoteClassifier(opts: RemoteOptions): Promise<Classifier> {
  const base = `${opts.url}/v2/models/${encodeURIComponent(opts.model)}${opts.version ? `/versions/${opts.version}` : ''}`;
  const meta = await fetchMeta(base, opts);
  const labels = opts.labels ?? meta.labels;
  if (!labels) {
    if (!meta.outputSize) throw new MlctlError('WATCH_SERVER', [opts.url, `model ${opts.model} does not say how many outputs it has; list its labels in the config (labels: [...])`]);
    opts.logger.warn(`inference server ${opts.url}: model ${opts.model} publishes no labels; using "0".."${meta.outputSize - 1}" (list them with labels: [...] in the config to use names in rules)`);
  }
  const names = labels ?? Array.from({ length: meta.outputSize! }, (_, i) => String(i));
  return {
    labels: names,
    model: { name: opts.model, ...(opts.version ? { version: opts.version } : {}) },
    description: `${opts.model} on ${opts.url} (KServe V2, up to ${opts.maxInFlight} requests in flight)`,
    capacity: opts.maxInFlight,
    async classify(image, region) {
      let jpeg = image;
      if (region) {
        try {
          jpeg = await sharp(image, { failOn: 'error' }).rotate().extract(region).jpeg({ quality: 90 }).toBuffer();
        } catch (err) {
          throw new BadFrameError((err as Error).message);
        }
      }
      const { body, headerLength } = inferBody(meta, jpeg);
      const t0 = performance.now();
      let res: Response;
      try {
        res = await fetch(`${base}/infer`, {
          method: 'POST',
          headers: { ...opts.headers, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
      } catch (err) {
        throw new MlctlError('WATCH_SERVER', [opts.url, `infer failed (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`]);
      }
      const buf = Buffer.from(await res.arrayBuffer());
      if (!res.ok) {
        const msg = (() => {
          try {
            return (JSON.parse(buf.toString('utf8')) as { error?: string }).error ?? '';
          } catch {
            return buf.toString('utf8').slice(0, 200);
          }
        })();
        if (res.status === 400 && /decode|image/i.test(msg)) throw new BadFrameError(msg);
        throw new MlctlError('WATCH_SERVER', [opts.url, `infer answered ${res.status}${msg ? `: ${msg}` : ''}`]);
      }
      const y = parseInferAnswer(res, buf);
      if (y.length !== names.length) throw new MlctlError('WATCH_SERVER', [opts.url, `the model answered ${y.length} scores for ${names.length} labels`]);
      return { scores: y, inferenceMs: performance.now() - t0, batchSize: 1 };
    },
    async close() {},
  };
}

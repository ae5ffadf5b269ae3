// Frame classification for watch, in one module (the only place watch touches the engine and the batcher):
// locally, a model package through openEngine with frames from every camera batched together; or remotely over
// KServe V2 (binary tensor extension), so many watchers share one inference server: each frame as an encoded JPEG
// (BYTES input: mlctl serve decodes it with the model's own preprocessing), or preprocessed here into the FP32
// NHWC tensor a bare model takes (Triton and other V2 servers).
import sharp from 'sharp';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { loadPackage } from '../artifacts/package.js';
import { imageInputSpec, imageToInput, imageToInputPlaced, type ImageGeometry, type PreprocessingMode } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import { floatFeed, floatIO, floatsOf } from '../runtime/float.js';
import { createBatcher } from '../runtime/batcher.js';
import { detectorEngine, detectorFeed } from '../tasks/detection/engine.js';
import { requireTask } from '../tasks/index.js';
import type { DetectedObject } from '../tasks/types.js';
import { floatOutputs } from '../tasks/outputs.js';
import type { Logger } from '../util/log.js';
import type { RemoteInput } from './config/types.js';
import { frameSize, type Region } from './roi.js';

export interface ClassifyResult {
  /** One score per label: what rules see of the frame (local models: the task's probabilities — logits softmaxed). */
  scores: Float32Array | Float64Array;
  /** Detection models: the objects found, boxes in the whole frame's pixels (a region's offset added back). */
  objects?: DetectedObject[];
  /** The whole frame's displayed size (with objects). */
  frame?: { width: number; height: number };
  /** Engine (or server round-trip) time of the batch that carried this frame. */
  inferenceMs: number;
  batchSize: number;
}

export interface Classifier {
  readonly labels: string[];
  /** The model locates objects (its task renders objects for watch): zones, counts and tracking apply. */
  readonly detects: boolean;
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

export interface LocalOptions {
  model: string;
  engine: EngineChoice;
  maxBatch: number;
  maxDelayMs: number;
  logger: Logger;
  onBatch?: (size: number, seconds: number) => void;
  /** Detection models: keep boxes scoring at least this (the lowest score a rule or tracker reads); default the model's. */
  minScore?: number;
}

export async function openLocalClassifier(opts: LocalOptions): Promise<Classifier> {
  const pkg = await loadPackage(opts.model);
  const m = pkg.manifest;
  const ref = `${m.name} v${m.version}`;
  const task = requireTask(m, 'watch', ref);
  const rules = task.watch;
  if (!rules || task.input !== 'image' || m.input.kind !== 'image') throw new MlctlError('WATCH_MODEL_UNSUITABLE', [ref, `it is a ${task.id} model; watch needs a model that looks at images and scores labels or finds objects`]);
  const objects = rules.objects?.bind(rules);
  if (!m.labels.length) throw new MlctlError('WATCH_MODEL_UNSUITABLE', [ref, 'its manifest lists no labels']);
  const spec: ImageInputSpec = m.input;
  // TF.js runs in a worker thread: a batch must never block the event loop that reads the camera streams.
  const opened = await openEngine(pkg, { engine: opts.engine, logger: opts.logger, worker: true });
  let engine: InferenceEngine;
  try {
    // A detector runs as the detection task runs it everywhere (tasks/detection/engine.ts): every output its head
    // decodes (torchvision's boxes, scores and labels), one frame per run for a model without a batch dimension.
    // Any other model is one float tensor in and out.
    engine = objects ? detectorEngine(opened, m, pkg.dir) : opened;
    if (!objects) floatIO(engine);
  } catch (err) {
    await opened.dispose();
    throw err;
  }
  let decoding = 0;
  const batcher = createBatcher(
    engine,
    // The queue is bounded by the watcher (capacity), so the batcher's own limit never refuses a frame.
    { maxBatch: opts.maxBatch, maxDelayMs: opts.maxDelayMs, maxQueue: 1 << 20, incoming: () => decoding, ...(opts.onBatch ? { onBatch: opts.onBatch } : {}) },
  );
  return {
    labels: m.labels,
    detects: objects !== undefined,
    model: { name: m.name, version: m.version },
    description: `${ref} on ${engine.description}, ${engine.batched ? `batches of up to ${opts.maxBatch}` : 'one frame per run (no batch dimension)'}`,
    capacity: opts.maxBatch * 2,
    async classify(image, region) {
      let x: Float32Array;
      let geometry: ImageGeometry;
      decoding++;
      try {
        ({ x, geometry } = await imageToInputPlaced(image, spec, undefined, 0, region ? { region } : {}));
      } catch (err) {
        throw new BadFrameError((err as Error).message);
      } finally {
        decoding--;
        batcher.poke();
      }
      const r = await batcher.submit([objects ? detectorFeed(engine, spec, x, 1) : floatFeed(engine, x, 1)], 1);
      // The geometry carries the region's corner: a detector's boxes come back in the whole frame's pixels.
      const ctx = objects ? { images: [geometry], ...(opts.minScore !== undefined ? { minScore: opts.minScore } : {}) } : undefined;
      const [result] = task.results(objects ? r.outputs : floatOutputs(m, floatsOf(r.outputs[0]!), 1), m, ctx);
      const base = { scores: rules.scores(result, m), inferenceMs: r.inferenceMs, batchSize: r.batchSize };
      if (!objects) return base;
      const frame = region ? await frameSize(image, true) : { width: geometry.width, height: geometry.height };
      if (!frame) throw new BadFrameError('the frame has no readable size');
      return { ...base, objects: objects(result), frame };
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
  /** How frames are sent (default auto: see RemoteInput). */
  input?: RemoteInput;
  preprocessing?: PreprocessingMode;
}

export interface RemoteMeta {
  input: string;
  /** The first input's datatype and shape as the server describes them. */
  inputDatatype?: string;
  inputShape?: number[];
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
  const body = (await res.json().catch(() => ({}))) as { error?: string; inputs?: Array<{ name: string; datatype?: string; shape?: number[] }>; outputs?: Array<{ name: string; shape?: number[] }>; parameters?: { labels?: unknown } };
  if (!res.ok) throw new MlctlError('WATCH_SERVER', [opts.url, `GET ${base} answered ${res.status}${body.error ? `: ${body.error}` : ''}`]);
  const out = body.outputs?.[0];
  const labels = Array.isArray(body.parameters?.labels) ? (body.parameters!.labels as unknown[]).map(String) : undefined;
  const size = out?.shape?.length ? out.shape[out.shape.length - 1] : undefined;
  const input = body.inputs?.[0];
  return {
    input: input?.name ?? 'input',
    ...(input?.datatype ? { inputDatatype: input.datatype } : {}),
    ...(Array.isArray(input?.shape) ? { inputShape: input.shape } : {}),
    output: out?.name ?? 'output',
    ...(size && size > 0 ? { outputSize: size } : {}),
    ...(labels ? { labels } : {}),
  };
}

/** The server's own name from GET /v2 (mlctl serve says "mlctl"); undefined when it does not answer. */
async function serverName(opts: RemoteOptions): Promise<string | undefined> {
  try {
    const res = await fetch(`${opts.url}/v2`, { headers: opts.headers, signal: AbortSignal.timeout(opts.timeoutMs) });
    return res.ok ? ((await res.json()) as { name?: string }).name : undefined;
  } catch {
    return undefined;
  }
}

export type RemoteSend = { kind: 'bytes' } | { kind: 'fp32'; height: number; width: number; preprocessing: PreprocessingMode };

/**
 * How to send frames to a remote model. mlctl serve and models with a BYTES input take the JPEG; a bare model
 * taking FP32 NHWC images gets the tensor, preprocessed here the way it was trained (which only the user knows).
 */
export function remoteSend(meta: RemoteMeta, server: string | undefined, opts: Pick<RemoteOptions, 'url' | 'model' | 'input' | 'preprocessing'>): RemoteSend {
  const want = opts.input ?? 'auto';
  if (want === 'bytes' || (want === 'auto' && (meta.inputDatatype === undefined || meta.inputDatatype === 'BYTES' || server === 'mlctl'))) return { kind: 'bytes' };
  const shape = meta.inputShape ?? [];
  const what = `model ${opts.model} takes ${meta.inputDatatype ?? 'an unknown datatype'} ${JSON.stringify(shape)}`;
  if (meta.inputDatatype !== undefined && meta.inputDatatype !== 'FP32') throw new MlctlError('WATCH_SERVER', [opts.url, `${what}: watch sends encoded images (BYTES) or FP32 images`]);
  if (shape.length !== 4 || shape[3] !== 3 || !(shape[1]! > 0 && shape[2]! > 0)) {
    throw new MlctlError('WATCH_SERVER', [opts.url, `${what}: watch sends FP32 images as [batch, height, width, 3] (NHWC); serve the model with that input, or with a BYTES input that decodes images`]);
  }
  if (!opts.preprocessing) {
    throw new MlctlError('WATCH_SERVER', [opts.url, `${what}, not encoded images: set server.preprocessing to the one it was trained with (caffe, tf, torch, unit or raw), and watch preprocesses the frames itself`]);
  }
  return { kind: 'fp32', height: shape[1]!, width: shape[2]!, preprocessing: opts.preprocessing };
}

/** The infer request in the binary tensor extension: one BYTES element (the JPEG), or one FP32 NHWC image. */
function inferBody(meta: RemoteMeta, input: { jpeg: Uint8Array } | { x: Float32Array; shape: number[] }): { body: Buffer; headerLength: number } {
  const binary =
    'jpeg' in input
      ? Buffer.concat([Buffer.from(new Uint32Array([input.jpeg.length]).buffer), input.jpeg])
      : Buffer.from(input.x.buffer, input.x.byteOffset, input.x.byteLength);
  const tensor = 'jpeg' in input ? { shape: [1], datatype: 'BYTES' } : { shape: input.shape, datatype: 'FP32' };
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: meta.input, ...tensor, parameters: { binary_data_size: binary.length } }], outputs: [{ name: meta.output, parameters: { binary_data: true } }] }),
  );
  return { body: Buffer.concat([header, binary]), headerLength: header.length };
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
  const send = remoteSend(meta, await serverName(opts), opts);
  const spec = send.kind === 'fp32' ? imageInputSpec({ height: send.height, width: send.width }, send.preprocessing) : undefined;
  const labels = opts.labels ?? meta.labels;
  if (!labels) {
    if (!meta.outputSize) throw new MlctlError('WATCH_SERVER', [opts.url, `model ${opts.model} does not say how many outputs it has; list its labels in the config (labels: [...])`]);
    opts.logger.warn(`inference server ${opts.url}: model ${opts.model} publishes no labels; using "0".."${meta.outputSize - 1}" (list them with labels: [...] in the config to use names in rules)`);
  }
  const names = labels ?? Array.from({ length: meta.outputSize! }, (_, i) => String(i));
  return {
    labels: names,
    detects: false,
    model: { name: opts.model, ...(opts.version ? { version: opts.version } : {}) },
    description: `${opts.model} on ${opts.url} (KServe V2, ${spec ? `FP32 ${spec.height}x${spec.width} images, ${spec.preprocessing.mode} preprocessing here` : 'JPEG frames'}, up to ${opts.maxInFlight} requests in flight)`,
    capacity: opts.maxInFlight,
    async classify(image, region) {
      let payload: Parameters<typeof inferBody>[1] = { jpeg: image };
      try {
        if (spec) payload = { x: await imageToInput(image, spec, undefined, 0, region ? { region } : {}), shape: [1, spec.height, spec.width, 3] };
        else if (region) payload = { jpeg: await sharp(image, { failOn: 'error' }).rotate().extract(region).jpeg({ quality: 90 }).toBuffer() };
      } catch (err) {
        throw new BadFrameError((err as Error).message);
      }
      const { body, headerLength } = inferBody(meta, payload);
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

// serve's ModelRepository: loads packages (every model and version found), opens and warms an engine per
// version, and runs inference through each version's batching queue. Loads are all-or-nothing and a version
// becomes visible only once warm, so hot reload can swap versions without failing requests.
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { loadPackage, type LoadedPackage } from '../artifacts/package.js';
import { openEngine, type EngineChoice, type EngineOptions, type InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { createBatcher, type Batcher } from '../runtime/batcher.js';
import { findPackageDirs, type VersionPolicy } from './discover.js';
import { MlctlError } from '../errors.js';
import { badRequest, notFound, notReady, outsideKeyScope, shuttingDown } from './errors.js';
import { firstNonFinite } from './codec.js';
import { DEFAULT_MAX_PIXELS, imageBytesToInput } from './images.js';
import { createServeMetrics, type ServeMetrics } from './metrics.js';
import path from 'node:path';
import type { BatchEvent, InferContext, InferEvent, InferInput, InferResult, ModelRepository, ServedModel, UnavailableVersion } from './types.js';

export interface RepositoryOptions {
  engine?: EngineChoice;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  /** Largest decoded image accepted, in pixels (decompression-bomb guard). */
  maxPixels?: number;
  /** Serve every version found (default) or only the latest of each model (the newest not marked rejected). */
  versions?: VersionPolicy;
  /** Versions a quality gate rejected may load (--allow-rejected); the loader refuses them otherwise. */
  allowRejected?: boolean;
  logger?: Logger;
  metrics?: ServeMetrics;
  /** Engine opener (default runtime/engine.ts openEngine); benchmarks and embedders can supply their own. */
  openEngine?: (pkg: LoadedPackage, opts: EngineOptions) => Promise<InferenceEngine>;
  /** Run engines (ONNX Runtime, TF.js) in a worker thread (default true) so a batch never blocks the event loop. */
  engineThread?: boolean;
  /**
   * Package loader (default: loadPackage with hash checks). serve passes one that also checks signatures and
   * attaches the model key, so every load — start-up, hot reload, model control — passes the same gate.
   */
  loadPackage?: (dir: string) => Promise<LoadedPackage>;
}

interface Entry {
  model: ServedModel;
  engine: InferenceEngine;
  batcher: Batcher;
  /** Requests that resolved this entry and have not finished: unload waits for them. */
  inflight: number;
  /** Requests still decoding their inputs: the batcher waits for them only while some are on their way. */
  preparing: number;
}

const key = (name: string, version: number) => `${name}@${version}`;

/** Whom the batching queue shares fairly between: the API key, else the connection, else the client address. */
const fairnessKey = (ctx: InferContext) => (ctx.keyId ? `key:${ctx.keyId}` : ctx.connection ? `conn:${ctx.connection}` : `ip:${ctx.clientAddress ?? ''}`);

export function imageSpecOf(model: ServedModel): ImageInputSpec {
  const input = model.manifest.input;
  if (input.kind !== 'image') throw badRequest(`model ${model.name} takes ${input.kind} input, not images`);
  return input;
}

export function createRepository(opts: RepositoryOptions = {}): ModelRepository {
  const maxBatch = opts.maxBatch ?? 8;
  const maxDelayMs = opts.maxDelayMs ?? 5;
  const maxQueue = opts.maxQueue ?? 64;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const entries = new Map<string, Entry>();
  let closing = false;
  const metrics = opts.metrics ?? createServeMetrics();
  // Requests announced by front ends (expectRequests) and requests inside infer(): the difference is on its way.
  let expected = 0;
  let inside = 0;
  opts = { ...opts, metrics };
  const observers = new Set<(event: InferEvent) => void>();
  const batchObservers = new Set<(event: BatchEvent) => void>();
  const broken: UnavailableVersion[] = [];

  const updateLoaded = () => opts.metrics?.modelsLoaded.set([...entries.values()].filter((e) => e.model.ready).length);

  async function prepare(dir: string): Promise<Entry> {
    const pkg = await (opts.loadPackage ?? loadPackage)(dir);
    const m = pkg.manifest;
    // The engine runs in a worker thread so a batch never blocks the event loop (parsing, decoding, responses).
    const engine = await (opts.openEngine ?? openEngine)(pkg, { engine: opts.engine ?? 'auto', logger: opts.logger, worker: opts.engineThread !== false });
    try {
      // Image models take NHWC images; tabular models take rows of the engine's (encoded) feature width.
      const want = m.input.kind === 'image' ? [m.input.height, m.input.width, m.input.channels] : engine.inputShape;
      if (engine.inputShape.length !== want.length || engine.inputShape.some((d, i) => d !== -1 && d !== want[i]) || want.some((d) => d < 1)) {
        throw new MlctlError('PACKAGE_INPUT_MISMATCH', [`package ${dir}: the model takes input ${JSON.stringify(engine.inputShape)} but the manifest says ${JSON.stringify(want)}`]);
      }
      const model: ServedModel = { name: m.name, version: m.version, manifest: m, manifestSha256: pkg.manifestSha256, ready: false, engine: engine.name, platform: engine.platform, provenance: engine.provenance, package: pkg, inputShape: want };
      const labels = { model: m.name, version: String(m.version) };
      const state = { preparing: 0 };
      const batcher = createBatcher(
        { inputSize: want.reduce((a, d) => a * d, 1), outputSize: engine.outputSize, run: (x, n) => engine.run(x, n) },
        {
          maxBatch,
          maxDelayMs,
          maxQueue,
          onBatch: (size, seconds) => {
            opts.metrics?.batchSize.observe(labels, size);
            opts.metrics?.inferenceSeconds.observe(labels, seconds);
            for (const o of batchObservers) o({ name: m.name, version: m.version, size, seconds });
          },
          onDepth: (d) => opts.metrics?.queueDepth.set(labels, d),
          incoming: () => state.preparing + Math.max(0, expected - inside),
        },
      );
      // Warm up at batch 1 and at the largest batch so the first real requests do not pay for allocation.
      const per = want.reduce((a, d) => a * d, 1);
      const t0 = performance.now();
      await engine.run(new Float32Array(per), 1);
      if (maxBatch > 1) await engine.run(new Float32Array(per * maxBatch), maxBatch);
      opts.logger?.info(`loaded ${m.name} v${m.version} (${engine.description}; warm-up ${Math.round(performance.now() - t0)} ms) from ${dir}`);
      if (m.status === 'rejected') opts.logger?.warn(`${m.name} v${m.version} is marked rejected${m.statusReason ? ` (${m.statusReason})` : ''}: served because of --allow-rejected, only to requests that name this version unless it is the only one`);
      return Object.assign(state, { model, engine, batcher, inflight: 0 });
    } catch (err) {
      await engine.dispose().catch(() => {});
      throw err;
    }
  }

  function lookup(name: string, version?: number): Entry {
    if (version !== undefined) {
      const e = entries.get(key(name, version));
      if (e) return e;
      const known = [...entries.values()].filter((x) => x.model.name === name).map((x) => x.model.version);
      if (known.length) throw notFound(`model ${name} has no version ${version} (loaded: ${known.join(', ')})`);
      throw notFound(`model ${name} is not loaded (loaded models: ${names().join(', ') || 'none'})`);
    }
    // No version named: the newest ready one that no quality gate rejected (a rejected version loaded with
    // --allow-rejected answers only when asked for by version, or when it is all there is).
    let best: Entry | undefined;
    const rank = (e: Entry) => (e.model.manifest.status === 'rejected' ? 0 : 1);
    for (const e of entries.values()) {
      if (e.model.name !== name || !e.model.ready) continue;
      if (!best || rank(e) > rank(best) || (rank(e) === rank(best) && e.model.version > best.model.version)) best = e;
    }
    if (!best) throw notFound(`model ${name} is not loaded (loaded models: ${names().join(', ') || 'none'})`);
    return best;
  }

  const names = () => [...new Set([...entries.values()].map((e) => e.model.name))].sort();

  /**
   * Inputs → one batch, validated against the model's metadata (name, datatype, shape, finite values): the one check
   * every transport (REST V2, /predict, TF Serving, gRPC) goes through.
   */
  async function toBatch(entry: Entry, inputs: InferInput[]): Promise<{ x: Float32Array; n: number }> {
    if (inputs.length !== 1) throw badRequest(`model ${entry.model.name} takes exactly one input tensor, got ${inputs.length}`);
    const input = inputs[0]!;
    const shape = entry.model.inputShape!;
    const per = shape.reduce((a, d) => a * d, 1);
    const isImage = entry.model.manifest.input.kind === 'image';
    const inputName = entry.model.manifest.input.name;
    // Encoded images (BYTES) may also be called "image", the name /predict and most image clients use.
    if (input.name !== inputName && !(input.datatype === 'BYTES' && input.name === 'image')) {
      throw badRequest(`model ${entry.model.name} has no input "${String(input.name).slice(0, 100)}"; its input is "${inputName}"${isImage ? ' (FP32 preprocessed NHWC, or BYTES encoded images also named "image")' : ''}`);
    }
    if (input.datatype === 'FP32') {
      const s = input.shape;
      if (s.length !== shape.length + 1 || s.slice(1).some((d, i) => d !== shape[i]) || !Number.isInteger(s[0]) || s[0]! < 1) {
        const what = isImage ? ' (NHWC, preprocessed)' : ' (one row of encoded features per example)';
        throw badRequest(`input ${input.name} has shape [${s.join(', ')}]; model ${entry.model.name} expects [N, ${shape.join(', ')}]${what} with N >= 1`);
      }
      const n = s[0]!;
      if (!(input.data instanceof Float32Array)) throw badRequest(`input ${input.name}: FP32 data must be numbers`);
      if (input.data.length !== n * per) throw badRequest(`input ${input.name} has ${input.data.length} values but shape [${s.join(', ')}] needs ${n * per}`);
      const bad = firstNonFinite(input.data);
      if (bad >= 0) throw badRequest(`input ${input.name}: element ${bad} is ${input.data[bad]}; inputs must be finite float32 numbers (no NaN or Infinity, |x| <= 3.4e38)`);
      checkCount(n);
      return { x: input.data, n };
    }
    if (input.datatype === 'BYTES') {
      if (!isImage) throw badRequest(`model ${entry.model.name} takes ${entry.model.manifest.input.kind} rows: send FP32 [N, ${shape.join(', ')}], not BYTES`);
      const spec = imageSpecOf(entry.model);
      const s = input.shape;
      if (!((s.length === 1 && s[0]! >= 1) || (s.length === 2 && s[0]! >= 1 && s[1] === 1))) {
        throw badRequest(`input ${input.name} has shape [${s.join(', ')}]; BYTES image input must be [N] or [N, 1], one encoded image per element`);
      }
      const n = s[0]!;
      const data = input.data;
      if (!Array.isArray(data) || data.length !== n) throw badRequest(`input ${input.name} has ${Array.isArray(data) ? data.length : 0} elements but shape [${s.join(', ')}] needs ${n}`);
      checkCount(n);
      const x = new Float32Array(n * per);
      await Promise.all(data.map((bytes, i) => imageBytesToInput(bytes, spec, x, i * per, maxPixels, n > 1 ? `image ${i + 1} of ${n}` : 'image')));
      return { x, n };
    }
    throw badRequest(`input ${input.name} has datatype ${String(input.datatype)}; use FP32 (preprocessed NHWC floats) or BYTES (encoded images)`);
  }

  function checkCount(n: number): void {
    if (n > maxQueue) throw badRequest(`the request has ${n} examples, more than the queue holds (--max-queue ${maxQueue}); split it`);
  }

  async function runInfer(name: string, version: number | undefined, inputs: InferInput[], ctx: InferContext): Promise<InferResult> {
    if (closing) throw shuttingDown();
    // Every transport comes through here: the key's scope is checked on the model that runs, whatever carried its
    // name, and before the lookup, so a refused name says nothing about whether it exists.
    const refused = outsideKeyScope(ctx, name);
    if (refused) throw refused;
    const entry = lookup(name, version);
    if (!entry.model.ready) throw notReady(`model ${name} v${entry.model.version} is not ready yet`);
    entry.inflight++;
    inside++;
    try {
      entry.preparing++;
      let batch: { x: Float32Array; n: number };
      const t0 = performance.now();
      try {
        batch = await toBatch(entry, inputs);
      } catch (err) {
        entry.preparing--;
        entry.batcher.poke(); // the queue may have been waiting for this request
        throw err;
      }
      entry.preparing--;
      const { x, n } = batch;
      const t1 = performance.now();
      const r = await entry.batcher.submit(x, n, fairnessKey(ctx));
      const timing = { inputMs: t1 - t0, queueMs: Math.max(0, performance.now() - t1 - r.inferenceMs), inferMs: r.inferenceMs };
      const out = entry.model.manifest.output;
      // A NaN or Infinity answered as JSON would be null: say what happened instead of a 200 with nulls.
      const bad = firstNonFinite(r.y);
      if (bad >= 0) throw new MlctlError('OUTPUT_NOT_FINITE', [`model ${entry.model.name} v${entry.model.version} produced ${r.y[bad]} for this input (output element ${bad}); inputs far outside the range the model was trained on do this — check the preprocessing`]);
      return { model: entry.model, inferenceMs: r.inferenceMs, batchSize: r.batchSize, timing, outputs: [{ name: out.name, datatype: 'FP32', shape: [n, entry.engine.outputSize], data: r.y }] };
    } finally {
      entry.inflight--;
      inside--;
    }
  }

  return {
    metrics,
    list: () => [...entries.values()].map((e) => e.model).sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version),
    get(name, version) {
      try {
        return lookup(name, version).model;
      } catch {
        return undefined;
      }
    },
    ready: () => !closing && entries.size > 0 && [...entries.values()].every((e) => e.model.ready),
    expectRequests(delta: number) {
      expected = Math.max(0, expected + delta);
      // A request that left without reaching the queue (bad body, auth failure) may be the one a batch waits for.
      if (delta < 0) for (const e of entries.values()) e.batcher.poke();
    },
    queueDepth: () => [...entries.values()].reduce((a, e) => a + e.batcher.depth(), 0),

    onInfer(listener) {
      observers.add(listener);
      return () => void observers.delete(listener);
    },
    onBatch(listener) {
      batchObservers.add(listener);
      return () => void batchObservers.delete(listener);
    },
    batching: { maxBatch, maxDelayMs },

    async infer(name: string, version: number | undefined, inputs: InferInput[], ctx: InferContext): Promise<InferResult> {
      const started = performance.now();
      const tell = (e: Partial<InferEvent>) => {
        const event = { name, version, inputs, ctx, latencyMs: performance.now() - started, ...e };
        for (const o of observers) o(event);
      };
      try {
        const result = await runInfer(name, version, inputs, ctx);
        tell({ result });
        return result;
      } catch (error) {
        tell({ error });
        throw error;
      }
    },

    async load(ref) {
      if (closing) throw shuttingDown();
      const dirs = await findPackageDirs(ref, opts.versions ?? 'all', { allowRejected: opts.allowRejected });
      const prepared: Entry[] = [];
      try {
        for (const dir of dirs) prepared.push(await prepare(dir));
      } catch (err) {
        await Promise.all(prepared.map((e) => e.engine.dispose().catch(() => {})));
        throw err;
      }
      const seen = new Set<string>();
      for (const e of prepared) {
        const k = key(e.model.name, e.model.version);
        if (seen.has(k) || entries.has(k)) {
          await Promise.all(prepared.map((p) => p.engine.dispose().catch(() => {})));
          throw new MlctlError('MODEL_ALREADY_LOADED', [`model ${e.model.name} v${e.model.version} is already loaded (from ${entries.get(k)?.model.package.dir ?? 'the same load'}); unload it first`]);
        }
        seen.add(k);
      }
      for (const e of prepared) {
        e.model.ready = true;
        entries.set(key(e.model.name, e.model.version), e);
      }
      updateLoaded();
      return prepared.map((e) => e.model);
    },

    unavailable: () => broken.slice(),

    async loadEach(ref) {
      if (closing) throw shuttingDown();
      const dirs = await findPackageDirs(ref, opts.versions ?? 'all', { allowRejected: opts.allowRejected });
      const loaded: ServedModel[] = [];
      const failed: UnavailableVersion[] = [];
      let first: unknown;
      for (const dir of dirs) {
        try {
          loaded.push(...(await this.load(dir)));
        } catch (err) {
          first ??= err;
          const v = Number(path.basename(dir));
          const u = { name: path.basename(path.dirname(dir)), version: Number.isInteger(v) ? v : 0, dir, reason: (err as Error).message };
          failed.push(u);
          opts.logger?.error(`model ${u.name} v${u.version} is unavailable (${dir}): ${u.reason}`);
        }
      }
      if (!loaded.length) throw first;
      broken.push(...failed);
      return { loaded, failed };
    },

    async unload(name, version) {
      const victims = [...entries.values()].filter((e) => e.model.name === name && (version === undefined || e.model.version === version));
      if (!victims.length) lookup(name, version);
      for (const e of victims) {
        entries.delete(key(e.model.name, e.model.version));
        e.model.ready = false;
      }
      updateLoaded();
      await Promise.all(
        victims.map(async (e) => {
          while (e.inflight > 0) {
            await e.batcher.idle();
            if (e.inflight > 0) await new Promise((r) => setTimeout(r, 5));
          }
          opts.metrics?.queueDepth.remove({ model: e.model.name, version: String(e.model.version) });
          await e.engine.dispose();
        }),
      );
      return victims.map((e) => e.model);
    },

    async close() {
      closing = true;
      for (const n of names()) await this.unload(n);
    },
  };
}

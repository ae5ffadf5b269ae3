// serve's ModelRepository: loads every version a ModelSource holds (load.ts), warms it (warmup.ts) and serves it
// through its batching queue (batching.ts) after validating each request (validate.ts); unloading drains it
// (unload.ts). Loads are all-or-nothing and a version becomes visible only once warm, so hot reload can swap
// versions without failing requests.
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import type { Batcher } from '../runtime/batcher.js';
import { openEngine, type EngineChoice, type EngineOptions, type InferenceEngine } from '../runtime/engine.js';
import type { Tensor } from '../runtime/tensor.js';
import type { Logger } from '../util/log.js';
import { fairnessKey, versionBatcher } from './batching.js';
import type { VersionPolicy } from './discover.js';
import { notReady, outsideKeyScope, shuttingDown } from './errors.js';
import { DEFAULT_MAX_PIXELS } from './images.js';
import { loadVersion, type LoadedVersion } from './load.js';
import { createServeMetrics, type ServeMetrics } from './metrics.js';
import { packageDirSource, type ModelSource } from './source.js';
import type { BatchEvent, InferContext, InferEvent, InferInput, InferResult, ModelRepository, ServedModel, UnavailableVersion } from './types.js';
import { drainAndDispose } from './unload.js';
import { createVersionTable } from './version-table.js';
import { firstNonFinite, toFeeds, type Feeds } from './validate.js';
import { warmUp } from './warmup.js';

export { imageSpecOf } from './validate.js';

export interface RepositoryOptions {
  engine?: EngineChoice;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  /** Engine instances per version (runtime/pool.ts), each running one batch at a time: Triton's instance_group count. */
  instances?: number;
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
   * Package loader of the default source (default: loadPackage with hash checks). serve passes one that also checks
   * signatures and attaches the model key, so every load — start-up, hot reload, model control — passes the same gate.
   */
  loadPackage?: (dir: string) => Promise<LoadedPackage>;
  /** Where a ref given to load() comes from (default: package directories on this machine, with `loadPackage`). */
  source?: (ref: string) => ModelSource;
}

interface Entry extends Pick<LoadedVersion, 'model' | 'engine' | 'feedName' | 'present'> {
  batcher: Batcher;
  /** Requests that resolved this entry and have not finished: unload waits for them. */
  inflight: number;
  /** Requests still decoding their inputs: the batcher waits for them only while some are on their way. */
  preparing: number;
}

/** The first NaN or ±Infinity among a result's float outputs: never answered as a 200 (JSON would say null). */
function nonFinite(outputs: readonly Tensor[]): { name: string; at: number; value: number } | undefined {
  for (const o of outputs) {
    if (o.datatype !== 'FP32' && o.datatype !== 'FP64') continue;
    const at = firstNonFinite(o.data as Float32Array);
    if (at >= 0) return { name: o.name, at, value: (o.data as Float32Array)[at]! };
  }
  return undefined;
}

export function createRepository(opts: RepositoryOptions = {}): ModelRepository {
  const maxBatch = opts.maxBatch ?? 8;
  const maxDelayMs = opts.maxDelayMs ?? 5;
  const maxQueue = opts.maxQueue ?? 64;
  const instances = Math.max(1, opts.instances ?? 1);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const metrics = opts.metrics ?? createServeMetrics();
  const sourceOf = opts.source ?? ((ref: string) => packageDirSource(ref, { loadPackage: opts.loadPackage, allowRejected: opts.allowRejected }));
  const entries = createVersionTable<Entry>();
  let closing = false;
  // Requests announced by front ends (expectRequests) and requests inside infer(): the difference is on its way.
  let expected = 0;
  let inside = 0;
  const observers = new Set<(event: InferEvent) => void>();
  const batchObservers = new Set<(event: BatchEvent) => void>();
  const broken: UnavailableVersion[] = [];

  const updateLoaded = () => metrics.modelsLoaded.set(entries.all().filter((e) => e.model.ready).length);
  const asSource = (ref: string | ModelSource) => (typeof ref === 'string' ? sourceOf(ref) : ref);

  /** Load, check and warm one version; nothing of it is visible yet. */
  async function prepare(version: Parameters<typeof loadVersion>[0]): Promise<Entry> {
    // The engine runs in a worker thread so a batch never blocks the event loop (parsing, decoding, responses).
    const loaded = await loadVersion(version, { engine: opts.engine, logger: opts.logger, openEngine: opts.openEngine ?? openEngine, worker: opts.engineThread !== false, instances });
    const { model, engine } = loaded;
    try {
      const state = { preparing: 0 };
      const batcher = versionBatcher(model, engine, {
        maxBatch,
        maxDelayMs,
        maxQueue,
        instances,
        metrics,
        onBatch: (event) => batchObservers.forEach((o) => o(event)),
        incoming: () => state.preparing + Math.max(0, expected - inside),
      });
      const what = `${model.name} v${model.version}`;
      // Side by side, so that every instance of the pool gets its own warm-up.
      const ms = Math.max(...(await Promise.all(Array.from({ length: instances }, () => warmUp(engine, maxBatch, { what, logger: opts.logger, lenient: model.manifest.input.kind === 'tensors' })))));
      opts.logger?.info(`loaded ${what} (${engine.description}; warm-up ${Math.round(ms)} ms) from ${version.location}`);
      const m = model.manifest;
      if (m.status === 'rejected') opts.logger?.warn(`${what} is marked rejected${m.statusReason ? ` (${m.statusReason})` : ''}: served because of --allow-rejected, only to requests that name this version unless it is the only one`);
      return Object.assign(state, { ...loaded, batcher, inflight: 0 });
    } catch (err) {
      await engine.dispose().catch(() => {});
      throw err;
    }
  }

  const lookup = entries.lookup;

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
      let batch: Feeds;
      const t0 = performance.now();
      try {
        batch = await toFeeds(entry.model, inputs, { maxPixels, maxQueue, feedName: entry.feedName, ...(ctx.part ? { part: ctx.part } : {}) });
      } catch (err) {
        entry.preparing--;
        entry.batcher.poke(); // the queue may have been waiting for this request
        throw err;
      }
      entry.preparing--;
      const t1 = performance.now();
      const r = await entry.batcher.submit(batch.feeds, batch.n, fairnessKey(ctx), { handOver: batch.owned });
      const timing = { inputMs: t1 - t0, queueMs: Math.max(0, performance.now() - t1 - r.inferenceMs), inferMs: r.inferenceMs };
      const outputs = entry.present(r.outputs, batch.n);
      // A NaN or Infinity answered as JSON would be null: say what happened instead of a 200 with nulls.
      const bad = nonFinite(outputs);
      if (bad) {
        const where = outputs.length > 1 ? `output ${bad.name} element ${bad.at}` : `output element ${bad.at}`;
        throw new MlctlError('OUTPUT_NOT_FINITE', [`model ${entry.model.name} v${entry.model.version} produced ${bad.value} for this input (${where}); inputs far outside the range the model was trained on do this — check the preprocessing`]);
      }
      return { model: entry.model, inferenceMs: r.inferenceMs, batchSize: r.batchSize, timing, outputs, ...(batch.images ? { images: batch.images } : {}) };
    } finally {
      entry.inflight--;
      inside--;
    }
  }

  async function unload(name: string, version?: number): Promise<ServedModel[]> {
    const victims = entries.all().filter((e) => e.model.name === name && (version === undefined || e.model.version === version));
    if (!victims.length) lookup(name, version);
    for (const e of victims) {
      entries.remove(e);
      e.model.ready = false;
    }
    updateLoaded();
    await Promise.all(victims.map((e) => drainAndDispose(e, metrics)));
    return victims.map((e) => e.model);
  }

  async function load(ref: string | ModelSource): Promise<ServedModel[]> {
    if (closing) throw shuttingDown();
    const versions = await asSource(ref).versions(opts.versions ?? 'all');
    const prepared: Entry[] = [];
    try {
      for (const v of versions) prepared.push(await prepare(v));
    } catch (err) {
      await Promise.all(prepared.map((e) => e.engine.dispose().catch(() => {})));
      throw err;
    }
    const seen = new Set<string>();
    for (const { model: m } of prepared) {
      const k = `${m.name}@${m.version}`;
      if (seen.has(k) || entries.has(m.name, m.version)) {
        await Promise.all(prepared.map((p) => p.engine.dispose().catch(() => {})));
        throw new MlctlError('MODEL_ALREADY_LOADED', [`model ${m.name} v${m.version} is already loaded (from ${entries.at(m.name, m.version)?.model.source.location ?? 'the same load'}); unload it first`]);
      }
      seen.add(k);
    }
    for (const e of prepared) {
      e.model.ready = true;
      entries.add(e);
    }
    updateLoaded();
    return prepared.map((e) => e.model);
  }

  return {
    metrics,
    list: () => entries.all().map((e) => e.model).sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version),
    get(name, version) {
      try {
        return lookup(name, version).model;
      } catch {
        return undefined;
      }
    },
    ready: () => !closing && entries.all().length > 0 && entries.all().every((e) => e.model.ready),
    expectRequests(delta: number) {
      expected = Math.max(0, expected + delta);
      // A request that left without reaching the queue (bad body, auth failure) may be the one a batch waits for.
      if (delta < 0) for (const e of entries.all()) e.batcher.poke();
    },
    queueDepth: () => entries.all().reduce((a, e) => a + e.batcher.depth(), 0),

    onInfer(listener) {
      observers.add(listener);
      return () => void observers.delete(listener);
    },
    onBatch(listener) {
      batchObservers.add(listener);
      return () => void batchObservers.delete(listener);
    },
    batching: { maxBatch, maxDelayMs, instances },

    async infer(name, version, inputs, ctx) {
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

    load,
    unavailable: () => broken.slice(),

    async loadEach(ref) {
      if (closing) throw shuttingDown();
      const versions = await asSource(ref).versions(opts.versions ?? 'all');
      const loaded: ServedModel[] = [];
      const failed: UnavailableVersion[] = [];
      let first: unknown;
      for (const v of versions) {
        try {
          loaded.push(...(await load({ ref: v.location, versions: async () => [v] })));
        } catch (err) {
          first ??= err;
          const u = { name: v.name, version: v.version, dir: v.location, reason: (err as Error).message };
          failed.push(u);
          opts.logger?.error(`model ${u.name} v${u.version} is unavailable (${v.location}): ${u.reason}`);
        }
      }
      if (!loaded.length) throw first;
      broken.push(...failed);
      return { loaded, failed };
    },

    unload,

    async close() {
      closing = true;
      for (const n of entries.names()) await unload(n);
    },
  };
}

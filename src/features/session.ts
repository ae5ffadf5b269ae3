// The one feature session: a frozen base (a backbone definition with its weights, or a given model such as the
// cut of a package prune works on), the engine that runs it, and the on-disk store of its outputs. Train, classic
// --features, tune and prune all extract through it, so a backbone is converted once and its features computed once.
import type * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheRoot, openCache, type Cache } from '../artifacts/cache.js';
import { sha256, sha256File } from '../artifacts/hash.js';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { imageBatches, type SkippedFile } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { imageInputSpec, preprocessingKey } from '../data/preprocess.js';
import type { WeightsSource } from '../models/weights.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import { runFloat } from '../runtime/float.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { loadBackbone, type BackboneBase } from '../models/backbones/load.js';

export type { BackboneBase };
import type { FeatureRows } from './rows.js';
import { openFeatureStore, type FeatureStore, type StoreReader } from './store.js';

/** A model that is already built (prune's cut of a package), borrowed; `identity` names its content. */
export interface GivenBase {
  model: tf.LayersModel;
  identity: string;
  spec: ImageInputSpec;
}

export interface FeatureSessionOptions {
  base: BackboneBase | GivenBase;
  /** gap: global average pooling inside the graph, so features leave the engine already pooled (classic). */
  pooling?: 'none' | 'gap';
  engine: EngineChoice;
  /** false: do not read or write the shared store (features of this run go to a temporary store, removed on dispose). */
  useStore?: boolean;
  /** Cache root (default: the mlctl cache). */
  cacheRoot?: string;
  logger: Logger;
}

export interface ExtractStats {
  images: number;
  cached: number;
  computed: number;
  skipped: number;
  seconds: number;
  /** Images per second over the computed (uncached) images, decode included. */
  imagesPerSecond: number;
}

export interface ExtractOptions {
  label?: string;
  /** Checked between batches: when it returns true, extraction stops with what is stored so far. */
  shouldStop?: () => boolean;
  onSkip?: (skip: SkippedFile) => void;
  batchSize?: number;
}

export interface FeatureSession {
  /** Cache identity of the base: backbone, variant, image size, pooling, weights and preprocessing. */
  readonly identity: string;
  /** The input the base takes, with the preprocessing its weights expect (recorded in manifests). */
  readonly spec: ImageInputSpec;
  /** Shape of one feature row, e.g. [7, 7, 512] (or [512] pooled). */
  readonly featureShape: number[];
  /** The base model (owned by the session when built from a definition; it lives until dispose). */
  readonly base: tf.LayersModel;
  readonly weights?: WeightsSource;
  readonly engine: InferenceEngine;
  /** Where the features are stored, or undefined when they are only kept for this run. */
  readonly storeDir?: string;
  /** Features of `samples` in their order (unreadable images left out): stored rows are read, the rest computed. */
  extract(samples: readonly Sample[], opts?: ExtractOptions): Promise<{ rows: FeatureRows; stats: ExtractStats }>;
  /** Run the base on a preprocessed batch (augmented images, whose features are never stored). */
  run(x: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Cache identity of a backbone base: one name for its ONNX conversion and its feature store. */
export function backboneIdentity(b: BackboneBase, weightsSha256: string, spec: ImageInputSpec, pooling: 'none' | 'gap'): string {
  const variant = b.backbone.variant(b.options);
  // preprocessingKey: stores written before the resize kernel was recorded keep their names (it is the same resize).
  const digest = sha256(JSON.stringify({ v: 1, weights: weightsSha256, preprocessing: preprocessingKey(spec.preprocessing), size: [spec.height, spec.width] })).slice(0, 16);
  return [b.backbone.id, variant, String(b.options.imageSize), pooling === 'gap' ? 'gap' : '', digest].filter(Boolean).join('-');
}

const isBackboneBase = (b: BackboneBase | GivenBase): b is BackboneBase => 'backbone' in b;

async function temporaryStoreDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'mlctl-features-'));
}

/**
 * The store for this session: the shared one under <cache>/features/<identity> when allowed and writable, else a
 * temporary folder for this run (removed on dispose); the reason is said once.
 */
async function chooseStore(identity: string, dim: number, cache: Cache, useStore: boolean, logger: Logger): Promise<{ store: FeatureStore; shared: boolean }> {
  if (useStore && (await cache.writable())) {
    try {
      return { store: await openFeatureStore(cache.pathOf('features', identity), dim, { identity }), shared: true };
    } catch (err) {
      if ((err as { code?: string }).code === 'FEATURE_STORE_INVALID') throw err;
      logger.warn(`feature store disabled for this run: cannot use ${cache.pathOf('features', identity)} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return { store: await openFeatureStore(await temporaryStoreDir(), dim), shared: false };
}

export async function openFeatureSession(opts: FeatureSessionOptions): Promise<FeatureSession> {
  const { logger } = opts;
  const pooling = opts.pooling ?? 'none';
  const cache = openCache({ root: opts.cacheRoot ?? cacheRoot(), logger });
  const given = isBackboneBase(opts.base) ? undefined : opts.base;
  const def = isBackboneBase(opts.base) ? opts.base : undefined;
  const loaded = def ? await loadBackbone(def, pooling, logger) : undefined;
  const base = loaded?.model ?? given!.model;
  const spec = def ? imageInputSpec(def.options.imageSize, def.backbone.preprocessing) : given!.spec;
  const identity = def ? backboneIdentity(def, loaded!.weights.sha256, spec, pooling) : given!.identity;
  const featureShape = (base.outputs[0]!.shape as number[]).slice(1);
  const dim = featureShape.reduce((a, b) => a * b, 1);
  let engine: InferenceEngine | undefined;
  let store: { store: FeatureStore; shared: boolean } | undefined;
  const readers: StoreReader[] = [];
  try {
    engine = await openEngine({ kind: 'model', model: base, identity, label: `the ${def ? def.backbone.id : 'given'} base` }, { engine: opts.engine, logger, cacheRoot: opts.cacheRoot });
    store = await chooseStore(identity, dim, cache, opts.useStore !== false, logger);
  } catch (err) {
    await engine?.dispose();
    loaded?.dispose();
    throw err;
  }
  const { store: fstore, shared } = store;
  const eng = engine;

  return {
    identity,
    spec,
    featureShape,
    base,
    weights: loaded?.weights,
    engine: eng,
    storeDir: shared ? fstore.dir : undefined,
    async extract(samples, eo = {}) {
      const start = performance.now();
      const reader = await fstore.reader();
      const shaOf = new Map<string, string>();
      const missing: Sample[] = [];
      for (const s of samples) {
        // An unreadable file is left to the decoder, which reports it as skipped.
        const sha = await sha256File(s.path).catch(() => `unreadable:${s.path}`);
        shaOf.set(s.path, sha);
        if (!reader.has(sha)) missing.push(s);
      }
      const cached = samples.length - missing.length;
      let computed = 0;
      let skipped = 0;
      const t0 = performance.now();
      if (missing.length) {
        const writer = await fstore.writer();
        const progress = createProgress({ label: eo.label ?? 'extracting features', total: missing.length, unit: 'img', logger });
        try {
          for await (const batch of imageBatches(missing, { spec, batchSize: eo.batchSize ?? 16, onSkip: (sk) => (skipped++, eo.onSkip?.(sk)) })) {
            const out = await runFloat(eng, batch.x, batch.count);
            for (let i = 0; i < batch.count; i++) await writer.append(shaOf.get(batch.paths[i]!)!, out.subarray(i * dim, (i + 1) * dim));
            computed += batch.count;
            progress.tick(batch.count);
            if (eo.shouldStop?.()) break;
          }
        } finally {
          await writer.close();
        }
        progress.done(`${computed} images (${cached} from the store)`);
        if (shared) await cache.recordEntry('features', identity, { identity, dim, featureShape });
      }
      const computeSeconds = (performance.now() - t0) / 1000;
      await reader.close();
      const final = await fstore.reader();
      readers.push(final);
      const kept = samples.filter((s) => final.has(shaOf.get(s.path)!));
      if (shared && !missing.length) await cache.touch('features', identity);
      return {
        rows: final.rows(kept.map((s) => ({ sha: shaOf.get(s.path)!, label: s.label, path: s.path }))),
        stats: { images: samples.length, cached, computed, skipped, seconds: (performance.now() - start) / 1000, imagesPerSecond: computed > 0 ? computed / computeSeconds : 0 },
      };
    },
    run: (x, n) => runFloat(eng, x, n),
    async dispose() {
      await Promise.all(readers.map((r) => r.close()));
      await eng.dispose();
      loaded?.dispose();
      if (!shared) await fs.rm(fstore.dir, { recursive: true, force: true });
    },
  };
}

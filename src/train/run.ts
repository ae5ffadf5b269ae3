// `mlctl train` end to end: dataset → VGG16 base with weights → cached features → head training with checkpoints
// and early stopping → optional fine-tuning → one model package (full model in TF.js layers format + history).
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ManifestDraft } from '../artifacts/manifest.js';
import { artifactsRoot, assertValidName, savePackage, writeTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { datasetSplits, scanImageFolder, type Sample } from '../data/imagefolder.js';
import { imageInputSpec } from '../data/preprocess.js';
import { buildFullModel, getHeadWeights, headInputSize, headParamCount, type HeadPooling, type HeadSpec, type HeadWeights } from '../models/head.js';
import { loadKerasH5Weights } from '../models/hdf5.js';
import { assertVggImageSize, buildVgg16, vggConvLayerNames, vggFeatureShape, VGG16_BLOCKS } from '../models/vgg16.js';
import { cacheRoot } from '../artifacts/cache.js';
import { resolveWeights, type WeightsSource } from '../models/weights.js';
import type { EngineChoice, InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { createProgress, type Progress } from '../util/progress.js';
import { augmentImage, parseAugment, type Augmentation } from './augment.js';
import { loadCheckpoint, readRunConfig, runDir, saveCheckpoint, type RunConfig } from './checkpoint.js';
import { extractFeatures, globalAveragePool, openBackboneEngine, type ExtractStats, type FeatureSet } from './features.js';
import { fineTune, type FineTuneResult } from './finetune.js';
import { balancedClassWeights, cloneHead, disposeHead, evaluateHead, newAdamState, trainHead, type EpochMetrics, type HeadTrainState, type TrainHeadResult } from './head.js';
import { writeHistoryFiles } from './history.js';
import { imageBatches } from '../data/batches.js';

export interface TrainOptions {
  data: string;
  name: string;
  epochs: number;
  batchSize: number;
  imageSize: number;
  lr: number;
  head: HeadPooling;
  dropout: number;
  /** Unfreeze the last K conv blocks after the head has converged (0 = frozen base). */
  fineTune: number;
  fineTuneLr?: number;
  weights: string;
  augment: string[];
  patience?: number;
  seed: number;
  resume: boolean;
  validationSplit: number;
  testSplit: number;
  engine: EngineChoice;
  classWeights: 'auto' | 'none';
  /** Where packages go (default: artifactsRoot()). */
  artifacts?: string;
  /** Feature/download cache (default: cacheRoot()). */
  cache?: string;
  /** false disables the feature cache even without augmentation. */
  featureCache?: boolean;
  logger: Logger;
  /** Checked between batches: true stops with a checkpoint (SIGINT/SIGTERM). */
  shouldStop?: () => boolean;
  /** Overrides for the ImageNet download (tests). */
  weightsUrl?: string;
  weightsMd5?: string;
}

export interface TrainResult {
  package?: { dir: string; name: string; version: number; manifestSha256: string };
  interrupted: boolean;
  runDir: string;
  metrics: Record<string, unknown>;
  history: EpochMetrics[];
  backend: string;
  engine: string;
  features: { train?: ExtractStats; val?: ExtractStats; test?: ExtractStats; cacheDir?: string };
  timings: Record<string, number>;
}

const HEAD_UNITS = 1024;

function countBy(samples: Sample[], classes: number): number[] {
  const c = new Array<number>(classes).fill(0);
  for (const s of samples) c[s.label]!++;
  return c;
}

/** Load the dataset and check it is trainable; throws clear MlctlErrors. */
export async function loadTrainingData(opts: Pick<TrainOptions, 'data' | 'validationSplit' | 'testSplit' | 'seed'>) {
  const folder = await scanImageFolder(opts.data);
  const splits = datasetSplits(folder, { validationSplit: opts.validationSplit, testSplit: opts.testSplit, seed: opts.seed });
  if (splits.train.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `${folder.root} has no training images`]);
  const counts = countBy(splits.train, folder.classes.length);
  const empty = counts.findIndex((c) => c === 0);
  if (empty >= 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `class ${folder.classes[empty]} has no training images; add images or lower --validation-split/--test-split`]);
  return { folder, splits };
}

/** Build the VGG16 base and load its weights (imagenet / file / random). */
export async function prepareBackbone(opts: { imageSize: number; weights: string; seed: number; logger: Logger; weightsUrl?: string; weightsMd5?: string; cache?: string }) {
  assertVggImageSize(opts.imageSize);
  const source = await resolveWeights(opts.weights, { logger: opts.logger, seed: opts.seed, url: opts.weightsUrl, md5: opts.weightsMd5, cacheDir: opts.cache ? path.join(opts.cache, 'models') : undefined });
  const base = buildVgg16({ imageSize: opts.imageSize, seed: opts.seed });
  if (source.path) {
    try {
      const r = await loadKerasH5Weights(source.path, base, { layers: vggConvLayerNames() });
      opts.logger.info(`loaded ${r.tensors} weight tensors for ${r.layers.length} VGG16 layers from ${source.path}`);
    } catch (err) {
      base.dispose();
      throw err;
    }
  }
  return { base, source };
}

function fingerprint(opts: TrainOptions, classes: string[], source: WeightsSource, root: string): Record<string, unknown> {
  return {
    data: root,
    classes,
    imageSize: opts.imageSize,
    head: opts.head,
    dropout: opts.dropout,
    weights: source.sha256,
    seed: opts.seed,
    batchSize: opts.batchSize,
    lr: opts.lr,
    validationSplit: opts.validationSplit,
    testSplit: opts.testSplit,
    augment: opts.augment,
    classWeights: opts.classWeights,
    fineTune: opts.fineTune,
  };
}

export async function runTrain(opts: TrainOptions): Promise<TrainResult> {
  const { logger } = opts;
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (k: string, since: number) => (timings[k] = Number(((performance.now() - since) / 1000).toFixed(3)));
  assertValidName(opts.name);
  assertVggImageSize(opts.imageSize);
  let augment: Augmentation[];
  try {
    augment = parseAugment(opts.augment);
  } catch (err) {
    throw new MlctlError('USAGE', [(err as Error).message]);
  }
  if (opts.fineTune < 0 || opts.fineTune > VGG16_BLOCKS.length) throw new MlctlError('USAGE', [`--fine-tune must be between 0 and ${VGG16_BLOCKS.length} (conv blocks to unfreeze)`]);
  const { folder, splits } = await loadTrainingData(opts);
  const classes = folder.classes;
  logger.info(`dataset ${folder.root}: ${classes.length} classes, ${splits.train.length} train / ${splits.val.length} val / ${splits.test.length} test images`);

  const tBackbone = performance.now();
  const { base, source } = await prepareBackbone({ ...opts, cache: opts.cache });
  mark('backboneSeconds', tBackbone);
  const root = opts.artifacts ?? artifactsRoot();
  const rdir = runDir(root, opts.name);
  const config: RunConfig = { fingerprint: fingerprint(opts, classes, source, folder.root) };
  const spec = imageInputSpec(opts.imageSize, 'caffe');
  const featureShape = vggFeatureShape(opts.imageSize);
  const headSpec: HeadSpec = { pooling: opts.head, units: HEAD_UNITS, dropout: opts.dropout, classes: classes.length };
  const backend = tf.getBackend();
  let engine: InferenceEngine | undefined;
  let fullModel: tf.LayersModel | undefined;
  let headWeights: HeadWeights | undefined;
  let resumeCkpt: Awaited<ReturnType<typeof loadCheckpoint>>;
  try {
    if (opts.resume) {
      const prev = await readRunConfig(rdir);
      resumeCkpt = await loadCheckpoint(rdir);
      if (!prev || !resumeCkpt) throw new MlctlError('IO', [`--resume: no checkpoint for "${opts.name}" in ${rdir}; run without --resume to start training`]);
      const diff = Object.keys(config.fingerprint).filter((k) => JSON.stringify(prev.fingerprint[k]) !== JSON.stringify(config.fingerprint[k]));
      if (diff.length) throw new MlctlError('USAGE', [`--resume: the checkpoint in ${rdir} was made with different settings (${diff.join(', ')}); use the same options or start again without --resume`]);
      logger.info(`resuming "${opts.name}" from the ${resumeCkpt.phase} checkpoint after epoch ${resumeCkpt.phase === 'head' ? resumeCkpt.head.epoch : resumeCkpt.fineTune?.epoch ?? 0}`);
    } else if (await fs.stat(path.join(rdir, 'checkpoint')).then(() => true, () => false)) {
      logger.info(`starting a new run: the previous checkpoint in ${rdir} will be replaced (use --resume to continue it)`);
    }

    // Features of the frozen base: cached on disk unless augmentation changes the images every epoch.
    const tFeat = performance.now();
    engine = await openBackboneEngine(base, opts.engine, `vgg16-notop-${opts.imageSize}-${source.sha256}`, logger);
    logger.info(`feature extraction engine: ${engine.description}`);
    const useCache = opts.featureCache !== false && augment.length === 0;
    const key = { backbone: 'vgg16', weightsSha256: source.sha256, imageSize: opts.imageSize, preprocessing: spec.preprocessing, featureShape };
    const cache = useCache ? (opts.cache ?? cacheRoot()) : undefined;
    const extract = (samples: Sample[], label: string) =>
      extractFeatures(samples, { engine: engine!, spec, key, cacheRoot: cache, batchSize: 16, logger, label, shouldStop: opts.shouldStop, onSkip: (s) => logger.warn(`skipped ${s.path}: ${s.reason}`) });
    const pool = (set: FeatureSet) => (opts.head === 'gap' ? globalAveragePool(set, featureShape) : set);
    const feats: TrainResult['features'] = {};
    let trainSet: FeatureSet;
    if (augment.length === 0) {
      const r = await extract(splits.train, 'train features');
      trainSet = pool(r.features);
      feats.train = r.stats;
    } else {
      trainSet = { x: new Float32Array(0), labels: new Int32Array(0), count: 0, dim: headInputSize(featureShape, opts.head), paths: [] };
      logger.info(`augmentation ${augment.join(', ')}: train features are recomputed every epoch (feature cache off for training)`);
    }
    let valSet: FeatureSet | undefined;
    if (splits.val.length) {
      const r = await extract(splits.val, 'validation features');
      valSet = pool(r.features);
      feats.val = r.stats;
    }
    if (cache) feats.cacheDir = cache;
    mark('featureSeconds', tFeat);
    if (opts.shouldStop?.()) return interruptedResult(rdir, backend, engine, feats, timings, []);
    if (feats.train) logger.info(`features: ${feats.train.cached + (feats.val?.cached ?? 0)} from cache, ${feats.train.computed + (feats.val?.computed ?? 0)} computed${feats.train.computed ? ` at ${feats.train.imagesPerSecond.toFixed(1)} img/s` : ''}`);

    const classWeights = opts.classWeights === 'auto' ? balancedClassWeights(augment.length ? Int32Array.from(splits.train.map((s) => s.label)) : trainSet.labels, classes.length) : undefined;
    if (classWeights && Math.max(...classWeights) / Math.min(...classWeights) > 1.5) logger.info(`class weights (imbalanced data): ${classes.map((c, i) => `${c} ${classWeights[i]!.toFixed(2)}`).join(', ')}`);

    const epochFeatures = augment.length
      ? async (epoch: number) => {
          const stats: { n: number } = { n: 0 };
          const x: Float32Array[] = [];
          const labels: number[] = [];
          for await (const b of imageBatches(splits.train, { spec, batchSize: 16, transform: (img, s) => augmentImage(img, opts.imageSize, augment, opts.seed, `${epoch}:${s.path}`) })) {
            x.push((await engine!.run(b.x, b.count)).slice());
            labels.push(...b.labels);
            stats.n += b.count;
            if (opts.shouldStop?.()) break;
          }
          const raw: FeatureSet = { x: concat(x), labels: Int32Array.from(labels), count: stats.n, dim: featureShape[0] * featureShape[1] * featureShape[2], paths: [] };
          return pool(raw);
        }
      : undefined;

    // Phase 1: the head on frozen features.
    const tHead = performance.now();
    let headResult: TrainHeadResult | undefined;
    const resumeHead = resumeCkpt?.head;
    let progress: Progress | undefined;
    let epochCounter = resumeHead?.epoch ?? 0;
    // A fine-tune checkpoint means phase 1 finished: take its result instead of training the head again.
    headResult = resumeCkpt?.phase === 'fine-tune' && resumeHead
      ? { weights: cloneHead(resumeHead.best.weights), history: resumeHead.history, bestEpoch: resumeHead.best.epoch, stoppedEarly: false, interrupted: false, epochsRun: resumeHead.epoch }
      : await trainHead(trainSet, valSet, {
      spec: headSpec,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      seed: opts.seed,
      patience: opts.patience,
      classWeights,
      resume: resumeCkpt?.phase === 'head' ? resumeHead : undefined,
      shouldStop: opts.shouldStop,
      epochFeatures,
      onBatch: (b, n, loss, acc) => {
        if (b === 1 && logger.interactive) progress = createProgress({ label: `epoch ${epochCounter + 1}/${opts.epochs}`, total: n, unit: 'batch', logger, plainIntervalMs: 60_000 });
        progress?.tick(1, `loss ${loss.toFixed(4)} acc ${acc.toFixed(3)}`);
      },
      onEpochEnd: async (state, m) => {
        epochCounter = m.epoch;
        if (logger.interactive) progress?.done(epochLine(m));
        else logger.info(`epoch ${m.epoch}/${opts.epochs} ${epochLine(m)}`);
        await saveCheckpoint(rdir, config, { phase: 'head', head: state }).catch((err: NodeJS.ErrnoException) => {
          throw new MlctlError('IO', [`cannot write the checkpoint in ${rdir}: ${err.message}${err.code === 'ENOSPC' ? ' (out of disk space: free some space, then rerun with --resume)' : ''}`], { cause: err });
        });
      },
    });
    mark('headSeconds', tHead);
    disposeHead(resumeHead?.weights);
    disposeHead(resumeHead?.best.weights);
    if (headResult.interrupted) {
      headWeights = headResult.weights;
      return interruptedResult(rdir, backend, engine, feats, timings, headResult.history);
    }
    if (headResult.stoppedEarly) logger.info(`early stopping after epoch ${headResult.epochsRun}: restored the weights of epoch ${headResult.bestEpoch}`);

    // The full model: base + head with the best head weights.
    headWeights = headResult.weights;
    const model = buildFullModel(base, headSpec, headResult.weights);
    fullModel = model;
    let history = headResult.history;
    let ft: FineTuneResult | undefined;
    if (opts.fineTune > 0) {
      const tFt = performance.now();
      ft = await fineTune(model, splits.train, splits.val, {
        blocks: opts.fineTune,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        lr: opts.fineTuneLr ?? opts.lr / 10,
        seed: opts.seed,
        patience: opts.patience,
        classes: classes.length,
        classWeights,
        spec,
        augment,
        logger,
        shouldStop: opts.shouldStop,
        startEpoch: resumeCkpt?.phase === 'fine-tune' ? resumeCkpt.fineTune?.epoch : 0,
        resumeDir: resumeCkpt?.phase === 'fine-tune' ? path.join(rdir, 'checkpoint', 'model') : undefined,
        priorHistory: resumeCkpt?.phase === 'fine-tune' ? resumeCkpt.fineTune?.history : undefined,
        checkpoint: async (ftState, headState) => {
          await saveCheckpoint(rdir, config, { phase: 'fine-tune', head: headState ?? headStateFromResult(headResult!), fineTune: ftState }, async (tmp) => {
            await fs.mkdir(path.join(tmp, 'model'), { recursive: true });
            await writeTfjsModel(path.join(tmp, 'model'), model);
          });
        },
      });
      mark('fineTuneSeconds', tFt);
      history = [...history, ...ft.history];
      if (ft.interrupted) {
        return interruptedResult(rdir, backend, engine, feats, timings, history);
      }
    }

    // Metrics of the final model on validation (and test) data.
    const tEval = performance.now();
    // The saved weights are the best of the last phase that ran (fine-tuning restores its own best epoch).
    const best = ft && ft.history.length ? bestOf(ft.history) : bestOf(history);
    const metrics: Record<string, unknown> = {
      valAccuracy: best?.valAccuracy ?? null,
      valLoss: best?.valLoss ?? null,
      accuracy: best?.accuracy ?? null,
      loss: best?.loss ?? null,
      bestEpoch: best ? history.indexOf(best) + 1 : null,
      epochsRun: history.length,
      stoppedEarly: headResult.stoppedEarly || Boolean(ft?.stoppedEarly),
    };
    if (splits.test.length) {
      const test = await evaluateTestSplit(model, splits.test, { head: opts.head, spec, engine, key, cache, fineTuned: ft !== undefined, logger });
      metrics.testAccuracy = test.accuracy;
      metrics.testLoss = test.loss;
      feats.test = test.stats;
    }
    mark('evalSeconds', tEval);

    const headParams = headParamCount(headSpec, headInputSize(featureShape, opts.head));
    const baseParams = base.countParams();
    const trainableBlocks = opts.fineTune > 0 ? Array.from({ length: opts.fineTune }, (_, i) => `block${VGG16_BLOCKS.length - opts.fineTune + 1 + i}`) : [];
    const draft: ManifestDraft = {
      task: 'image-classification',
      labels: classes,
      input: spec,
      output: { name: 'predictions', kind: 'probabilities', size: classes.length },
      architecture: {
        type: 'vgg16-transfer',
        backbone: 'vgg16',
        includeTop: false,
        featureShape,
        weights: { source: source.source, kind: source.kind, sha256: source.kind === 'none' ? null : source.sha256, ...(source.md5 ? { md5: source.md5 } : {}), ...(source.kind === 'none' ? { init: 'glorot_uniform', seed: opts.seed } : {}) },
        head: { pooling: opts.head, dense: [HEAD_UNITS, classes.length], activation: 'relu', dropout: opts.dropout, output: 'softmax' },
        trainableBlocks,
        params: { total: baseParams + headParams, backbone: baseParams, head: headParams, trainable: headParams + (ft?.trainableParams ?? 0) },
      },
      formats: { tfjs: 'model.json' },
      training: {
        data: folder.root,
        layout: folder.layout,
        samples: { train: splits.train.length, val: splits.val.length, test: splits.test.length },
        classCounts: Object.fromEntries(classes.map((c, i) => [c, countBy(splits.train, classes.length)[i]])),
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        optimizer: { name: 'adam', lr: opts.lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
        loss: 'categorical_crossentropy',
        seed: opts.seed,
        validationSplit: opts.validationSplit,
        testSplit: opts.testSplit,
        patience: opts.patience ?? null,
        classWeights: classWeights ?? null,
        augment,
        fineTune: opts.fineTune ? { blocks: opts.fineTune, lr: opts.fineTuneLr ?? opts.lr / 10, epochs: ft?.history.length ?? 0 } : null,
        backend,
        engine: engine.name,
        featureCache: Boolean(cache),
      },
      metrics,
      lineage: [{ op: 'train', at: new Date().toISOString(), tool: 'mlctl', params: { data: folder.root, weights: source.source, epochs: history.length, seed: opts.seed } }],
    };
    const tSave = performance.now();
    let pkg: LoadedPackage;
    try {
      pkg = await savePackage({
        name: opts.name,
        root,
        draft,
        write: async (dir) => {
          await writeTfjsModel(dir, model);
          await writeHistoryFiles(dir, history);
        },
      });
    } catch (err) {
      if (err instanceof MlctlError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new MlctlError('IO', [`could not write the model package under ${path.join(root, opts.name)}: ${(err as Error).message}${code === 'ENOSPC' ? ' (out of disk space: free some space and rerun with --resume)' : ''}`], { cause: err });
    }
    mark('saveSeconds', tSave);
    mark('totalSeconds', t0);
    logger.info(`saved ${pkg.dir} (val accuracy ${fmt(metrics.valAccuracy)}, ${history.length} epochs)`);
    return {
      package: { dir: pkg.dir, name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: pkg.manifestSha256 },
      interrupted: false,
      runDir: rdir,
      metrics,
      history,
      backend,
      engine: engine.name,
      features: feats,
      timings,
    };
  } finally {
    await engine?.dispose();
    disposeHead(headWeights);
    // The full model shares the base's layers; whichever is still alive is released here.
    for (const m of [fullModel, base]) {
      try {
        m?.dispose();
      } catch {
        // already released through the other model
      }
    }
  }
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? v.toFixed(4) : 'n/a';
}

function epochLine(m: EpochMetrics): string {
  const val = m.valLoss !== undefined ? ` val_loss ${m.valLoss.toFixed(4)} val_acc ${m.valAccuracy!.toFixed(3)}` : '';
  return `loss ${m.loss.toFixed(4)} acc ${m.accuracy.toFixed(3)}${val} (${m.seconds.toFixed(1)}s)`;
}

function bestOf(history: EpochMetrics[]): EpochMetrics | undefined {
  let best: EpochMetrics | undefined;
  for (const h of history) {
    const m = h.valLoss ?? h.loss;
    if (!best || m < (best.valLoss ?? best.loss)) best = h;
  }
  return best;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function interruptedResult(rdir: string, backend: string, engine: InferenceEngine, features: TrainResult['features'], timings: Record<string, number>, history: EpochMetrics[]): TrainResult {
  return { interrupted: true, runDir: rdir, metrics: {}, history, backend, engine: engine.name, features, timings };
}

/** The finished head phase as a checkpoint state (fine-tune checkpoints carry it so --resume can skip phase 1). */
function headStateFromResult(r: TrainHeadResult): HeadTrainState {
  return { epoch: r.epochsRun, weights: r.weights, best: { weights: r.weights, epoch: r.bestEpoch, monitor: Infinity }, wait: 0, history: r.history, optimizer: newAdamState([]) };
}

/** Test-split metrics: the head on (cached) base features when the base stayed frozen, else the full model on images. */
async function evaluateTestSplit(
  model: tf.LayersModel,
  samples: Sample[],
  o: { head: HeadPooling; spec: ReturnType<typeof imageInputSpec>; engine: InferenceEngine; key: Parameters<typeof extractFeatures>[1]['key']; cache?: string; fineTuned: boolean; logger: Logger },
): Promise<{ loss: number; accuracy: number; stats?: ExtractStats }> {
  const { spec, engine, key, cache, fineTuned, logger } = o;
  let loss = 0;
  let correct = 0;
  let n = 0;
  if (!fineTuned) {
    const { features, stats } = await extractFeatures(samples, { engine, spec, key, cacheRoot: cache, logger, label: 'test features' });
    const w = getHeadWeights(model);
    const set = o.head === 'gap' ? globalAveragePool(features, key.featureShape) : features;
    const r = evaluateHead(w, set);
    disposeHead(w);
    return { ...r, stats };
  }
  for await (const b of imageBatches(samples, { spec, batchSize: 16 })) {
    const [l, c] = tf.tidy(() => {
      const p = model.predict(tf.tensor4d(b.x, [b.count, spec.height, spec.width, 3])) as tf.Tensor2D;
      const labels = tf.tensor1d(b.labels, 'int32');
      const y = tf.oneHot(labels, p.shape[1]);
      return [tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))))).dataSync()[0]!, tf.sum(tf.cast(tf.equal(tf.argMax(p, 1), labels), 'float32')).dataSync()[0]!];
    });
    loss += l!;
    correct += c!;
    n += b.count;
  }
  return { loss: n ? loss / n : NaN, accuracy: n ? correct / n : NaN };
}


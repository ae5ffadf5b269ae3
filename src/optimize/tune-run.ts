// `mlctl tune` end to end: build the backbone (--backbone, VGG16 by default) with train's weights resolution, extract (or read cached) features
// once for the train/validation split, run the trials, and save the best head on the base as a model package.
import { savePackage, writeTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import { describeSplits, loadTrainingData, splitOrigin } from '../data/splits.js';
import { MlctlError } from '../errors.js';
import { buildFullModel, type HeadPooling } from '../models/head.js';
import { backboneById, DEFAULT_BACKBONE } from '../models/backbones/index.js';
import type { EngineChoice } from '../runtime/engine.js';
import { pooledRows, type FeatureRows } from '../features/rows.js';
import { openFeatureSession } from '../features/session.js';
import { disposeHead } from '../heads/head.js';
import type { Logger } from '../util/log.js';
import { generateTrials, runTrials, type SearchParam, type TrialResult } from './tune.js';

export interface TuneRunOptions {
  data: string;
  name: string;
  trials: number;
  strategy: 'random' | 'grid';
  search: SearchParam[];
  /** Backbone id (models/backbones/), default vgg16; alpha for MobileNetV2. */
  backbone?: string;
  alpha?: number;
  imageSize: number;
  weights: string;
  pooling: HeadPooling;
  epochs: number;
  patience: number;
  seed: number;
  validationSplit: number;
  testSplit?: number;
  engine: EngineChoice;
  logger: Logger;
  root?: string;
  cacheDir?: string;
}

export interface TuneRunReport {
  results: TrialResult[];
  gridSize?: number;
  package: LoadedPackage;
  features: { train: number; val: number; cached: number; computed: number };
}

export async function tunePipeline(opts: TuneRunOptions): Promise<TuneRunReport> {
  const { logger } = opts;
  // Options that do not fit the backbone fail here, before any data is read.
  const def = backboneById(opts.backbone ?? DEFAULT_BACKBONE);
  const backboneOptions = { imageSize: opts.imageSize, seed: opts.seed, ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}) };
  def.checkOptions(backboneOptions);
  const splitParams = { seed: opts.seed, validationSplit: opts.validationSplit, testSplit: opts.testSplit ?? 0 };
  const { folder, plan } = await loadTrainingData({ data: opts.data, ...splitParams });
  logger.info(`dataset ${folder.root}: ${folder.classes.length} classes, ${describeSplits(plan)}`);
  // Trials are ranked and stopped early on validation: without it there is nothing to tune against.
  if (plan.splits.val.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['val', `tune ranks trials by validation accuracy; the validation split is ${splitOrigin(plan, 'val')}: pass a --validation-split > 0${plan.layout === 'explicit' ? ' or add a val/ folder' : ''}`]);
  const trainData = { root: folder.root, samples: plan.splits.train };
  const valData = { samples: plan.splits.val };
  const labels = folder.classes;
  const { trials, gridSize } = generateTrials(opts.strategy, opts.trials, opts.search, opts.seed);
  if (gridSize !== undefined && gridSize > opts.trials) logger.info(`grid has ${gridSize} combinations; running ${opts.trials} of them (seeded order)`);

  // The same session train uses: features extracted by `mlctl train` on this data are reused here, and vice versa.
  const session = await openFeatureSession({
    base: { backbone: def, options: backboneOptions, weights: opts.weights, seed: opts.seed },
    engine: opts.engine,
    cacheRoot: opts.cacheDir,
    logger,
  });
  try {
    const onSkip = (s: { path: string; reason: string }) => logger.warn(`skipped ${s.path}: ${s.reason}`);
    const t = await session.extract(trainData.samples, { label: 'features (train)', onSkip });
    const v = await session.extract(valData.samples, { label: 'features (validation)', onSkip });
    if (t.rows.count === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['training', `no image of ${opts.data} could be decoded`]);
    const cached = t.stats.cached + v.stats.cached;
    const computed = t.stats.computed + v.stats.computed;
    const featureShape = session.featureShape;
    const pool = (rows: FeatureRows) => (opts.pooling === 'gap' ? pooledRows(rows, featureShape) : rows);
    const train = pool(t.rows);
    const val = pool(v.rows);
    const spec = session.spec;
    const base = session.base;
    const weights = session.weights!;
    const outcome = await runTrials(train, val, trials, { classes: labels.length, pooling: opts.pooling, epochs: opts.epochs, patience: opts.patience, seed: opts.seed, logger, engine: opts.engine });
    const best = outcome.results[0]!;
    const model = buildFullModel(base, outcome.bestSpec, outcome.bestWeights);
    disposeHead(outcome.bestWeights);
    const pkg = await savePackage({
      name: opts.name,
      root: opts.root,
      draft: {
        task: 'image-classification',
        labels,
        input: spec,
        output: { name: 'predictions', kind: 'probabilities', size: labels.length },
        // Same shape as train's packages, so evaluate/export/serve read tuned and trained models alike.
        architecture: {
          type: `${def.id}-transfer`,
          backbone: def.id,
          ...(def.variant(backboneOptions) ? { variant: def.variant(backboneOptions) } : {}),
          ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
          includeTop: false,
          featureShape: [...featureShape],
          weights: { source: weights.source, kind: weights.kind, sha256: weights.kind === 'none' ? null : weights.sha256, ...(weights.md5 ? { md5: weights.md5 } : {}), ...(weights.kind === 'none' ? { init: 'glorot_uniform', seed: opts.seed } : {}) },
          head: { pooling: opts.pooling, dense: [outcome.bestSpec.units, labels.length], activation: 'relu', dropout: outcome.bestSpec.dropout, output: 'softmax' },
          trainableBlocks: [],
          params: { total: model.countParams(), backbone: base.countParams(), head: model.countParams() - base.countParams(), trainable: model.countParams() - base.countParams() },
        },
        formats: { tfjs: 'model.json' },
        training: {
          method: 'tune',
          strategy: opts.strategy,
          trials: trials.length,
          search: opts.search,
          best: { trial: best.trial, ...best.params, epochs: best.epochs, bestEpoch: best.bestEpoch },
          epochs: opts.epochs,
          patience: opts.patience,
          seed: opts.seed,
          validationSplit: opts.validationSplit,
          testSplit: splitParams.testSplit,
          splitSources: plan.source,
          data: trainData.root,
          examples: { train: train.count, val: val.count },
          weightsSha256: weights.sha256,
          // The store of the backbone's features (train records it too): prune reads it instead of recomputing.
          featureStore: session.storeDir ? session.identity : null,
        },
        metrics: { valAccuracy: best.valAccuracy, valLoss: best.valLoss, accuracy: best.trainAccuracy, bestEpoch: best.bestEpoch, epochsRun: best.epochs, stoppedEarly: best.stoppedEarly },
        lineage: [{ op: 'tune', at: new Date().toISOString(), tool: 'mlctl', params: { strategy: opts.strategy, trials: trials.length, search: opts.search, seed: opts.seed, best: best.params } }],
        status: 'ok',
      },
      write: (dir) => writeTfjsModel(dir, model),
    });
    return { results: outcome.results, gridSize, package: pkg, features: { train: train.count, val: val.count, cached, computed } };
  } finally {
    await session.dispose();
  }
}

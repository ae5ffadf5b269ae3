// `--features vgg16`: images → frozen VGG16 base (the train engineer's backbone, weights and on-disk feature cache)
// → global average pooling → 512 features per image, the classic "SVM on CNN features" baseline. The pooled
// backbone is stored in the package (backbone/model.json) so evaluate and serve run images end to end.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { imageInputSpec } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { cacheRoot } from '../artifacts/cache.js';
import type { WeightsSource } from '../models/weights.js';
import type { EngineChoice } from '../runtime/engine.js';
import { extractFeatures, openBackboneEngine, type FeatureSet } from '../train/features.js';
import { loadTrainingData, prepareBackbone } from '../train/run.js';
import type { Logger } from '../util/log.js';
import type { ClassicDataset } from './data.js';
import type { Matrix } from './linalg.js';

export const BACKBONE_DIR = 'backbone';
export const BACKBONE_FILE = `${BACKBONE_DIR}/model.json`;

export interface Vgg16FeatureOptions {
  data: string;
  imageSize: number;
  weights: string;
  seed: number;
  validationSplit: number;
  engine: EngineChoice;
  featureCache: boolean;
  logger: Logger;
}

export interface Vgg16Features {
  ds: ClassicDataset;
  /** VGG16 base + GlobalAveragePooling2D: image → 512 features. The caller disposes it. */
  backbone: tf.LayersModel;
  source: WeightsSource;
  spec: ImageInputSpec;
  engine: string;
}

/** The VGG16 base with global average pooling on top, as one layers model. */
export function pooledBackbone(base: tf.LayersModel): tf.LayersModel {
  const pooled = tf.layers.globalAveragePooling2d({ name: 'features_gap' }).apply(base.outputs[0]!) as tf.SymbolicTensor;
  return tf.model({ inputs: base.inputs, outputs: pooled, name: 'vgg16_gap' });
}

function toMatrix(set: FeatureSet): Matrix {
  return { rows: set.count, cols: set.dim, data: Float64Array.from(set.x) };
}

export async function loadVgg16Features(opts: Vgg16FeatureOptions): Promise<Vgg16Features> {
  const { logger } = opts;
  const { folder, splits } = await loadTrainingData({ data: opts.data, validationSplit: opts.validationSplit, testSplit: 0, seed: opts.seed });
  const { base, source } = await prepareBackbone({ imageSize: opts.imageSize, weights: opts.weights, seed: opts.seed, logger });
  const backbone = pooledBackbone(base);
  const spec = imageInputSpec(opts.imageSize, 'caffe');
  const engine = await openBackboneEngine(backbone, opts.engine, `vgg16-notop-gap-${opts.imageSize}-${source.sha256}`, logger);
  try {
    logger.info(`VGG16 features (global average pooled, 512 per image) via ${engine.description}`);
    const key = { backbone: 'vgg16-gap', weightsSha256: source.sha256, imageSize: opts.imageSize, preprocessing: spec.preprocessing, featureShape: [512] };
    const cache = opts.featureCache ? cacheRoot() : undefined;
    const extract = (samples: typeof splits.train, label: string) =>
      extractFeatures(samples, { engine, spec, key, cacheRoot: cache, batchSize: 16, logger, label, onSkip: (s) => logger.warn(`skipped ${s.path}: ${s.reason}`) });
    const train = await extract(splits.train, 'train features');
    const val = splits.val.length ? await extract(splits.val, 'validation features') : undefined;
    if (train.features.count === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `no readable training images in ${opts.data}`]);
    const skipped = train.stats.skipped + (val?.stats.skipped ?? 0);
    const ds: ClassicDataset = {
      source: 'images',
      task: 'classification',
      features: Array.from({ length: 512 }, (_, i) => `vgg16_gap_${i}`),
      train: toMatrix(train.features),
      trainLabels: train.features.labels,
      ...(val && val.features.count ? { val: toMatrix(val.features), valLabels: val.features.labels } : {}),
      labels: folder.classes,
      imageSpec: spec,
      skipped,
      dropped: 0,
      rows: train.features.count + (val?.features.count ?? 0),
    };
    return { ds, backbone, source, spec, engine: engine.description };
  } catch (err) {
    backbone.dispose();
    throw err;
  } finally {
    await engine.dispose();
  }
}

/** The stored pooled backbone's directory inside a package. */
export function backboneDir(pkgDir: string, rel = BACKBONE_FILE): string {
  return path.dirname(path.join(pkgDir, rel));
}

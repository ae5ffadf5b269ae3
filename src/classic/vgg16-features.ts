// `--features vgg16`: images → frozen VGG16 base with global average pooling (512 features per image) through the
// shared feature session (same weights resolution, engine and on-disk store as train), the classic "SVM on CNN
// features" baseline. The pooled backbone is stored in the package (backbone/model.json) so evaluate and serve run
// images end to end.
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { loadTrainingData } from '../data/splits.js';
import { MlctlError } from '../errors.js';
import { toMatrix, type FeatureMatrix } from '../features/rows.js';
import { openFeatureSession } from '../features/session.js';
import { vgg16 } from '../models/backbones/vgg16.js';
import type { WeightsSource } from '../models/weights.js';
import type { EngineChoice } from '../runtime/engine.js';
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
  /** VGG16 base + GlobalAveragePooling2D: image → 512 features, a copy the caller owns (and disposes). */
  backbone: tf.LayersModel;
  source: WeightsSource;
  spec: ImageInputSpec;
  engine: string;
}

const toDouble = (m: FeatureMatrix): Matrix => ({ rows: m.count, cols: m.dim, data: Float64Array.from(m.x) });

/** A standalone copy of a model (its own weights), so it outlives the session that built the original. */
async function copyModel(model: tf.LayersModel): Promise<tf.LayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) })));
  return tf.loadLayersModel(tf.io.fromMemory(artifacts!));
}

export async function loadVgg16Features(opts: Vgg16FeatureOptions): Promise<Vgg16Features> {
  const { logger } = opts;
  const { folder, splits } = await loadTrainingData({ data: opts.data, validationSplit: opts.validationSplit, testSplit: 0, seed: opts.seed });
  const session = await openFeatureSession({
    base: { backbone: vgg16, options: { imageSize: opts.imageSize, seed: opts.seed }, weights: opts.weights, seed: opts.seed },
    pooling: 'gap',
    engine: opts.engine,
    useStore: opts.featureCache,
    logger,
  });
  try {
    logger.info(`VGG16 features (global average pooled, 512 per image) via ${session.engine.description}`);
    const onSkip = (s: { path: string; reason: string }) => logger.warn(`skipped ${s.path}: ${s.reason}`);
    const train = await session.extract(splits.train, { label: 'train features', onSkip });
    const val = splits.val.length ? await session.extract(splits.val, { label: 'validation features', onSkip }) : undefined;
    if (train.rows.count === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `no readable training images in ${opts.data}`]);
    const trainM = await toMatrix(train.rows);
    const valM = val && val.rows.count ? await toMatrix(val.rows) : undefined;
    const ds: ClassicDataset = {
      source: 'images',
      task: 'classification',
      features: Array.from({ length: trainM.dim }, (_, i) => `vgg16_gap_${i}`),
      train: toDouble(trainM),
      trainLabels: trainM.labels,
      ...(valM ? { val: toDouble(valM), valLabels: valM.labels } : {}),
      labels: folder.classes,
      imageSpec: session.spec,
      skipped: train.stats.skipped + (val?.stats.skipped ?? 0),
      dropped: 0,
      rows: trainM.count + (valM?.count ?? 0),
    };
    return { ds, backbone: await copyModel(session.base), source: session.weights!, spec: session.spec, engine: session.engine.description };
  } finally {
    await session.dispose();
  }
}


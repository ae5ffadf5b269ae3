// What `mlctl train` (VGG16-style transfer learning) takes and returns; the steps in train/steps/ share these.
import type { HeadPooling } from '../models/head.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { ExtractStats } from '../features/session.js';
import type { Logger } from '../util/log.js';
import type { EpochMetrics } from '../heads/head.js';
import type { Shard } from '../util/shard.js';
import type { LrScheduleKind } from './schedule.js';
import type { LrFindResult } from './lr-find.js';

export interface TrainOptions {
  data: string;
  name: string;
  /** Backbone id (models/backbones/), default vgg16. */
  backbone?: string;
  /** Width multiplier for backbones that have one (MobileNetV2). */
  alpha?: number;
  /** Epochs of the head phase (frozen backbone). */
  epochs: number;
  batchSize: number;
  imageSize: number;
  /** Peak learning rate of the head phase (default DEFAULT_LR, or the LR range test's suggestion with findLr). */
  lr?: number;
  head: HeadPooling;
  dropout: number;
  /** Unfreeze the last K blocks of the backbone after the head has converged (0 = frozen base). */
  fineTune: number;
  /** Epochs of the fine-tune phase (default DEFAULT_FINE_TUNE_EPOCHS). */
  fineTuneEpochs?: number;
  /** Peak learning rate of the fine-tune phase (default lr / 10, or the range test's suggestion with findLr). */
  fineTuneLr?: number;
  /** Schedule of every phase (default: constant for the head, cosine for fine-tuning). */
  lrSchedule?: LrScheduleKind;
  /** Linear warm-up in epochs, every phase (default: head 0; fine-tune min(1, its epochs / 5); one-cycle 25%). */
  warmupEpochs?: number;
  /** Run the LR range test before each phase whose rate is not given, and train with its suggestion. */
  findLr?: boolean;
  weights: string;
  augment: string[];
  patience?: number;
  seed: number;
  resume: boolean;
  validationSplit: number;
  testSplit: number;
  /** Which split values the user gave (the others are defaults): a given one the folder makes moot is warned about. */
  splitGiven?: Record<'seed' | 'validationSplit' | 'testSplit', 'option' | 'model' | 'default'>;
  engine: EngineChoice;
  classWeights: 'auto' | 'none';
  /** Where packages go (default: artifactsRoot()). */
  artifacts?: string;
  /** Cache root for downloads, conversions and the feature store (default: the mlctl cache). */
  cache?: string;
  /** false: keep this run's features out of the shared store (they still stream from a temporary one). */
  featureCache?: boolean;
  logger: Logger;
  /** Checked between batches: true stops with a checkpoint (SIGINT/SIGTERM). */
  shouldStop?: () => boolean;
  /** Only fill the shared feature store (for this shard of the dataset), then stop: no head, no package. */
  extractOnly?: { shard: Shard };
  /** Called after every epoch of both phases, once it is checkpointed (step: its 1-based position over both phases). */
  onEpoch?: (m: EpochMetrics, step: number) => Promise<void> | void;
  /** Write TensorBoard event files into this folder as epochs finish (train/tensorboard.ts). */
  tensorboard?: string;
  /** Overrides for the ImageNet download (tests). */
  weightsUrl?: string;
  weightsMd5?: string;
}

/** A training phase's resolved plan (options, defaults and range-test suggestions applied). */
export interface PhasePlan {
  epochs: number;
  lr: number;
  /** Where lr came from. */
  lrFrom: 'option' | 'default' | 'lr-find';
  schedule: LrScheduleKind;
  /** Warm-up epochs (one-cycle: its rise; 0 = fastai's 25% of the phase). */
  warmupEpochs: number;
}

export interface TrainResult {
  package?: { dir: string; name: string; version: number; manifestSha256: string };
  /** LR range tests run (--find-lr). */
  lrFind?: LrFindResult[];
  interrupted: boolean;
  runDir: string;
  metrics: Record<string, unknown>;
  history: EpochMetrics[];
  backend: string;
  engine: string;
  features: { train?: ExtractStats; val?: ExtractStats; test?: ExtractStats; cacheDir?: string };
  timings: Record<string, number>;
  /** What --extract-only stored. */
  extracted?: ExtractOnlyResult;
}

/** What `train --extract-only` stored (train/steps/extract-only.ts). */
export interface ExtractOnlyResult {
  shard: string;
  /** Images of the whole dataset, and of this shard. */
  datasetImages: number;
  images: number;
  cached: number;
  computed: number;
  skipped: number;
  storeDir: string;
  seconds: number;
}

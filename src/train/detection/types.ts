// What `mlctl train --task detection` takes and returns, and what one epoch records (history, checkpoints, board).
import type { DetectionFormat } from '../../data/detection/types.js';
import type { ExtractStats } from '../../features/session.js';
import type { LrFindResult } from '../lr-find.js';
import type { ExtractOnlyResult, TrainOptions } from '../types.js';

export interface DetectionTrainOptions extends Omit<TrainOptions, 'head' | 'dropout' | 'classWeights'> {
  /** Annotation format (default: recognised from the files). */
  format?: DetectionFormat;
  /** Leave invalid annotations out (each is still reported) instead of refusing the dataset. */
  skipInvalid: boolean;
  /** Channels of the CenterNet neck, upsampling convs and head convs. */
  headChannels: number;
  /** ×2 upsampling steps on the stride-32 backbone map: 0, 1, 2 → output stride 32, 16, 8. */
  upsample: number;
  /** K: most detections decoding keeps per image. */
  maxDetections: number;
  /** Called after every epoch of both phases, once it is checkpointed. */
  onDetectionEpoch?: (m: DetectionEpochMetrics, step: number) => Promise<void> | void;
}

/** One epoch: the CenterNet loss and its parts on train (and validation), and the validation split's COCO AP. */
export interface DetectionEpochMetrics {
  epoch: number;
  phase: 'head' | 'fine-tune';
  loss: number;
  heatmapLoss: number;
  sizeLoss: number;
  offsetLoss: number;
  valLoss?: number;
  valHeatmapLoss?: number;
  valSizeLoss?: number;
  valOffsetLoss?: number;
  /** COCO AP@[.50:.05:.95] of the validation split. */
  valMAP?: number;
  valAP50?: number;
  valAP75?: number;
  lr: number;
  seconds: number;
}

export interface DetectionTrainResult {
  package?: { dir: string; name: string; version: number; manifestSha256: string };
  interrupted: boolean;
  runDir: string;
  metrics: Record<string, unknown>;
  history: DetectionEpochMetrics[];
  backend: string;
  engine: string;
  features: { train?: ExtractStats; val?: ExtractStats; test?: ExtractStats; cacheDir?: string };
  timings: Record<string, number>;
  /** LR range tests run (--find-lr). */
  lrFind?: LrFindResult[];
  /** What --extract-only stored. */
  extracted?: ExtractOnlyResult;
}

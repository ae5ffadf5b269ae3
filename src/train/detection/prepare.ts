// Detection step 1: check the options against the backbone and the head, read the dataset (COCO, YOLO or VOC) and
// its splits (invalid annotations refused unless --skip-invalid), and name the run.
import path from 'node:path';
import { artifactsRoot, assertValidName } from '../../artifacts/package.js';
import { detectionSplits, detectionStats, issuePlace, readDetectionDataset, type DetectionDataset, type DetectionSample, type DetectionSplitName } from '../../data/detection/index.js';
import { unusedSplitOptions, type SplitSource } from '../../data/splits.js';
import { MlctlError } from '../../errors.js';
import { backboneById, DEFAULT_BACKBONE } from '../../models/backbones/index.js';
import type { BackboneDef, BackboneOptions } from '../../models/backbones/types.js';
import { BACKBONE_STRIDE, type CenterNetSpec } from '../../models/detection/centernet.js';
import { runDir } from '../checkpoint.js';
import { planPhases, trainingFingerprint, type PreparedRun } from '../steps/prepare.js';
import { parseDetectionAugment, type DetectionAugmentation } from './augment.js';
import type { DetectionTrainOptions } from './types.js';

export interface DetectionRun {
  opts: DetectionTrainOptions;
  backbone: BackboneDef;
  backboneOptions: BackboneOptions;
  augment: DetectionAugmentation[];
  dataset: DetectionDataset;
  splits: Record<DetectionSplitName, DetectionSample[]>;
  labels: string[];
  head: CenterNetSpec;
  /** The phases' epochs, rates and schedules (classification's planning: steps/prepare.ts planPhases). */
  phases: PreparedRun['phases'];
  /** Where each split came from (recorded in the manifest, as for image folders). */
  splitSources: Record<DetectionSplitName, SplitSource>;
  /** Where packages go, and this run's checkpoint folder. */
  root: string;
  runDir: string;
}

/** Most ×2 upsampling steps: stride 8 (CenterNet itself goes to 4 with three; its heads then cost 4x as much). */
export const MAX_UPSAMPLE = 2;

export async function prepareDetectionRun(opts: DetectionTrainOptions): Promise<DetectionRun> {
  assertValidName(opts.name);
  const backbone = backboneById(opts.backbone ?? DEFAULT_BACKBONE);
  const size = opts.imageSize;
  // The output grid is the backbone's stride-32 map: a size it does not divide would misplace every box.
  if (!Number.isInteger(size) || size < BACKBONE_STRIDE || size % BACKBONE_STRIDE !== 0) {
    const lo = Math.max(BACKBONE_STRIDE, Math.floor(size / BACKBONE_STRIDE) * BACKBONE_STRIDE);
    throw new MlctlError('OPTION_INVALID', [`--image-size ${size} does not fit detection: it must be a multiple of ${BACKBONE_STRIDE} (the backbone's output stride; the box grid is the image size / ${BACKBONE_STRIDE} × 2^--upsample), e.g. ${lo} or ${lo + BACKBONE_STRIDE}`]);
  }
  const backboneOptions: BackboneOptions = { imageSize: size, seed: opts.seed, ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}) };
  backbone.checkOptions(backboneOptions);
  if (!Number.isInteger(opts.upsample) || opts.upsample < 0 || opts.upsample > MAX_UPSAMPLE) throw new MlctlError('OPTION_INVALID', [`--upsample must be 0, 1 or 2 (output stride 32, 16 or 8), not ${opts.upsample}`]);
  let augment: DetectionAugmentation[];
  try {
    augment = parseDetectionAugment(opts.augment);
  } catch (err) {
    throw new MlctlError('OPTION_INVALID', [(err as Error).message]);
  }
  const blocks = backbone.blocks(backboneOptions).length;
  if (opts.fineTune < 0 || opts.fineTune > blocks) throw new MlctlError('OPTION_INVALID', [`--fine-tune must be between 0 and ${blocks} (${backbone.id} blocks to unfreeze)`]);
  const phases = planPhases(opts);

  const dataset = await readDetectionDataset(opts.data, opts.format);
  const splits = detectionSplits(dataset, { validationSplit: opts.validationSplit, testSplit: opts.testSplit, seed: opts.seed, skipInvalid: opts.skipInvalid });
  const { logger } = opts;
  if (dataset.issues.length) {
    const first = dataset.issues[0]!;
    logger.warn(`--skip-invalid: left out ${dataset.issues.length} invalid annotation(s) (first: ${issuePlace(first)}: ${first.message}); mlctl datasets inspect ${dataset.root} lists them all`);
  }
  if (splits.train.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `${dataset.root} has no training pictures left`]);
  const trainStats = detectionStats(splits.train, dataset.labels);
  if (trainStats.boxes === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `its ${splits.train.length} pictures have no boxes: a detector learns from boxed objects`]);
  const count = (s: DetectionSample[]) => `${s.length} (${s.reduce((n, x) => n + x.boxes.length, 0)} boxes)`;
  logger.info(`dataset ${dataset.root} (${dataset.format}): ${dataset.labels.length} classes, train ${count(splits.train)} / val ${count(splits.val)} / test ${count(splits.test)} pictures`);
  if (splits.val.length === 0) logger.warn('no validation pictures: val mAP, --patience and the best-epoch choice need some (set --validation-split above 0)');
  const source = (k: 'val' | 'test'): SplitSource => (dataset.splits[k] ? 'folder' : splits[k].length ? 'carved' : 'none');
  const splitSources = { train: 'folder' as const, val: source('val'), test: source('test') };
  if (opts.splitGiven) for (const w of unusedSplitOptions({ source: splitSources, params: { seed: opts.seed, validationSplit: opts.validationSplit, testSplit: opts.testSplit } }, opts.splitGiven)) logger.warn(w);
  const head: CenterNetSpec = { classes: dataset.labels.length, upsample: opts.upsample, channels: opts.headChannels };
  const root = opts.artifacts ?? artifactsRoot();
  return { opts, backbone, backboneOptions, augment, dataset, splits, labels: dataset.labels, head, phases, splitSources, root, runDir: runDir(root, opts.name) };
}

/** What must match for --resume to continue a run. */
export function detectionFingerprint(run: DetectionRun, weightsSha256: string): Record<string, unknown> {
  const o = run.opts;
  return {
    task: 'detection',
    data: path.resolve(run.dataset.root),
    format: run.dataset.format,
    labels: run.labels,
    backbone: run.backbone.id,
    variant: run.backbone.variant(run.backboneOptions),
    imageSize: o.imageSize,
    head: run.head,
    maxDetections: o.maxDetections,
    ...trainingFingerprint(o, weightsSha256),
    skipInvalid: o.skipInvalid,
    augment: run.augment,
    fineTune: o.fineTune,
  };
}

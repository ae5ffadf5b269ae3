// Train step 1: check the options against the backbone, read the dataset and its splits, and name the run.
import path from 'node:path';
import { artifactsRoot, assertValidName } from '../../artifacts/package.js';
import type { ImageFolder, Sample } from '../../data/imagefolder.js';
import { describeSplits, loadTrainingData, unusedSplitOptions, type SplitPlan } from '../../data/splits.js';
import { MlctlError } from '../../errors.js';
import type { BackboneDef, BackboneOptions } from '../../models/backbones/types.js';
import { backboneById, DEFAULT_BACKBONE } from '../../models/backbones/index.js';
import { parseAugment, type Augmentation } from '../augment.js';
import { runDir } from '../checkpoint.js';
import type { TrainOptions } from '../types.js';

export interface Splits {
  train: Sample[];
  val: Sample[];
  test: Sample[];
}

export interface PreparedRun {
  opts: TrainOptions;
  backbone: BackboneDef;
  backboneOptions: BackboneOptions;
  augment: Augmentation[];
  folder: ImageFolder;
  splits: Splits;
  /** The splits with where each came from (recorded in the manifest, said in the header). */
  plan: SplitPlan;
  classes: string[];
  /** Where packages go, and this run's checkpoint folder. */
  root: string;
  runDir: string;
}

export async function prepareRun(opts: TrainOptions): Promise<PreparedRun> {
  assertValidName(opts.name);
  const backbone = backboneById(opts.backbone ?? DEFAULT_BACKBONE);
  const backboneOptions: BackboneOptions = { imageSize: opts.imageSize, seed: opts.seed, ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}) };
  backbone.checkOptions(backboneOptions);
  let augment: Augmentation[];
  try {
    augment = parseAugment(opts.augment);
  } catch (err) {
    throw new MlctlError('OPTION_INVALID', [(err as Error).message]);
  }
  const blocks = backbone.blocks(backboneOptions).length;
  if (opts.fineTune < 0 || opts.fineTune > blocks) throw new MlctlError('OPTION_INVALID', [`--fine-tune must be between 0 and ${blocks} (${backbone.id} blocks to unfreeze)`]);
  const { folder, plan, splits } = await loadTrainingData(opts);
  if (opts.splitGiven) for (const w of unusedSplitOptions(plan, opts.splitGiven)) opts.logger.warn(w);
  opts.logger.info(`dataset ${folder.root}: ${folder.classes.length} classes, ${describeSplits(plan)}`);
  if (splits.val.length === 0) opts.logger.warn(`no validation images: val accuracy, --patience and the best-epoch choice need some (${plan.layout === 'explicit' ? 'add a val/ folder or ' : ''}set --validation-split above 0)`);
  const root = opts.artifacts ?? artifactsRoot();
  return { opts, backbone, backboneOptions, augment, folder, splits, plan, classes: folder.classes, root, runDir: runDir(root, opts.name) };
}

/** What must match for --resume to continue a run (data, size, head, weights, seed, …). */
export function runFingerprint(run: PreparedRun, weightsSha256: string): Record<string, unknown> {
  const o = run.opts;
  return {
    data: path.resolve(run.folder.root),
    classes: run.classes,
    backbone: run.backbone.id,
    variant: run.backbone.variant(run.backboneOptions),
    imageSize: o.imageSize,
    head: o.head,
    dropout: o.dropout,
    weights: weightsSha256,
    seed: o.seed,
    batchSize: o.batchSize,
    lr: o.lr,
    validationSplit: o.validationSplit,
    testSplit: o.testSplit,
    augment: o.augment,
    classWeights: o.classWeights,
    fineTune: o.fineTune,
  };
}

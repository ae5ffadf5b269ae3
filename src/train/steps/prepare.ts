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
import type { PhasePlan, TrainOptions } from '../types.js';

/** Keras's Adam default, the head phase's rate unless --lr or --find-lr sets it. */
export const DEFAULT_LR = 0.001;
/** Fine-tune epochs unless --fine-tune-epochs: an epoch costs 10–50x a head epoch, and a few suffice from a trained head. */
export const DEFAULT_FINE_TUNE_EPOCHS = 5;

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
  /** The phases' epochs, rates and schedules (find-lr replaces a rate it was asked to find). */
  phases: { head: PhasePlan; fineTune?: PhasePlan };
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
  const phases = planPhases(opts);
  const { folder, plan, splits } = await loadTrainingData(opts);
  if (opts.splitGiven) for (const w of unusedSplitOptions(plan, opts.splitGiven)) opts.logger.warn(w);
  opts.logger.info(`dataset ${folder.root}: ${folder.classes.length} classes, ${describeSplits(plan)}`);
  if (splits.val.length === 0) opts.logger.warn(`no validation images: val accuracy, --patience and the best-epoch choice need some (${plan.layout === 'explicit' ? 'add a val/ folder or ' : ''}set --validation-split above 0)`);
  const root = opts.artifacts ?? artifactsRoot();
  return { opts, backbone, backboneOptions, augment, folder, splits, plan, classes: folder.classes, phases, root, runDir: runDir(root, opts.name) };
}

/**
 * Each phase's epochs, peak rate and schedule from the options and their defaults (fastai's fine_tune shape: the head
 * on the frozen base, then the unfrozen blocks on their own epochs and lower rate). Options that cannot apply are
 * usage errors before any work starts.
 */
export function planPhases(o: Pick<TrainOptions, 'epochs' | 'lr' | 'lrSchedule' | 'warmupEpochs' | 'fineTune' | 'fineTuneEpochs' | 'fineTuneLr'>): PreparedRun['phases'] {
  const ft = o.fineTune > 0;
  for (const [flag, given] of [['--fine-tune-epochs', o.fineTuneEpochs], ['--fine-tune-lr', o.fineTuneLr]] as const) {
    if (given !== undefined && !ft) throw new MlctlError('OPTION_CONFLICT', [`${flag} sets the fine-tune phase, which only runs with --fine-tune K (K > 0 blocks to unfreeze)`]);
  }
  const head: PhasePlan = { epochs: o.epochs, lr: o.lr ?? DEFAULT_LR, lrFrom: o.lr !== undefined ? 'option' : 'default', schedule: o.lrSchedule ?? 'constant', warmupEpochs: o.warmupEpochs ?? 0 };
  let fineTune: PhasePlan | undefined;
  if (ft) {
    const epochs = o.fineTuneEpochs ?? DEFAULT_FINE_TUNE_EPOCHS;
    const schedule = o.lrSchedule ?? 'cosine';
    const warmupEpochs = o.warmupEpochs ?? (schedule === 'one-cycle' ? 0 : Math.min(1, epochs / 5));
    fineTune = { epochs, lr: o.fineTuneLr ?? head.lr / 10, lrFrom: o.fineTuneLr !== undefined ? 'option' : 'default', schedule, warmupEpochs };
  }
  if (o.warmupEpochs !== undefined) {
    for (const [name, p, flag] of [['head', head, '--epochs'], ['fine-tune', fineTune, '--fine-tune-epochs']] as const) {
      if (p && o.warmupEpochs >= p.epochs) throw new MlctlError('OPTION_CONFLICT', [`--warmup-epochs ${o.warmupEpochs} leaves nothing of the ${p.epochs}-epoch ${name} phase (${flag} ${p.epochs}) after the warm-up: use fewer warm-up epochs (fractions are allowed, e.g. 0.5)`]);
    }
  }
  return { head, fineTune };
}

/** The part of the --resume fingerprint every task's run has: the base's weights, seed, batch, rate, schedule, splits. */
export function trainingFingerprint(o: Pick<TrainOptions, 'seed' | 'batchSize' | 'lr' | 'findLr' | 'lrSchedule' | 'warmupEpochs' | 'validationSplit' | 'testSplit'>, weightsSha256: string): Record<string, unknown> {
  return {
    weights: weightsSha256,
    seed: o.seed,
    batchSize: o.batchSize,
    // With --find-lr and no --lr the rate is the range test's, kept in the run config.
    lr: o.lr ?? (o.findLr ? undefined : DEFAULT_LR),
    findLr: o.findLr || undefined,
    lrSchedule: o.lrSchedule,
    warmupEpochs: o.warmupEpochs,
    validationSplit: o.validationSplit,
    testSplit: o.testSplit,
  };
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
    ...trainingFingerprint(o, weightsSha256),
    augment: o.augment,
    classWeights: o.classWeights,
    fineTune: o.fineTune,
  };
}

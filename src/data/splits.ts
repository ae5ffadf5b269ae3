// The one train/validation/test split of an image folder, shared by every command that takes --data (train, tune,
// evaluate, quantize, prune, optimize, datasets inspect): seeded and stratified, carving what the folder lacks.
import { MlctlError } from '../errors.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { countBy, scanImageFolder, type ImageFolder, type Sample, type SplitName } from './imagefolder.js';

export interface SplitParams {
  seed: number;
  /** Fraction of each class held out for validation (carved only where the folder has no val/). */
  validationSplit: number;
  /** Fraction of each class held out for test (carved only where the folder has no test/). */
  testSplit: number;
}

/** Train's defaults, and every other command's when the model recorded none: 42 / 0.2 / 0. */
export const DEFAULT_SPLIT_PARAMS: Readonly<SplitParams> = { seed: 42, validationSplit: 0.2, testSplit: 0 };

const FLAGS: Record<keyof SplitParams, string> = { seed: '--seed', validationSplit: '--validation-split', testSplit: '--test-split' };

/** Where a split's images come from: its own folder (val/, test/), carved out of the class folders (or train/), or nowhere. */
export type SplitSource = 'folder' | 'carved' | 'none';

export interface SplitPlan {
  splits: Record<SplitName, Sample[]>;
  params: SplitParams;
  layout: ImageFolder['layout'];
  source: Record<SplitName, SplitSource>;
}

export interface ResolvedSplitParams {
  params: SplitParams;
  /** Where each value came from: the command line, the model's training record, or the defaults. */
  from: Record<keyof SplitParams, 'option' | 'model' | 'default'>;
}

/**
 * Split parameters: the options given, else what the model recorded at training (its `training` block), else the
 * defaults. Commands that take a model therefore hold out exactly the images its training held out.
 */
export function resolveSplitParams(given: Partial<Record<keyof SplitParams, number | undefined>>, recorded?: Record<string, unknown>): ResolvedSplitParams {
  const params = { ...DEFAULT_SPLIT_PARAMS };
  const from = { seed: 'default', validationSplit: 'default', testSplit: 'default' } as ResolvedSplitParams['from'];
  for (const key of Object.keys(FLAGS) as Array<keyof SplitParams>) {
    const g = given[key];
    const r = recorded?.[key];
    if (g !== undefined) [params[key], from[key]] = [g, 'option'];
    else if (typeof r === 'number' && Number.isFinite(r)) [params[key], from[key]] = [r, 'model'];
  }
  checkSplitParams(params);
  return { params, from };
}

/** Fractions that leave training images: each ≥ 0, together below 1. */
export function checkSplitParams(p: Pick<SplitParams, 'validationSplit' | 'testSplit'>): void {
  const { validationSplit: v, testSplit: t } = p;
  if (!(v >= 0 && t >= 0 && v + t < 1)) {
    throw new MlctlError('DATA_BAD_SPLIT', [`--validation-split (${v}) and --test-split (${t}) must be ≥ 0 and add up to less than 1`]);
  }
}

/**
 * Deterministic stratified split: within each class, files are ordered by path, shuffled with a seed derived
 * from --seed and the class, and cut into test / val / train. The same inputs always give the same split.
 */
export function splitSamples(samples: Sample[], classes: string[], opts: { validationSplit: number; testSplit?: number; seed: number }): Record<SplitName, Sample[]> {
  const { validationSplit: v, testSplit: t = 0, seed } = opts;
  checkSplitParams({ validationSplit: v, testSplit: t });
  const out: Record<SplitName, Sample[]> = { train: [], val: [], test: [] };
  for (let label = 0; label < classes.length; label++) {
    const cut = carve(samples.filter((s) => s.label === label), deriveSeed(seed, classes[label]!), v, t);
    for (const k of ['train', 'val', 'test'] as const) out[k].push(...cut[k]);
  }
  return out;
}

/**
 * The one cut: items ordered by path, shuffled with `seed`, the first round(n·t) held out for test and the next
 * round(n·v) for validation — at least one each when asked for and the group is big enough. Image folders cut each
 * class (stratified); detection sets, whose images hold several classes, cut the whole set.
 */
export function carve<T extends { path: string }>(group: readonly T[], seed: number, v: number, t: number): Record<SplitName, T[]> {
  const items = [...group].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  shuffleInPlace(items, createRng(seed));
  const n = items.length;
  const nt = t > 0 && n >= 3 ? Math.max(1, Math.round(n * t)) : 0;
  const nv = v > 0 && n - nt >= 2 ? Math.max(1, Math.round(n * v)) : 0;
  return { test: items.slice(0, nt), val: items.slice(nt, nt + nv), train: items.slice(nt + nv) };
}

/**
 * The splits of a folder. Flat layout: each class folder is split. Explicit layout: train/, val/ and test/ are used
 * as they are, and a split without its folder is carved out of train/ (Keras validation_split, fastai RandomSplitter):
 * train/ + test/ gets its validation images from train/ at --validation-split.
 */
export function planSplits(folder: ImageFolder, params: SplitParams): SplitPlan {
  const { validationSplit: v, testSplit: t } = params;
  if (folder.layout !== 'explicit') {
    const splits = splitSamples(folder.samples, folder.classes, params);
    const src = (n: number): SplitSource => (n > 0 ? 'carved' : 'none');
    return { splits, params, layout: 'flat', source: { train: 'folder', val: src(splits.val.length), test: src(splits.test.length) } };
  }
  const e = folder.explicit!;
  const train = e.train ?? [];
  const carved = splitSamples(train, folder.classes, { seed: params.seed, validationSplit: e.val ? 0 : v, testSplit: e.test ? 0 : t });
  const splits = { train: carved.train, val: e.val ?? carved.val, test: e.test ?? carved.test };
  const src = (own: Sample[] | undefined, cut: Sample[]): SplitSource => (own ? 'folder' : cut.length > 0 ? 'carved' : 'none');
  return { splits, params, layout: 'explicit', source: { train: e.train ? 'folder' : 'none', val: src(e.val, carved.val), test: src(e.test, carved.test) } };
}

/** Splits for a folder (planSplits without the provenance). */
export function datasetSplits(folder: ImageFolder, params: Pick<SplitParams, 'seed' | 'validationSplit'> & { testSplit?: number }): Record<SplitName, Sample[]> {
  return planSplits(folder, { testSplit: 0, ...params }).splits;
}

const FOLDER: Record<SplitName, string> = { train: 'train/', val: 'val/', test: 'test/' };

/** Where one split's images come from, in words: "test/", "0.2 of each class of train/ (seed 42)", "none". */
export function splitOrigin(plan: SplitPlan, split: SplitName): string {
  const { params, layout, source } = plan;
  const of = layout === 'explicit' ? 'of each class of train/' : 'of each class';
  const s = source[split];
  if (s === 'folder') {
    if (split !== 'train' || layout !== 'explicit') return layout === 'explicit' ? FOLDER[split] : 'the class folders';
    return source.val === 'carved' || source.test === 'carved' ? 'train/ less the images held out from it' : 'train/';
  }
  if (split === 'train') return layout === 'explicit' ? 'none (no train/ folder)' : 'the rest of each class';
  const fraction = split === 'val' ? params.validationSplit : params.testSplit;
  const flag = split === 'val' ? '--validation-split' : '--test-split';
  if (s === 'carved') return `${fraction} ${of} (seed ${params.seed})`;
  return fraction > 0 ? `none (${flag} ${fraction}: too few images per class to carve)` : `none (${flag} 0)`;
}

/**
 * What was actually used, for headers: "57 train / 15 val / 18 test images (train/ + test/; val: 0.2 of each class
 * of train/, seed 42)", or "(each class split: validation 0.2, test 0, seed 42)" for a folder of class folders.
 */
export function describeSplits(plan: SplitPlan): string {
  const { splits, params, source } = plan;
  const counts = `${splits.train.length} train / ${splits.val.length} val / ${splits.test.length} test images`;
  const notes: string[] = [];
  if (plan.layout === 'explicit') {
    notes.push((['train', 'val', 'test'] as const).filter((k) => source[k] === 'folder').map((k) => FOLDER[k]).join(' + '));
    const carved = (['val', 'test'] as const).filter((k) => source[k] === 'carved').map((k) => `${k}: ${k === 'val' ? params.validationSplit : params.testSplit} of each class of train/`);
    if (carved.length) notes.push(`${carved.join(', ')}, seed ${params.seed}`);
  } else {
    notes.push(`each class split: validation ${params.validationSplit}, test ${params.testSplit}, seed ${params.seed}`);
  }
  // A fraction asked for that yielded nothing (classes too small) is said, not left for the counts to reveal.
  for (const k of ['val', 'test'] as const) {
    const fraction = k === 'val' ? params.validationSplit : params.testSplit;
    if (source[k] === 'none' && fraction > 0) notes.push(`no ${k} images: ${splitOrigin(plan, k).replace(/^none \((.*)\)$/, '$1')}`);
  }
  return `${counts} (${notes.join('; ')})`;
}

/** Options that had no effect on this folder (a val/ folder makes --validation-split moot), as warnings. */
export function unusedSplitOptions(plan: Pick<SplitPlan, 'source' | 'params'>, from: ResolvedSplitParams['from']): string[] {
  const out: string[] = [];
  if (plan.source.val === 'folder' && from.validationSplit === 'option') out.push(`--validation-split ${plan.params.validationSplit} is not used: the data has a val/ folder`);
  if (plan.source.test === 'folder' && from.testSplit === 'option') out.push(`--test-split ${plan.params.testSplit} is not used: the data has a test/ folder`);
  return out;
}

/** "--seed 42, --validation-split 0.1 (the model's)": the values a command used, for logs. */
export function describeParams(r: ResolvedSplitParams): string {
  return (Object.keys(FLAGS) as Array<keyof SplitParams>).map((k) => `${FLAGS[k]} ${r.params[k]}${r.from[k] === 'model' ? " (the model's)" : ''}`).join(', ');
}

/** Scan a dataset folder and split it, checking every class has training images; throws clear MlctlErrors. */
export async function loadTrainingData(opts: SplitParams & { data: string }): Promise<{ folder: ImageFolder; plan: SplitPlan; splits: Record<SplitName, Sample[]> }> {
  const folder = await scanImageFolder(opts.data);
  const plan = planSplits(folder, { seed: opts.seed, validationSplit: opts.validationSplit, testSplit: opts.testSplit });
  const { splits } = plan;
  if (splits.train.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `${folder.root} has no training images`]);
  const empty = countBy(splits.train, folder.classes.length).findIndex((c) => c === 0);
  if (empty >= 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', `class ${folder.classes[empty]} has no training images; add images or lower --validation-split/--test-split`]);
  return { folder, plan, splits };
}

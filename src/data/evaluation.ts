// Which images an evaluation sees: the same deterministic split as training (data/splits.ts), and the mapping
// of the dataset's class folders onto a model's labels by name (the model's label order comes from its manifest).
import { MlctlError } from '../errors.js';
import { scanImageFolder, type ImageFolder, type Sample } from './imagefolder.js';
import { describeSplits, planSplits, splitOrigin, type SplitParams, type SplitPlan } from './splits.js';

export { DEFAULT_SPLIT_PARAMS, type SplitParams } from './splits.js';

export const EVAL_SPLITS = ['auto', 'test', 'val', 'train', 'all'] as const;
export type EvalSplit = (typeof EVAL_SPLITS)[number];

export interface EvaluationData {
  root: string;
  layout: ImageFolder['layout'];
  /** The dataset's class folder names; samples' labels index into this. */
  classes: string[];
  /** The split actually used ('auto' resolved). */
  split: Exclude<EvalSplit, 'auto'>;
  params: SplitParams;
  samples: Sample[];
  /** Every split of the folder and where each came from. */
  plan: SplitPlan;
  /** Where the evaluated images come from, in words ("test/", "0.2 of each class of train/ (seed 42)", "all splits"). */
  origin: string;
}

/** Scan `dir` and pick the split. `auto` = test when the data has a test split, else val. */
export async function loadEvaluationData(dir: string, split: EvalSplit, params: SplitParams): Promise<EvaluationData> {
  const folder = await scanImageFolder(dir);
  const plan = planSplits(folder, params);
  const { splits } = plan;
  const resolved: Exclude<EvalSplit, 'auto'> = split === 'auto' ? (splits.test.length > 0 ? 'test' : 'val') : split;
  const samples = resolved === 'all' ? [...splits.train, ...splits.val, ...splits.test] : splits[resolved];
  if (samples.length === 0) {
    const how =
      resolved === 'test'
        ? folder.layout === 'explicit'
          ? `${folder.root} has no test/ folder and ${splitOrigin(plan, 'test')}; use --split val or --split all, or pass the --test-split the model was trained with`
          : `the data has no test split (--test-split is ${params.testSplit}); use --split val or --split all, or pass the --test-split the model was trained with`
        : resolved === 'val'
          ? `${folder.layout === 'explicit' ? `${folder.root} has no val/ folder and the validation split is ` : 'the validation split is '}${splitOrigin(plan, 'val')}; pass a --validation-split > 0 (the one the model was trained with) or use --split all`
          : `no images in the ${resolved} split (${describeSplits(plan)})`;
    throw new MlctlError('DATA_EMPTY_SPLIT', [resolved, how]);
  }
  const origin = resolved === 'all' ? 'all splits' : splitOrigin(plan, resolved);
  return { root: folder.root, layout: folder.layout, classes: folder.classes, split: resolved, params, samples, plan, origin };
}

/**
 * Re-label samples with the model's class indices, matching folder names to manifest labels exactly.
 * Classes the model does not know are an error (their images could never be classified correctly).
 */
export function mapToModelLabels(data: Pick<EvaluationData, 'classes' | 'samples'>, modelLabels: readonly string[]): Sample[] {
  const index = new Map(modelLabels.map((l, i) => [l, i]));
  const present = new Set(data.samples.map((s) => s.label));
  const unknown = data.classes.filter((c, i) => present.has(i) && !index.has(c));
  if (unknown.length > 0) {
    const list = (xs: readonly string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(', ')}, … (${xs.length} in all)` : xs.join(', '));
    throw new MlctlError('DATA_UNKNOWN_LABELS', [list(unknown), list(modelLabels)]);
  }
  const map = data.classes.map((c) => index.get(c) ?? -1);
  return data.samples.map((s) => ({ path: s.path, label: map[s.label]! }));
}

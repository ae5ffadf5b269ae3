// Which images an evaluation sees: the same deterministic split as training (data/imagefolder.ts), and the mapping
// of the dataset's class folders onto a model's labels by name (the model's label order comes from its manifest).
import { MlctlError } from '../errors.js';
import { datasetSplits, scanImageFolder, type ImageFolder, type Sample, type SplitName } from './imagefolder.js';

export const EVAL_SPLITS = ['auto', 'test', 'val', 'train', 'all'] as const;
export type EvalSplit = (typeof EVAL_SPLITS)[number];

/** Train's defaults: evaluating with them holds out exactly the images training held out. */
export const DEFAULT_SPLIT_PARAMS = { seed: 42, validationSplit: 0.2, testSplit: 0 } as const;

export interface SplitParams {
  seed: number;
  validationSplit: number;
  testSplit: number;
}

export interface EvaluationData {
  root: string;
  layout: ImageFolder['layout'];
  /** The dataset's class folder names; samples' labels index into this. */
  classes: string[];
  /** The split actually used ('auto' resolved). */
  split: Exclude<EvalSplit, 'auto'>;
  params: SplitParams;
  samples: Sample[];
}

function describeSizes(s: Record<SplitName, Sample[]>): string {
  return `train ${s.train.length}, val ${s.val.length}, test ${s.test.length}`;
}

/** Scan `dir` and pick the split. `auto` = test when the data has a test split, else val. */
export async function loadEvaluationData(dir: string, split: EvalSplit, params: SplitParams): Promise<EvaluationData> {
  const folder = await scanImageFolder(dir);
  const splits = datasetSplits(folder, params);
  const resolved: Exclude<EvalSplit, 'auto'> = split === 'auto' ? (splits.test.length > 0 ? 'test' : 'val') : split;
  const samples = resolved === 'all' ? [...splits.train, ...splits.val, ...splits.test] : splits[resolved];
  if (samples.length === 0) {
    const how =
      resolved === 'test'
        ? folder.layout === 'explicit'
          ? `${folder.root} has no test/ folder; use --split val or --split all`
          : `the data has no test split (--test-split is ${params.testSplit}); use --split val or --split all, or pass the --test-split the model was trained with`
        : resolved === 'val'
          ? folder.layout === 'explicit'
            ? `${folder.root} has no val/ folder and its train/ folder is too small to split; use --split all`
            : `--validation-split is ${params.validationSplit} (splits: ${describeSizes(splits)}); use --split all or a --validation-split > 0`
          : `no images in the ${resolved} split (splits: ${describeSizes(splits)})`;
    throw new MlctlError('DATA_EMPTY_SPLIT', [resolved, how]);
  }
  return { root: folder.root, layout: folder.layout, classes: folder.classes, split: resolved, params, samples };
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

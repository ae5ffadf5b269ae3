// Batch prediction over files, folders, lists and URLs (images) or CSV files (tabular packages); see run.ts,
// tabular.ts and merge.ts. The CLI (cli/commands/predict.ts) only parses flags and calls these.
import type { LoadedPackage } from '../artifacts/package.js';
import { requireTask } from '../tasks/index.js';
import { checkInputArgs } from './inputs.js';
import { predictImages, type PredictOptions, type PredictResult } from './run.js';
import { predictTabular } from './tabular.js';

export { mergeShards, type MergeResult } from './merge.js';
export { OUTPUT_FORMATS, formatForPath, type OutputFormat } from './rows.js';
export type { PredictOptions, PredictResult } from './run.js';

export async function predict(pkg: LoadedPackage, opts: PredictOptions): Promise<PredictResult> {
  await checkInputArgs(opts.inputs);
  return requireTask(pkg.manifest, 'predict', pkg.dir).input === 'tabular' ? predictTabular(pkg, opts) : predictImages(pkg, opts);
}

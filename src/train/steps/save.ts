// Train step 8: write the package (full model in TF.js layers format + history) atomically; a failed write names
// the folder and, when the disk is full, how to continue.
import type * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import type { ManifestDraft } from '../../artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../../artifacts/package.js';
import { MlctlError } from '../../errors.js';
import type { EpochMetrics } from '../../heads/head.js';
import { historyContext, writeHistoryFiles, type EpochRecord, type HistoryLayout } from '../history.js';
import type { LrFindResult } from '../lr-find.js';
import type { TrainOptions } from '../types.js';
import type { PreparedRun } from './prepare.js';

/** Any task's run (classification's PreparedRun, detection's run): where the package goes and its name. */
type SavableRun = Pick<PreparedRun, 'root'> & { opts: Pick<TrainOptions, 'name'> };

export async function saveTrained<H extends EpochRecord = EpochMetrics>(run: SavableRun, model: tf.LayersModel, draft: ManifestDraft, history: H[], lrFind: readonly LrFindResult[] = [], layout?: HistoryLayout<H>): Promise<LoadedPackage> {
  try {
    return await savePackage({
      name: run.opts.name,
      root: run.root,
      draft,
      write: async (dir) => {
        await writeTfjsModel(dir, model);
        await writeHistoryFiles(dir, history, { ...historyContext(run.opts.name, draft), lrFind }, layout);
      },
    });
  } catch (err) {
    if (err instanceof MlctlError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new MlctlError('PACKAGE_WRITE', [`could not write the model package under ${path.join(run.root, run.opts.name)}: ${(err as Error).message}${code === 'ENOSPC' ? ' (out of disk space: free some space and rerun with --resume)' : ''}`], { cause: err });
  }
}

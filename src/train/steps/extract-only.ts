// `train --extract-only [--shard i/n]`: fill the shared feature store with the base's features of 1/n of the
// dataset (every picture the trainer reads from the store) and stop. n pods of an Indexed Job split a large
// dataset's backbone pass; the store takes concurrent writers, and a later `train` on one machine reads it all.
// Any task's run: a classifier's image folder and a detector's annotated pictures are both paths under a root.
import path from 'node:path';
import type { FeatureSession } from '../../features/session.js';
import { MlctlError } from '../../errors.js';
import { formatShard, inShard, type Shard } from '../../util/shard.js';
import type { ExtractOnlyResult, TrainOptions } from '../types.js';

/** The shard key of an image: its path relative to the dataset root (the same on every pod, wherever mounted). */
export const shardKey = (root: string, file: string) => path.relative(root, file).split(path.sep).join('/');

/** What a run stores: its dataset root and the pictures whose features the trainer reads from the store. */
export interface StoredPictures {
  root: string;
  samples: ReadonlyArray<{ path: string }>;
}

export async function extractOnly(opts: Pick<TrainOptions, 'logger' | 'shouldStop'>, data: StoredPictures, session: FeatureSession, shard: Shard): Promise<ExtractOnlyResult> {
  if (!session.storeDir) throw new MlctlError('OPTION_CONFLICT', ['--extract-only fills the shared feature store, which is off or not writable here: drop --no-feature-cache and point MLCTL_CACHE at a writable (shared) folder']);
  const all = data.samples;
  const mine = all.filter((s) => inShard(shardKey(data.root, s.path), shard)).map((s, i) => ({ path: s.path, label: i }));
  opts.logger.info(`extract only: shard ${formatShard(shard)} = ${mine.length} of ${all.length} images → ${session.storeDir}`);
  const { stats } = await session.extract(mine, { label: `features shard ${formatShard(shard)}`, shouldStop: opts.shouldStop, onSkip: (s) => opts.logger.warn(`skipped ${s.path}: ${s.reason}`) });
  return { shard: formatShard(shard), datasetImages: all.length, images: mine.length, cached: stats.cached, computed: stats.computed, skipped: stats.skipped, storeDir: session.storeDir, seconds: stats.seconds };
}

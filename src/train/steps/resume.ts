// Train step 2: with --resume, the checkpoint to continue and a check that it was made with the same settings;
// without it, a note when a previous run's checkpoint is about to be replaced.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../../errors.js';
import { loadCheckpoint, readRunConfig, type Checkpoint, type CheckpointParams, type RunConfig } from '../checkpoint.js';
import type { TrainOptions } from '../types.js';

/** What the check reads of a run (a classification or a detection run). */
export interface ResumableRun {
  opts: Pick<TrainOptions, 'resume' | 'name' | 'logger'>;
  runDir: string;
}

export async function checkResume<P extends CheckpointParams = Checkpoint['head']['weights'], H = Checkpoint['head']['history'][number]>(run: ResumableRun, config: RunConfig, params: 'dense' | 'named' = 'dense'): Promise<Checkpoint<P, H> | undefined> {
  const { opts, runDir } = run;
  if (!opts.resume) {
    if (await fs.stat(path.join(runDir, 'checkpoint')).then(() => true, () => false)) {
      opts.logger.info(`starting a new run: the previous checkpoint in ${runDir} will be replaced (use --resume to continue it)`);
    }
    return undefined;
  }
  const prev = await readRunConfig(runDir);
  const ckpt = await loadCheckpoint<P, H>(runDir, params);
  if (!prev || !ckpt) throw new MlctlError('RESUME_NO_CHECKPOINT', [`--resume: no checkpoint for "${opts.name}" in ${runDir}; run without --resume to start training`]);
  const keys = new Set([...Object.keys(prev.fingerprint), ...Object.keys(config.fingerprint)]);
  const diff = [...keys].filter((k) => JSON.stringify(prev.fingerprint[k]) !== JSON.stringify(config.fingerprint[k]));
  if (diff.length) throw new MlctlError('RESUME_MISMATCH', [`--resume: the checkpoint in ${runDir} was made with different settings (${diff.join(', ')}); use the same options or start again without --resume`]);
  const epoch = ckpt.phase === 'head' ? ckpt.head.epoch : (ckpt.fineTune?.epoch ?? 0);
  const from = prev.run ? ` (run ${prev.run.id}, started ${prev.run.startedAt} by pid ${prev.run.pid})` : '';
  opts.logger.info(`resuming "${opts.name}"${from} from the ${ckpt.phase} checkpoint after epoch ${epoch} in ${runDir}`);
  // The resumed run keeps its id: checkpoints written from here on say which run they continue.
  if (prev.run) config.run = { ...prev.run, pid: process.pid };
  if (prev.lrFind) config.lrFind = prev.lrFind;
  return ckpt;
}

// Deterministic sharding of work items by key (`--shard i/n`): an item belongs to shard
// uint32be(sha256(key)[0..4]) mod n, so every pod of a Kubernetes Indexed Job picks the same 1/n of a listing
// without coordinating, whatever order it lists the items in.
import { createHash } from 'node:crypto';
import { MlctlError } from '../errors.js';

const invalid = (message: string) => new MlctlError('OPTION_INVALID', [message]);

export interface Shard {
  /** 0-based shard index (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX). */
  index: number;
  /** Number of shards (the Job's completions). */
  count: number;
}

export const WHOLE: Shard = { index: 0, count: 1 };

/** "2/8" → { index: 2, count: 8 }. */
export function parseShard(text: string, flag = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw invalid(`${flag} "${text}" is not i/n: give the 0-based shard index and the shard count, e.g. ${flag} 0/4 (in an Indexed Job: $(JOB_COMPLETION_INDEX)/4)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 100_000) throw invalid(`${flag} ${text}: the shard count must be between 1 and 100000`);
  if (index >= count) throw invalid(`${flag} ${text}: the index is 0-based, so it must be below ${count}`);
  return { index, count };
}

export function formatShard(s: Shard): string {
  return `${s.index}/${s.count}`;
}

/** Which shard of `count` a key belongs to. */
export function shardOf(key: string, count: number): number {
  if (count <= 1) return 0;
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) % count;
}

export function inShard(key: string, shard: Shard): boolean {
  return shard.count <= 1 || shardOf(key, shard.count) === shard.index;
}

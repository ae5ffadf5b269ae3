// `mlctl cache ls|prune`: the option tables for looking at and trimming mlctl's cache (downloaded weights, ONNX
// conversions, feature stores). Light: the runners (cli/run/cache.ts) are imported only when one runs.
import { defineCommand, type ContextOf } from '../spec.js';

const KINDS = ['models', 'onnx', 'features'] as const;

export const cacheLsCommand = defineCommand({
  name: 'ls',
  summary: 'list what the cache holds: kind, name, size, last use, and the total against the size cap',
  options: [{ flags: '--kind <kind>', description: 'only entries of this kind', choices: KINDS }],
  examples: ['mlctl cache ls', 'mlctl cache ls --kind features --json'],
});

export const cachePruneCommand = defineCommand({
  name: 'prune',
  summary: 'remove cache entries: least recently used first down to a size, unused for a while, of a kind, or all',
  options: [
    { flags: '--max-size <size>', description: 'remove least recently used entries until the cache fits, e.g. 5gb (default: the cap, MLCTL_CACHE_MAX_SIZE or 20gb)' },
    { flags: '--older-than <duration>', description: 'remove entries not used for this long, e.g. 30d, 12h' },
    { flags: '--kind <kind>', description: 'only entries of this kind', choices: KINDS },
    { flags: '--all', description: 'remove every entry (of --kind, when given)', type: 'boolean' },
    { flags: '--dry-run', description: 'say what would be removed, remove nothing', type: 'boolean' },
  ],
  examples: ['mlctl cache prune --max-size 5gb', 'mlctl cache prune --older-than 30d', 'mlctl cache prune --kind features --all'],
});

export const cacheCommand = defineCommand({
  name: 'cache',
  summary: 'list and prune the cache (weights, ONNX conversions, feature stores) in $MLCTL_CACHE',
  description:
    'The cache holds downloaded ImageNet weights, ONNX conversions of packages and backbones (each with the sha256 ' +
    'recorded when it was written: bytes that no longer match are rebuilt, never run) and backbone feature stores. ' +
    'It lives in $MLCTL_CACHE, else $XDG_CACHE_HOME/mlctl, else ~/.cache/mlctl, and is kept under a size cap ' +
    '(MLCTL_CACHE_MAX_SIZE, default 20gb) by evicting the least recently used entries.',
  options: [],
  examples: ['mlctl cache ls', 'mlctl cache prune --max-size 5gb'],
});

export type CacheLsContext = ContextOf<typeof cacheLsCommand>;
export type CachePruneContext = ContextOf<typeof cachePruneCommand>;

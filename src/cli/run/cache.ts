// Runs `mlctl cache ls|prune` (loaded on demand) over the one cache (artifacts/cache.ts).
import Table from 'cli-table3';
import { openCache, type CacheEntry } from '../../artifacts/cache.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { CacheLsContext, CachePruneContext } from '../commands/cache.js';
import type { CommandResult } from '../spec.js';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

function ago(d: Date): string {
  const s = Math.max(0, (Date.now() - d.getTime()) / 1000);
  if (s < 120) return `${Math.round(s)}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

const row = (e: CacheEntry) => ({ kind: e.kind, name: e.name, bytes: e.bytes, lastUsed: e.lastUsed.toISOString(), createdAt: e.createdAt, ...(e.sha256 ? { sha256: e.sha256 } : {}), ...(e.meta ? { meta: e.meta } : {}) });

export async function ls({ opts, logger }: CacheLsContext): Promise<CommandResult> {
  const cache = openCache({ logger });
  const entries = (await cache.list()).filter((e) => !opts.kind || e.kind === opts.kind);
  const total = entries.reduce((n, e) => n + e.bytes, 0);
  const table = new Table({ head: ['kind', 'name', 'size', 'last used'], style: { head: [], border: [] } });
  for (const e of [...entries].reverse()) table.push([e.kind, e.name, mb(e.bytes), ago(e.lastUsed)]);
  const summary = `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${mb(total)} of the ${mb(cache.maxBytes)} cap in ${cache.root}`;
  return { result: { root: cache.root, maxBytes: cache.maxBytes, totalBytes: total, entries: entries.map(row) }, text: entries.length ? `${table.toString()}\n${summary}` : summary };
}

export async function prune({ opts, logger }: CachePruneContext): Promise<CommandResult> {
  const cache = openCache({ logger });
  const entries = (await cache.list()).filter((e) => !opts.kind || e.kind === opts.kind);
  const now = Date.now();
  const olderThan = opts.olderThan ? parseDuration(opts.olderThan, '--older-than') : undefined;
  const victims = new Set<CacheEntry>();
  for (const e of entries) {
    if (opts.all || (olderThan !== undefined && now - e.lastUsed.getTime() > olderThan)) victims.add(e);
  }
  // Down to a size: least recently used first (entries come oldest first), counting what the other rules removed.
  const limit = opts.maxSize ? parseSize(opts.maxSize, '--max-size') : opts.all || olderThan !== undefined ? undefined : cache.maxBytes;
  if (limit !== undefined) {
    let total = (await cache.list()).reduce((n, e) => n + e.bytes, 0) - [...victims].reduce((n, e) => n + e.bytes, 0);
    for (const e of entries) {
      if (total <= limit) break;
      if (victims.has(e)) continue;
      victims.add(e);
      total -= e.bytes;
    }
  }
  if (!opts.dryRun) for (const e of victims) await cache.remove(e.kind, e.name);
  const freed = [...victims].reduce((n, e) => n + e.bytes, 0);
  const verb = opts.dryRun ? 'would remove' : 'removed';
  const lines = [...victims].map((e) => `  ${verb} ${e.kind}/${e.name} (${mb(e.bytes)}, last used ${ago(e.lastUsed)})`);
  return {
    result: { root: cache.root, dryRun: opts.dryRun, removed: [...victims].map(row), freedBytes: freed },
    text: [...lines, `${verb} ${victims.size} entr${victims.size === 1 ? 'y' : 'ies'}, ${mb(freed)} from ${cache.root}`].join('\n'),
  };
}

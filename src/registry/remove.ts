// `models rm` and `models gc`: delete versions without breaking what depends on them. A tagged version is only
// removed with --force (its tags go with it, recorded); gc keeps the newest N of each model, every tagged version
// and every version a kept one was derived from (its lineage), across models. Removal happens under the model's
// registry lock, by renaming the folder away first, so a tag can never point at a half-deleted package.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { artifactsRoot, listModelNames, listVersions, modelNotFound } from '../artifacts/package.js';
import { readRegistry, updateRegistry, type RegistryDoc } from '../artifacts/registry-file.js';
import type { Logger } from '../util/log.js';
import { auditChange, refOf } from './audit.js';
import { MlctlError } from '../errors.js';
import { inspectVersion, type PackageEntry } from './inspect.js';
import { existingVersion } from './tags.js';

export interface RemoveOptions {
  root?: string;
  force?: boolean;
  via?: string;
  logger?: Logger;
}

export interface RemoveResult {
  name: string;
  version: number;
  /** Tags that pointed at it and were removed with it (--force). */
  untagged: string[];
  /** Packages whose lineage names it (they stay; `models show` marks the step as removed). */
  dependents: string[];
}

const tagsOf = (doc: RegistryDoc, version: number) => Object.entries(doc.tags).filter(([, r]) => r.version === version).map(([t]) => t).sort();

/** Rename the version folder to a hidden sibling (one atomic step), then delete it. */
async function deleteVersionDir(modelDir: string, version: number): Promise<void> {
  const dir = path.join(modelDir, String(version));
  const trash = path.join(modelDir, `.${version}.removing-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.rename(dir, trash);
  await fs.rm(trash, { recursive: true, force: true });
}

/** Every package under the root whose lineage names `name@version`. */
async function dependentsOf(root: string, name: string, version: number): Promise<string[]> {
  const out: string[] = [];
  for (const model of await listModelNames(root)) {
    for (const v of await listVersions(path.join(root, model))) {
      const e = await inspectVersion(path.join(root, model), v, []);
      if (e.manifest?.lineage.some((l) => l.from?.name === name && l.from.version === version)) out.push(`${model}@${v}`);
    }
  }
  return out;
}

export async function removeVersion(ref: string, opts: RemoveOptions = {}): Promise<RemoveResult> {
  const root = opts.root ?? artifactsRoot();
  const { name, version, modelDir } = await existingVersion(ref, root);
  const dependents = await dependentsOf(root, name, version);
  const { manifestSha256 } = await inspectVersion(modelDir, version, []);
  const untagged = await updateRegistry(modelDir, async (doc) => {
    const tags = tagsOf(doc, version);
    if (tags.length && !opts.force) throw new MlctlError('MODEL_TAGGED', [`${name}@${version}`, tags.join(', ')]);
    await deleteVersionDir(modelDir, version);
    for (const t of tags) delete doc.tags[t];
    return tags;
  });
  await auditChange(root, { command: 'rm', before: refOf({ name, version, manifestSha256 }), details: { ...(untagged.length ? { untagged } : {}), ...(dependents.length ? { dependents } : {}) } }, opts.logger);
  return { name, version, untagged, dependents };
}

export interface GcOptions {
  root?: string;
  /** Newest versions kept per model. */
  keep: number;
  /** Only these models (default: every model). */
  names?: string[];
  dryRun?: boolean;
  via?: string;
  logger?: Logger;
}

export interface GcDecision {
  name: string;
  version: number;
  action: 'keep' | 'remove';
  /** Why kept: newest, tag:<name>, lineage of <name@v>. */
  why: string[];
  status: PackageEntry['status'];
  manifestSha256?: string;
}

/** Which versions gc keeps and why: newest N and tagged ones, then (to a fixed point) everything their lineage names. */
export async function planGc(opts: GcOptions): Promise<GcDecision[]> {
  const root = opts.root ?? artifactsRoot();
  const all = await listModelNames(root);
  for (const n of opts.names ?? []) if (!all.includes(n)) throw await modelNotFound(n, root);
  const targets = new Set(opts.names?.length ? opts.names : all);
  const entries = new Map<string, PackageEntry>();
  const why = new Map<string, string[]>();
  const keep = (key: string, reason: string) => why.set(key, [...(why.get(key) ?? []), reason]);
  for (const name of all) {
    const modelDir = path.join(root, name);
    const doc = await readRegistry(modelDir);
    const versions = await listVersions(modelDir);
    for (const v of versions) {
      const key = `${name}@${v}`;
      entries.set(key, await inspectVersion(modelDir, v, tagsOf(doc, v)));
      if (!targets.has(name)) keep(key, 'not collected');
    }
    if (!targets.has(name)) continue;
    for (const v of versions.slice(-opts.keep)) keep(`${name}@${v}`, 'newest');
    for (const [tag, rec] of Object.entries(doc.tags)) if (versions.includes(rec.version)) keep(`${name}@${rec.version}`, `tag:${tag}`);
  }
  // Lineage of everything kept is kept (manifests carry the whole chain, but follow it anyway to a fixed point).
  const queue = [...why.keys()];
  while (queue.length) {
    const key = queue.pop()!;
    for (const step of entries.get(key)?.manifest?.lineage ?? []) {
      if (!step.from) continue;
      const parent = `${step.from.name}@${step.from.version}`;
      if (!entries.has(parent)) continue;
      const fresh = !why.has(parent);
      if (!why.get(parent)?.some((w) => w.startsWith('lineage'))) keep(parent, `lineage of ${key}`);
      if (fresh) queue.push(parent);
    }
  }
  return [...entries.values()]
    .filter((e) => targets.has(e.name))
    .map((e) => {
      const reasons = why.get(`${e.name}@${e.version}`) ?? [];
      return { name: e.name, version: e.version, action: reasons.length ? 'keep' : 'remove', why: reasons, status: e.status, ...(e.manifestSha256 ? { manifestSha256: e.manifestSha256 } : {}) } as GcDecision;
    });
}

export async function collectGarbage(opts: GcOptions): Promise<{ decisions: GcDecision[]; removed: string[]; dryRun: boolean }> {
  if (!Number.isInteger(opts.keep) || opts.keep < 0) throw new MlctlError('USAGE', ['--keep must be a whole number ≥ 0']);
  const root = opts.root ?? artifactsRoot();
  const decisions = await planGc(opts);
  const removed: string[] = [];
  if (opts.dryRun) return { decisions, removed, dryRun: true };
  for (const d of decisions.filter((x) => x.action === 'remove')) {
    const modelDir = path.join(root, d.name);
    const gone = await updateRegistry(modelDir, async (doc) => {
      // Tagged since the plan was made: leave it.
      if (tagsOf(doc, d.version).length) {
        d.action = 'keep';
        d.why.push('tagged meanwhile');
        return false;
      }
      await deleteVersionDir(modelDir, d.version);
      removed.push(`${d.name}@${d.version}`);
      return true;
    });
    if (gone) await auditChange(root, { command: 'gc', before: refOf({ name: d.name, version: d.version, manifestSha256: d.manifestSha256 }), details: { keep: opts.keep } }, opts.logger);
  }
  return { decisions, removed, dryRun: false };
}

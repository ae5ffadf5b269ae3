// `models tag` / `untag`: move a named pointer (production, staging, …) to a version, recorded with who, when and
// what set it; everything that takes a model then accepts NAME:TAG (artifacts/package.ts resolvePackageDir).
import path from 'node:path';
import { artifactsRoot, listVersions, modelNotFound, parseModelRef } from '../artifacts/package.js';
import { currentActor, TAG_PATTERN, updateRegistry } from '../artifacts/registry-file.js';
import type { Logger } from '../util/log.js';
import { auditChange, refOf } from './audit.js';
import { MlctlError, usageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { inspectVersion } from './inspect.js';

export interface TagOptions {
  root?: string;
  note?: string;
  /** What is acting, e.g. "mlctl 0.1.0 models tag". */
  via?: string;
  /** Tag a rejected (or corrupt) version anyway. */
  force?: boolean;
  /** Warned when the change cannot be recorded in the registry audit log. */
  logger?: Logger;
}

export interface TagResult {
  name: string;
  tag: string;
  version: number;
  /** The version the tag pointed at before (undefined when new). */
  previous?: number;
  setAt: string;
  setBy: string;
}

/** NAME@VERSION as typed, checked to exist (VERSION_NOT_FOUND / MODEL_NOT_FOUND with close matches). */
export async function existingVersion(ref: string, root = artifactsRoot()): Promise<{ name: string; version: number; modelDir: string }> {
  const m = parseModelRef(ref);
  if (!m || m.tag !== undefined || m.version === undefined) throw usageError(`"${ref}" is not NAME@VERSION (e.g. sample@3)`);
  const modelDir = path.join(root, m.name);
  const versions = await listVersions(modelDir);
  if (!versions.length) throw await modelNotFound(m.name, root);
  if (!versions.includes(m.version)) throw new MlctlError('VERSION_NOT_FOUND', [m.name, m.version, versions.join(', ')]);
  return { name: m.name, version: m.version, modelDir };
}

export function checkTagName(tag: string): void {
  if (!TAG_PATTERN.test(tag)) throw usageError(`invalid tag "${tag}": start with a letter, then letters, digits, '.', '_' or '-' (up to 64 characters)`);
}

export async function tagVersion(ref: string, tag: string, opts: TagOptions = {}): Promise<TagResult> {
  checkTagName(tag);
  const { name, version, modelDir } = await existingVersion(ref, opts.root);
  const entry = await inspectVersion(modelDir, version, []);
  if (entry.status !== 'ok' && !opts.force) {
    throw new MlctlError('OPTION_CONFLICT', [`${name}@${version} is ${entry.status}${entry.reason ? ` (${entry.reason})` : ''}: tagging it ${tag} would send traffic to it; pass --force if that is intended`]);
  }
  const at = new Date().toISOString();
  const by = currentActor();
  const root = path.dirname(modelDir);
  const res = await updateRegistry(modelDir, async (doc) => {
    // The version may have been removed while we waited for the lock.
    if (!(await listVersions(modelDir)).includes(version)) throw new MlctlError('VERSION_NOT_FOUND', [name, version, (await listVersions(modelDir)).join(', ')]);
    const previous = doc.tags[tag]?.version;
    doc.tags[tag] = { version, setAt: at, setBy: by, ...(opts.via ? { via: opts.via } : {}), ...(opts.note ? { note: opts.note } : {}) };
    return { name, tag, version, ...(previous !== undefined ? { previous } : {}), setAt: at, setBy: by };
  });
  await auditChange(root, { command: 'tag', package: refOf({ name, version, manifestSha256: entry.manifestSha256 }), details: { tag, ...(res.previous !== undefined ? { previous: res.previous } : {}), ...(opts.note ? { note: opts.note } : {}) } }, opts.logger);
  return res;
}

export interface UntagResult {
  name: string;
  tag: string;
  /** The version the tag pointed at. */
  version: number;
}

/** Remove a tag. `ref` is NAME, NAME:TAG or NAME@VERSION (then the tag must point at that version). */
export async function untag(ref: string, tagArg: string | undefined, opts: TagOptions = {}): Promise<UntagResult> {
  const m = parseModelRef(ref);
  if (!m) throw usageError(`"${ref}" is not a model reference (NAME, NAME@VERSION or NAME:TAG)`);
  const tag = m.tag ?? tagArg;
  if (!tag) throw usageError('name the tag to remove: mlctl models untag NAME TAG (or NAME:TAG)');
  if (m.tag && tagArg && tagArg !== m.tag) throw usageError(`${ref} already names tag ${m.tag}; drop the extra argument ${tagArg}`);
  const root = opts.root ?? artifactsRoot();
  const modelDir = path.join(root, m.name);
  if (!(await listVersions(modelDir)).length) throw await modelNotFound(m.name, root);
  const res = await updateRegistry(modelDir, (doc) => {
    const rec = doc.tags[tag];
    if (!rec) {
      const known = Object.keys(doc.tags).sort();
      throw new MlctlError('TAG_NOT_FOUND', [m.name, tag, `${known.length ? `tags: ${known.join(', ')}` : 'it has no tags'}${didYouMean(tag, known)}`]);
    }
    if (m.version !== undefined && rec.version !== m.version) throw usageError(`tag ${tag} of ${m.name} points at version ${rec.version}, not ${m.version}; nothing was changed`);
    delete doc.tags[tag];
    return { name: m.name, tag, version: rec.version };
  });
  await auditChange(root, { command: 'untag', package: refOf({ name: res.name, version: res.version }), details: { tag, ...(opts.note ? { note: opts.note } : {}) } }, opts.logger);
  return res;
}

// A model's tags, artifacts/<name>/registry.json: production, staging, … with the version each points at and who set
// it, when and with what. Every change happens under a lock file and lands with an atomic rename, so concurrent mlctl
// processes never lose each other's changes and readers never see a half-written file. The history of changes is
// the registry's audit log (audit-log.ts), not this file; this file anchors that log's newest line about the model.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFileLock } from '../util/lock.js';
import { MlctlError } from '../errors.js';
import { writeJsonAtomic } from './atomic.js';

export const REGISTRY_FILE = 'registry.json';
export const REGISTRY_SCHEMA = 1;
/** Tag names: a letter first (so NAME:TAG never reads as a version), then letters, digits, '.', '_' or '-'. */
export const TAG_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

export interface TagRecord {
  version: number;
  setAt: string;
  /** Who set it: MLCTL_ACTOR, else user@host. */
  setBy: string;
  /** What set it, e.g. "mlctl 0.1.0 models tag". */
  via?: string;
  note?: string;
}

/** A line of the registry audit log, by seq and the sha256 of its bytes. */
export interface AuditHead {
  seq: number;
  sha256: string;
}

export interface RegistryDoc {
  schemaVersion: number;
  tags: Record<string, TagRecord>;
  /**
   * The newest audit-log line about this model (audit-log.ts anchors it here on every append): a log deleted,
   * emptied, cut or rewritten with its hashes recomputed no longer holds it, and `models audit --verify` says so.
   */
  auditHead?: AuditHead;
}

export const emptyRegistry = (): RegistryDoc => ({ schemaVersion: REGISTRY_SCHEMA, tags: {} });

/** Who is acting, for the record: MLCTL_ACTOR (e.g. a CI job id) or the OS user at this host. */
export function currentActor(): string {
  if (process.env.MLCTL_ACTOR) return process.env.MLCTL_ACTOR;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the uid is still someone.
    user = `uid ${process.getuid?.() ?? '?'}`;
  }
  return `${user}@${os.hostname()}`;
}

export async function readRegistry(modelDir: string): Promise<RegistryDoc> {
  const file = path.join(modelDir, REGISTRY_FILE);
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return emptyRegistry();
  let doc: Partial<RegistryDoc>;
  try {
    doc = JSON.parse(text) as Partial<RegistryDoc>;
  } catch (err) {
    throw new MlctlError('PACKAGE_INVALID', [file, `it is not valid JSON (${(err as Error).message}); restore it from a backup or delete it (its tags are lost)`]);
  }
  if (!doc || typeof doc.tags !== 'object' || doc.tags === null) throw new MlctlError('PACKAGE_INVALID', [file, 'it has no tags table; restore it from a backup or delete it']);
  const head = doc.auditHead;
  const validHead = head && Number.isInteger(head.seq) && typeof head.sha256 === 'string' ? { auditHead: { seq: head.seq, sha256: head.sha256 } } : {};
  return { schemaVersion: doc.schemaVersion ?? REGISTRY_SCHEMA, tags: doc.tags, ...validHead };
}

/** Read-modify-write under `registry.json.lock` (util/lock.ts). `change` may throw to leave the record untouched. */
export async function updateRegistry<T>(modelDir: string, change: (doc: RegistryDoc) => T | Promise<T>, opts: { waitMs?: number } = {}): Promise<T> {
  const file = path.join(modelDir, REGISTRY_FILE);
  await fs.mkdir(modelDir, { recursive: true });
  const waitMs = opts.waitMs ?? 15_000;
  return withFileLock(
    file,
    async () => {
      const doc = await readRegistry(modelDir);
      const result = await change(doc);
      await writeJsonAtomic(file, doc);
      return result;
    },
    { waitMs, busy: (lock, cause) => new MlctlError('REGISTRY_LOCKED', [path.basename(modelDir), `waited ${waitMs / 1000} s`, lock], { cause }) },
  );
}

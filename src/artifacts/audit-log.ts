// The registry's append-only audit log (<artifacts>/audit.jsonl): one JSON line per package-changing command, each
// carrying the sha256 of the line before it, so an edited, inserted or deleted line breaks the chain for --verify.
// A chain alone cannot show that the log is whole: a deleted, emptied or cut log, or one rewritten with its hashes
// recomputed, is a valid chain too. So each append also anchors its line (seq and sha256) in the model's
// registry.json, outside the log, and --verify holds the log against those anchors (and against --head, a head kept
// anywhere the caller likes).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFileLock } from '../util/lock.js';
import { MlctlError } from '../errors.js';
import { sha256 } from './hash.js';
import { readRegistry, REGISTRY_FILE, updateRegistry, type AuditHead } from './registry-file.js';

export const REGISTRY_AUDIT_FILE = 'audit.jsonl';
/** `prev` of the first line. */
export const GENESIS = '0'.repeat(64);

export interface PackageRef {
  name: string;
  version: number;
  manifestSha256: string;
}

/** What a command reports; time, user, host, sequence number and chain hash are added by appendRegistryAudit. */
export interface RegistryAuditEvent {
  /** train, optimize, quantize, prune, sign, encrypt, decrypt, tag, rm, export … */
  command: string;
  /** The package the command produced or changed (absent for rm and export). */
  package?: PackageRef;
  /** The package it started from. */
  before?: PackageRef;
  /** Command-specific facts (signer key id, export format and directory, tag name …). */
  details?: Record<string, unknown>;
}

export interface RegistryAuditRecord extends RegistryAuditEvent {
  seq: number;
  time: string;
  user: string;
  host: string;
  pid: number;
  /** sha256 of the previous line's bytes (without its newline); 64 zeros for the first line. */
  prev: string;
}

export function registryAuditFile(root: string): string {
  return path.join(root, REGISTRY_AUDIT_FILE);
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // A container user without a passwd entry.
    return process.env.USER ?? process.env.LOGNAME ?? `uid:${process.getuid?.() ?? '?'}`;
  }
}

/** Hold `<file>.lock` while `fn` runs, so two processes never interleave a read-last-line / append pair. */
function withLock<T>(file: string, fn: () => Promise<T>, waitMs = 15_000): Promise<T> {
  return withFileLock(file, fn, { waitMs, busy: (lock) => new MlctlError('REGISTRY_AUDIT', [file, `it is locked (${lock}) for more than ${waitMs / 1000}s; if no mlctl is running, remove ${lock}`]) });
}

/**
 * The file's tail as the append needs it: the last line (the bytes after the last line-ending newline, hashed into
 * the next prev), whether the file ends with a newline, and the last seq any readable line carries (a torn line
 * left by a crash has none). Reads only as much of the end of the file as it takes.
 */
async function tail(file: string): Promise<{ line: string | undefined; endsWithNewline: boolean; seq: number }> {
  const h = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!h) return { line: undefined, endsWithNewline: true, seq: 0 };
  try {
    const size = (await h.stat()).size;
    if (size === 0) return { line: undefined, endsWithNewline: true, seq: 0 };
    for (let span = 64 * 1024; ; span *= 4) {
      const n = Math.min(size, span);
      const buf = Buffer.alloc(n);
      await h.read(buf, 0, n, size - n);
      const endsWithNewline = buf[n - 1] === 0x0a;
      const text = (endsWithNewline ? buf.subarray(0, n - 1) : buf).toString('utf8');
      const lines = text.split('\n');
      // The first piece may be the end of a line cut by the read window: usable only when the window is the file.
      const whole = n === size ? lines : lines.slice(1);
      if (!whole.length) continue;
      const seq = whole.map(seqOf).findLast((s) => s > 0);
      if (seq !== undefined || n === size) return { line: whole[whole.length - 1], endsWithNewline, seq: seq ?? 0 };
    }
  } finally {
    await h.close();
  }
}

function seqOf(line: string): number {
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof seq === 'number' && Number.isInteger(seq) && seq > 0 ? seq : 0;
  } catch {
    return 0;
  }
}

/**
 * Append one event to `<root>/audit.jsonl` under the lock: seq = last seq + 1, prev = sha256(last line), one
 * write(2) with O_APPEND, fsync'd before the lock is released. Returns the record written.
 */
export async function appendRegistryAudit(root: string, event: RegistryAuditEvent, now = new Date()): Promise<RegistryAuditRecord> {
  const file = registryAuditFile(root);
  await fs.mkdir(root, { recursive: true });
  return withLock(file, async () => {
    const last = await tail(file);
    const record: RegistryAuditRecord = {
      seq: last.seq + 1,
      time: now.toISOString(),
      command: event.command,
      user: currentUser(),
      host: os.hostname(),
      pid: process.pid,
      ...(event.package ? { package: event.package } : {}),
      ...(event.before ? { before: event.before } : {}),
      ...(event.details ? { details: event.details } : {}),
      prev: last.line === undefined ? GENESIS : sha256(last.line),
    };
    // A torn last line (crash mid-write) stays as evidence; the new line starts on a line of its own.
    const text = `${last.endsWithNewline ? '' : '\n'}${JSON.stringify(record)}\n`;
    const h = await fs.open(file, 'a', 0o644);
    try {
      await h.write(text);
      await h.sync();
    } finally {
      await h.close();
    }
    return record;
  }).then(async (record) => {
    await anchorHead(root, record).catch(() => {}); // the next append anchors again; --verify notes an unanchored tail
    return record;
  });
}

/** The model an audit record is about (the package it made or changed, else the one it started from). */
const modelOf = (r: RegistryAuditEvent) => r.package?.name ?? r.before?.name;

/** Anchor `record`'s line in its model's registry.json (when that model folder exists), never moving an anchor back. */
async function anchorHead(root: string, record: RegistryAuditRecord): Promise<void> {
  const name = modelOf(record);
  if (!name || name.includes('/') || name.includes('..')) return;
  const modelDir = path.join(root, name);
  if (!(await fs.stat(modelDir).then((s) => s.isDirectory(), () => false))) return;
  const head: AuditHead = { seq: record.seq, sha256: sha256(JSON.stringify(record)) };
  await updateRegistry(modelDir, (doc) => {
    if (!doc.auditHead || doc.auditHead.seq < head.seq) doc.auditHead = head;
  });
}

/** Every anchor under `root`: model folders whose registry.json records an audit head. */
export async function auditAnchors(root: string): Promise<{ anchors: Array<AuditHead & { model: string }>; unreadable: string[] }> {
  const anchors: Array<AuditHead & { model: string }> = [];
  const unreadable: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const modelDir = path.join(root, e.name);
    if (!(await fs.stat(path.join(modelDir, REGISTRY_FILE)).then(() => true, () => false))) continue;
    const doc = await readRegistry(modelDir).catch(() => undefined);
    if (!doc) unreadable.push(e.name);
    else if (doc.auditHead) anchors.push({ model: e.name, ...doc.auditHead });
  }
  return { anchors: anchors.sort((a, b) => a.seq - b.seq || a.model.localeCompare(b.model)), unreadable };
}

export interface AuditProblem {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
}

export interface AuditVerification {
  file: string;
  ok: boolean;
  records: RegistryAuditRecord[];
  problems: AuditProblem[];
  /** The last line's seq and sha256: record them elsewhere to detect a later truncation (--head). */
  head?: { seq: number; sha256: string };
  /** The models' registry.json anchors held against the log: how many, and the newest seq they cover. */
  anchors: { models: number; upTo: number };
}

const REQUIRED: Array<[keyof RegistryAuditRecord, string]> = [
  ['seq', 'number'],
  ['time', 'string'],
  ['command', 'string'],
  ['user', 'string'],
  ['host', 'string'],
  ['prev', 'string'],
];

/**
 * Read and check the whole chain: every line parses, seq counts up from 1, and each prev is the sha256 of the line
 * before. `head` ("SEQ:SHA256", from an earlier --verify) must still be in the file: that catches lines cut off the end.
 */
export async function verifyRegistryAudit(root: string, opts: { head?: string } = {}): Promise<AuditVerification> {
  const file = registryAuditFile(root);
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new MlctlError('REGISTRY_AUDIT', [file, `cannot read it (${err.code ?? err.message})`]);
  });
  const problems: AuditProblem[] = [];
  const records: RegistryAuditRecord[] = [];
  const { anchors, unreadable } = await auditAnchors(root);
  for (const model of unreadable) problems.push({ line: 0, reason: `${model}/${REGISTRY_FILE} cannot be read, so the log line it anchors cannot be checked` });
  const anchorInfo = { models: anchors.length, upTo: Math.max(0, ...anchors.map((a) => a.seq)) };
  if (text === undefined) {
    if (opts.head) problems.push({ line: 0, reason: `the log does not exist, but --head ${opts.head} says it had lines` });
    if (anchors.length) problems.push({ line: 0, reason: `the log does not exist, but ${anchors.length} model registry file(s) anchor lines up to seq ${anchorInfo.upTo} (${anchors.map((a) => a.model).join(', ')}): it was deleted` });
    return { file, ok: problems.length === 0, records, problems, anchors: anchorInfo };
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else problems.push({ line: lines.length, reason: 'the last line has no newline (a torn write, or the file was cut)' });
  let prevLine: string | undefined;
  let prevSeq = 0;
  const hashes = new Map<number, string>();
  lines.forEach((line, i) => {
    const n = i + 1;
    let rec: RegistryAuditRecord | undefined;
    try {
      rec = JSON.parse(line) as RegistryAuditRecord;
    } catch {
      problems.push({ line: n, reason: 'not valid JSON' });
    }
    if (rec) {
      const missing = REQUIRED.filter(([k, t]) => typeof rec![k] !== t).map(([k]) => k);
      if (missing.length) problems.push({ line: n, reason: `missing ${missing.join(', ')}` });
      const want = prevLine === undefined ? GENESIS : sha256(prevLine);
      if (rec.prev !== want) problems.push({ line: n, reason: `prev is ${String(rec.prev).slice(0, 12)}…, but the line before hashes to ${want.slice(0, 12)}… (a line before it was edited, inserted or deleted)` });
      if (rec.seq !== prevSeq + 1) problems.push({ line: n, reason: `seq ${rec.seq} follows seq ${prevSeq} (lines were deleted or reordered)` });
      prevSeq = typeof rec.seq === 'number' ? rec.seq : prevSeq + 1;
      hashes.set(prevSeq, sha256(line));
      records.push(rec);
    }
    prevLine = line;
  });
  if (opts.head) {
    const m = /^(\d+):([0-9a-f]{64})$/.exec(opts.head);
    if (!m) throw new MlctlError('OPTION_INVALID', [`--head ${opts.head} must be SEQ:SHA256 as printed by \`mlctl models audit --verify\``]);
    const got = hashes.get(Number(m[1]));
    if (got === undefined) problems.push({ line: 0, reason: `line seq ${m[1]} (the pinned head) is gone: the log was cut after it was pinned` });
    else if (got !== m[2]) problems.push({ line: 0, reason: `line seq ${m[1]} hashes to ${got.slice(0, 12)}…, not the pinned ${m[2]!.slice(0, 12)}…` });
  }
  // The anchors were written outside the log: each must still be there, byte for byte.
  for (const a of anchors) {
    const got = hashes.get(a.seq);
    if (got === undefined) problems.push({ line: 0, reason: `${a.model}/${REGISTRY_FILE} anchors line seq ${a.seq}, which the log does not have (${lines.length ? `it ends at seq ${prevSeq}` : 'it is empty'}): it was emptied, cut or replaced` });
    else if (got !== a.sha256) problems.push({ line: 0, reason: `${a.model}/${REGISTRY_FILE} anchors line seq ${a.seq} as ${a.sha256.slice(0, 12)}…, but it now hashes to ${got.slice(0, 12)}…: the log was rewritten (hashes recomputed)` });
  }
  const head = prevLine !== undefined ? { seq: prevSeq, sha256: sha256(prevLine) } : undefined;
  return { file, ok: problems.length === 0, records, problems, ...(head ? { head } : {}), anchors: anchorInfo };
}

export interface PackageDrift {
  name: string;
  version: number;
  /** changed: mlctl.json differs from what the log last recorded; unlogged: on disk, never logged. */
  kind: 'changed' | 'unlogged';
  detail: string;
}

/**
 * Hold the packages on disk against the log: a version whose mlctl.json no longer hashes to the sha256 the log
 * last recorded for it was changed outside mlctl; one the log never mentions was written outside mlctl (or before
 * the log existed).
 */
export async function packageDrift(root: string, records: RegistryAuditRecord[]): Promise<PackageDrift[]> {
  const logged = new Map<string, string>();
  for (const r of records) if (r.package) logged.set(`${r.package.name}@${r.package.version}`, r.package.manifestSha256);
  const out: PackageDrift[] = [];
  const models = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  for (const m of models.filter((e) => e.isDirectory() && !e.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))) {
    const versions = (await fs.readdir(path.join(root, m.name)).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).map(Number).sort((a, b) => a - b);
    for (const v of versions) {
      const text = await fs.readFile(path.join(root, m.name, String(v), 'mlctl.json')).catch(() => undefined);
      if (!text) continue;
      const want = logged.get(`${m.name}@${v}`);
      const actual = sha256(text);
      if (want === undefined) out.push({ name: m.name, version: v, kind: 'unlogged', detail: 'not in the audit log (written outside mlctl, or before the log existed)' });
      else if (want !== actual) out.push({ name: m.name, version: v, kind: 'changed', detail: `mlctl.json has sha256 ${actual.slice(0, 12)}…, the log recorded ${want.slice(0, 12)}…` });
    }
  }
  return out;
}

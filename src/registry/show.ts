// `models show NAME[@V|:TAG]`: a package's summary, its lineage chain (train → prune → quantize → … → exports)
// with each step's parameters and the metric and size change it made, and every file re-hashed.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256, sha256File } from '../artifacts/hash.js';
import { MANIFEST_FILE, type LineageEntry, type Manifest } from '../artifacts/manifest.js';
import { artifactsRoot, resolvePackageDir } from '../artifacts/package.js';
import { verifyRegistryAudit, type RegistryAuditRecord } from '../artifacts/audit-log.js';
import { readRegistry } from '../artifacts/registry-file.js';
import { packageSize } from '../artifacts/size.js';
import { inspectVersion, tagsByVersion, type PackageEntry } from './inspect.js';
import { comparableMetric, headlineMetric, type MetricSplit } from './metrics.js';

export interface LineageStep {
  op: string;
  at: string;
  params?: Record<string, unknown>;
  /** The package the step started from (name@version). */
  from?: string;
  /** The package it produced (name@version), or the export's output folder. */
  produced: string;
  /** False when the produced package was removed (or replaced by another with the same number). */
  present: boolean;
  /** The produced package's headline accuracy and its split. */
  accuracy?: number;
  accuracySplit?: MetricSplit;
  /** What serving loads from the produced package (artifacts/size.ts), and its format. */
  bytes?: number;
  servedFormat?: string;
  /** Change from the previous step's package: accuracy on a split both measured (named), served size. */
  delta?: { accuracy?: number; accuracySplit?: MetricSplit; bytes?: number };
}

export interface FileCheck {
  file: string;
  bytes: number;
  sha256: string;
  ok: boolean;
  problem?: string;
}

export interface ShowResult {
  package: Omit<PackageEntry, 'manifest'>;
  labels: string[];
  input?: Manifest['input'];
  output?: Manifest['output'];
  architecture: Manifest['architecture'];
  formats: Manifest['formats'];
  metrics?: Manifest['metrics'];
  training?: Manifest['training'];
  lineage: LineageStep[];
  files: FileCheck[];
  verified: boolean;
}

async function checkFiles(dir: string, m: Manifest): Promise<FileCheck[]> {
  const out: FileCheck[] = [];
  for (const [file, e] of Object.entries(m.files)) {
    const full = path.join(dir, file);
    const stat = await fs.stat(full).catch(() => undefined);
    let problem: string | undefined;
    if (!stat) problem = 'missing';
    else if (stat.size !== e.bytes) problem = `${stat.size} bytes, the manifest says ${e.bytes}`;
    else {
      const actual = await sha256File(full);
      if (actual !== e.sha256) problem = `sha256 ${actual.slice(0, 12)}…, the manifest says ${e.sha256.slice(0, 12)}…`;
    }
    out.push({ file, bytes: e.bytes, sha256: e.sha256, ok: !problem, ...(problem ? { problem } : {}) });
  }
  return out;
}

/** A package's manifest if the folder still holds the one the lineage recorded (same mlctl.json sha256). */
async function recorded(root: string, ref: NonNullable<LineageEntry['from']>): Promise<Manifest | undefined> {
  const text = await fs.readFile(path.join(root, ref.name, String(ref.version), MANIFEST_FILE), 'utf8').catch(() => undefined);
  if (text === undefined || sha256(text) !== ref.manifestSha256) return undefined;
  return JSON.parse(text) as Manifest;
}

/** The chain of steps that made `m` (in `dir`), then its recorded exports. */
export async function lineageChain(root: string, m: Manifest, exports: LineageStep[] = [], dir = path.join(root, m.name, String(m.version))): Promise<LineageStep[]> {
  const steps: LineageStep[] = [];
  let prev: { manifest: Manifest; bytes: number } | undefined;
  for (const [i, entry] of m.lineage.entries()) {
    const next = m.lineage[i + 1];
    // Step i produced the package step i+1 started from; the last step produced this one.
    const producedRef = next?.from;
    const produced = producedRef ? await recorded(root, producedRef) : m;
    const producedDir = producedRef ? path.join(root, producedRef.name, String(producedRef.version)) : dir;
    const size = produced ? await packageSize(producedDir, produced) : undefined;
    const headline = produced ? headlineMetric(produced) : undefined;
    // Accuracy changes only between figures of one split (a test score against a validation score says nothing).
    const same = prev && produced ? comparableMetric(prev.manifest, produced) : undefined;
    const delta = prev && size ? { ...(same ? { accuracy: same.b - same.a, accuracySplit: same.split } : {}), bytes: size.served.bytes - prev.bytes } : undefined;
    steps.push({
      op: entry.op,
      at: entry.at,
      ...(entry.params ? { params: entry.params } : {}),
      ...(entry.from ? { from: `${entry.from.name}@${entry.from.version}` } : {}),
      produced: producedRef ? `${producedRef.name}@${producedRef.version}` : `${m.name}@${m.version}`,
      present: Boolean(produced),
      ...(headline?.metric === 'accuracy' ? { accuracy: headline.value, ...(headline.split ? { accuracySplit: headline.split } : {}) } : {}),
      ...(size ? { bytes: size.served.bytes, servedFormat: size.served.format } : {}),
      ...(delta ? { delta } : {}),
    });
    prev = produced && size ? { manifest: produced, bytes: size.served.bytes } : undefined;
  }
  return [...steps, ...exports];
}

export async function showPackage(ref: string, opts: { root?: string } = {}): Promise<ShowResult> {
  const root = opts.root ?? artifactsRoot();
  const dir = await resolvePackageDir(ref);
  const modelDir = path.dirname(dir);
  const version = Number(path.basename(dir));
  const doc = await readRegistry(modelDir);
  const entry = await inspectVersion(modelDir, version, tagsByVersion(doc).get(version) ?? []);
  const m = entry.manifest;
  if (!m) {
    const { manifest: _none, ...pkg } = entry;
    return { package: pkg, labels: [], architecture: {}, formats: {}, lineage: [], files: [], verified: false };
  }
  // Exports of this exact package (name, version and mlctl.json sha256), from the registry's audit log.
  const { records } = await verifyRegistryAudit(path.dirname(modelDir)).catch(() => ({ records: [] as RegistryAuditRecord[] }));
  const exports: LineageStep[] = records
    .filter((r) => r.command === 'export' && r.before?.name === m.name && r.before.version === m.version && r.before.manifestSha256 === entry.manifestSha256)
    .map((r) => ({ op: `export:${String(r.details?.format ?? '?')}`, at: r.time, params: r.details ?? {}, from: `${m.name}@${m.version}`, produced: String(r.details?.out ?? '?'), present: true }));
  const files = await checkFiles(dir, m);
  const verified = files.every((f) => f.ok);
  const { manifest: _m, ...pkg } = entry;
  if (!verified) Object.assign(pkg, { status: 'corrupt', reason: files.filter((f) => !f.ok).map((f) => `${f.file}: ${f.problem}`).join('; ') });
  return {
    package: pkg,
    labels: m.labels,
    input: m.input,
    output: m.output,
    architecture: m.architecture,
    formats: m.formats,
    ...(m.metrics ? { metrics: m.metrics } : {}),
    ...(m.training ? { training: m.training } : {}),
    lineage: await lineageChain(root, m, exports, dir),
    files,
    verified,
  };
}

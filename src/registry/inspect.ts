// One package version as the registry sees it: its manifest read without trusting it, a status (ok, rejected,
// corrupt with the reason) and the headline facts `models ls` shows. A quick check compares file sizes; a full one
// re-hashes every file (verifyPackage).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../artifacts/hash.js';
import { MANIFEST_FILE, validateManifest, type Manifest } from '../artifacts/manifest.js';
import { artifactsRoot, listVersions, modelNotFound, listModelNames, verifyPackage } from '../artifacts/package.js';
import { readRegistry, type RegistryDoc } from '../artifacts/registry-file.js';
import { packageSize, totalBytes } from '../artifacts/size.js';
import { headlineMetric, type MetricSplit } from './metrics.js';

export type PackageStatus = 'ok' | 'rejected' | 'corrupt';

export interface PackageEntry {
  name: string;
  version: number;
  dir: string;
  status: PackageStatus;
  /** Why it is corrupt or rejected. */
  reason?: string;
  task?: string;
  backbone?: string;
  /** Every file on disk (artifacts/size.ts's total). */
  bytes?: number;
  /** What serving loads: the served format's files (artifacts/size.ts's one definition). */
  servedBytes?: number;
  servedFormat?: string;
  /** The headline accuracy and the split it was measured on (test, else validation, else train). */
  accuracy?: number;
  accuracySplit?: MetricSplit;
  /** The figure a listing shows: that accuracy, or R² for regression packages, with its split. */
  headline?: { metric: string; split?: MetricSplit; value: number };
  createdAt?: string;
  tags: string[];
  /** The package it was derived from (last lineage step), as name@version. */
  parent?: string;
  /** The step that made it: train, prune, quantize, tune, … */
  op?: string;
  manifestSha256?: string;
  manifest?: Manifest;
}

/** The accuracy a package reports: test split when it has one, else validation, else training (registry/metrics.ts names the split). */
export function headlineAccuracy(m: Manifest): number | undefined {
  const h = headlineMetric(m);
  return h?.metric === 'accuracy' ? h.value : undefined;
}

export function backboneOf(m: Manifest): string | undefined {
  const a = m.architecture as Record<string, unknown>;
  const feats = a.features as { kind?: string } | undefined;
  if (typeof a.backbone === 'string') return a.backbone;
  if (feats?.kind === 'vgg16') return 'vgg16';
  if (typeof a.family === 'string') return `${a.family}${typeof a.model === 'string' ? `:${a.model}` : ''}`;
  return typeof a.type === 'string' ? a.type : undefined;
}

/** Every file on disk (artifacts/size.ts). */
export const packageBytes = (m: Manifest) => totalBytes(m);

/** Tags by version, from a registry record. */
export function tagsByVersion(doc: RegistryDoc): Map<number, string[]> {
  const map = new Map<number, string[]>();
  for (const [tag, rec] of Object.entries(doc.tags).sort(([a], [b]) => (a < b ? -1 : 1))) map.set(rec.version, [...(map.get(rec.version) ?? []), tag]);
  return map;
}

/** Quick structural check: every listed file exists with its recorded size (no hashing). */
async function quickCheck(dir: string, m: Manifest): Promise<string | undefined> {
  for (const [rel, entry] of Object.entries(m.files)) {
    const stat = await fs.stat(path.join(dir, rel)).catch(() => undefined);
    if (!stat) return `${rel} is missing`;
    if (stat.size !== entry.bytes) return `${rel} has ${stat.size} bytes, the manifest says ${entry.bytes}`;
  }
  return undefined;
}

export async function inspectVersion(modelDir: string, version: number, tags: string[], opts: { verify?: boolean } = {}): Promise<PackageEntry> {
  const name = path.basename(modelDir);
  const dir = path.join(modelDir, String(version));
  const base = { name, version, dir, tags };
  const text = await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return { ...base, status: 'corrupt', reason: `${MANIFEST_FILE} is missing` };
  let manifest: Manifest;
  try {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${MANIFEST_FILE} is not valid JSON (${(err as Error).message})`);
    }
    manifest = validateManifest(parsed, dir);
  } catch (err) {
    return { ...base, status: 'corrupt', reason: (err as Error).message.replace(/^model package \S+ is invalid: /, '') };
  }
  const last = manifest.lineage[manifest.lineage.length - 1];
  const size = await packageSize(dir, manifest);
  const headline = headlineMetric(manifest);
  const facts = {
    ...base,
    task: manifest.task,
    backbone: backboneOf(manifest),
    bytes: size.total,
    servedBytes: size.served.bytes,
    servedFormat: size.served.format,
    ...(headline?.metric === 'accuracy' ? { accuracy: headline.value, accuracySplit: headline.split } : {}),
    ...(headline ? { headline: { metric: headline.metric, ...(headline.split ? { split: headline.split } : {}), value: headline.value } } : {}),
    createdAt: manifest.createdAt,
    ...(last?.from ? { parent: `${last.from.name}@${last.from.version}` } : {}),
    ...(last ? { op: last.op } : {}),
    manifestSha256: sha256(text),
    manifest,
  };
  if (manifest.name !== name || manifest.version !== version) return { ...facts, status: 'corrupt', reason: `its manifest says ${manifest.name} v${manifest.version}` };
  const problem = opts.verify
    ? await verifyPackage(dir, manifest).then(() => undefined, (err: Error) => err.message.replace(/^model package \S+ failed its integrity check: /, '').replace(/ \(the file was changed.*$/, ''))
    : await quickCheck(dir, manifest);
  if (problem) return { ...facts, status: 'corrupt', reason: problem };
  if (manifest.status === 'rejected') return { ...facts, status: 'rejected', ...(manifest.statusReason ? { reason: manifest.statusReason } : {}) };
  return { ...facts, status: 'ok' };
}

export interface ListOptions {
  root?: string;
  /** Only this model (MODEL_NOT_FOUND with close matches when it does not exist). */
  name?: string;
  /** Re-hash every file instead of comparing sizes. */
  verify?: boolean;
}

export async function listPackages(opts: ListOptions = {}): Promise<{ root: string; packages: PackageEntry[] }> {
  const root = opts.root ?? artifactsRoot();
  let names: string[];
  if (opts.name !== undefined) {
    if (!(await listVersions(path.join(root, opts.name))).length) throw await modelNotFound(opts.name, root);
    names = [opts.name];
  } else names = await listModelNames(root);
  const packages: PackageEntry[] = [];
  for (const name of names) {
    const modelDir = path.join(root, name);
    const tags = tagsByVersion(await readRegistry(modelDir));
    for (const v of await listVersions(modelDir)) packages.push(await inspectVersion(modelDir, v, tags.get(v) ?? [], opts));
  }
  return { root, packages };
}

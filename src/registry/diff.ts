// `models diff A B`: what changed between two package versions — parameters (architecture, training, input,
// output, formats), metrics named with their split and their deltas, size (served and on disk), labels (added,
// removed, reordered), lineage steps and files.
import { loadPackage } from '../artifacts/package.js';
import type { Manifest } from '../artifacts/manifest.js';
import { packageSize, type PackageSize } from '../artifacts/size.js';
import { metricLabel, namedMetrics, type MetricSplit } from './metrics.js';

export interface Change {
  /** Dotted path, e.g. "training.epochs", "metrics.valAccuracy". */
  key: string;
  a?: unknown;
  b?: unknown;
  /** b - a for numbers. */
  delta?: number;
}

/** One metric of either package, named with its split ("accuracy (val)"); delta when both measured it. */
export interface MetricChange extends Change {
  a?: number;
  b?: number;
  metric: string;
  split?: MetricSplit;
  label: string;
}

export interface DiffResult {
  a: { name: string; version: number; manifestSha256: string };
  b: { name: string; version: number; manifestSha256: string };
  identical: boolean;
  parameters: Change[];
  metrics: MetricChange[];
  /** What serving loads (a, b, delta, and each one's format), and everything on disk. */
  size: { a: number; b: number; delta: number; format: { a: string; b: string }; total: { a: number; b: number; delta: number } };
  labels: { added: string[]; removed: string[]; reordered: boolean };
  lineage: { a: string[]; b: string[] };
  files: { added: string[]; removed: string[]; changed: string[] };
}

/** Leaves of a JSON value as dotted paths; arrays of scalars stay one value (compared whole). */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value) && value.some((v) => v && typeof v === 'object')) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else out.set(prefix, value);
  return out;
}

function changes(a: unknown, b: unknown, prefix: string): Change[] {
  const fa = flatten(a, prefix, new Map());
  const fb = flatten(b, prefix, new Map());
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  const out: Change[] = [];
  for (const key of keys) {
    const va = fa.get(key), vb = fb.get(key);
    if (JSON.stringify(va) === JSON.stringify(vb)) continue;
    out.push({ key, ...(va !== undefined ? { a: va } : {}), ...(vb !== undefined ? { b: vb } : {}), ...(typeof va === 'number' && typeof vb === 'number' ? { delta: vb - va } : {}) });
  }
  return out;
}

const opsOf = (m: Manifest) => m.lineage.map((l) => (l.from ? `${l.op} (from ${l.from.name}@${l.from.version})` : l.op));

/**
 * Every metric of either package, matched by what it is and on which split: a's validation accuracy against b's.
 * A derived package's copy of its parent's figures (metrics.source) is not its own, so it is left out.
 */
function metricChanges(ma: Manifest, mb: Manifest): MetricChange[] {
  const xa = namedMetrics(ma), xb = namedMetrics(mb);
  const id = (x: { metric: string; split?: string }) => `${x.metric}\u0000${x.split ?? ''}`;
  const ids = [...new Set([...xa, ...xb].map(id))];
  const order = (x: { metric: string; split?: string }) => [['accuracy', 'loss'].indexOf(x.metric) + 1 || 9, ['test', 'validation', 'train', undefined].indexOf(x.split as MetricSplit | undefined)];
  return ids
    .map((k) => {
      const a = xa.find((x) => id(x) === k), b = xb.find((x) => id(x) === k);
      const any = (a ?? b)!;
      return { key: `metrics.${any.key}`, metric: any.metric, ...(any.split ? { split: any.split } : {}), label: metricLabel(any), ...(a ? { a: a.value } : {}), ...(b ? { b: b.value } : {}), ...(a && b ? { delta: b.value - a.value } : {}) };
    })
    .sort((p, q) => {
      const [p1, p2] = order(p), [q1, q2] = order(q);
      return p1! - q1! || p2! - q2! || (p.metric < q.metric ? -1 : 1);
    });
}

export function diffManifests(ma: Manifest, mb: Manifest, sha: { a: string; b: string }, sizes: { a: PackageSize; b: PackageSize }): DiffResult {
  const params = ['task', 'architecture', 'training', 'input', 'output', 'formats', 'status', 'statusReason'] as const;
  const parameters = params.flatMap((k) => changes(ma[k], mb[k], k));
  const metrics = metricChanges(ma, mb);
  const sa = sizes.a.served.bytes, sb = sizes.b.served.bytes;
  const la = new Set(ma.labels), lb = new Set(mb.labels);
  const added = mb.labels.filter((l) => !la.has(l));
  const removed = ma.labels.filter((l) => !lb.has(l));
  const common = ma.labels.filter((l) => lb.has(l));
  const reordered = JSON.stringify(common) !== JSON.stringify(mb.labels.filter((l) => la.has(l)));
  const fa = ma.files, fb = mb.files;
  const files = {
    added: Object.keys(fb).filter((f) => !(f in fa)).sort(),
    removed: Object.keys(fa).filter((f) => !(f in fb)).sort(),
    changed: Object.keys(fa).filter((f) => f in fb && fa[f]!.sha256 !== fb[f]!.sha256).sort(),
  };
  return {
    a: { name: ma.name, version: ma.version, manifestSha256: sha.a },
    b: { name: mb.name, version: mb.version, manifestSha256: sha.b },
    identical: sha.a === sha.b,
    parameters,
    metrics,
    size: { a: sa, b: sb, delta: sb - sa, format: { a: sizes.a.served.format, b: sizes.b.served.format }, total: { a: sizes.a.total, b: sizes.b.total, delta: sizes.b.total - sizes.a.total } },
    labels: { added, removed, reordered },
    lineage: { a: opsOf(ma), b: opsOf(mb) },
    files,
  };
}

/** Diff two packages by reference (NAME@V, NAME:TAG, paths); manifests are read, files are not re-hashed. */
export async function diffPackages(refA: string, refB: string): Promise<DiffResult> {
  const a = await loadPackage(refA, { verify: false });
  const b = await loadPackage(refB, { verify: false });
  const sizes = { a: await packageSize(a.dir, a.manifest), b: await packageSize(b.dir, b.manifest) };
  return diffManifests(a.manifest, b.manifest, { a: a.manifestSha256, b: b.manifestSha256 }, sizes);
}

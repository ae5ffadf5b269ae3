// Terminal text for `mlctl models …`: cli-table3 tables for listings and diffs, short lines for the rest.
import Table from 'cli-table3';
import { formatSize } from '../util/units.js';
import type { DiffResult } from './diff.js';
import type { PackageEntry } from './inspect.js';
import { formatDelta, formatMetric, SPLIT_LABEL, type MetricSplit } from './metrics.js';
import type { GcDecision } from './remove.js';
import type { ShowResult } from './show.js';

/** Sizes as every mlctl report prints them (util/units formatSize: quantize's table and `models ls` agree). */
export function bytes(n: number | undefined): string {
  return n === undefined ? '—' : formatSize(n);
}

const signedBytes = (n: number) => `${n >= 0 ? '+' : '-'}${bytes(Math.abs(n))}`;
const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
/** "91.2% test": a figure is never printed without the split it was measured on. */
const onSplit = (x: number | undefined, split: MetricSplit | undefined) => (x === undefined ? '—' : `${pct(x)}${split ? ` ${SPLIT_LABEL[split]}` : ''}`);
const signedPts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pts`;
/** "3.73 MiB onnx": what serving loads. */
const served = (n: number | undefined, format: string | undefined) => (n === undefined ? '—' : `${bytes(n)}${format && format !== 'none' ? ` ${format}` : ''}`);
/** The listing's headline: accuracy, or R² for regression packages, with its split. */
function headline(p: PackageEntry): string {
  const h = p.headline;
  if (!h) return '—';
  return h.metric === 'accuracy' ? onSplit(h.value, h.split) : `${h.metric === 'r2' ? 'R²' : h.metric} ${h.value.toFixed(3)}${h.split ? ` ${SPLIT_LABEL[h.split]}` : ''}`;
}
const day = (iso: string | undefined) => (iso ? iso.replace('T', ' ').slice(0, 16) : '—');
const table = (head: string[]) => new Table({ head, style: { head: [], border: [] } });

function value(v: unknown): string {
  if (v === undefined) return '—';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

export function formatList(packages: PackageEntry[]): string {
  if (!packages.length) return 'no model packages (train one: mlctl train --data DIR --name NAME)';
  const t = table(['name', 'version', 'task', 'backbone', 'size (served)', 'on disk', 'accuracy (split)', 'created', 'tags', 'status', 'parent']);
  for (const p of packages) {
    t.push([p.name, String(p.version), p.task ?? '—', p.backbone ?? '—', served(p.servedBytes, p.servedFormat), bytes(p.bytes), headline(p), day(p.createdAt), p.tags.join(', '), p.status === 'ok' ? 'ok' : `${p.status}${p.reason ? `: ${value(p.reason)}` : ''}`, p.parent ? `${p.parent}${p.op ? ` (${p.op})` : ''}` : '—']);
  }
  return `${t.toString()}\nsize (served): the files serving loads, in that format; on disk: every file of the package. Accuracy: test split, else validation (val), else training.`;
}

function params(p: Record<string, unknown> | undefined): string {
  if (!p) return '';
  return Object.entries(p)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

export function formatShow(s: ShowResult): string {
  const p = s.package;
  const lines = [
    `${p.name} v${p.version}  ${p.status}${p.reason ? ` (${p.reason})` : ''}${p.tags.length ? `  tags: ${p.tags.join(', ')}` : ''}`,
    `  dir       ${p.dir}`,
    `  task      ${p.task ?? '—'}; backbone ${p.backbone ?? '—'}; ${s.labels.length} labels${s.labels.length ? ` (${s.labels.slice(0, 8).join(', ')}${s.labels.length > 8 ? ', …' : ''})` : ''}`,
  ];
  if (s.input) lines.push(`  input     ${s.input.kind === 'image' ? `${s.input.height}x${s.input.width} RGB, ${s.input.preprocessing.mode} preprocessing` : s.input.kind === 'tabular' ? `${s.input.features.length} features` : `${s.input.tensors.length} tensor(s): ${s.input.tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ')}`}`);
  lines.push(
    `  formats   ${Object.entries(s.formats).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'}`,
    `  size      ${served(p.servedBytes, p.servedFormat)} served, ${bytes(p.bytes)} on disk; accuracy ${headline(p)}; created ${day(p.createdAt)}`,
    `  mlctl.json sha256 ${p.manifestSha256 ?? '—'}`,
  );
  if (s.lineage.length) {
    lines.push('', 'Lineage:');
    const t = table(['step', 'at', 'from → produced', 'accuracy (split)', 'size (served)', 'parameters']);
    for (const st of s.lineage) {
      const d = st.delta;
      // The delta names its split when it is not the one shown (it compares the split both packages measured).
      const dAcc = d?.accuracy !== undefined ? ` (${signedPts(d.accuracy)}${d.accuracySplit && d.accuracySplit !== st.accuracySplit ? ` ${SPLIT_LABEL[d.accuracySplit]}` : ''})` : '';
      const acc = st.accuracy === undefined ? '—' : `${onSplit(st.accuracy, st.accuracySplit)}${dAcc}`;
      const size = st.bytes === undefined ? '—' : `${served(st.bytes, st.servedFormat)}${d?.bytes !== undefined ? ` (${signedBytes(d.bytes)})` : ''}`;
      t.push([st.op, day(st.at), `${st.from ? `${st.from} → ` : ''}${st.produced}${st.present ? '' : ' (removed)'}`, acc, size, value(params(st.params))]);
    }
    lines.push(t.toString());
  }
  if (s.files.length) {
    lines.push('', `Files (${s.verified ? 'all sha256 verified' : 'INTEGRITY CHECK FAILED'}):`);
    const t = table(['file', 'bytes', 'sha256', 'check']);
    for (const f of s.files) t.push([f.file, String(f.bytes), `${f.sha256.slice(0, 16)}…`, f.ok ? 'ok' : f.problem ?? 'bad']);
    lines.push(t.toString());
  }
  return lines.join('\n');
}

export function formatDiff(d: DiffResult): string {
  const head = `${d.a.name}@${d.a.version} → ${d.b.name}@${d.b.version}`;
  if (d.identical) return `${head}: identical (same mlctl.json sha256)`;
  const z = d.size;
  const lines = [head, `  size ${served(z.a, z.format.a)} → ${served(z.b, z.format.b)} served (${signedBytes(z.delta)}); ${bytes(z.total.a)} → ${bytes(z.total.b)} on disk (${signedBytes(z.total.delta)})`];
  const { added, removed, reordered } = d.labels;
  lines.push(`  labels ${added.length || removed.length || reordered ? [added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : '', reordered ? 'reordered' : ''].filter(Boolean).join('; ') : 'unchanged'}`);
  lines.push(`  lineage ${d.lineage.a.join(' → ') || '—'}  vs  ${d.lineage.b.join(' → ') || '—'}`);
  lines.push(`  files ${d.files.added.length} added, ${d.files.removed.length} removed, ${d.files.changed.length} changed`);
  const colA = `${d.a.name}@${d.a.version}`, colB = `${d.b.name}@${d.b.version}`;
  if (d.metrics.length) {
    const t = table(['metric (split)', colA, colB, 'delta']);
    const cell = (c: (typeof d.metrics)[number], v: number | undefined) => (v === undefined ? (c.split ? 'not measured' : '—') : formatMetric({ metric: c.metric, value: v }));
    for (const c of d.metrics) t.push([c.label, cell(c, c.a), cell(c, c.b), c.delta === undefined ? '—' : formatDelta(c.metric, c.delta)]);
    lines.push(t.toString());
  }
  if (d.parameters.length) {
    const t = table(['parameter', colA, colB, 'delta']);
    for (const c of d.parameters) t.push([c.key, value(c.a), value(c.b), c.delta === undefined ? '—' : formatDelta(c.key, c.delta)]);
    lines.push(t.toString());
  }
  return lines.join('\n');
}

export function formatGc(decisions: GcDecision[], removed: string[], dryRun: boolean): string {
  if (!decisions.length) return 'no model packages';
  const t = table(['package', dryRun ? 'would' : 'action', 'why kept', 'status']);
  for (const d of decisions) t.push([`${d.name}@${d.version}`, d.action, d.why.join(', '), d.status]);
  return `${t.toString()}\n${dryRun ? `dry run: ${decisions.filter((d) => d.action === 'remove').length} version(s) would be removed` : `removed ${removed.length} version(s)${removed.length ? `: ${removed.join(', ')}` : ''}`}`;
}

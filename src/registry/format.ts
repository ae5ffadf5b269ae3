// Terminal text for `mlctl models …`: cli-table3 tables for listings and diffs, short lines for the rest.
import Table from 'cli-table3';
import type { DiffResult } from './diff.js';
import type { PackageEntry } from './inspect.js';
import type { GcDecision } from './remove.js';
import type { ShowResult } from './show.js';

export function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const signedBytes = (n: number) => `${n >= 0 ? '+' : '-'}${bytes(Math.abs(n))}`;
const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
const signedPts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pts`;
const day = (iso: string | undefined) => (iso ? iso.replace('T', ' ').slice(0, 16) : '—');
const table = (head: string[]) => new Table({ head, style: { head: [], border: [] } });

function value(v: unknown): string {
  if (v === undefined) return '—';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

export function formatList(packages: PackageEntry[]): string {
  if (!packages.length) return 'no model packages (train one: mlctl train --data DIR --name NAME)';
  const t = table(['name', 'version', 'task', 'backbone', 'size', 'accuracy', 'created', 'tags', 'status', 'parent']);
  for (const p of packages) {
    t.push([p.name, String(p.version), p.task ?? '—', p.backbone ?? '—', bytes(p.bytes), pct(p.accuracy), day(p.createdAt), p.tags.join(', '), p.status === 'ok' ? 'ok' : `${p.status}${p.reason ? `: ${value(p.reason)}` : ''}`, p.parent ? `${p.parent}${p.op ? ` (${p.op})` : ''}` : '—']);
  }
  return t.toString();
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
  lines.push(`  formats   ${Object.entries(s.formats).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'}`, `  size      ${bytes(p.bytes)}; accuracy ${pct(p.accuracy)}; created ${day(p.createdAt)}`, `  mlctl.json sha256 ${p.manifestSha256 ?? '—'}`);
  if (s.lineage.length) {
    lines.push('', 'Lineage:');
    const t = table(['step', 'at', 'from → produced', 'accuracy', 'size', 'parameters']);
    for (const st of s.lineage) {
      const acc = st.accuracy === undefined ? '—' : `${pct(st.accuracy)}${st.delta?.accuracy !== undefined ? ` (${signedPts(st.delta.accuracy)})` : ''}`;
      const size = st.bytes === undefined ? '—' : `${bytes(st.bytes)}${st.delta?.bytes !== undefined ? ` (${signedBytes(st.delta.bytes)})` : ''}`;
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
  const lines = [head, `  size ${bytes(d.size.a)} → ${bytes(d.size.b)} (${signedBytes(d.size.delta)})`];
  const { added, removed, reordered } = d.labels;
  lines.push(`  labels ${added.length || removed.length || reordered ? [added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : '', reordered ? 'reordered' : ''].filter(Boolean).join('; ') : 'unchanged'}`);
  lines.push(`  lineage ${d.lineage.a.join(' → ') || '—'}  vs  ${d.lineage.b.join(' → ') || '—'}`);
  lines.push(`  files ${d.files.added.length} added, ${d.files.removed.length} removed, ${d.files.changed.length} changed`);
  const rows = [...d.metrics, ...d.parameters];
  if (rows.length) {
    const t = table(['changed', `${d.a.name}@${d.a.version}`, `${d.b.name}@${d.b.version}`, 'delta']);
    for (const c of rows) t.push([c.key, value(c.a), value(c.b), c.delta === undefined ? '' : `${c.delta >= 0 ? '+' : ''}${Number(c.delta.toPrecision(4))}`]);
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

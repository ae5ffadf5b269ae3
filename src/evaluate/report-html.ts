// index.html of `evaluate --report`: one self-contained page (inline CSS and SVG, thumbnails as data: URIs, no
// script, no network) with the same figures as report.md — headline metrics, the task's sections (classification:
// per-class table, confusion heat map, reliability diagram, most confidently wrong images), latency percentiles and
// the side-by-side deltas.
import type { ReportSection } from '../tasks/index.js';
import { ms } from '../util/table.js';
import { barChart, PALETTE } from '../web/charts.js';
import { card, esc, figure, htmlPage, section, table } from '../web/html.js';
import type { ComparisonRow } from './compare.js';
import { bytes, comparisonRowsTable, taskOfResult, unitOf, type EvaluationReport } from './format.js';
import type { EvaluationResult } from './run.js';

const modelId = (i: number) => `model-${i + 1}`;

function headline(r: EvaluationResult<unknown>): string {
  const cards = [...(taskOfResult(r).report.cards?.(r.metrics) ?? [])];
  if (r.latency) {
    cards.push(card('latency p50 / p95', `${ms(r.latency.p50Ms)} / ${ms(r.latency.p95Ms)} ms`, 'batch 1'));
    cards.push(card('throughput', `${r.latency.throughput.best.imagesPerSecond.toFixed(1)}/s`, `batch ${r.latency.throughput.best.batchSize}`));
  }
  cards.push(card(`size (${r.size.format})`, bytes(r.size.rawBytes), `${bytes(r.size.gzipBytes)} gzip`));
  return `<div class="cards">${cards.join('')}</div><p class="muted">Engine: ${esc(r.engine.description)} · package <code>${esc(r.model.dir)}</code> · mlctl.json sha256 <code>${esc(r.model.manifestSha256.slice(0, 16))}…</code></p>`;
}

function latencySection(r: EvaluationResult<unknown>): string {
  const l = r.latency;
  if (!l) return '<p class="muted">Latency was not measured (--latency-runs 0).</p>';
  const bars = [
    { label: 'min', value: l.minMs },
    { label: 'p50', value: l.p50Ms },
    { label: 'mean', value: l.meanMs },
    { label: 'p95', value: l.p95Ms },
    { label: 'p99', value: l.p99Ms },
    { label: 'max', value: l.maxMs },
  ].map((b, i) => ({ ...b, text: `${ms(b.value)} ms`, color: i === 3 || i === 4 ? PALETTE[1] : PALETTE[0] }));
  const tput = l.throughput.tried.map((t) => ({ label: `batch ${t.batchSize}`, value: t.imagesPerSecond, text: `${t.imagesPerSecond.toFixed(1)}/s`, color: t.batchSize === l.throughput.best.batchSize ? PALETTE[2] : PALETTE[0] }));
  return `<div class="figs">${figure(barChart({ title: `Batch-1 latency (${l.runs} runs after ${l.warmup} warm-up)`, bars, unit: ' ms' }))}${figure(barChart({ title: `Throughput (${unitOf(taskOfResult(r))}/s)`, bars: tput }))}</div>`;
}

/** One model: headline cards, its task's metric sections, latency, its task's example galleries, skipped files. */
function modelSection(r: EvaluationResult<unknown>, i: number, sections: readonly ReportSection[]): string {
  const name = `${r.model.name} v${r.model.version}`;
  const part = (s: ReportSection) => section(`${modelId(i)}-${s.id}`, s.title, s.html, 3);
  const parts = [headline(r)];
  parts.push(...sections.filter((s) => s.place === 'metrics').map(part));
  parts.push(section(`${modelId(i)}-latency`, 'Latency', latencySection(r), 3));
  parts.push(...sections.filter((s) => s.place === 'examples').map(part));
  if (r.images.skipped > 0) {
    const listed = r.images.skippedFiles.map((s) => `<li><code>${esc(s.path)}</code>: ${esc(s.reason)}</li>`).join('');
    parts.push(section(`${modelId(i)}-skipped`, 'Skipped images', `<p>${r.images.skipped} unreadable image(s) were skipped${r.images.skippedFiles.length < r.images.skipped ? ` (first ${r.images.skippedFiles.length} listed)` : ''}:</p><ul>${listed}</ul>`, 3));
  }
  return section(modelId(i), name, parts.join('\n'));
}

/** good/bad colouring of the delta columns (higher accuracy, F1 and speed are good; bigger size and latency bad). */
function deltaClass(rows: readonly ComparisonRow[]) {
  const tone = (x: number | undefined, goodWhenPositive: boolean) => (x === undefined || !Number.isFinite(x) || Math.abs(x) < 1e-12 ? undefined : x > 0 === goodWhenPositive ? 'good' : 'bad');
  return (ri: number, ci: number): string | undefined => {
    const d = rows[ri]?.delta;
    if (!d) return undefined;
    switch (ci) {
      case 3: return tone(d.accuracy, true);
      case 5: return tone(d.macroF1, true);
      // Ratios within half a percent of 1 are "the same size", not a regression.
      case 8: return Math.abs(d.sizeRawRatio - 1) < 0.005 ? undefined : tone(d.sizeRawRatio - 1, false);
      case 10: return tone(d.p50Ms, false);
      case 12: return d.imagesPerSecondRatio === undefined || Math.abs(d.imagesPerSecondRatio - 1) < 0.005 ? undefined : tone(d.imagesPerSecondRatio - 1, true);
      default: return undefined;
    }
  };
}

/** The page, from the report and each model's task sections (evaluate/report.ts reportSections). */
export function reportHtml(report: EvaluationReport, sections: ReportSection[][]): string {
  const d = report.data;
  const many = report.results.length > 1;
  const body: string[] = [];
  const nav: Array<[string, string]> = [];
  if (report.comparison && report.comparison.length > 1) {
    nav.push(['comparison', 'Comparison']);
    body.push(section('comparison', `Comparison (deltas vs ${report.comparison[0]!.model})`, table(comparisonRowsTable(report.comparison), { cls: 'compare', cellClass: deltaClass(report.comparison) })));
  }
  if (report.gates.length > 0) {
    nav.push(['gates', 'Quality gates']);
    const items = report.gates.map((g) => `<li class="${g.passed ? 'pass' : 'fail'}">${g.passed ? 'pass' : 'FAIL'}: ${esc(g.message)}</li>`).join('');
    body.push(section('gates', `Quality gates: ${report.gatesPassed ? 'all passed' : 'FAILED'}`, `<ul class="gates">${items}</ul>`));
  }
  for (const [i, r] of report.results.entries()) {
    nav.push([modelId(i), many ? `${r.model.name} v${r.model.version}` : 'Metrics']);
    body.push(modelSection(r, i, sections[i] ?? []));
  }
  const title = many ? `Evaluation: ${report.results.map((r) => `${r.model.name} v${r.model.version}`).join(' vs ')}` : `Evaluation: ${report.results[0]!.model.name} v${report.results[0]!.model.version}`;
  return htmlPage({
    title,
    subtitle: [
      `Data ${d.root} — ${d.split} split (${d.origin}; ${d.layout} layout), ${d.images} ${d.layout === 'csv' ? 'rows' : 'images'}`,
      `Classes (${d.classes.length}): ${d.classes.length > 30 ? `${d.classes.slice(0, 30).join(', ')}, …` : d.classes.join(', ')}`,
    ],
    nav,
    body: body.join('\n'),
    footer: `Generated by mlctl evaluate on ${new Date().toISOString()}. The same figures are in report.json and report.md.`,
  });
}

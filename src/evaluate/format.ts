// Human-readable evaluation output: cli-table3 tables for the terminal and Markdown tables for report.md, built
// from the same rows so both always show the same figures. The frame is here (data, sizes, latency, comparison,
// gates); what a model's metrics look like is its task's (tasks/*: report).
import type { ComparisonRow } from './compare.js';
import type { GateCheck } from './gates.js';
import type { EvaluationResult } from './run.js';
import type { RegressionEvaluationResult } from './tabular.js';
import { taskOf, type AnyTask } from '../tasks/index.js';
import { detectionRendering } from '../tasks/detection/evaluate-report.js';
import { f4, ms, renderTable, type Rows } from '../util/table.js';
import { formatSize } from '../util/units.js';

/** Everything `evaluate --report` writes (report.json is this object; report.md and index.html render it). */
export interface EvaluationReport {
  /** origin: where the evaluated images come from, in words (data/splits.ts splitOrigin); seed and fractions as used. */
  data: { root: string; layout: string; split: string; origin: string; seed: number; validationSplit: number; testSplit: number; classes: string[]; images: number };
  results: Array<EvaluationResult<any>>;
  comparison?: ComparisonRow[];
  gates: GateCheck[];
  gatesPassed: boolean;
}

const signed = (x: number, digits = 3) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(digits)}` : '—');
const times = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? `×${x.toFixed(2)}` : '—');

/** Sizes in reports: util/units' one formatter. */
export const bytes = formatSize;

/** What the report reads of a result's task. */
export type ResultTask = Pick<AnyTask, 'id' | 'input' | 'report'>;

/** The task that owns a result's metrics (results carry the task's name); detection's rendering until its task registers. */
export const taskOfResult = (r: Pick<EvaluationResult<unknown>, 'model'>): ResultTask => (r.model.task === 'detection' ? detectionRendering : taskOf(r.model));

/** What one example is called: tabular packages are evaluated on CSV rows (never skipped), the others on images. */
export const unitOf = (task: ResultTask) => (task.input === 'tabular' ? 'rows' : 'images');

/** The summary table: the task's headline metrics, then examples, size, latency and engine. */
export function summaryRows(r: EvaluationResult<unknown>): Rows {
  const task = taskOfResult(r);
  const tabular = task.input === 'tabular';
  const unit = tabular ? 'rows' : 'img';
  const rows = [
    ...task.report.summary(r.metrics),
    tabular ? ['rows', `${r.images.evaluated} evaluated`] : ['images', `${r.images.evaluated} evaluated, ${r.images.skipped} skipped (unreadable)`],
    [`size (${r.size.format})`, `${bytes(r.size.rawBytes)} raw, ${bytes(r.size.gzipBytes)} gzip`],
  ];
  if (r.latency) {
    const l = r.latency;
    rows.push(['latency, batch 1', `p50 ${ms(l.p50Ms)} ms, p95 ${ms(l.p95Ms)} ms, p99 ${ms(l.p99Ms)} ms (${l.runs} runs after ${l.warmup} warm-up)`]);
    rows.push(['throughput', `${l.throughput.best.imagesPerSecond.toFixed(1)} ${unit}/s at batch ${l.throughput.best.batchSize} (tried ${l.throughput.tried.map((t) => t.batchSize).join(', ')})`]);
  }
  rows.push(['engine', r.engine.description]);
  return { head: ['metric', 'value'], rows, align: ['left', 'left'] };
}

export function comparisonRowsTable(rows: readonly ComparisonRow[]): Rows {
  return {
    head: ['model', 'engine', 'accuracy', 'Δ acc', 'macro F1', 'Δ F1', 'size raw', 'size gzip', 'Δ size', 'p50 ms', 'Δ p50', 'img/s', 'Δ img/s'],
    rows: rows.map((r) => [
      r.model,
      r.engine,
      f4(r.accuracy),
      r.delta ? signed(r.delta.accuracy, 4) : 'baseline',
      f4(r.macroF1),
      r.delta ? signed(r.delta.macroF1, 4) : 'baseline',
      bytes(r.sizeRawBytes),
      bytes(r.sizeGzipBytes),
      r.delta ? `${times(r.delta.sizeRawRatio)} / ${times(r.delta.sizeGzipRatio)} gz` : 'baseline',
      r.p50Ms !== undefined ? ms(r.p50Ms) : '—',
      r.delta ? (r.delta.p50Ms !== undefined ? signed(r.delta.p50Ms, 2) : '—') : 'baseline',
      r.imagesPerSecond !== undefined ? r.imagesPerSecond.toFixed(1) : '—',
      r.delta ? times(r.delta.imagesPerSecondRatio) : 'baseline',
    ]),
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  };
}

/**
 * The comparison as one row per figure and one column per model (value, then its change vs the baseline), for
 * terminals too narrow for a column per figure: two models fit in ~90 columns where the wide table needs ~230.
 */
export function comparisonRowsTransposed(rows: readonly ComparisonRow[]): Rows {
  const wide = comparisonRowsTable(rows);
  const col = (name: string) => wide.head.indexOf(name);
  const pair = (value: string, delta: string) => (r: string[]) => (r[col(delta)] === 'baseline' ? `${r[col(value)]} (baseline)` : `${r[col(value)]} (${r[col(delta)]})`);
  const figures: Array<[string, (r: string[]) => string]> = [
    ['engine', (r) => r[col('engine')]!],
    ['accuracy (Δ)', pair('accuracy', 'Δ acc')],
    ['macro F1 (Δ)', pair('macro F1', 'Δ F1')],
    ['size raw / gzip', (r) => `${r[col('size raw')]} / ${r[col('size gzip')]}`],
    ['Δ size (raw / gzip)', (r) => r[col('Δ size')]!],
    ['p50 ms (Δ)', pair('p50 ms', 'Δ p50')],
    ['img/s (Δ)', pair('img/s', 'Δ img/s')],
  ];
  return { head: ['', ...wide.rows.map((r) => r[0]!)], rows: figures.map(([name, get]) => [name, ...wide.rows.map(get)]), align: ['left', ...wide.rows.map(() => 'right' as const)] };
}

const widthOf = (text: string) => Math.max(...text.split('\n').map((l) => l.length));

/**
 * The comparison at most `columns` wide: the wide table when it fits, else transposed (a column per model), else
 * transposed in groups of models that fit, each with the baseline again.
 */
export function renderComparison(rows: readonly ComparisonRow[], columns: number): string {
  const wide = renderTable(comparisonRowsTable(rows));
  if (widthOf(wide) <= columns) return wide;
  const tall = comparisonRowsTransposed(rows);
  const rendered = renderTable(tall);
  if (widthOf(rendered) <= columns || rows.length <= 2) return rendered;
  const groups: string[] = [];
  const rest = tall.head.slice(2).map((_, i) => i + 2);
  while (rest.length) {
    let take = 1;
    const pick = (n: number) => [0, 1, ...rest.slice(0, n)];
    const part = (idx: number[]) => renderTable({ head: idx.map((i) => tall.head[i]!), rows: tall.rows.map((r) => idx.map((i) => r[i]!)), align: idx.map((i) => tall.align![i]!) });
    while (take < rest.length && widthOf(part(pick(take + 1))) <= columns) take++;
    groups.push(part(pick(take)));
    rest.splice(0, take);
  }
  return groups.join('\n');
}

export interface TextOptions {
  dataRoot: string;
  split: string;
  /** Width the output must fit (util/terminal outputColumns); the comparison is transposed when wider. Default: unlimited. */
  columns?: number;
  gates: GateCheck[];
}

function gateLines(gates: readonly GateCheck[]): string[] {
  if (gates.length === 0) return [];
  const failed = gates.filter((g) => !g.passed);
  return [failed.length === 0 ? `Quality gates: all ${gates.length} passed` : `Quality gates: ${failed.length} of ${gates.length} FAILED`, ...gates.map((g) => `  ${g.passed ? 'pass' : 'FAIL'}  ${g.message}`)];
}

export function regressionRows(r: RegressionEvaluationResult): Rows {
  const m = r.metrics;
  const rows = [
    ...taskOfResult(r).report.summary(m),
    ['rows', String(m.n)],
    [`size (${r.size.format})`, `${bytes(r.size.rawBytes)} raw, ${bytes(r.size.gzipBytes)} gzip`],
  ];
  if (r.latency) {
    const l = r.latency;
    rows.push(['latency, batch 1', `p50 ${ms(l.p50Ms)} ms, p95 ${ms(l.p95Ms)} ms, p99 ${ms(l.p99Ms)} ms (${l.runs} runs after ${l.warmup} warm-up)`]);
    rows.push(['throughput', `${l.throughput.best.imagesPerSecond.toFixed(1)} rows/s at batch ${l.throughput.best.batchSize}`]);
  }
  rows.push(['engine', r.engine.description]);
  return { head: ['metric', 'value'], rows, align: ['left', 'left'] };
}

/** The terminal output of `mlctl evaluate` for tabular regression packages. */
export function formatRegressionText(results: readonly RegressionEvaluationResult[], opts: TextOptions): string {
  const out: string[] = [];
  for (const r of results) out.push(`${r.model.name} v${r.model.version} on ${opts.dataRoot} (${opts.split} split, ${r.rows.evaluated} rows) — ${r.engine.description}`, renderTable(regressionRows(r)), '');
  out.push(...gateLines(opts.gates));
  return out.join('\n').trimEnd() + '\n';
}

/** The terminal output of `mlctl evaluate` for one or more models. */
export function formatText(results: readonly EvaluationResult<unknown>[], comparison: readonly ComparisonRow[] | undefined, opts: TextOptions): string {
  const out: string[] = [];
  for (const r of results) {
    const task = taskOfResult(r);
    out.push(`${r.model.name} v${r.model.version} on ${opts.dataRoot} (${opts.split} split, ${r.images.evaluated} ${unitOf(task)}) — ${r.engine.description}`);
    out.push(renderTable(summaryRows(r)));
    out.push(...(task.report.text?.(r.metrics, { name: `${r.model.name} v${r.model.version}`, stem: '', root: opts.dataRoot }) ?? []));
    if (r.images.skipped > 0) out.push(`Skipped ${r.images.skipped} unreadable image(s), e.g. ${r.images.skippedFiles.slice(0, 3).map((s) => s.path).join(', ')}`);
    out.push('');
  }
  if (comparison && comparison.length > 1) out.push(`Comparison vs ${comparison[0]!.model} (same ${opts.split} split):`, renderComparison(comparison, opts.columns ?? Infinity), '');
  out.push(...gateLines(opts.gates));
  return out.join('\n').trimEnd() + '\n';
}

// Training history as files in the model package: history.json, history.csv, history.png (loss and accuracy curves)
// and history.html (a self-contained page: curves for train and validation, the best and early-stopping epochs, the
// fine-tune phase boundary, the learning rate, hyperparameters and the per-epoch table). Charts: web/charts.ts.
// What an epoch records differs by task: a HistoryLayout names the columns, the two charts, the monitored metric and
// the headline card (classification's is the default; detection's has the loss parts and mAP).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { csvLine } from '../data/csv.js';
import { lineChart, PALETTE, svgToPng, type Marker } from '../web/charts.js';
import { card, figure, htmlPage, section, table } from '../web/html.js';
import type { EpochMetrics } from '../heads/head.js';
import type { LrFindResult } from './lr-find.js';

/** What every task's epoch record has. */
export interface EpochRecord {
  phase: 'head' | 'fine-tune';
  loss: number;
  lr: number;
  seconds: number;
}

export interface HistoryLayout<H extends EpochRecord> {
  /** Columns after epoch and phase: the record's key, its CSV header and how the epoch table writes it. */
  columns: ReadonlyArray<{ key: keyof H & string; csv: string; format?: 'metric' | 'lr' | 'seconds' }>;
  /** The charts of history.html; the first two side by side are history.png (loss first). */
  charts: ReadonlyArray<{ title: string; yLabel: string; yRange?: [number, number]; series: ReadonlyArray<{ name: string; value: (h: H) => number | undefined }> }>;
  /** The epoch a phase kept: the best of this value (Keras's restore_best_weights). */
  monitor: { value: (h: H) => number | undefined; mode: 'min' | 'max' };
  /** The headline card from the manifest's metrics: title, value and detail. */
  headline(metrics: Record<string, unknown>): [string, string, string] | undefined;
  /** A test-split card, when the metrics have one. */
  test?(metrics: Record<string, unknown>): [string, string, string] | undefined;
}

const num = (v: unknown, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

/** The classifier's epochs: Keras's column names, loss and accuracy curves, val_loss monitored. */
export const CLASSIFICATION_HISTORY: HistoryLayout<EpochMetrics> = {
  columns: [
    { key: 'loss', csv: 'loss' },
    { key: 'accuracy', csv: 'accuracy' },
    { key: 'valLoss', csv: 'val_loss' },
    { key: 'valAccuracy', csv: 'val_accuracy' },
    { key: 'lr', csv: 'lr', format: 'lr' },
    { key: 'seconds', csv: 'seconds', format: 'seconds' },
  ],
  charts: [
    { title: 'Loss', yLabel: 'categorical cross-entropy', series: [{ name: 'loss (train)', value: (h) => h.loss }, { name: 'val_loss', value: (h) => h.valLoss }] },
    { title: 'Accuracy', yLabel: 'accuracy', yRange: [0, 1], series: [{ name: 'accuracy (train)', value: (h) => h.accuracy }, { name: 'val_accuracy', value: (h) => h.valAccuracy }] },
  ],
  monitor: { value: (h) => h.valLoss ?? h.loss, mode: 'min' },
  headline: (m) => ['val accuracy', num(m.valAccuracy), `val loss ${num(m.valLoss)}`],
  test: (m) => (typeof m.testAccuracy === 'number' ? ['test accuracy', num(m.testAccuracy), `test loss ${num(m.testLoss)}`] : undefined),
};

const defaultLayout = <H extends EpochRecord>() => CLASSIFICATION_HISTORY as unknown as HistoryLayout<H>;

export function historyCsv<H extends EpochRecord = EpochMetrics>(history: H[], layout: HistoryLayout<H> = defaultLayout<H>()): string {
  const head = ['epoch', 'phase', ...layout.columns.map((c) => c.csv)].join(',') + '\n';
  const rows = history.map((h, i) =>
    csvLine([i + 1, h.phase, ...layout.columns.map((c) => h[c.key] as unknown)].map((v) => (v === undefined ? undefined : typeof v === 'number' ? Number(v.toPrecision(6)) : String(v)))),
  );
  return head + rows.join('');
}

/** What else the page shows besides the epochs (the manifest's metrics and training parameters). */
export interface HistoryContext {
  /** Model name (page title). */
  name?: string;
  /** Epoch budget of each phase (an earlier end means early stopping); one number for both. */
  epochs?: EpochBudget;
  patience?: number | null;
  metrics?: Record<string, unknown>;
  /** Training parameters, shown as a table (nested values as JSON). */
  training?: Record<string, unknown>;
  /** LR range tests run before the phases (--find-lr). */
  lrFind?: readonly LrFindResult[];
}

export type EpochBudget = number | Partial<Record<EpochMetrics['phase'], number>>;

export interface PhaseSpan {
  phase: EpochMetrics['phase'];
  /** 1-based positions in the history (history.csv's epoch column), inclusive. */
  first: number;
  last: number;
  /** The epoch whose weights the phase kept (the layout's monitor, e.g. lowest val_loss: Keras's restore_best_weights). */
  best: number;
  /** The phase ended before its epoch budget (patience ran out). */
  stoppedEarly: boolean;
}

/** The phases in order with their best and early-stopping epochs. */
export function phaseSpans<H extends EpochRecord = EpochMetrics>(history: readonly H[], epochs?: EpochBudget, layout: HistoryLayout<H> = defaultLayout<H>()): PhaseSpan[] {
  const spans: PhaseSpan[] = [];
  history.forEach((h, i) => {
    const last = spans[spans.length - 1];
    if (!last || last.phase !== h.phase) spans.push({ phase: h.phase, first: i + 1, last: i + 1, best: i + 1, stoppedEarly: false });
    else last.last = i + 1;
  });
  const { value, mode } = layout.monitor;
  // An epoch without the monitored value never counts as best.
  const score = (n: number) => {
    const v = value(history[n - 1]!);
    return v === undefined || !Number.isFinite(v) ? Infinity : mode === 'min' ? v : -v;
  };
  for (const s of spans) {
    for (let n = s.first; n <= s.last; n++) if (score(n) < score(s.best)) s.best = n;
    const budget = typeof epochs === 'number' ? epochs : epochs?.[s.phase];
    s.stoppedEarly = budget !== undefined && s.last - s.first + 1 < budget;
  }
  return spans;
}

function markers(spans: readonly PhaseSpan[]): Marker[] {
  const out: Marker[] = [];
  for (const s of spans) {
    if (s.phase === 'fine-tune') out.push({ x: s.first - 0.5, label: 'fine-tune starts', color: PALETTE[4] });
    out.push({ x: s.best, label: `best ${s.phase} epoch ${s.best}`, color: PALETTE[2] });
    if (s.stoppedEarly) out.push({ x: s.last, label: `early stop (${s.phase})`, color: PALETTE[3] });
  }
  return out;
}

const finiteOrUndefined = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : undefined);

function layoutChart<H extends EpochRecord>(history: readonly H[], spans: readonly PhaseSpan[], chart: HistoryLayout<H>['charts'][number], width = 480): string {
  return lineChart({
    title: chart.title,
    width,
    xLabel: 'epoch',
    yLabel: chart.yLabel,
    ...(chart.yRange ? { yRange: chart.yRange } : {}),
    series: chart.series.map((series, i) => ({ name: series.name, color: PALETTE[i]!, values: history.map((h) => finiteOrUndefined(series.value(h))) })),
    markers: markers(spans),
  });
}

export function lossChart(history: readonly EpochMetrics[], spans: readonly PhaseSpan[], width = 480): string {
  return layoutChart(history, spans, CLASSIFICATION_HISTORY.charts[0]!, width);
}

export function accuracyChart(history: readonly EpochMetrics[], spans: readonly PhaseSpan[], width = 480): string {
  return layoutChart(history, spans, CLASSIFICATION_HISTORY.charts[1]!, width);
}

/** The layout's two charts side by side in one SVG (history.png). */
export function historySvg<H extends EpochRecord = EpochMetrics>(history: H[], epochs?: EpochBudget, layout: HistoryLayout<H> = defaultLayout<H>()): string {
  const spans = phaseSpans(history, epochs, layout);
  const W = 480;
  const inner = layout.charts.slice(0, 2).map((c, i) => layoutChart(history, spans, c, W).replace('<svg ', `<svg x="${i * W}" y="0" `));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="320" viewBox="0 0 ${2 * W} 320">\n${inner.join('\n')}\n</svg>\n`;
}

function cards<H extends EpochRecord>(history: readonly H[], spans: readonly PhaseSpan[], ctx: HistoryContext, layout: HistoryLayout<H>): string {
  const m = ctx.metrics ?? {};
  const best = typeof m.bestEpoch === 'number' ? m.bestEpoch : spans[spans.length - 1]?.best;
  const out = [
    card('epochs run', String(history.length), spans.map((s) => `${s.phase} ${s.last - s.first + 1}`).join(', ')),
    card('best epoch', best !== undefined ? String(best) : '—', spans.some((s) => s.stoppedEarly) ? `stopped early (patience ${ctx.patience ?? '?'})` : 'ran every epoch'),
  ];
  const headline = layout.headline(m);
  if (headline) out.push(card(...headline));
  const test = layout.test?.(m);
  if (test) out.push(card(...test));
  out.push(card('time', `${history.reduce((a, h) => a + h.seconds, 0).toFixed(1)} s`, 'sum of epochs'));
  return `<div class="cards">${out.join('')}</div>`;
}

function paramsTable(training: Record<string, unknown>): string {
  const rows = Object.entries(training)
    .filter(([k]) => k !== 'classCounts' && k !== 'lrFind')
    .map(([k, v]) => [k, v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  return table({ head: ['parameter', 'value'], rows });
}

function epochTable<H extends EpochRecord>(history: readonly H[], spans: readonly PhaseSpan[], layout: HistoryLayout<H>): string {
  const bests = new Set(spans.map((s) => s.best));
  const cell = (h: H, c: HistoryLayout<H>['columns'][number]) => {
    const v = h[c.key] as unknown;
    return c.format === 'lr' ? String(v) : c.format === 'seconds' ? (v as number).toFixed(1) : num(v);
  };
  const rows = history.map((h, i) => [String(i + 1), h.phase, ...layout.columns.map((c) => cell(h, c)), bests.has(i + 1) ? 'best' : '']);
  const right = layout.columns.map(() => 'right' as const);
  return table({ head: ['epoch', 'phase', ...layout.columns.map((c) => c.csv), ''], rows, align: ['right', 'left', ...right, 'left'] });
}

/** The range test's smoothed loss against the rate (log x), fastai's plot_lr_find: the last 5 points left out, the suggestions marked. */
export function lrFindChart(r: LrFindResult, width = 480): string {
  const keep = r.lrs.length > 10 ? r.lrs.length - 5 : r.lrs.length;
  const marks = (['valley', 'steep', 'minimum'] as const).flatMap((rule, i) => {
    const p = r.suggestions[rule];
    if (!p) return [];
    const used = r.chosen?.rule === rule ? ' (suggested)' : '';
    return [{ x: p.lr, label: `${rule}${rule === 'minimum' ? '/10' : ''} ${p.lr.toExponential(1)}${used}`, color: PALETTE[(i + 2) % PALETTE.length] }];
  });
  return lineChart({
    title: `LR range test (${r.phase})`,
    width,
    x: r.lrs.slice(0, keep),
    xLog: true,
    xLabel: 'learning rate',
    yLabel: 'smoothed loss',
    series: [{ name: 'loss', color: PALETTE[0], values: r.losses.slice(0, keep) }],
    markers: marks,
  });
}

function lrFindSection(tests: readonly LrFindResult[]): string {
  const figs = tests.map((r) =>
    figure(lrFindChart(r), `${r.lrs.length} steps from ${r.options.startLr.toExponential(0)}, rate ×${Math.pow(r.options.endLr / r.options.startLr, 1 / r.options.steps).toFixed(3)} per step; ${r.stop === 'diverged' ? 'stopped when the smoothed loss passed 4x its best' : 'ran every step'}. ${r.chosen ? `Suggested (${r.chosen.rule}): ${r.chosen.lr.toExponential(2)}.` : 'No suggestion.'}`),
  );
  return `<div class="figs">${figs.join('')}</div>`;
}

/** history.html: one self-contained page (inline CSS and SVG, no script, no network). */
export function historyHtml<H extends EpochRecord = EpochMetrics>(history: H[], ctx: HistoryContext = {}, layout: HistoryLayout<H> = defaultLayout<H>()): string {
  const spans = phaseSpans(history, ctx.epochs, layout);
  const lr = lineChart({ title: 'Learning rate', xLabel: 'epoch', yLabel: 'lr', series: [{ name: 'learning rate', color: PALETTE[4], values: history.map((h) => h.lr), step: true }], markers: markers(spans).filter((m) => m.label === 'fine-tune starts') });
  const body = [
    cards(history, spans, ctx, layout),
    section('curves', 'Curves', `<div class="figs">${layout.charts.map((c, i) => figure(layoutChart(history, spans, c), i === 0 ? 'Dashed lines: fine-tune start, the best epoch of each phase (its weights were kept) and early stops.' : undefined)).join('')}${figure(lr)}</div>`),
    ctx.lrFind?.length ? section('lr-find', 'LR range test', lrFindSection(ctx.lrFind)) : '',
    ctx.training ? section('params', 'Hyperparameters', paramsTable(ctx.training)) : '',
    section('epochs', 'Epochs', epochTable(history, spans, layout)),
  ];
  return htmlPage({
    title: `Training history${ctx.name ? `: ${ctx.name}` : ''}`,
    subtitle: [spans.map((s) => `${s.phase}: epochs ${s.first}–${s.last}${s.stoppedEarly ? ' (stopped early)' : ''}, best ${s.best}`).join(' · ') || 'no epochs'],
    nav: [['curves', 'Curves'], ...(ctx.lrFind?.length ? [['lr-find', 'LR range test'] as [string, string]] : []), ...(ctx.training ? [['params', 'Hyperparameters'] as [string, string]] : []), ['epochs', 'Epochs']],
    body: body.filter(Boolean).join('\n'),
    footer: `Generated by mlctl train on ${new Date().toISOString()}. The same figures are in history.csv and history.json.`,
  });
}

/** Write history.json, history.csv, history.png and history.html into `dir`; returns the file names. */
export async function writeHistoryFiles<H extends EpochRecord = EpochMetrics>(dir: string, history: H[], ctx: HistoryContext = {}, layout: HistoryLayout<H> = defaultLayout<H>()): Promise<string[]> {
  await fs.writeFile(path.join(dir, 'history.json'), JSON.stringify({ history, ...(ctx.lrFind?.length ? { lrFind: ctx.lrFind } : {}) }, null, 2) + '\n');
  await fs.writeFile(path.join(dir, 'history.csv'), historyCsv(history, layout));
  await fs.writeFile(path.join(dir, 'history.png'), await svgToPng(historySvg(history, ctx.epochs, layout)));
  await fs.writeFile(path.join(dir, 'history.html'), historyHtml(history, ctx, layout));
  return ['history.json', 'history.csv', 'history.png', 'history.html'];
}

/** HistoryContext from a manifest draft's metrics and training block. */
export function historyContext(name: string, draft: { metrics?: Record<string, unknown>; training?: Record<string, unknown> }): HistoryContext {
  const t = draft.training ?? {};
  const ft = (t.fineTune ?? undefined) as { epochs?: number } | undefined;
  const epochs = typeof t.epochs === 'number' ? { head: t.epochs, ...(typeof ft?.epochs === 'number' ? { 'fine-tune': ft.epochs } : {}) } : undefined;
  return { name, epochs, patience: typeof t.patience === 'number' ? t.patience : null, metrics: draft.metrics, training: t };
}

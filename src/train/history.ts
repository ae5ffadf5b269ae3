// Training history as files in the model package: history.json, history.csv, history.png (loss and accuracy curves)
// and history.html (a self-contained page: curves for train and validation, the best and early-stopping epochs, the
// fine-tune phase boundary, the learning rate, hyperparameters and the per-epoch table). Charts: web/charts.ts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { csvLine } from '../data/csv.js';
import { lineChart, PALETTE, svgToPng, type Marker } from '../web/charts.js';
import { card, figure, htmlPage, section, table } from '../web/html.js';
import type { EpochMetrics } from '../heads/head.js';
import type { LrFindResult } from './lr-find.js';

const COLUMNS = ['epoch', 'phase', 'loss', 'accuracy', 'valLoss', 'valAccuracy', 'lr', 'seconds'] as const;

export function historyCsv(history: EpochMetrics[]): string {
  const head = 'epoch,phase,loss,accuracy,val_loss,val_accuracy,lr,seconds\n';
  const rows = history.map((h, i) =>
    csvLine(
      COLUMNS.map((c) => {
        const v = c === 'epoch' ? i + 1 : (h as unknown as Record<string, unknown>)[c];
        return v === undefined ? undefined : typeof v === 'number' ? Number(v.toPrecision(6)) : String(v);
      }),
    ),
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
  /** The epoch whose weights the phase kept (lowest val_loss, else loss: Keras's restore_best_weights). */
  best: number;
  /** The phase ended before its epoch budget (patience ran out). */
  stoppedEarly: boolean;
}

/** The phases in order with their best and early-stopping epochs. */
export function phaseSpans(history: readonly EpochMetrics[], epochs?: EpochBudget): PhaseSpan[] {
  const spans: PhaseSpan[] = [];
  history.forEach((h, i) => {
    const last = spans[spans.length - 1];
    if (!last || last.phase !== h.phase) spans.push({ phase: h.phase, first: i + 1, last: i + 1, best: i + 1, stoppedEarly: false });
    else last.last = i + 1;
  });
  for (const s of spans) {
    const monitor = (n: number) => history[n - 1]!.valLoss ?? history[n - 1]!.loss;
    for (let n = s.first; n <= s.last; n++) if (monitor(n) < monitor(s.best)) s.best = n;
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

export function lossChart(history: readonly EpochMetrics[], spans: readonly PhaseSpan[], width = 480): string {
  return lineChart({
    title: 'Loss',
    width,
    xLabel: 'epoch',
    yLabel: 'categorical cross-entropy',
    series: [
      { name: 'loss (train)', color: PALETTE[0], values: history.map((h) => finiteOrUndefined(h.loss)) },
      { name: 'val_loss', color: PALETTE[1], values: history.map((h) => finiteOrUndefined(h.valLoss)) },
    ],
    markers: markers(spans),
  });
}

export function accuracyChart(history: readonly EpochMetrics[], spans: readonly PhaseSpan[], width = 480): string {
  return lineChart({
    title: 'Accuracy',
    width,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    yRange: [0, 1],
    series: [
      { name: 'accuracy (train)', color: PALETTE[0], values: history.map((h) => finiteOrUndefined(h.accuracy)) },
      { name: 'val_accuracy', color: PALETTE[1], values: history.map((h) => finiteOrUndefined(h.valAccuracy)) },
    ],
    markers: markers(spans),
  });
}

/** Loss and accuracy side by side in one SVG (history.png). */
export function historySvg(history: EpochMetrics[], epochs?: EpochBudget): string {
  const spans = phaseSpans(history, epochs);
  const W = 480;
  const inner = [lossChart(history, spans, W), accuracyChart(history, spans, W)].map((svg, i) => svg.replace('<svg ', `<svg x="${i * W}" y="0" `));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="320" viewBox="0 0 ${2 * W} 320">\n${inner.join('\n')}\n</svg>\n`;
}

const num = (v: unknown, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

function cards(history: readonly EpochMetrics[], spans: readonly PhaseSpan[], ctx: HistoryContext): string {
  const m = ctx.metrics ?? {};
  const best = typeof m.bestEpoch === 'number' ? m.bestEpoch : spans[spans.length - 1]?.best;
  const out = [
    card('epochs run', String(history.length), spans.map((s) => `${s.phase} ${s.last - s.first + 1}`).join(', ')),
    card('best epoch', best !== undefined ? String(best) : '—', spans.some((s) => s.stoppedEarly) ? `stopped early (patience ${ctx.patience ?? '?'})` : 'ran every epoch'),
    card('val accuracy', num(m.valAccuracy), `val loss ${num(m.valLoss)}`),
  ];
  if (typeof m.testAccuracy === 'number') out.push(card('test accuracy', num(m.testAccuracy), `test loss ${num(m.testLoss)}`));
  out.push(card('time', `${history.reduce((a, h) => a + h.seconds, 0).toFixed(1)} s`, 'sum of epochs'));
  return `<div class="cards">${out.join('')}</div>`;
}

function paramsTable(training: Record<string, unknown>): string {
  const rows = Object.entries(training)
    .filter(([k]) => k !== 'classCounts' && k !== 'lrFind')
    .map(([k, v]) => [k, v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  return table({ head: ['parameter', 'value'], rows });
}

function epochTable(history: readonly EpochMetrics[], spans: readonly PhaseSpan[]): string {
  const bests = new Set(spans.map((s) => s.best));
  const rows = history.map((h, i) => [String(i + 1), h.phase, num(h.loss), num(h.accuracy), num(h.valLoss), num(h.valAccuracy), String(h.lr), h.seconds.toFixed(1), bests.has(i + 1) ? 'best' : '']);
  return table({ head: ['epoch', 'phase', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'seconds', ''], rows, align: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'] });
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
export function historyHtml(history: EpochMetrics[], ctx: HistoryContext = {}): string {
  const spans = phaseSpans(history, ctx.epochs);
  const lr = lineChart({ title: 'Learning rate', xLabel: 'epoch', yLabel: 'lr', series: [{ name: 'learning rate', color: PALETTE[4], values: history.map((h) => h.lr), step: true }], markers: markers(spans).filter((m) => m.label === 'fine-tune starts') });
  const body = [
    cards(history, spans, ctx),
    section('curves', 'Curves', `<div class="figs">${figure(lossChart(history, spans), 'Dashed lines: fine-tune start, the best epoch of each phase (its weights were kept) and early stops.')}${figure(accuracyChart(history, spans))}${figure(lr)}</div>`),
    ctx.lrFind?.length ? section('lr-find', 'LR range test', lrFindSection(ctx.lrFind)) : '',
    ctx.training ? section('params', 'Hyperparameters', paramsTable(ctx.training)) : '',
    section('epochs', 'Epochs', epochTable(history, spans)),
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
export async function writeHistoryFiles(dir: string, history: EpochMetrics[], ctx: HistoryContext = {}): Promise<string[]> {
  await fs.writeFile(path.join(dir, 'history.json'), JSON.stringify({ history, ...(ctx.lrFind?.length ? { lrFind: ctx.lrFind } : {}) }, null, 2) + '\n');
  await fs.writeFile(path.join(dir, 'history.csv'), historyCsv(history));
  await fs.writeFile(path.join(dir, 'history.png'), await svgToPng(historySvg(history, ctx.epochs)));
  await fs.writeFile(path.join(dir, 'history.html'), historyHtml(history, ctx));
  return ['history.json', 'history.csv', 'history.png', 'history.html'];
}

/** HistoryContext from a manifest draft's metrics and training block. */
export function historyContext(name: string, draft: { metrics?: Record<string, unknown>; training?: Record<string, unknown> }): HistoryContext {
  const t = draft.training ?? {};
  const ft = (t.fineTune ?? undefined) as { epochs?: number } | undefined;
  const epochs = typeof t.epochs === 'number' ? { head: t.epochs, ...(typeof ft?.epochs === 'number' ? { 'fine-tune': ft.epochs } : {}) } : undefined;
  return { name, epochs, patience: typeof t.patience === 'number' ? t.patience : null, metrics: draft.metrics, training: t };
}

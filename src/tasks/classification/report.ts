// How evaluate shows classification metrics: the headline rows, per-class table, confusion matrix (full, or the most
// frequent confusions above 12 classes), calibration and the most confidently wrong examples — for the terminal,
// report.md and index.html alike (evaluate/report*.ts draws the frame: data, comparison, gates, latency, size).
import path from 'node:path';
import { card, esc, figure, table } from '../../web/html.js';
import { f3, f4, renderMarkdown, renderTable, type Rows } from '../../util/table.js';
import type { InputKind, ReportContext, ReportRendering, ReportSection } from '../types.js';
import { confusionMatrixFigure, reliabilitySvg, svgToPng } from './figures.js';
import { topConfusions, type ClassificationMetrics } from './metrics.js';

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—');

/** Above this many classes the full matrix is too wide for a terminal or a Markdown table: list top confusions. */
export const FULL_CONFUSION_MAX_CLASSES = 12;

export function summaryRows(m: ClassificationMetrics): string[][] {
  return [
    ['accuracy', f4(m.accuracy)],
    [`top-${m.topK.k} accuracy`, f4(m.topK.accuracy)],
    ['log loss', f4(m.logLoss)],
    ['ECE (15 bins)', f4(m.ece)],
    ['macro precision / recall / F1', `${f3(m.macro.precision)} / ${f3(m.macro.recall)} / ${f3(m.macro.f1)}`],
    ['weighted precision / recall / F1', `${f3(m.weighted.precision)} / ${f3(m.weighted.recall)} / ${f3(m.weighted.f1)}`],
  ];
}

export function perClassRows(m: ClassificationMetrics): Rows {
  const rows = m.perClass.map((c) => [c.label, f3(c.precision), f3(c.recall), f3(c.f1), String(c.support)]);
  rows.push(['macro avg', f3(m.macro.precision), f3(m.macro.recall), f3(m.macro.f1), String(m.macro.support)]);
  rows.push(['weighted avg', f3(m.weighted.precision), f3(m.weighted.recall), f3(m.weighted.f1), String(m.weighted.support)]);
  return { head: ['class', 'precision', 'recall', 'F1', 'support'], rows, align: ['left', 'right', 'right', 'right', 'right'] };
}

export function confusionRows(m: ClassificationMetrics): Rows {
  return {
    head: ['true \\ predicted', ...m.labels],
    rows: m.confusion.map((row, i) => [m.labels[i]!, ...row.map(String)]),
    align: ['left', ...m.labels.map(() => 'right' as const)],
  };
}

export function topConfusionRows(m: ClassificationMetrics, n = 15): Rows {
  return {
    head: ['true', 'predicted as', 'count', 'of true class'],
    rows: topConfusions(m.confusion, n).map((c) => [m.labels[c.trueIndex]!, m.labels[c.predictedIndex]!, String(c.count), `${(c.fraction * 100).toFixed(1)}%`]),
    align: ['left', 'left', 'right', 'right'],
  };
}

/** The confusion section: the full matrix for few classes, else the most frequent confusions. */
export function confusionSection(m: ClassificationMetrics): { title: string; rows: Rows } {
  const k = m.labels.length;
  if (k <= FULL_CONFUSION_MAX_CLASSES) return { title: 'Confusion matrix (rows: true class, columns: predicted):', rows: confusionRows(m) };
  return { title: `Most frequent confusions (${k} classes: the full matrix is in --json and the --report heatmap):`, rows: topConfusionRows(m) };
}

/** Example paths relative to the data folder; tabular refs ("line N") and unnamed examples (#index) as they are. */
const refOf = (w: { ref?: string; index: number }, root?: string) => (w.ref ? (root && path.isAbsolute(w.ref) ? path.relative(root, w.ref) : w.ref) : `#${w.index}`);

export function worstRows(m: ClassificationMetrics, input: InputKind, root?: string): Rows {
  return {
    head: [input === 'tabular' ? 'row' : 'image', 'true', 'predicted', 'score', 'true score'],
    rows: m.mostConfidentWrong.map((w) => [refOf(w, root), w.trueLabel, w.predictedLabel, f3(w.score), f3(w.trueScore)]),
    align: ['left', 'left', 'left', 'right', 'right'],
  };
}

/** The most confidently wrong examples as a gallery: image thumbnails, or the row reference for tabular data. */
async function worstHtml(m: ClassificationMetrics, input: InputKind, root: string): Promise<string> {
  const worst = m.mostConfidentWrong;
  if (worst.length === 0) return '<p class="muted">No misclassified examples.</p>';
  const tabular = input === 'tabular';
  // Thumbnails (sharp) load only when a report is written.
  const { thumbnails } = await import('../../web/thumbnails.js');
  const thumbs = tabular ? worst.map(() => undefined) : await thumbnails(worst.map((w) => (w.ref && path.isAbsolute(w.ref) ? w.ref : w.ref ? path.resolve(root, w.ref) : undefined)));
  const items = worst.map((w, i) => {
    // Eager: the thumbnails are data: URIs already in the page, and a lazy one is missing from a printed or captured report.
    const img = thumbs[i] ? `<img src="${thumbs[i]}" alt="${esc(refOf(w, root))}" decoding="sync">` : `<div class="missing">${tabular ? esc(refOf(w, root)) : 'unreadable'}</div>`;
    return `<div class="thumb">${img}<div>true <b class="t">${esc(w.trueLabel)}</b> (${f3(w.trueScore)})</div><div>predicted <b class="p">${esc(w.predictedLabel)}</b> (${f3(w.score)})</div><div class="path">${esc(refOf(w, root))}</div></div>`;
  });
  return `<div class="thumbs">${items.join('\n')}</div>`;
}

async function sections(m: ClassificationMetrics, input: InputKind, ctx: ReportContext): Promise<ReportSection[]> {
  const cs = confusionSection(m);
  const confusionSvg = await confusionMatrixFigure(m.confusion, m.labels, `Confusion matrix — ${ctx.name}`);
  const reliability = reliabilitySvg(m.calibration, m.ece, `Reliability — ${ctx.name}`);
  const files = { confusion: `confusion-matrix${ctx.stem}.png`, reliability: `reliability${ctx.stem}.png` };
  const top = m.labels.length > FULL_CONFUSION_MAX_CLASSES ? table(topConfusionRows(m), { caption: 'Most frequent confusions' }) : '';
  return [
    { id: 'classes', title: 'Per class', place: 'metrics', markdown: [renderMarkdown(perClassRows(m))], html: table(perClassRows(m)) },
    {
      id: 'confusion',
      title: 'Confusion matrix',
      place: 'metrics',
      markdown: [cs.title, '', cs.rows.rows.length > 0 ? renderMarkdown(cs.rows) : '(no confusions)', '', `![confusion matrix](${files.confusion})`],
      html: figure(confusionSvg, 'Rows: true class; columns: predicted. Colour: fraction of the true class; numbers: counts.') + top,
      files: [{ name: files.confusion, data: await svgToPng(confusionSvg) }],
    },
    {
      id: 'calibration',
      title: 'Calibration',
      place: 'metrics',
      markdown: [`Expected calibration error (15 bins): ${m.ece.toFixed(4)}.`, '', `![reliability diagram](${files.reliability})`],
      html: figure(reliability, 'Blue: accuracy per confidence bin; red: gap to the bin\'s mean confidence; dashed: perfect calibration.'),
      files: [{ name: files.reliability, data: await svgToPng(reliability) }],
    },
    {
      id: 'worst',
      title: 'Most confidently wrong',
      place: 'examples',
      ...(m.mostConfidentWrong.length > 0 ? { markdown: [renderMarkdown(worstRows(m, input, ctx.root))] } : {}),
      html: await worstHtml(m, input, ctx.root),
    },
  ];
}

/** evaluate's rendering of classification metrics, for images or table rows. */
export function classificationReport(input: InputKind): ReportRendering<ClassificationMetrics> {
  const unit = input === 'tabular' ? 'rows' : 'images';
  return {
    summary: summaryRows,
    text(m, ctx) {
      const out = ['Per class:', renderTable(perClassRows(m))];
      const cs = confusionSection(m);
      if (cs.rows.rows.length > 0) out.push(cs.title, renderTable(cs.rows));
      if (m.mostConfidentWrong.length > 0) out.push('Most confidently wrong:', renderTable(worstRows(m, input, ctx.root)));
      return out;
    },
    cards: (m) => [
      card('accuracy', pct(m.accuracy), `${m.count} ${unit}`),
      card(`top-${m.topK.k} accuracy`, pct(m.topK.accuracy)),
      card('macro F1', f3(m.macro.f1), `P ${f3(m.macro.precision)} · R ${f3(m.macro.recall)}`),
      card('log loss', f4(m.logLoss)),
      card('ECE (15 bins)', f4(m.ece)),
    ],
    sections: (m, ctx) => sections(m, input, ctx),
  };
}

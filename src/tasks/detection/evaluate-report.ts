// How evaluate shows detection metrics: COCO's twelve numbers, the per-class table, precision-recall curves per class
// at IoU .5 and .75, and the pictures with the most mistakes with their boxes drawn (hits green, false positives red,
// missed objects dashed) — for the terminal, report.md and index.html (evaluate/report*.ts draws the frame).
import path from 'node:path';
import { lineChart, PALETTE, svgToPng, type LineSeries } from '../../web/charts.js';
import { card, esc, figure, table } from '../../web/html.js';
import { f3, renderMarkdown, renderTable, type Rows } from '../../util/table.js';
import type { ReportContext, ReportRendering, ReportSection } from '../types.js';
import type { DetectionExample, DetectionMetrics } from './evaluate.js';

/** COCO's "-1: no ground truth in this setting" shown as a dash, like pycocotools' summary leaves it out. */
const ap = (x: number) => (x < 0 ? '—' : f3(x));

const HIT = '#2ca02c';
const FALSE_POSITIVE = '#d62728';
const MISSED = '#ff7f0e';

export function summaryRows(m: DetectionMetrics): string[][] {
  const c = m.coco;
  return [
    ['AP @[.50:.05:.95] (mAP)', ap(c.AP)],
    ['AP50 / AP75', `${ap(c.AP50)} / ${ap(c.AP75)}`],
    ['AP small / medium / large', `${ap(c.APsmall)} / ${ap(c.APmedium)} / ${ap(c.APlarge)}`],
    ['AR @1 / @10 / @100', `${ap(c.AR1)} / ${ap(c.AR10)} / ${ap(c.AR100)}`],
    ['AR small / medium / large', `${ap(c.ARsmall)} / ${ap(c.ARmedium)} / ${ap(c.ARlarge)}`],
    ['boxes (truth / detected)', `${m.truthBoxes} / ${m.detections}`],
    [`best F1 at IoU .5`, `${f3(m.threshold.f1)} at score ≥ ${f3(m.threshold.score)} (P ${f3(m.threshold.precision)}, R ${f3(m.threshold.recall)})`],
  ];
}

export function perClassRows(m: DetectionMetrics): Rows {
  return {
    head: ['class', 'AP', 'AP50', 'AP75', 'AR@100', 'truth boxes', 'detections'],
    rows: m.perClass.map((c) => [c.label, ap(c.AP), ap(c.AP50), ap(c.AP75), ap(c.AR100), String(c.truth), String(c.detections)]),
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
  };
}

/** COCO's recall thresholds as percentages (the chart's x axis ticks at whole numbers). */
const RECALL = Array.from({ length: 101 }, (_, i) => i);

/** A class colour for up to any number of classes: the palette, then evenly spaced hues. */
const colourOf = (k: number): string => PALETTE[k] ?? `hsl(${Math.round((k * 137.5) % 360)},65%,45%)`;

/** Precision–recall at one IoU: one line per class with ground truth, the class mean dashed. */
export function prCurveSvg(m: DetectionMetrics, iou: number, title: string): string {
  const curve = m.pr.find((p) => p.iou === iou)!;
  const series: LineSeries[] = m.perClass
    .map((c, k) => ({ c, k }))
    .filter(({ c }) => c.truth > 0)
    .map(({ c, k }) => ({ name: `${c.label} (${ap(c[iou === 0.5 ? 'AP50' : 'AP75'])})`, color: colourOf(k), values: curve.perClass[k]!.map((p) => (p < 0 ? undefined : p)) }));
  series.push({ name: 'mean', color: '#333333', values: curve.mean.map((p) => (p < 0 ? undefined : p)), dashed: true });
  return lineChart({ title, x: RECALL, xLabel: 'recall (%)', yLabel: 'precision', yRange: [0, 1], series, width: 520, height: 360 });
}

const refOf = (ref: string, root: string) => (path.isAbsolute(ref) ? path.relative(root, ref) || ref : ref);

/** One picture with its boxes, as SVG over the picture's thumbnail (coordinates in the picture's own pixels). */
export function exampleSvg(e: DetectionExample, labels: readonly string[], imageUri: string | undefined, displayWidth = 320): string {
  const scale = displayWidth / e.width;
  const w = Math.round(e.width * scale);
  const h = Math.round(e.height * scale);
  const stroke = (2 / scale).toFixed(2);
  const font = (11 / scale).toFixed(1);
  const rect = (b: DetectionExample['truth'][number]['box'], colour: string, dashed: boolean) =>
    `<rect x="${b.x.toFixed(1)}" y="${b.y.toFixed(1)}" width="${b.width.toFixed(1)}" height="${b.height.toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"${dashed ? ` stroke-dasharray="${(6 / scale).toFixed(1)},${(4 / scale).toFixed(1)}"` : ''}/>`;
  const text = (x: number, y: number, s: string, colour: string) => `<text x="${x.toFixed(1)}" y="${Math.max(y - 2 / scale, 10 / scale).toFixed(1)}" font-size="${font}" fill="${colour}" stroke="white" stroke-width="${(3 / scale).toFixed(2)}" paint-order="stroke">${esc(s)}</text>`;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${e.width} ${e.height}" role="img" aria-label="${esc(path.basename(e.ref))}">`];
  parts.push(imageUri ? `<image href="${imageUri}" x="0" y="0" width="${e.width}" height="${e.height}" preserveAspectRatio="none"/>` : `<rect width="100%" height="100%" fill="#dddddd"/>`);
  for (const t of e.truth) if (!t.found) parts.push(`<g class="missed">${rect(t.box, MISSED, true)}${text(t.box.x, t.box.y + t.box.height + 12 / scale, `missed ${labels[t.label] ?? t.label}`, MISSED)}</g>`);
  for (const d of e.detections) {
    const colour = d.hit ? HIT : FALSE_POSITIVE;
    parts.push(`<g class="${d.hit ? 'tp' : 'fp'}">${rect(d.box, colour, false)}${text(d.box.x, d.box.y, `${labels[d.label] ?? d.label} ${d.score.toFixed(2)}`, colour)}</g>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

export function exampleRows(m: DetectionMetrics, root: string): Rows {
  return {
    head: ['image', 'true boxes', 'hits', 'false positives', 'missed'],
    rows: m.examples.map((e) => [refOf(e.ref, root), String(e.truth.length), String(e.detections.filter((d) => d.hit).length), String(e.detections.filter((d) => !d.hit).length), String(e.truth.filter((t) => !t.found).length)]),
    align: ['left', 'right', 'right', 'right', 'right'],
  };
}

async function examplesHtml(m: DetectionMetrics, root: string): Promise<string> {
  if (m.examples.length === 0) return '<p class="muted">No pictures with objects or detections to show.</p>';
  const { thumbnails } = await import('../../web/thumbnails.js');
  const thumbs = await thumbnails(m.examples.map((e) => e.ref), { size: 480 });
  const legend = `<p class="muted">Detections scoring ≥ ${f3(m.threshold.score)} (the best F1 at IoU .5): <b style="color:${HIT}">hit</b>, <b style="color:${FALSE_POSITIVE}">false positive</b>; <b style="color:${MISSED}">missed objects dashed</b>.</p>`;
  const items = m.examples.map((e, i) => `<div class="thumb det">${exampleSvg(e, m.labels, thumbs[i])}<div>${e.errors} mistake(s)</div><div class="path">${esc(refOf(e.ref, root))}</div></div>`);
  return `${legend}<div class="thumbs">${items.join('\n')}</div>`;
}

async function sections(m: DetectionMetrics, ctx: ReportContext): Promise<ReportSection[]> {
  const curves = [0.5, 0.75].map((iou) => ({ iou, svg: prCurveSvg(m, iou, `Precision–recall at IoU ${iou} — ${ctx.name}`), file: `pr-iou${Math.round(iou * 100)}${ctx.stem}.png` }));
  return [
    { id: 'classes', title: 'Per class', place: 'metrics', markdown: [renderMarkdown(perClassRows(m))], html: table(perClassRows(m)) },
    {
      id: 'pr',
      title: 'Precision–recall curves',
      place: 'metrics',
      markdown: curves.map((c) => `![precision-recall at IoU ${c.iou}](${c.file})`),
      html: `<div class="figs">${curves.map((c) => figure(c.svg, `COCO's interpolated precision at 101 recall points, IoU ${c.iou}, up to 100 detections per picture; dashed: the mean over classes.`)).join('')}</div>`,
      files: await Promise.all(curves.map(async (c) => ({ name: c.file, data: await svgToPng(c.svg) }))),
    },
    {
      id: 'examples',
      title: 'Pictures with the most mistakes',
      place: 'examples',
      ...(m.examples.length > 0 ? { markdown: [renderMarkdown(exampleRows(m, ctx.root))] } : {}),
      html: await examplesHtml(m, ctx.root),
    },
  ];
}

/** evaluate's rendering of detection metrics. */
export const detectionReport: ReportRendering<DetectionMetrics> = {
  summary: summaryRows,
  text: (m, ctx) => ['Per class:', renderTable(perClassRows(m)), ...(m.examples.length ? ['Pictures with the most mistakes:', renderTable(exampleRows(m, ctx.root))] : [])],
  cards: (m) => [
    card('mAP @[.50:.95]', ap(m.coco.AP), `${m.count} images`),
    card('AP50 / AP75', `${ap(m.coco.AP50)} / ${ap(m.coco.AP75)}`),
    card('AR@100', ap(m.coco.AR100)),
    card('best F1 (IoU .5)', f3(m.threshold.f1), `score ≥ ${f3(m.threshold.score)}`),
  ],
  sections,
};

/** What evaluate's report reads of the detection task (id, input, report) until tasks/detection registers it. */
export const detectionRendering = { id: 'detection', input: 'image' as const, report: detectionReport };

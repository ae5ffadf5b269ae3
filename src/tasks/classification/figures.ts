// Classification figures drawn with the SVG chart module (web/charts.ts): the confusion-matrix heat map with class
// labels and the reliability diagram (calibration per confidence bin) — inlined in index.html, rasterised for report.md.
import { escapeXml, FONT, heatmap, heatmapCellsDataUri as cellsDataUri, heatmapLayout, svgToPng } from '../../web/charts.js';
import type { CalibrationBin } from './metrics.js';

export { escapeXml, heatmapLayout, svgToPng } from '../../web/charts.js';

/** Above this many classes the cells are drawn as one embedded raster instead of K² SVG rects (librsvg limits). */
export const RASTER_CELLS_ABOVE = 64;

const rowFraction = (confusion: number[][], i: number, j: number): number => {
  const row = confusion[i] ?? [];
  const total = row.reduce((a, b) => a + b, 0);
  return total > 0 ? (row[j] ?? 0) / total : 0;
};

/** The cell grid as a PNG data URI (K·cell pixels square), for large class counts. */
export function heatmapCellsDataUri(confusion: number[][], k: number, cell: number): Promise<string> {
  return cellsDataUri(k, cell, (i, j) => rowFraction(confusion, i, j));
}

/**
 * Confusion matrix SVG: colour = row-normalised fraction (recall per true class), text = raw count. `cellsImage`
 * (from heatmapCellsDataUri) replaces the per-cell rects for large class counts.
 */
export function confusionMatrixSvg(confusion: number[][], labels: readonly string[], title = 'Confusion matrix', cellsImage?: string): string {
  return heatmap({
    title,
    rowLabels: labels,
    colLabels: labels,
    shade: (i, j) => rowFraction(confusion, i, j),
    text: (i, j) => String(confusion[i]?.[j] ?? 0),
    xLabel: 'predicted',
    yLabel: 'true',
    legend: `colour: fraction of the true class (row)${heatmapLayout(labels).showCounts ? '; numbers: counts' : ''}`,
    ...(cellsImage ? { cellsImage } : {}),
  });
}

/** The confusion matrix as inline SVG for HTML: large class counts get their cell grid as an embedded raster. */
export async function confusionMatrixFigure(confusion: number[][], labels: readonly string[], title?: string): Promise<string> {
  const cells = labels.length > RASTER_CELLS_ABOVE ? await heatmapCellsDataUri(confusion, labels.length, heatmapLayout(labels).cell) : undefined;
  return confusionMatrixSvg(confusion, labels, title, cells);
}

export const RELIABILITY_SIZE = { width: 560, height: 480 } as const;
const PLOT = { x0: 64, y0: 48, x1: 536, y1: 416 } as const;

/** Reliability diagram: per-bin accuracy bars against the diagonal of perfect calibration, gaps in red. */
export function reliabilitySvg(bins: readonly CalibrationBin[], ece: number, title = 'Reliability diagram'): string {
  const { width, height } = RELIABILITY_SIZE;
  const px = (v: number) => PLOT.x0 + v * (PLOT.x1 - PLOT.x0);
  const py = (v: number) => PLOT.y1 - v * (PLOT.y1 - PLOT.y0);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="26" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(`${title} (ECE ${ece.toFixed(4)})`)}</text>`);
  for (let t = 0; t <= 5; t++) {
    const v = t / 5;
    parts.push(`<line x1="${PLOT.x0}" y1="${py(v)}" x2="${PLOT.x1}" y2="${py(v)}" stroke="#eeeeee"/>`);
    parts.push(`<text x="${PLOT.x0 - 8}" y="${py(v) + 4}" font-size="11" text-anchor="end">${v.toFixed(1)}</text>`);
    parts.push(`<text x="${px(v)}" y="${PLOT.y1 + 18}" font-size="11" text-anchor="middle">${v.toFixed(1)}</text>`);
  }
  for (const b of bins) {
    if (b.count === 0) continue;
    const x = px(b.lower) + 1;
    const w = px(b.upper) - px(b.lower) - 2;
    parts.push(`<rect x="${x}" y="${py(b.accuracy)}" width="${w}" height="${py(0) - py(b.accuracy)}" fill="rgb(33,113,181)"/>`);
    const top = Math.max(b.accuracy, b.confidence);
    const bottom = Math.min(b.accuracy, b.confidence);
    if (top - bottom > 0) parts.push(`<rect x="${x}" y="${py(top)}" width="${w}" height="${py(bottom) - py(top)}" fill="rgb(222,45,38)" fill-opacity="0.35" stroke="rgb(222,45,38)"/>`);
  }
  parts.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#444444" stroke-dasharray="6,4"/>`);
  parts.push(`<rect x="${PLOT.x0}" y="${PLOT.y0}" width="${PLOT.x1 - PLOT.x0}" height="${PLOT.y1 - PLOT.y0}" fill="none" stroke="black"/>`);
  parts.push(`<text x="${(PLOT.x0 + PLOT.x1) / 2}" y="${PLOT.y1 + 40}" font-size="13" text-anchor="middle">confidence (max probability)</text>`);
  parts.push(`<text x="18" y="${(PLOT.y0 + PLOT.y1) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 18 ${(PLOT.y0 + PLOT.y1) / 2})">accuracy</text>`);
  parts.push(`<text x="${PLOT.x0}" y="${height - 10}" font-size="11" fill="#555555">blue: accuracy per bin; red: gap to mean confidence; dashed: ideal</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** The confusion-matrix figure as PNG bytes, switching to a raster cell grid above RASTER_CELLS_ABOVE classes. */
export async function confusionMatrixPng(confusion: number[][], labels: readonly string[], title?: string): Promise<Buffer> {
  return svgToPng(await confusionMatrixFigure(confusion, labels, title));
}

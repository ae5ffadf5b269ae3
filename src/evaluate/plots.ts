// Report figures drawn as SVG and rasterised to PNG by sharp (librsvg) — no browser, no canvas dependency.
// Confusion-matrix heatmap with class labels, and a reliability diagram (calibration per confidence bin).
import sharp from 'sharp';
import type { CalibrationBin } from '../metrics/classification.js';

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Matplotlib's "Blues" end points, linearly interpolated: 0 → near white, 1 → dark blue. */
export function blues(t: number): [number, number, number] {
  const a = [247, 251, 255];
  const b = [8, 48, 107];
  const u = Math.min(1, Math.max(0, t));
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * u)) as [number, number, number];
}

const rgb = (c: [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;

export interface HeatmapLayout {
  width: number;
  height: number;
  /** Top-left corner of the cell grid and the cell size in pixels. */
  gridX: number;
  gridY: number;
  cell: number;
  showLabels: boolean;
  showCounts: boolean;
}

/**
 * Heatmap geometry: cells of floor(960 / K) px clamped to 1..64 (a grid of at most ~960 px, so 1000 ImageNet classes
 * still fit); labels (truncated to 24 characters) only when a cell is at least 8 px tall, counts only when it is at
 * least 24 px; at least 380 px right of the grid's left edge for the legend.
 */
export function heatmapLayout(labels: readonly string[]): HeatmapLayout {
  const k = Math.max(1, labels.length);
  const cell = Math.min(64, Math.max(1, Math.floor(960 / k)));
  const showLabels = cell >= 8;
  const longest = showLabels ? Math.max(1, ...labels.map((l) => Math.min(24, l.length))) : 0;
  const labelSpace = showLabels ? 12 + Math.ceil(longest * 7.5) : 8;
  const colLabelSpace = showLabels ? Math.ceil(labelSpace * 0.75) + 8 : 8;
  const gridX = 28 + labelSpace;
  const gridY = 36 + 22 + colLabelSpace;
  return { width: Math.max(gridX + k * cell + 24 + (showLabels ? colLabelSpace : 0), gridX + 380), height: gridY + k * cell + 36, gridX, gridY, cell, showLabels, showCounts: cell >= 24 };
}

const shortLabel = (l: string) => (l.length > 24 ? `${l.slice(0, 23)}…` : l);

/** Above this many classes the cells are drawn as one embedded raster instead of K² SVG rects (librsvg limits). */
export const RASTER_CELLS_ABOVE = 64;

const rowFraction = (confusion: number[][], i: number, j: number): number => {
  const row = confusion[i] ?? [];
  const total = row.reduce((a, b) => a + b, 0);
  return total > 0 ? (row[j] ?? 0) / total : 0;
};

/** The cell grid as a PNG data URI (K·cell pixels square), for large class counts. */
export async function heatmapCellsDataUri(confusion: number[][], k: number, cell: number): Promise<string> {
  const side = k * cell;
  const px = Buffer.alloc(side * side * 3);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const c = blues(rowFraction(confusion, i, j));
      for (let y = i * cell; y < (i + 1) * cell; y++) for (let x = j * cell; x < (j + 1) * cell; x++) px.set(c, (y * side + x) * 3);
    }
  }
  const png = await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * Confusion matrix SVG: colour = row-normalised fraction (recall per true class), text = raw count. `cellsImage`
 * (from heatmapCellsDataUri) replaces the per-cell rects for large class counts.
 */
export function confusionMatrixSvg(confusion: number[][], labels: readonly string[], title = 'Confusion matrix', cellsImage?: string): string {
  const L = heatmapLayout(labels);
  const k = labels.length;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" font-family="${FONT}">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${L.width / 2}" y="24" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(title)}</text>`);
  parts.push(`<text x="${L.gridX + (k * L.cell) / 2}" y="50" font-size="13" text-anchor="middle">predicted</text>`);
  parts.push(`<text x="16" y="${L.gridY + (k * L.cell) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${L.gridY + (k * L.cell) / 2})">true</text>`);
  if (cellsImage) {
    parts.push(`<image x="${L.gridX}" y="${L.gridY}" width="${k * L.cell}" height="${k * L.cell}" href="${cellsImage}" style="image-rendering:pixelated"/>`);
  }
  for (let i = 0; i < k && !cellsImage; i++) {
    for (let j = 0; j < k; j++) {
      const count = confusion[i]?.[j] ?? 0;
      const frac = rowFraction(confusion, i, j);
      const x = L.gridX + j * L.cell;
      const y = L.gridY + i * L.cell;
      parts.push(`<rect x="${x}" y="${y}" width="${L.cell}" height="${L.cell}" fill="${rgb(blues(frac))}" stroke="#dddddd" stroke-width="${L.cell >= 10 ? 1 : 0}"/>`);
      if (L.showCounts) {
        const fs = Math.min(14, Math.floor(L.cell / 2.6));
        parts.push(`<text x="${x + L.cell / 2}" y="${y + L.cell / 2 + fs / 3}" font-size="${fs}" text-anchor="middle" fill="${frac > 0.5 ? 'white' : 'black'}">${count}</text>`);
      }
    }
  }
  if (L.showLabels) {
    const fs = Math.min(12, L.cell - 1);
    for (let i = 0; i < k; i++) {
      const label = escapeXml(shortLabel(labels[i]!));
      const cy = L.gridY + i * L.cell + L.cell / 2 + fs / 3;
      parts.push(`<text x="${L.gridX - 6}" y="${cy}" font-size="${fs}" text-anchor="end">${label}</text>`);
      const cx = L.gridX + i * L.cell + L.cell / 2;
      const ty = L.gridY - 6;
      parts.push(`<text x="${cx}" y="${ty}" font-size="${fs}" text-anchor="start" transform="rotate(-45 ${cx} ${ty})">${label}</text>`);
    }
  }
  parts.push(`<text x="${L.gridX}" y="${L.height - 12}" font-size="11" fill="#555555">colour: fraction of the true class (row)${L.showCounts ? '; numbers: counts' : ''}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
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
  const cells = labels.length > RASTER_CELLS_ABOVE ? await heatmapCellsDataUri(confusion, labels.length, heatmapLayout(labels).cell) : undefined;
  return svgToPng(confusionMatrixSvg(confusion, labels, title, cells));
}

/** Rasterise an SVG to PNG bytes at its own pixel size. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 }).png({ compressionLevel: 9 }).toBuffer();
}

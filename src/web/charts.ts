// A tiny hand-written SVG chart module: line charts (training curves), horizontal bars (latency, top-k scores) and
// heat maps (confusion matrices). Output is a self-contained <svg> string: inlined into HTML pages, or rasterised to
// PNG by sharp (librsvg) for report.md and history.png — so no CDN, no browser and no canvas dependency. sharp loads
// only when something is rasterised: the SVG and HTML helpers stay light for the commands that only import them.

export const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export type Rgb = [number, number, number];

/** Matplotlib's "Blues" end points, linearly interpolated: 0 → near white, 1 → dark blue. */
export function blues(t: number): Rgb {
  const a = [247, 251, 255];
  const b = [8, 48, 107];
  const u = Math.min(1, Math.max(0, t));
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * u)) as Rgb;
}

export const rgb = (c: Rgb) => `rgb(${c[0]},${c[1]},${c[2]})`;

/** Tableau-10 (matplotlib's default cycle): series colours people already read as "train" and "validation". */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'] as const;

/** Opening tag with a viewBox so CSS can scale it (max-width:100%); `label` becomes role=img + aria-label. */
function svgOpen(width: number, height: number, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" role="img" aria-label="${escapeXml(label)}">`;
}

/** Rounded, human tick values ("nice numbers") covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max - min < 1e-12) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const tickLabel = (v: number) => {
  if (v !== 0 && Math.abs(v) < 0.01) return Number(v.toPrecision(2)).toExponential().replace('e-', 'e−');
  return Math.abs(v) >= 10000 ? v.toExponential(1) : String(Number(v.toPrecision(4)));
};

export interface LineSeries {
  name: string;
  color: string;
  /** y per x position (undefined or non-finite: a gap). */
  values: ReadonlyArray<number | undefined>;
  dashed?: boolean;
  /** Draw as steps (a value holds until the next point): learning rates. */
  step?: boolean;
}

export interface Marker {
  /** x value (same units as `x`). */
  x: number;
  label: string;
  color?: string;
}

export interface LineChartOptions {
  title: string;
  width?: number;
  height?: number;
  /** x value of each point (default 1..n). */
  x?: readonly number[];
  /** Logarithmic x axis (positive x; ticks at powers of ten): learning-rate range tests. */
  xLog?: boolean;
  xLabel?: string;
  yLabel?: string;
  series: readonly LineSeries[];
  /** Fixed y range (e.g. [0, 1] for accuracy); default: the data's range, padded, including 0 when close. */
  yRange?: [number, number];
  /** Vertical lines with a label at the top (phase boundary, best epoch). */
  markers?: readonly Marker[];
}

/** A line chart with axes, nice ticks, a legend and vertical markers; points are drawn as dots as well as lines. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 480;
  const H = o.height ?? 320;
  // Room above the plot for a one-row legend, so it never covers data or markers.
  const P = { l: 60, r: 16, t: 52, b: 48 };
  const n = Math.max(1, ...o.series.map((s) => s.values.length));
  const tx = (x: number) => (o.xLog ? Math.log10(x) : x);
  const xs = (o.x ?? Array.from({ length: n }, (_, i) => i + 1)).map(tx);
  const finite = o.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  let [lo, hi] = o.yRange ?? [finite.length ? Math.min(...finite) : 0, finite.length ? Math.max(...finite) : 1];
  if (!o.yRange) {
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
    hi += pad;
  }
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const px = (x: number) => P.l + (xMax === xMin ? (W - P.l - P.r) / 2 : ((x - xMin) / (xMax - xMin)) * (W - P.l - P.r));
  const py = (y: number) => H - P.b - ((y - lo) / (hi - lo || 1)) * (H - P.t - P.b);
  const out = [svgOpen(W, H, o.title), `<rect width="100%" height="100%" fill="white"/>`];
  out.push(`<text x="${W / 2}" y="20" font-size="14" font-weight="bold" text-anchor="middle">${escapeXml(o.title)}</text>`);
  for (const t of niceTicks(lo, hi)) {
    out.push(`<line x1="${P.l}" y1="${py(t).toFixed(1)}" x2="${W - P.r}" y2="${py(t).toFixed(1)}" stroke="#eeeeee"/>`);
    out.push(`<text x="${P.l - 6}" y="${(py(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${tickLabel(t)}</text>`);
  }
  if (o.xLog) {
    for (let d = Math.ceil(xMin - 1e-9); d <= xMax + 1e-9; d++) out.push(`<text x="${px(d).toFixed(1)}" y="${H - P.b + 16}" font-size="11" text-anchor="middle">${d === 0 ? '1' : `1e${d}`.replace('e-', 'e−')}</text>`);
  } else {
    const xTicks = xMax - xMin <= 12 ? xs.filter((x) => Number.isInteger(x)) : niceTicks(xMin, xMax, 6).filter((t) => Number.isInteger(t));
    for (const t of xTicks) out.push(`<text x="${px(t).toFixed(1)}" y="${H - P.b + 16}" font-size="11" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  out.push(`<rect x="${P.l}" y="${P.t}" width="${W - P.l - P.r}" height="${H - P.t - P.b}" fill="none" stroke="#888888"/>`);
  if (o.xLabel) out.push(`<text x="${(P.l + W - P.r) / 2}" y="${H - 10}" font-size="12" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  if (o.yLabel) out.push(`<text x="14" y="${(P.t + H - P.b) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(P.t + H - P.b) / 2})">${escapeXml(o.yLabel)}</text>`);
  // Marker labels run up the left side of their line (as matplotlib's axvline annotations), so they never collide.
  for (const m of o.markers ?? []) {
    const x = px(tx(m.x));
    const color = m.color ?? '#555555';
    out.push(`<line x1="${x.toFixed(1)}" y1="${P.t}" x2="${x.toFixed(1)}" y2="${H - P.b}" stroke="${color}" stroke-dasharray="4,3"/>`);
    out.push(`<text x="${(x - 3).toFixed(1)}" y="${P.t + 4}" font-size="10" fill="${color}" text-anchor="end" transform="rotate(-90 ${(x - 3).toFixed(1)} ${P.t + 4})">${escapeXml(m.label)}</text>`);
  }
  let lx = P.l;
  o.series.forEach((s) => {
    const pts = s.values.map((v, i) => (v === undefined || !Number.isFinite(v) ? undefined : [px(xs[i]!), py(v)] as const)).filter((p) => p !== undefined);
    const path = s.step ? pts.flatMap((p, i) => (i === 0 ? [p] : [[p[0], pts[i - 1]![1]] as const, p])) : pts;
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,3"' : ''} points="${path.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ')}"/>`);
    if (pts.length <= 60) for (const p of pts) out.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    const ly = 36;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 16}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4,2"' : ''}/>`);
    out.push(`<text x="${lx + 20}" y="${ly + 4}" font-size="11">${escapeXml(s.name)}</text>`);
    lx += 20 + 6.5 * s.name.length + 18;
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface Bar {
  label: string;
  value: number;
  /** Text after the bar (default: the value to 3 significant digits). */
  text?: string;
  color?: string;
}

/** Horizontal bars from 0 (latency percentiles, top-k scores); `max` fixes the scale (e.g. 1 for probabilities). */
export function barChart(o: { title: string; bars: readonly Bar[]; width?: number; max?: number; unit?: string }): string {
  const W = o.width ?? 480;
  const row = 24;
  const labelW = Math.min(200, 16 + 7 * Math.max(4, ...o.bars.map((b) => Math.min(28, b.label.length))));
  const H = 36 + o.bars.length * row + 12;
  const max = o.max ?? Math.max(1e-12, ...o.bars.map((b) => b.value));
  const span = W - labelW - 90;
  const out = [svgOpen(W, H, o.title), `<rect width="100%" height="100%" fill="white"/>`];
  out.push(`<text x="${W / 2}" y="20" font-size="14" font-weight="bold" text-anchor="middle">${escapeXml(o.title)}</text>`);
  o.bars.forEach((b, i) => {
    const y = 32 + i * row;
    const w = Math.max(0, Math.min(1, b.value / max)) * span;
    const label = b.label.length > 28 ? `${b.label.slice(0, 27)}…` : b.label;
    out.push(`<text x="${labelW - 8}" y="${y + 15}" font-size="12" text-anchor="end">${escapeXml(label)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 8}" fill="${b.color ?? PALETTE[0]}"/>`);
    out.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="11">${escapeXml(b.text ?? `${Number(b.value.toPrecision(3))}${o.unit ?? ''}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface HeatmapOptions {
  title: string;
  rowLabels: readonly string[];
  colLabels: readonly string[];
  /** Colour of each cell, 0..1 (Blues). */
  shade: (i: number, j: number) => number;
  /** Text in each cell (shown only when cells are large enough). */
  text?: (i: number, j: number) => string;
  xLabel?: string;
  yLabel?: string;
  legend?: string;
  /** A pre-rendered raster of the cell grid (data: URI) replacing per-cell rects — for thousands of cells. */
  cellsImage?: string;
}

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
 * Heat-map geometry: cells of floor(960 / K) px clamped to 1..64 (a grid of at most ~960 px, so 1000 ImageNet classes
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

/** A square heat map (K rows × K columns) with rotated column labels, cell texts and a legend line. */
export function heatmap(o: HeatmapOptions): string {
  const L = heatmapLayout(o.rowLabels);
  const k = o.rowLabels.length;
  const parts: string[] = [svgOpen(L.width, L.height, o.title), `<rect width="100%" height="100%" fill="white"/>`];
  parts.push(`<text x="${L.width / 2}" y="24" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(o.title)}</text>`);
  if (o.xLabel) parts.push(`<text x="${L.gridX + (k * L.cell) / 2}" y="50" font-size="13" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  if (o.yLabel) parts.push(`<text x="16" y="${L.gridY + (k * L.cell) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${L.gridY + (k * L.cell) / 2})">${escapeXml(o.yLabel)}</text>`);
  if (o.cellsImage) parts.push(`<image x="${L.gridX}" y="${L.gridY}" width="${k * L.cell}" height="${k * L.cell}" href="${o.cellsImage}" style="image-rendering:pixelated"/>`);
  for (let i = 0; i < k && !o.cellsImage; i++) {
    for (let j = 0; j < k; j++) {
      const t = o.shade(i, j);
      const x = L.gridX + j * L.cell;
      const y = L.gridY + i * L.cell;
      parts.push(`<rect x="${x}" y="${y}" width="${L.cell}" height="${L.cell}" fill="${rgb(blues(t))}" stroke="#dddddd" stroke-width="${L.cell >= 10 ? 1 : 0}"/>`);
      if (L.showCounts && o.text) {
        const fs = Math.min(14, Math.floor(L.cell / 2.6));
        parts.push(`<text x="${x + L.cell / 2}" y="${y + L.cell / 2 + fs / 3}" font-size="${fs}" text-anchor="middle" fill="${t > 0.5 ? 'white' : 'black'}">${escapeXml(o.text(i, j))}</text>`);
      }
    }
  }
  if (L.showLabels) {
    const fs = Math.min(12, L.cell - 1);
    for (let i = 0; i < k; i++) {
      const cy = L.gridY + i * L.cell + L.cell / 2 + fs / 3;
      parts.push(`<text x="${L.gridX - 6}" y="${cy}" font-size="${fs}" text-anchor="end">${escapeXml(shortLabel(o.rowLabels[i]!))}</text>`);
      const cx = L.gridX + i * L.cell + L.cell / 2;
      const ty = L.gridY - 6;
      parts.push(`<text x="${cx}" y="${ty}" font-size="${fs}" text-anchor="start" transform="rotate(-45 ${cx} ${ty})">${escapeXml(shortLabel(o.colLabels[i] ?? ''))}</text>`);
    }
  }
  if (o.legend) parts.push(`<text x="${L.gridX}" y="${L.height - 12}" font-size="11" fill="#555555">${escapeXml(o.legend)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** The cell grid of a K×K heat map as a PNG data URI (K·cell pixels square), for large class counts. */
export async function heatmapCellsDataUri(k: number, cell: number, shade: (i: number, j: number) => number): Promise<string> {
  const side = k * cell;
  const px = Buffer.alloc(side * side * 3);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const c = blues(shade(i, j));
      for (let y = i * cell; y < (i + 1) * cell; y++) for (let x = j * cell; x < (j + 1) * cell; x++) px.set(c, (y * side + x) * 3);
    }
  }
  const { default: sharp } = await import('sharp');
  const png = await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Rasterise an SVG to PNG bytes at its own pixel size. */
export async function svgToPng(svg: string): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(svg), { density: 72 }).png({ compressionLevel: 9 }).toBuffer();
}

// Training history as files: history.json, history.csv and history.png (loss and accuracy curves drawn as SVG and
// rasterised with sharp), stored in the model package beside the model.
import sharp from 'sharp';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EpochMetrics } from './head.js';

const COLUMNS = ['epoch', 'phase', 'loss', 'accuracy', 'valLoss', 'valAccuracy', 'lr', 'seconds'] as const;

export function historyCsv(history: EpochMetrics[]): string {
  const head = 'epoch,phase,loss,accuracy,val_loss,val_accuracy,lr,seconds';
  const rows = history.map((h, i) =>
    COLUMNS.map((c) => {
      const v = c === 'epoch' ? i + 1 : (h as unknown as Record<string, unknown>)[c];
      return v === undefined ? '' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : String(v);
    }).join(','),
  );
  return [head, ...rows].join('\n') + '\n';
}

interface Series {
  name: string;
  color: string;
  values: Array<number | undefined>;
}

function panel(x0: number, y0: number, w: number, h: number, title: string, series: Series[], fixedMax?: number): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const max = fixedMax ?? (all.length ? Math.max(...all) * 1.05 : 1);
  const min = fixedMax !== undefined ? 0 : Math.min(0, ...all);
  const px = (i: number) => x0 + 45 + (n === 1 ? (w - 60) / 2 : (i * (w - 60)) / (n - 1));
  const py = (v: number) => y0 + h - 30 - ((v - min) / (max - min || 1)) * (h - 60);
  const parts = [`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="white"/>`, `<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-size="14" font-family="sans-serif">${title}</text>`];
  parts.push(`<line x1="${x0 + 45}" y1="${py(min)}" x2="${x0 + w - 15}" y2="${py(min)}" stroke="#888"/>`, `<line x1="${x0 + 45}" y1="${py(min)}" x2="${x0 + 45}" y2="${py(max)}" stroke="#888"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = min + ((max - min) * k) / 4;
    parts.push(`<text x="${x0 + 40}" y="${py(v) + 4}" text-anchor="end" font-size="10" font-family="sans-serif">${v.toPrecision(2)}</text>`);
  }
  parts.push(`<text x="${x0 + w / 2}" y="${y0 + h - 8}" text-anchor="middle" font-size="11" font-family="sans-serif">epoch (1–${n})</text>`);
  series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (v === undefined || !Number.isFinite(v) ? undefined : `${px(i).toFixed(1)},${py(v).toFixed(1)}`)).filter(Boolean);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) {
      const [cx, cy] = p!.split(',');
      parts.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${s.color}"/>`);
    }
    parts.push(`<rect x="${x0 + w - 110}" y="${y0 + 28 + si * 16}" width="10" height="10" fill="${s.color}"/>`, `<text x="${x0 + w - 95}" y="${y0 + 37 + si * 16}" font-size="11" font-family="sans-serif">${s.name}</text>`);
  });
  return parts.join('\n');
}

export function historySvg(history: EpochMetrics[]): string {
  const W = 900;
  const H = 360;
  const loss: Series[] = [
    { name: 'loss', color: '#1f77b4', values: history.map((h) => h.loss) },
    { name: 'val_loss', color: '#ff7f0e', values: history.map((h) => h.valLoss) },
  ];
  const acc: Series[] = [
    { name: 'accuracy', color: '#1f77b4', values: history.map((h) => h.accuracy) },
    { name: 'val_accuracy', color: '#ff7f0e', values: history.map((h) => h.valAccuracy) },
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">\n${panel(0, 0, W / 2, H, 'Loss', loss)}\n${panel(W / 2, 0, W / 2, H, 'Accuracy', acc, 1)}\n</svg>\n`;
}

/** Write history.json, history.csv and history.png into `dir`; returns the file names. */
export async function writeHistoryFiles(dir: string, history: EpochMetrics[]): Promise<string[]> {
  await fs.writeFile(path.join(dir, 'history.json'), JSON.stringify({ history }, null, 2) + '\n');
  await fs.writeFile(path.join(dir, 'history.csv'), historyCsv(history));
  await sharp(Buffer.from(historySvg(history))).png().toFile(path.join(dir, 'history.png'));
  return ['history.json', 'history.csv', 'history.png'];
}

// Snapshots: the frame that triggered an event, as JPEG under <state>/snapshots/<camera>/<event id>.jpg,
// optionally with the label and score drawn on it (and the region of interest outlined; with a detection model the
// event's boxes, each with its label, score and track id, and the rule's zone), one SVG overlay composited by sharp. Retention keeps the
// newest `keep` per camera and nothing older than `max_age`, but never a snapshot an undelivered event needs.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Logger } from '../util/log.js';
import type { Region } from './roi.js';
import { isCompleteJpeg } from './sources/jpeg.js';

export interface SnapshotOptions {
  dir: string;
  drawLabel: boolean;
  keep: number;
  maxAgeMs: number;
  quality: number;
  logger: Logger;
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What a detection event adds to its snapshot: the objects' boxes (frame pixels) and the zone outline. */
export interface SnapshotMarks {
  boxes?: ReadonlyArray<{ label: string; score: number; id?: number; box: { x: number; y: number; width: number; height: number } }>;
  zone?: ReadonlyArray<[number, number]>;
}

export const BOX_COLOR = '#ff2d55';
export const ZONE_COLOR = '#00c8ff';

const f1 = (v: number) => String(Math.round(v * 10) / 10);

/** An SVG overlay: a caption bar with the text, the ROI outlined, and a detection's zone and boxes. */
export function overlay(width: number, height: number, caption: string, region?: Region, marks: SnapshotMarks = {}): Buffer {
  const size = Math.max(12, Math.round(Math.min(width, height) / 18));
  const bar = Math.round(size * 1.6);
  const stroke = Math.max(3, Math.round(Math.min(width, height) / 160));
  const roi = region ? `<rect x="${region.left + 1}" y="${region.top + 1}" width="${Math.max(1, region.width - 2)}" height="${Math.max(1, region.height - 2)}" fill="none" stroke="#ffd400" stroke-width="2"/>` : '';
  const zone = marks.zone?.length ? `<polygon points="${marks.zone.map(([x, y]) => `${f1(x)},${f1(y)}`).join(' ')}" fill="rgba(0,200,255,0.15)" stroke="${ZONE_COLOR}" stroke-width="${stroke}"/>` : '';
  const small = Math.max(10, Math.round(size * 0.7));
  const boxes = (marks.boxes ?? [])
    .map((o) => {
      const { x, y, width: w, height: h } = o.box;
      const text = `${o.id !== undefined ? `#${o.id} ` : ''}${o.label} ${Math.round(o.score * 100)}%`;
      // The tag sits above the box, or inside it, below the caption bar, when there is no room above.
      const ty = y - small * 1.3 >= bar ? y - small * 1.3 : Math.max(y, bar);
      const tw = Math.round(text.length * small * 0.62 + small * 0.6);
      return `<rect x="${f1(x)}" y="${f1(y)}" width="${f1(Math.max(1, w))}" height="${f1(Math.max(1, h))}" fill="none" stroke="${BOX_COLOR}" stroke-width="${stroke}"/><rect x="${f1(x)}" y="${f1(ty)}" width="${tw}" height="${f1(small * 1.3)}" fill="${BOX_COLOR}"/><text x="${f1(x + small * 0.3)}" y="${f1(ty + small * 1.0)}" font-family="DejaVu Sans, sans-serif" font-size="${small}" fill="#ffffff">${escapeXml(text)}</text>`;
    })
    .join('');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${roi}${zone}${boxes}<rect x="0" y="0" width="${width}" height="${bar}" fill="rgba(0,0,0,0.6)"/><text x="${Math.round(size / 2)}" y="${Math.round(bar * 0.72)}" font-family="DejaVu Sans, sans-serif" font-size="${size}" fill="#ffffff">${escapeXml(caption)}</text></svg>`,
  );
}

export interface SnapshotStore {
  /** Write the snapshot for an event; returns its path relative to the snapshots folder. */
  save(camera: string, eventId: string, image: Buffer, caption?: string, region?: Region, marks?: SnapshotMarks): Promise<string>;
  read(file: string): Promise<Buffer | undefined>;
  absolute(file: string): string;
  /** Apply retention; `protect` holds event ids whose snapshots must stay. */
  sweep(protect: Set<string>): Promise<number>;
  readonly dir: string;
}

export function createSnapshotStore(opts: SnapshotOptions): SnapshotStore {
  const safe = (file: string) => {
    const abs = path.resolve(opts.dir, file);
    if (!abs.startsWith(path.resolve(opts.dir) + path.sep)) throw new Error(`snapshot path ${file} leaves the snapshots folder`);
    return abs;
  };
  return {
    dir: opts.dir,
    absolute: safe,
    async save(camera, eventId, image, caption, region, marks) {
      const rel = `${camera}/${eventId}.jpg`;
      let out: Buffer = image;
      if ((opts.drawLabel && caption) || !isCompleteJpeg(image)) {
        const img = sharp(image).rotate();
        const meta = await sharp(image).metadata();
        const swap = (meta.orientation ?? 1) >= 5;
        const [w, h] = swap ? [meta.height!, meta.width!] : [meta.width!, meta.height!];
        if (opts.drawLabel && caption) img.composite([{ input: overlay(w, h, caption, region, marks), top: 0, left: 0 }]);
        out = await img.jpeg({ quality: opts.quality }).toBuffer();
      }
      const file = safe(rel);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, out);
      return rel;
    },
    async read(file) {
      return fs.readFile(safe(file)).catch(() => undefined);
    },
    async sweep(protect) {
      let removed = 0;
      const cameras = await fs.readdir(opts.dir, { withFileTypes: true }).catch(() => []);
      const cutoff = Date.now() - opts.maxAgeMs;
      for (const cam of cameras.filter((c) => c.isDirectory())) {
        const dir = path.join(opts.dir, cam.name);
        const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.jpg')).sort(); // UUIDv7 names sort by time
        for (const [i, f] of files.entries()) {
          const id = f.slice(0, -4);
          if (protect.has(id)) continue;
          const tooMany = i < files.length - opts.keep;
          const st = tooMany ? undefined : await fs.stat(path.join(dir, f)).catch(() => undefined);
          if (tooMany || (st && st.mtimeMs < cutoff)) {
            await fs.rm(path.join(dir, f), { force: true });
            removed++;
          }
        }
      }
      if (removed) opts.logger.debug(`snapshots: removed ${removed} old snapshot(s) (keep ${opts.keep} per camera, max age ${Math.round(opts.maxAgeMs / 3_600_000)} h)`);
      return removed;
    },
  };
}

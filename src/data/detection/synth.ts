// A deterministic synthetic detection dataset for the quickstart, tests and benchmarks: several solid shapes per
// picture (circle, square, triangle, ring, cross) in class colours over a noisy background, each with its tight box,
// some pictures without objects, written as COCO (annotations.json + images/), YOLO (data.yaml, images/, labels/) or
// Pascal VOC (Annotations/, JPEGImages/). No binaries in git.
import sharp from 'sharp';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../artifacts/atomic.js';
import { MlctlError } from '../../errors.js';
import { createRng, deriveSeed, gaussian, type Rng } from '../../util/random.js';
import { colourFor, OBJECT_SHAPES, shapePainter, type Painter } from '../synth.js';
import { cocoDocument } from './coco.js';
import type { Box, DetectionFormat, DetectionSample } from './types.js';
import { vocDocument } from './voc.js';

export interface DetectionSynthOptions {
  out: string;
  /** Object classes, 1 to 5 (circle, square, triangle, ring, cross). */
  classes?: number;
  images?: number;
  /** Picture width and height. */
  size?: number;
  /** Most objects in one picture (each picture has 0..maxObjects; one in ten has none). */
  maxObjects?: number;
  layout?: DetectionFormat;
  seed?: number;
}

export interface DetectionSynthResult {
  out: string;
  layout: DetectionFormat;
  classes: string[];
  images: number;
  boxes: number;
}

interface Placed {
  label: number;
  paint: Painter;
  colour: [number, number, number];
  cx: number;
  cy: number;
  r: number;
}

/** Objects that do not overlap much: centres at least 1.1 radii apart, inside the picture. */
function placeObjects(rng: Rng, size: number, count: number, classes: number): Placed[] {
  const placed: Placed[] = [];
  for (let tries = 0; placed.length < count && tries < count * 20; tries++) {
    const r = size * (0.07 + 0.13 * rng());
    const cx = r + rng() * (size - 2 * r);
    const cy = r + rng() * (size - 2 * r);
    if (placed.some((p) => Math.hypot(p.cx - cx, p.cy - cy) < 1.1 * (p.r + r))) continue;
    const label = Math.floor(rng() * classes);
    placed.push({ label, cx, cy, r, paint: shapePainter(OBJECT_SHAPES[label]!, cx, cy, r), colour: colourFor(label, classes, rng) });
  }
  return placed;
}

/** The picture's pixels and each object's tight box (the pixels it painted). */
function render(rng: Rng, size: number, objects: Placed[]): { px: Uint8Array; boxes: Array<{ label: number; box: Box }> } {
  const bg = [20 + rng() * 50, 20 + rng() * 50, 20 + rng() * 50];
  const px = new Uint8Array(size * size * 3);
  const ext = objects.map(() => ({ x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity }));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Later objects are drawn over earlier ones.
      let on = -1;
      for (let i = objects.length - 1; i >= 0; i--) {
        if (objects[i]!.paint(x + 0.5, y + 0.5)) {
          on = i;
          break;
        }
      }
      const colour = on >= 0 ? objects[on]!.colour : bg;
      if (on >= 0) {
        const e = ext[on]!;
        e.x0 = Math.min(e.x0, x);
        e.y0 = Math.min(e.y0, y);
        e.x1 = Math.max(e.x1, x + 1);
        e.y1 = Math.max(e.y1, y + 1);
      }
      for (let c = 0; c < 3; c++) px[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(colour[c]! + gaussian(rng) * 14)));
    }
  }
  const boxes = objects.flatMap((o, i) => {
    const e = ext[i]!;
    return e.x1 > e.x0 ? [{ label: o.label, box: { x: e.x0, y: e.y0, width: e.x1 - e.x0, height: e.y1 - e.y0 } }] : [];
  });
  return { px, boxes };
}

function check(opts: Required<Omit<DetectionSynthOptions, 'out'>>): void {
  if (!Number.isInteger(opts.classes) || opts.classes < 1 || opts.classes > OBJECT_SHAPES.length) throw new MlctlError('OPTION_INVALID', [`--classes must be an integer from 1 to ${OBJECT_SHAPES.length} for --task detection (${OBJECT_SHAPES.join(', ')})`]);
  if (!Number.isInteger(opts.images) || opts.images < 1) throw new MlctlError('OPTION_INVALID', ['--images must be a positive integer']);
  if (!Number.isInteger(opts.size) || opts.size < 32 || opts.size > 4096) throw new MlctlError('OPTION_INVALID', ['--size must be an integer from 32 to 4096 for --task detection']);
  if (!Number.isInteger(opts.maxObjects) || opts.maxObjects < 1 || opts.maxObjects > 20) throw new MlctlError('OPTION_INVALID', ['--max-objects must be an integer from 1 to 20']);
}

export async function generateDetectionDataset(options: DetectionSynthOptions): Promise<DetectionSynthResult> {
  const opts = { classes: 3, images: 200, size: 128, maxObjects: 3, layout: 'coco' as DetectionFormat, seed: 42, ...options };
  check(opts);
  const labels = OBJECT_SHAPES.slice(0, opts.classes) as string[];
  const out = path.resolve(opts.out);
  const imageDir = opts.layout === 'voc' ? path.join(out, 'JPEGImages') : path.join(out, 'images');
  await fs.mkdir(imageDir, { recursive: true });
  const rng = createRng(deriveSeed(opts.seed, 'detection-synth'));
  const samples: DetectionSample[] = [];
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < opts.images; i++) {
    const count = i % 10 === 9 ? 0 : 1 + Math.floor(rng() * opts.maxObjects);
    const { px, boxes } = render(rng, opts.size, placeObjects(rng, opts.size, count, labels.length));
    const file = path.join(imageDir, `img_${String(i).padStart(5, '0')}.jpg`);
    pending.push(sharp(px, { raw: { width: opts.size, height: opts.size, channels: 3 } }).jpeg({ quality: 92 }).toFile(file));
    if (pending.length >= 16) await Promise.all(pending.splice(0));
    samples.push({ id: i + 1, path: file, width: opts.size, height: opts.size, boxes: boxes.map((b, j) => ({ ...b, source: `img_${i} object ${j}` })) });
  }
  await Promise.all(pending);
  await writeAnnotations(out, opts.layout, samples, labels);
  return { out, layout: opts.layout, classes: labels, images: samples.length, boxes: samples.reduce((a, s) => a + s.boxes.length, 0) };
}

async function writeAnnotations(out: string, layout: DetectionFormat, samples: DetectionSample[], labels: string[]): Promise<void> {
  if (layout === 'coco') {
    await writeFileAtomic(path.join(out, 'annotations.json'), JSON.stringify(cocoDocument(samples, labels, labels.map((_, i) => i + 1), out), null, 1) + '\n');
  } else if (layout === 'yolo') {
    await fs.mkdir(path.join(out, 'labels'), { recursive: true });
    for (const s of samples) {
      const lines = s.boxes.map((b) => [b.label, (b.box.x + b.box.width / 2) / s.width, (b.box.y + b.box.height / 2) / s.height, b.box.width / s.width, b.box.height / s.height].map((v, k) => (k ? v.toFixed(6) : String(v))).join(' '));
      await fs.writeFile(path.join(out, 'labels', path.basename(s.path, '.jpg') + '.txt'), lines.join('\n') + (lines.length ? '\n' : ''));
    }
    await fs.writeFile(path.join(out, 'classes.txt'), labels.join('\n') + '\n');
  } else {
    await fs.mkdir(path.join(out, 'Annotations'), { recursive: true });
    for (const s of samples) await fs.writeFile(path.join(out, 'Annotations', path.basename(s.path, '.jpg') + '.xml'), vocDocument(s, labels));
    await fs.writeFile(path.join(out, 'labels.txt'), labels.join('\n') + '\n');
  }
}

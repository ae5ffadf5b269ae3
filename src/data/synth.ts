// Deterministic synthetic image-classification dataset for the quickstart, tests and benchmarks:
// visually distinct classes (shapes, colours, textures) with noise, random placement and size. No binaries in git.
import sharp from 'sharp';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createRng, deriveSeed, gaussian, type Rng } from '../util/random.js';
import { MlctlError } from '../errors.js';

export const SYNTH_CLASSES = ['circle', 'square', 'triangle', 'stripes', 'checker', 'ring', 'cross', 'dots'] as const;

export interface SynthOptions {
  out: string;
  classes?: number;
  perClass?: number;
  size?: number;
  seed?: number;
  format?: 'jpg' | 'png' | 'mixed';
  noise?: number;
}

export type Painter = (x: number, y: number) => boolean;

/** A solid shape of radius `r` centred at (cx, cy): the object kinds a picture can hold several of (detection). */
export const OBJECT_SHAPES = ['circle', 'square', 'triangle', 'ring', 'cross'] as const;

export function shapePainter(kind: (typeof OBJECT_SHAPES)[number], cx: number, cy: number, r: number): Painter {
  switch (kind) {
    case 'circle':
      return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    case 'square':
      return (x, y) => Math.abs(x - cx) <= r * 0.85 && Math.abs(y - cy) <= r * 0.85;
    case 'triangle':
      return (x, y) => y <= cy + r * 0.8 && y >= cy - r && Math.abs(x - cx) <= ((y - (cy - r)) / (1.8 * r)) * r;
    case 'ring':
      return (x, y) => {
        const d = Math.sqrt((x - cx) ** 2 + (y - cy) ** 2);
        return d <= r && d >= r * 0.6;
      };
    case 'cross':
      return (x, y) => (Math.abs(x - cx) <= r * 0.25 && Math.abs(y - cy) <= r) || (Math.abs(y - cy) <= r * 0.25 && Math.abs(x - cx) <= r);
  }
}

function painterFor(kind: string, rng: Rng, size: number): Painter {
  const cx = size * (0.3 + 0.4 * rng());
  const cy = size * (0.3 + 0.4 * rng());
  const r = size * (0.18 + 0.14 * rng());
  const period = Math.max(3, Math.round(size * (0.08 + 0.06 * rng())));
  const angle = rng() * Math.PI;
  switch (kind) {
    case 'circle':
    case 'square':
    case 'triangle':
    case 'ring':
    case 'cross':
      return shapePainter(kind, cx, cy, r);
    case 'stripes': {
      const c = Math.cos(angle), s = Math.sin(angle);
      return (x, y) => Math.floor((x * c + y * s) / period) % 2 === 0;
    }
    case 'checker':
      return (x, y) => (Math.floor(x / period) + Math.floor(y / period)) % 2 === 0;
    default: // dots
      return (x, y) => (x % period) ** 2 + (y % period) ** 2 <= (period * 0.3) ** 2;
  }
}

/** Class colour: each class has its own hue band; the shape is drawn in it over a darker noisy background. */
export function colourFor(classIndex: number, classes: number, rng: Rng): [number, number, number] {
  const hue = ((classIndex / classes) * 360 + (rng() - 0.5) * 30 + 360) % 360;
  const c = 200, x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const [r, g, b] = hue < 60 ? [c, x, 0] : hue < 120 ? [x, c, 0] : hue < 180 ? [0, c, x] : hue < 240 ? [0, x, c] : hue < 300 ? [x, 0, c] : [c, 0, x];
  return [r + 40, g + 40, b + 40];
}

export function renderSynthImage(kind: string, classIndex: number, classes: number, size: number, rng: Rng, noise = 18): Uint8Array {
  const paint = painterFor(kind, rng, size);
  const fg = colourFor(classIndex, classes, rng);
  const bgBase = [20 + rng() * 50, 20 + rng() * 50, 20 + rng() * 50];
  const px = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on = paint(x, y);
      for (let c = 0; c < 3; c++) {
        const v = (on ? fg[c]! : bgBase[c]!) + gaussian(rng) * noise;
        px[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return px;
}

export interface SynthResult {
  out: string;
  classes: string[];
  files: number;
}

export async function generateSynthDataset(opts: SynthOptions): Promise<SynthResult> {
  const nClasses = opts.classes ?? 5;
  const perClass = opts.perClass ?? 40;
  const size = opts.size ?? 64;
  const seed = opts.seed ?? 42;
  const format = opts.format ?? 'mixed';
  if (!Number.isInteger(nClasses) || nClasses < 2 || nClasses > SYNTH_CLASSES.length) {
    throw new MlctlError('OPTION_INVALID', [`--classes must be an integer from 2 to ${SYNTH_CLASSES.length}`]);
  }
  if (!Number.isInteger(perClass) || perClass < 1) throw new MlctlError('OPTION_INVALID', ['--per-class must be a positive integer']);
  if (!Number.isInteger(size) || size < 8 || size > 4096) throw new MlctlError('OPTION_INVALID', ['--size must be an integer from 8 to 4096']);
  const classes = SYNTH_CLASSES.slice(0, nClasses) as string[];
  let files = 0;
  for (let ci = 0; ci < classes.length; ci++) {
    const kind = classes[ci]!;
    const dir = path.join(opts.out, kind);
    await fs.mkdir(dir, { recursive: true });
    const rng = createRng(deriveSeed(seed, kind));
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < perClass; i++) {
      const px = renderSynthImage(kind, ci, classes.length, size, rng, opts.noise);
      const ext = format === 'mixed' ? (i % 4 === 3 ? 'png' : 'jpg') : format;
      const img = sharp(px, { raw: { width: size, height: size, channels: 3 } });
      const file = path.join(dir, `${kind}_${String(i).padStart(5, '0')}.${ext}`);
      writes.push((ext === 'png' ? img.png() : img.jpeg({ quality: 90 })).toFile(file));
      if (writes.length >= 16) await Promise.all(writes.splice(0));
      files++;
    }
    await Promise.all(writes);
  }
  return { out: opts.out, classes, files };
}

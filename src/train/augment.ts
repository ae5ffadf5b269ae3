// Optional training-time augmentation (--augment flip,rotate,zoom,shift,brightness) on preprocessed HWC floats,
// Keras ImageDataGenerator-style ranges. Deterministic per (seed, epoch, image). It disables the feature cache.
import { createRng, deriveSeed } from '../util/random.js';

export const AUGMENTATIONS = ['flip', 'rotate', 'zoom', 'shift', 'brightness'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** Ranges: rotation ±10°, zoom ±10%, shift ±10% of the size, brightness ±20% of the 0..255 range. */
export const AUGMENT_RANGES = { rotateDeg: 10, zoom: 0.1, shift: 0.1, brightness: 0.2 } as const;

export function parseAugment(list: string[] | undefined): Augmentation[] {
  const out = (list ?? []).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const a of out) {
    if (!(AUGMENTATIONS as readonly string[]).includes(a)) throw new Error(`unknown augmentation "${a}": choose from ${AUGMENTATIONS.join(', ')}`);
  }
  return [...new Set(out)] as Augmentation[];
}

/**
 * Augment one image in place (HWC, 3 channels, already preprocessed). Geometric transforms are one inverse affine
 * map with bilinear sampling; pixels mapped from outside the image take the nearest edge value (Keras fill_mode 'nearest').
 */
export function augmentImage(x: Float32Array, size: number, ops: readonly Augmentation[], seed: number, key: string): void {
  if (ops.length === 0) return;
  const rng = createRng(deriveSeed(seed, key));
  const u = () => rng() * 2 - 1;
  const flip = ops.includes('flip') && rng() < 0.5;
  const angle = ops.includes('rotate') ? (u() * AUGMENT_RANGES.rotateDeg * Math.PI) / 180 : 0;
  const zoom = ops.includes('zoom') ? 1 + u() * AUGMENT_RANGES.zoom : 1;
  const tx = ops.includes('shift') ? u() * AUGMENT_RANGES.shift * size : 0;
  const ty = ops.includes('shift') ? u() * AUGMENT_RANGES.shift * size : 0;
  const delta = ops.includes('brightness') ? u() * AUGMENT_RANGES.brightness * 255 : 0;
  if (flip || angle || zoom !== 1 || tx || ty) {
    const src = x.slice();
    const c = (size - 1) / 2;
    const cos = Math.cos(angle) / zoom;
    const sin = Math.sin(angle) / zoom;
    const clamp = (v: number) => Math.min(size - 1, Math.max(0, v));
    for (let yy = 0; yy < size; yy++) {
      for (let xx = 0; xx < size; xx++) {
        const dx = (flip ? size - 1 - xx : xx) - c - tx;
        const dy = yy - c - ty;
        const sx = clamp(cos * dx + sin * dy + c);
        const sy = clamp(-sin * dx + cos * dy + c);
        const x0 = Math.floor(sx), y0 = Math.floor(sy);
        const x1 = Math.min(size - 1, x0 + 1), y1 = Math.min(size - 1, y0 + 1);
        const fx = sx - x0, fy = sy - y0;
        const o = (yy * size + xx) * 3;
        for (let ch = 0; ch < 3; ch++) {
          const a = src[(y0 * size + x0) * 3 + ch]!, b = src[(y0 * size + x1) * 3 + ch]!;
          const d = src[(y1 * size + x0) * 3 + ch]!, e = src[(y1 * size + x1) * 3 + ch]!;
          x[o + ch] = (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
        }
      }
    }
  }
  // Preprocessing only subtracts means, so a brightness shift in pixel units is the same shift here.
  if (delta) for (let i = 0; i < x.length; i++) x[i]! += delta;
}

// Augmentation that keeps boxes right (--task detection --augment flip,scale,brightness): a horizontal flip and a
// random scale with crop (CenterNet's recipe: scale 0.6–1.4, the picture placed at random in the input, black
// outside it), applied to the picture and its boxes by the same map. Boxes are clipped to the input; one with less
// than MIN_VISIBLE of its area left is dropped. Deterministic per (seed, key). Works on preprocessed HWC floats.
import type { PreprocessingSpec } from '../../artifacts/manifest.js';
import { pixelsToInput } from '../../data/preprocess.js';
import type { TargetBox } from '../../models/detection/targets.js';
import { createRng, deriveSeed } from '../../util/random.js';

export const DETECTION_AUGMENTATIONS = ['flip', 'scale', 'brightness'] as const;
export type DetectionAugmentation = (typeof DETECTION_AUGMENTATIONS)[number];

/** Scale range (CenterNet's 0.6–1.3 rounded out), brightness ±20% of 0..255, smallest visible part of a kept box. */
export const DETECTION_AUGMENT_RANGES = { scale: [0.6, 1.4] as const, brightness: 0.2, minVisible: 0.3 } as const;

export function parseDetectionAugment(list: readonly string[] | undefined): DetectionAugmentation[] {
  const out = (list ?? []).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const a of out) {
    if (!(DETECTION_AUGMENTATIONS as readonly string[]).includes(a)) {
      throw new Error(`augmentation "${a}" is not one for detection: choose from ${DETECTION_AUGMENTATIONS.join(', ')} (flip and scale move the boxes with the picture; rotate, zoom and shift are classification's)`);
    }
  }
  return [...new Set(out)] as DetectionAugmentation[];
}

/** The map of one augmentation draw: source pixel coordinates (x, y) → (s·(flip ? W − x : x) + tx, s·y + ty). */
export interface BoxMap {
  flip: boolean;
  scale: number;
  tx: number;
  ty: number;
  /** Brightness shift in 0..255 pixel units. */
  delta: number;
}

/** The draw for (seed, key): flip with probability ½, scale uniform in range, the picture placed uniformly. */
export function drawAugmentation(ops: readonly DetectionAugmentation[], height: number, width: number, seed: number, key: string): BoxMap {
  const rng = createRng(deriveSeed(seed, key));
  const flip = ops.includes('flip') && rng() < 0.5;
  const [lo, hi] = DETECTION_AUGMENT_RANGES.scale;
  const scale = ops.includes('scale') ? lo + rng() * (hi - lo) : 1;
  // Larger: a window of the picture fills the input; smaller: the picture sits somewhere inside it.
  const place = (size: number) => {
    const room = size * (1 - scale);
    return Math.min(0, room) + rng() * Math.abs(room);
  };
  const tx = place(width);
  const ty = place(height);
  const delta = ops.includes('brightness') ? (rng() * 2 - 1) * DETECTION_AUGMENT_RANGES.brightness * 255 : 0;
  return { flip, scale, tx, ty, delta };
}

/** Boxes under the map, clipped to the input; those with less than MIN_VISIBLE of their area inside are dropped. */
export function mapBoxes(boxes: readonly TargetBox[], map: BoxMap, height: number, width: number): TargetBox[] {
  const { flip, scale: s, tx, ty } = map;
  const out: TargetBox[] = [];
  for (const b of boxes) {
    const x1 = s * (flip ? width - (b.x + b.width) : b.x) + tx;
    const y1 = s * b.y + ty;
    const x2 = x1 + s * b.width;
    const y2 = y1 + s * b.height;
    const cx1 = Math.max(0, x1);
    const cy1 = Math.max(0, y1);
    const cx2 = Math.min(width, x2);
    const cy2 = Math.min(height, y2);
    if (cx2 <= cx1 || cy2 <= cy1) continue;
    const visible = ((cx2 - cx1) * (cy2 - cy1)) / ((x2 - x1) * (y2 - y1));
    if (visible < DETECTION_AUGMENT_RANGES.minVisible) continue;
    out.push({ label: b.label, x: cx1, y: cy1, width: cx2 - cx1, height: cy2 - cy1 });
  }
  return out;
}

/**
 * Apply the map to a preprocessed HWC image in place (bilinear; outside the source picture: black, preprocessed as
 * the backbone expects, as CenterNet's warpAffine border) and return the boxes it moves to.
 */
export function augmentDetection(x: Float32Array, height: number, width: number, boxes: readonly TargetBox[], map: BoxMap, pre: PreprocessingSpec): TargetBox[] {
  const { flip, scale: s, tx, ty, delta } = map;
  if (flip || s !== 1 || tx || ty) {
    const src = x.slice();
    const fill = pixelsToInput(new Uint8Array(3), pre);
    for (let yy = 0; yy < height; yy++) {
      // Pixel centres: output (xx + ½, yy + ½) comes from source (u, v); sampling indices are those minus ½.
      const sy = (yy + 0.5 - ty) / s - 0.5;
      for (let xx = 0; xx < width; xx++) {
        const u = (xx + 0.5 - tx) / s;
        const sx = (flip ? width - u : u) - 0.5;
        const o = (yy * width + xx) * 3;
        if (sx < -0.5 || sx > width - 0.5 || sy < -0.5 || sy > height - 0.5) {
          x[o] = fill[0]!;
          x[o + 1] = fill[1]!;
          x[o + 2] = fill[2]!;
          continue;
        }
        const cx = Math.min(width - 1, Math.max(0, sx));
        const cy = Math.min(height - 1, Math.max(0, sy));
        const x0 = Math.floor(cx);
        const y0 = Math.floor(cy);
        const x1 = Math.min(width - 1, x0 + 1);
        const y1 = Math.min(height - 1, y0 + 1);
        const fx = cx - x0;
        const fy = cy - y0;
        for (let c = 0; c < 3; c++) {
          const a = src[(y0 * width + x0) * 3 + c]!;
          const b = src[(y0 * width + x1) * 3 + c]!;
          const d = src[(y1 * width + x0) * 3 + c]!;
          const e = src[(y1 * width + x1) * 3 + c]!;
          x[o + c] = (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
        }
      }
    }
  }
  if (delta) {
    // A shift of every 0..255 channel value, in the input's units (scale and std per channel).
    const shift = [0, 1, 2].map((c) => (delta * pre.scale) / pre.std[c]!);
    for (let i = 0; i < x.length; i += 3) {
      x[i]! += shift[0]!;
      x[i + 1]! += shift[1]!;
      x[i + 2]! += shift[2]!;
    }
  }
  return mapBoxes(boxes, map, height, width);
}

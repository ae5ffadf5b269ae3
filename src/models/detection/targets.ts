// CenterNet's training targets (xingyizhou/CenterNet src/lib/datasets/sample/ctdet.py, utils/image.py): per object,
// a Gaussian on its centre cell in its class's heatmap — radius from CornerNet's gaussian_radius(min_overlap 0.7),
// σ = diameter / 6, overlapping Gaussians combined by maximum — and at that cell the box size (w, h) and the centre's
// sub-cell offset, in output-grid units.

/** The largest radius such that a box moved by it keeps IoU ≥ minOverlap with the original (CornerNet's three cases). */
export function gaussianRadius(height: number, width: number, minOverlap = 0.7): number {
  const b1 = height + width;
  const c1 = (width * height * (1 - minOverlap)) / (1 + minOverlap);
  const r1 = (b1 - Math.sqrt(b1 ** 2 - 4 * c1)) / 2;
  const b2 = 2 * (height + width);
  const c2 = (1 - minOverlap) * width * height;
  const r2 = (b2 - Math.sqrt(b2 ** 2 - 16 * c2)) / 8;
  const a3 = 4 * minOverlap;
  const b3 = -2 * minOverlap * (height + width);
  const c3 = (minOverlap - 1) * width * height;
  const r3 = (b3 + Math.sqrt(b3 ** 2 - 4 * a3 * c3)) / (2 * a3);
  return Math.min(r1, r2, r3);
}

/** Draw a (2r+1)² Gaussian (σ = diameter / 6, values below eps·max zeroed) at (cx, cy) of channel `c`, by maximum. */
export function drawGaussian(heatmap: Float32Array, grid: [number, number], channels: number, c: number, cx: number, cy: number, radius: number): void {
  const [h, w] = grid;
  const d = 2 * radius + 1;
  const sigma = d / 6;
  const left = Math.min(cx, radius);
  const right = Math.min(w - cx, radius + 1);
  const top = Math.min(cy, radius);
  const bottom = Math.min(h - cy, radius + 1);
  for (let y = -top; y < bottom; y++) {
    for (let x = -left; x < right; x++) {
      let g = Math.exp(-(x * x + y * y) / (2 * sigma * sigma));
      if (g < Number.EPSILON) g = 0;
      const i = ((cy + y) * w + (cx + x)) * channels + c;
      if (g > heatmap[i]!) heatmap[i] = g;
    }
  }
}

export interface TargetBox {
  label: number;
  /** Box in input-image pixels (after the resize to the model's input). */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface CenterNetTargets {
  /** [h, w, classes]. */
  heatmap: Float32Array;
  /** [h, w, 4]: size (w, h) then offset (dx, dy), set at centre cells only. */
  regression: Float32Array;
  /** [h, w, 1]: 1 at the centre cells. */
  mask: Float32Array;
  objects: number;
}

/**
 * Targets of one image for an output grid of `grid` cells covering an input of `inputSize` pixels ([h, w]). Boxes are
 * clipped to the input; a box with no size left in grid units is skipped, as in the reference code (h, w > 0).
 */
export function encodeTargets(boxes: readonly TargetBox[], inputSize: [number, number], grid: [number, number], classes: number): CenterNetTargets {
  const [gh, gw] = grid;
  const sy = gh / inputSize[0];
  const sx = gw / inputSize[1];
  const heatmap = new Float32Array(gh * gw * classes);
  const regression = new Float32Array(gh * gw * 4);
  const mask = new Float32Array(gh * gw);
  let objects = 0;
  for (const b of boxes) {
    // Box corners in grid units, clipped to [0, size - 1] like ctdet.py.
    const x1 = Math.min(Math.max(b.x * sx, 0), gw - 1);
    const x2 = Math.min(Math.max((b.x + b.width) * sx, 0), gw - 1);
    const y1 = Math.min(Math.max(b.y * sy, 0), gh - 1);
    const y2 = Math.min(Math.max((b.y + b.height) * sy, 0), gh - 1);
    const w = x2 - x1;
    const h = y2 - y1;
    if (!(w > 0 && h > 0)) continue;
    const radius = Math.max(0, Math.floor(gaussianRadius(Math.ceil(h), Math.ceil(w))));
    const cx = (x1 + x2) / 2;
    const cy = (y1 + y2) / 2;
    const ix = Math.floor(cx);
    const iy = Math.floor(cy);
    drawGaussian(heatmap, grid, classes, b.label, ix, iy, radius);
    const cell = iy * gw + ix;
    regression.set([w, h, cx - ix, cy - iy], cell * 4);
    mask[cell] = 1;
    objects++;
  }
  return { heatmap, regression, mask, objects };
}

// CenterNet's decoding (ctdet_decode): a heatmap cell is an object centre when it is the maximum of its 3x3
import { boxToPicture, resizeGeometry } from '../../data/preprocess.js';
// neighbourhood in its class channel (the max-pool "NMS"), the top K such cells by score are kept, and each becomes a
// box of the predicted size around its centre plus offset. No other non-maximum suppression is needed.

export interface DecodedBox {
  label: number;
  score: number;
  /** In input-image pixels (the model's input, before mapping back to the original picture). */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** K: most detections kept (the reference's 100). */
  maxDetections?: number;
  /** Drop detections scoring below this (0 keeps the top K, as COCO evaluation wants). */
  minScore?: number;
}

/**
 * Decode one example's head output ([h, w, classes + 4], row-major) for an input of `inputSize` [h, w] pixels.
 * Ties in score keep the lower (cell, class) index first.
 */
export function decodeCenterNet(out: ArrayLike<number>, grid: [number, number], classes: number, inputSize: [number, number], opts: DecodeOptions = {}): DecodedBox[] {
  const [gh, gw] = grid;
  const C = classes + 4;
  const k = opts.maxDetections ?? 100;
  const minScore = opts.minScore ?? 0;
  const sy = inputSize[0] / gh;
  const sx = inputSize[1] / gw;
  const peaks: Array<{ i: number; c: number; s: number }> = [];
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const i = y * gw + x;
      for (let c = 0; c < classes; c++) {
        const s = out[i * C + c]!;
        if (!(s >= minScore) || s <= 0) continue;
        let peak = true;
        for (let dy = -1; dy <= 1 && peak; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if ((dx || dy) && yy >= 0 && yy < gh && xx >= 0 && xx < gw && out[(yy * gw + xx) * C + c]! > s) {
              peak = false;
              break;
            }
          }
        }
        if (peak) peaks.push({ i, c, s });
      }
    }
  }
  peaks.sort((a, b) => b.s - a.s || a.i - b.i || a.c - b.c);
  return peaks.slice(0, k).map(({ i, c, s }) => {
    const x = i % gw;
    const y = (i - x) / gw;
    const o = i * C + classes;
    const w = Math.max(0, out[o]!);
    const h = Math.max(0, out[o + 1]!);
    const cx = x + out[o + 2]!;
    const cy = y + out[o + 3]!;
    return { label: c, score: s, x: (cx - w / 2) * sx, y: (cy - h / 2) * sy, width: w * sx, height: h * sy };
  });
}

/**
 * Decoded boxes (model-input pixels) in the original picture's pixels under the "fill" resize rule (the picture was
 * stretched to the input): x and width times W/w, y and height times H/h, clipped to the picture. Boxes with nothing
 * left inside it are dropped.
 */
export function toPictureBoxes(boxes: readonly DecodedBox[], inputSize: [number, number], picture: { width: number; height: number }): DecodedBox[] {
  const geometry = resizeGeometry(picture.width, picture.height, inputSize[1], inputSize[0], 'fill');
  return boxes.map((b) => ({ label: b.label, score: b.score, ...boxToPicture(b, geometry) })).filter((b) => b.width > 0 && b.height > 0);
}

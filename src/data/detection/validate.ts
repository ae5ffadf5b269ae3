// The one check every reader puts a box through: a known class, a finite positive size, inside the image. Edges up to
// a pixel outside (rounding, VOC's 1-based corners) are clipped; anything else is an issue naming where it was read.
import type { Box, BoxAnnotation, DatasetIssue } from './types.js';

/** How far (pixels) a box may stick out of its image and still be clipped instead of reported. */
export const EDGE_TOLERANCE = 1;

export interface Where {
  file: string;
  line?: number;
  index?: number;
  /** "file:line" or "file [index]" for the annotation's source. */
  source: string;
}

const issue = (kind: DatasetIssue['kind'], where: Where, message: string): DatasetIssue => ({
  kind,
  file: where.file,
  ...(where.line !== undefined ? { line: where.line } : {}),
  ...(where.index !== undefined ? { index: where.index } : {}),
  message,
});

const fmt = (b: Box) => `[x ${round(b.x)}, y ${round(b.y)}, w ${round(b.width)}, h ${round(b.height)}]`;
const round = (v: number) => Math.round(v * 100) / 100;

/** The annotation, or the issue that keeps it out. `label` is an index, or undefined for a class the dataset lacks. */
export function checkBox(box: Box, image: { width: number; height: number }, label: number | undefined, labelText: string, where: Where, opts: { iscrowd?: boolean } = {}): { annotation: BoxAnnotation } | { issue: DatasetIssue } {
  if (![box.x, box.y, box.width, box.height].every(Number.isFinite)) return { issue: issue('malformed', where, `box ${fmt(box)} has a value that is not a number`) };
  if (label === undefined) return { issue: issue('unknown-class', where, `class ${labelText} is not one of the dataset's classes`) };
  if (box.width <= 0 || box.height <= 0) return { issue: issue('zero-area', where, `box ${fmt(box)} of class ${labelText} has no area`) };
  const t = EDGE_TOLERANCE;
  const { width: W, height: H } = image;
  if (box.x < -t || box.y < -t || box.x + box.width > W + t || box.y + box.height > H + t) {
    return { issue: issue('outside-image', where, `box ${fmt(box)} of class ${labelText} lies outside the ${W}x${H} image`) };
  }
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const x1 = Math.min(W, box.x + box.width);
  const y1 = Math.min(H, box.y + box.height);
  if (x1 - x0 <= 0 || y1 - y0 <= 0) return { issue: issue('zero-area', where, `box ${fmt(box)} of class ${labelText} has no area inside the image`) };
  return { annotation: { label, box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, ...(opts.iscrowd ? { iscrowd: true } : {}), source: where.source } };
}

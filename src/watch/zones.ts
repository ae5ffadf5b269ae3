// Zones and object filters for detection models: a zone is a polygon in a camera's frame (pixels or % of the frame),
// and an object is in it when its box's bottom-centre is — Frigate's rule: the point where a person or car touches
// the ground, so a tall box reaching over a zone's edge does not count. Pure geometry; the config lives in config/.
import type { Box } from '../data/detection/types.js';
import type { DetectedObject } from '../tasks/types.js';
import type { Extent, ObjectFilter, ZoneConfig } from './config/types.js';

export type Point = [number, number];

/** A zone resolved for one frame size: its polygon in pixels. */
export interface Zone {
  name: string;
  polygon: Point[];
  filter: ObjectFilter;
}

const px = (e: Extent, size: number) => (e.unit === '%' ? (e.value / 100) * size : e.value);

/** A zone's polygon in pixels of a width x height frame. */
export function resolveZone(zone: ZoneConfig, width: number, height: number): Zone {
  return { name: zone.name, polygon: zone.points.map(([x, y]) => [px(x, width), px(y, height)]), filter: zone.filter };
}

/** The point that decides zone membership: the bottom-centre of the box. */
export function anchorOf(box: Box): Point {
  return [box.x + box.width / 2, box.y + box.height];
}

/** On the segment a–b (within a hundredth of a pixel)? */
function onSegment(p: Point, a: Point, b: Point): boolean {
  const cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
  const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
  if (Math.abs(cross) > 0.01 * Math.max(len, 1)) return false;
  return p[0] >= Math.min(a[0], b[0]) - 0.01 && p[0] <= Math.max(a[0], b[0]) + 0.01 && p[1] >= Math.min(a[1], b[1]) - 0.01 && p[1] <= Math.max(a[1], b[1]) + 0.01;
}

/**
 * Inside the polygon (even-odd rule, so a self-crossing outline works as drawn), its edges included: an object
 * standing on the frame's bottom edge is in a zone that reaches down to 100%.
 */
export function pointInPolygon(p: Point, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const a = polygon[i]!;
    const b = polygon[j]!;
    if (onSegment(p, a, b)) return true;
    if (a[1] > p[1] !== b[1] > p[1] && p[0] < ((b[0] - a[0]) * (p[1] - a[1])) / (b[1] - a[1]) + a[0]) inside = !inside;
  }
  return inside;
}

/** The least area in pixels for a frame of that size (a percentage is of the frame's area). */
export function minAreaPx(e: Extent | undefined, width: number, height: number): number {
  return e === undefined ? 0 : e.unit === '%' ? (e.value / 100) * width * height : e.value;
}

/** Does the object pass the filter (label, score, box area) on a width x height frame? */
export function passes(o: DetectedObject, f: ObjectFilter, width: number, height: number): boolean {
  if (f.labels !== '*' && !f.labels.includes(o.label)) return false;
  if (o.score < f.minScore) return false;
  return o.box.width * o.box.height >= minAreaPx(f.minArea, width, height);
}

/** The zones an object is in: its bottom-centre inside the polygon and the object passing the zone's filter. */
export function zonesOf(o: DetectedObject, zones: readonly Zone[], width: number, height: number): string[] {
  const anchor = anchorOf(o.box);
  return zones.filter((z) => passes(o, z.filter, width, height) && pointInPolygon(anchor, z.polygon)).map((z) => z.name);
}

/** A camera's zones resolved once per frame size (frames of a camera rarely change size, but may). */
export function zoneResolver(configs: readonly ZoneConfig[]): (width: number, height: number) => Zone[] {
  let key = '';
  let cached: Zone[] = [];
  return (width, height) => {
    const k = `${width}x${height}`;
    if (k !== key) {
      cached = configs.map((z) => resolveZone(z, width, height));
      key = k;
    }
    return cached;
  };
}

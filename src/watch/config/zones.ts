// The detection keys of a camera (`zones:`, `tracker:`) and the object filter shared with rules (labels, min_score,
// min_area), validated with line/column errors: a zone is a polygon of 3+ points, each coordinate pixels or "NN%".
import { NAME_RE, readExtent } from './values.js';
import type { Field, MapReader } from './reader.js';
import type { Extent, ObjectFilter, TrackerConfig, ZoneConfig } from './types.js';

export const DEFAULT_TRACKER: TrackerConfig = { iou: 0.3, maxAge: 3, minHits: 2, minScore: 0.5 };

/** min_area: pixels (a whole number) or a percentage of the frame's area ("0.5%"). */
export function readArea(f: Field): Extent {
  const e = readExtent(f);
  if (e.value === 0) f.fail('must be more than 0 (leave min_area out to accept any size)');
  return e;
}

/** labels / label, min_score, min_area of a zone (defaults: every label, any score, any size). */
export function readFilter(m: MapReader, defaults: { minScore: number }): ObjectFilter {
  const labelsField = m.has('labels') ? m.get('labels') : m.get('label');
  const list = labelsField.present ? labelsField.strings() : ['*'];
  const minScore = m.opt('min_score', (x) => x.number({ min: 0, max: 1 }), defaults.minScore);
  const minArea = m.opt('min_area', readArea, undefined);
  return { labels: list.includes('*') ? '*' : list, minScore, ...(minArea ? { minArea } : {}) };
}

function readPoint(f: Field): [Extent, Extent] {
  const xy = f.list();
  if (xy.length !== 2) f.fail('a point is [x, y]: each pixels (a whole number) or "NN%" of the frame');
  return [readExtent(xy[0]!), readExtent(xy[1]!)];
}

/** Twice the signed area of the polygon (shoelace), with % taken of a 100x100 frame: zero means no inside. */
function flat(points: Array<[Extent, Extent]>): boolean {
  // Mixed units cannot be judged without the frame size; only all-% or all-pixel outlines are checked here.
  const units = new Set(points.flat().map((e) => e.unit));
  if (units.size > 1) return false;
  let a = 0;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1] = points[i]!;
    const [x2, y2] = points[(i + 1) % points.length]!;
    a += x1.value * y2.value - x2.value * y1.value;
  }
  return Math.abs(a) < 1e-9;
}

/** zones: {name: {points: [[x, y], …], labels?, min_score?, min_area?}} or {name: [[x, y], …]}. */
export function readZones(f: Field): ZoneConfig[] {
  const m = f.map();
  return m.keys().map((name) => {
    const z = m.get(name);
    if (!NAME_RE.test(name)) z.fail(`zone name ${JSON.stringify(name)} is not valid: use letters, digits, ".", "_" or "-"`);
    let pointsField: Field = z;
    let filter: ObjectFilter = { labels: '*', minScore: 0 };
    let zm: MapReader | undefined;
    if (z.isMap()) {
      zm = z.map();
      pointsField = zm.get('points');
      if (!pointsField.present) pointsField.fail('is required: the zone outline as [[x, y], [x, y], [x, y], …] (3 points or more)');
      filter = readFilter(zm, { minScore: 0 });
    }
    const items = pointsField.list();
    if (items.length < 3) pointsField.fail(`a zone needs at least 3 points, got ${items.length}: list its outline as [[x, y], [x, y], [x, y], …]`);
    const points = items.map(readPoint);
    if (flat(points)) pointsField.fail('the points lie on one line: the zone has no inside');
    zm?.done();
    return { name, points, filter, at: z.where() };
  });
}

/** tracker: {iou, max_age, min_hits, min_score}. */
export function readTracker(f: Field): TrackerConfig {
  const m = f.map();
  const out: TrackerConfig = {
    iou: m.opt('iou', (x) => x.number({ min: 0.01, max: 1 }), DEFAULT_TRACKER.iou),
    maxAge: m.opt('max_age', (x) => x.number({ min: 0, max: 1000, integer: true }), DEFAULT_TRACKER.maxAge),
    minHits: m.opt('min_hits', (x) => x.number({ min: 1, max: 1000, integer: true }), DEFAULT_TRACKER.minHits),
    minScore: m.opt('min_score', (x) => x.number({ min: 0, max: 1 }), DEFAULT_TRACKER.minScore),
  };
  m.done();
  return out;
}

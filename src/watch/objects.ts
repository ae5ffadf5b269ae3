// A camera's object stage for detection models: each frame's objects get their zones (bottom-centre rule) and, when
// they score at least the tracker's min_score, a track (ids, enter/leave); the result is what rules read and the
// per-label counts MQTT publishes (confirmed tracks seen in the frame, per camera and per zone).
import type { DetectedObject } from '../tasks/types.js';
import type { CameraConfig } from './config/types.js';
import type { ObjectView } from './rules.js';
import { createTracker, type TrackedObject } from './tracker.js';
import { zoneResolver, zonesOf, type Point } from './zones.js';

/** Objects per label: on the whole camera, and in each zone (every zone and every label seen so far are listed, 0 included). */
export interface ObjectCounts {
  camera: Record<string, number>;
  zones: Record<string, Record<string, number>>;
}

export interface CameraObjects {
  see(objects: readonly DetectedObject[], width: number, height: number): { view: ObjectView; counts: ObjectCounts };
  /** A zone's polygon in pixels of a width x height frame (for snapshots). */
  polygon(zone: string, width: number, height: number): Point[] | undefined;
  /** The camera went offline: forget its tracks. */
  reset(): void;
}

export function cameraObjects(cfg: Pick<CameraConfig, 'zones' | 'tracker'>): CameraObjects {
  const zonesFor = zoneResolver(cfg.zones);
  const tracker = createTracker(cfg.tracker);
  const names = cfg.zones.map((z) => z.name);
  /** Labels seen so far: once counted, a label stays listed (at 0 when gone), so retained counts fall back to 0. */
  const seen = new Set<string>();
  return {
    see(objects, width, height) {
      const zones = zonesFor(width, height);
      const placed = objects.map((o) => ({ ...o, zones: zonesOf(o, zones, width, height) }));
      const trackedIdx = placed.flatMap((o, i) => (o.score >= cfg.tracker.minScore ? [i] : []));
      const update = tracker.update(trackedIdx.map((i) => placed[i]!));
      const out: TrackedObject[] = placed.slice();
      trackedIdx.forEach((i, k) => (out[i] = update.objects[k]!));
      const counted = out.filter((o) => o.id !== undefined);
      for (const o of counted) seen.add(o.label);
      const tally = (list: readonly TrackedObject[]) => Object.fromEntries([...seen].sort().map((l) => [l, list.filter((o) => o.label === l).length]));
      const counts: ObjectCounts = { camera: tally(counted), zones: Object.fromEntries(names.map((z) => [z, tally(counted.filter((o) => o.zones.includes(z)))])) };
      return { view: { objects: out, transitions: update.transitions, width, height, zones: names }, counts };
    },
    polygon: (zone, width, height) => zonesFor(width, height).find((z) => z.name === zone)?.polygon,
    reset: () => tracker.reset(),
  };
}

// A simple IoU tracker for one camera (SORT's association without its Kalman filter, as Frigate's and
// Ultralytics' "iou" trackers do): each frame's detections are matched greedily, best IoU first and same label only,
// to the live tracks; a track is confirmed after `minHits` matched frames and dropped after `maxAge` frames unmatched.
// Confirmed tracks get ids (1, 2, … per camera) and enter/leave transitions for the frame and each zone.
import type { Box } from '../data/detection/types.js';
import type { DetectedObject } from '../tasks/types.js';
import type { TrackerConfig } from './config/types.js';

/** A frame's object with where it is: the zones its bottom-centre is in (watch/zones.ts). */
export interface PlacedObject extends DetectedObject {
  zones: string[];
}

/** An object as the rules see it: with its track's id once the track is confirmed. */
export interface TrackedObject extends PlacedObject {
  id?: number;
}

export interface Transition {
  kind: 'enter' | 'leave';
  /** The zone entered or left; undefined: the frame itself (a track confirmed, a track dropped). */
  zone?: string;
  /** The object as last seen (for a leave by dropping: its last matched box). */
  object: TrackedObject & { id: number };
}

export interface TrackUpdate {
  /** The frame's objects in input order, each with its confirmed track's id (if any). */
  objects: TrackedObject[];
  transitions: Transition[];
}

export interface Tracker {
  update(objects: readonly PlacedObject[]): TrackUpdate;
  /** Confirmed tracks alive now (matched this frame or coasting within maxAge). */
  live(): Array<TrackedObject & { id: number }>;
  /** Forget every track without transitions (the camera went offline: what it saw before says nothing now). */
  reset(): void;
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

interface Track {
  /** Creation order (ties in matching). */
  seq: number;
  id?: number;
  last: PlacedObject;
  hits: number;
  missed: number;
  /** Zones the confirmed track is in, as of its last matched frame. */
  zones: Set<string>;
}

export function createTracker(cfg: Pick<TrackerConfig, 'iou' | 'maxAge' | 'minHits'>): Tracker {
  let tracks: Track[] = [];
  let seq = 0;
  let nextId = 1;
  const view = (t: Track): TrackedObject & { id: number } => ({ ...t.last, zones: [...t.zones], id: t.id! });

  return {
    update(objects) {
      const transitions: Transition[] = [];
      const pairs: Array<{ t: Track; d: number; iou: number }> = [];
      for (const t of tracks) {
        objects.forEach((o, d) => {
          if (o.label !== t.last.label) return;
          const v = iou(t.last.box, o.box);
          if (v >= cfg.iou && v > 0) pairs.push({ t, d, iou: v });
        });
      }
      pairs.sort((a, b) => b.iou - a.iou || a.t.seq - b.t.seq || a.d - b.d);
      const trackOf = new Map<number, Track>();
      const matched = new Set<Track>();
      for (const p of pairs) {
        if (matched.has(p.t) || trackOf.has(p.d)) continue;
        matched.add(p.t);
        trackOf.set(p.d, p.t);
      }
      // Tracks without a detection coast; past maxAge they are dropped, leaving their zones and the frame.
      tracks = tracks.filter((t) => {
        if (matched.has(t)) return true;
        t.missed++;
        if (t.missed <= cfg.maxAge) return true;
        if (t.id !== undefined) {
          const last = view(t);
          for (const zone of t.zones) transitions.push({ kind: 'leave', zone, object: last });
          transitions.push({ kind: 'leave', object: last });
        }
        return false;
      });
      const out: TrackedObject[] = objects.map((o, d) => {
        let t = trackOf.get(d);
        if (!t) {
          t = { seq: seq++, last: o, hits: 0, missed: 0, zones: new Set() };
          tracks.push(t);
        }
        t.last = o;
        t.hits++;
        t.missed = 0;
        if (t.id === undefined && t.hits >= cfg.minHits) {
          t.id = nextId++;
          transitions.push({ kind: 'enter', object: { ...o, id: t.id } });
        }
        if (t.id === undefined) return { ...o };
        const now = new Set(o.zones);
        for (const zone of t.zones) if (!now.has(zone)) transitions.push({ kind: 'leave', zone, object: { ...o, id: t.id } });
        for (const zone of now) if (!t.zones.has(zone)) transitions.push({ kind: 'enter', zone, object: { ...o, id: t.id } });
        t.zones = now;
        return { ...o, id: t.id };
      });
      return { objects: out, transitions };
    },
    live: () => tracks.filter((t) => t.id !== undefined).map(view),
    reset() {
      tracks = [];
    },
  };
}

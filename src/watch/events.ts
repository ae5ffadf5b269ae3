// Watch events: what every notifier, the events log and the --json stream carry. An event's id is a UUIDv7
// (RFC 9562: time-ordered, random tail) assigned once when the event is accepted, so a redelivery after a
// crash or a retry carries the same id and receivers can drop duplicates (delivery is at-least-once).
import { randomBytes } from 'node:crypto';
import { ROUND, topK, type LabelScore } from '../tasks/scores.js';
import type { EventType, Severity } from './config/types.js';

export interface WatchEvent {
  id: string;
  type: EventType;
  /** ISO time the event was created. */
  time: string;
  camera: string;
  severity: Severity;
  message: string;
  /** detection only */
  rule?: string;
  label?: string;
  score?: number;
  /** The triggering frame: its sequence number on the camera and when it arrived. */
  frame?: { seq: number; at: string; file?: string };
  /** Top labels of the frame (detection only), best first. */
  top?: Array<{ label: string; score: number }>;
  hits?: { count: number; window: number };
  /** Detection models: present (enough objects in view), enter or leave. */
  trigger?: 'present' | 'enter' | 'leave';
  /** The rule's zone, when it has one. */
  zone?: string;
  /** Detection models: the objects that fired the rule (best first), or the one that entered or left. */
  objects?: EventObject[];
  /** Snapshot file name under the snapshots folder (and its URL when the status server is public). */
  snapshot?: { file: string; url?: string };
  model?: { name: string; version?: number };
  /** camera_offline: why the camera is down. */
  reason?: string;
  /** camera_online: how long it was down. */
  downtime_seconds?: number;
}

/** An object in an event: its track id (once confirmed), label, score, box in frame pixels and the zones it is in. */
export interface EventObject {
  id?: number;
  label: string;
  score: number;
  box: { x: number; y: number; width: number; height: number };
  zones: string[];
}

const round1 = (v: number) => Math.round(v * 10) / 10;

export function eventObject(o: { id?: number; label: string; score: number; box: EventObject['box']; zones: readonly string[] }): EventObject {
  const { x, y, width, height } = o.box;
  return { ...(o.id !== undefined ? { id: o.id } : {}), label: o.label, score: Number(o.score.toFixed(4)), box: { x: round1(x), y: round1(y), width: round1(width), height: round1(height) }, zones: [...o.zones] };
}

const SEVERITY_ORDER: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

export function severityAtLeast(s: Severity, min: Severity): boolean {
  return SEVERITY_ORDER[s] >= SEVERITY_ORDER[min];
}

let lastMs = 0;
let counter = 0;

/**
 * UUIDv7: 48-bit Unix ms timestamp, version 7, a 12-bit counter, variant 10, 62 random bits. The counter (RFC 9562
 * §6.2, method 1) makes ids from one process strictly increasing even within a millisecond, so they sort in the
 * order events were created.
 */
export function uuidv7(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > 0xfff) {
    lastMs++; // more than 4096 ids in one millisecond: borrow the next one
    counter = 0;
  }
  const b = randomBytes(16);
  b.writeUIntBE(lastMs, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The detection event for a fired rule on a frame (ids are assigned by the caller, before the snapshot is named). */
export function detectionEvent(a: {
  id: string;
  frame: { camera: string; seq: number; at: number; file?: string };
  detection: {
    rule: { name: string; severity: Severity };
    label: string;
    score: number;
    hits: number;
    window: number;
    message: string;
    objects?: ReadonlyArray<Parameters<typeof eventObject>[0]>;
    trigger?: WatchEvent['trigger'];
    zone?: string;
  };
  top: Array<{ label: string; score: number }>;
  snapshot?: WatchEvent['snapshot'];
  model: WatchEvent['model'];
}): WatchEvent {
  const { frame, detection: d } = a;
  return {
    id: a.id,
    type: 'detection',
    time: new Date().toISOString(),
    camera: frame.camera,
    severity: d.rule.severity,
    message: d.message,
    rule: d.rule.name,
    label: d.label,
    score: Number(d.score.toFixed(4)),
    frame: { seq: frame.seq, at: new Date(frame.at).toISOString(), ...(frame.file ? { file: frame.file } : {}) },
    top: a.top,
    hits: { count: d.hits, window: d.window },
    ...(d.trigger ? { trigger: d.trigger } : {}),
    ...(d.zone ? { zone: d.zone } : {}),
    ...(d.objects ? { objects: d.objects.map(eventObject) } : {}),
    ...(a.snapshot ? { snapshot: a.snapshot } : {}),
    ...(a.model ? { model: a.model } : {}),
  };
}

/** A camera going down or coming back. */
export function cameraEvent(camera: string, online: boolean, detail: { reason?: string; downtimeMs?: number }): WatchEvent {
  const secs = Math.round((detail.downtimeMs ?? 0) / 1000);
  return {
    id: uuidv7(),
    type: online ? 'camera_online' : 'camera_offline',
    time: new Date().toISOString(),
    camera,
    severity: online ? 'info' : 'warning',
    message: online ? `camera ${camera} is back online after ${secs} s` : `camera ${camera} is offline: ${detail.reason}`,
    ...(online ? { downtime_seconds: secs } : { reason: detail.reason ?? 'unknown' }),
  };
}

/** The top `k` labels of a frame's scores, best first (the one ranking, tasks/scores.ts), scores to 4 decimals. */
export function topLabels(labels: string[], scores: ArrayLike<number>, k = 3): LabelScore[] {
  return topK(scores, 0, labels, k, { width: scores.length, round: ROUND.decimals(4) });
}

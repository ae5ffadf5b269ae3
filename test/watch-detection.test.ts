// watch with a detection model, the pure parts: zones (polygons in px or %, bottom-centre membership, filters), the
// IoU tracker (greedy matching, min_hits, max_age, enter/leave), count and enter/leave rules, their YAML with
// line/column errors, MQTT count topics and boxes drawn on snapshots — every expected value worked out by hand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { DetectedObject } from '../src/tasks/types.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import { checkRules } from '../src/watch/config/rules.js';
import type { CameraConfig, RuleConfig, ZoneConfig } from '../src/watch/config/types.js';
import { countTopics } from '../src/watch/notify/mqtt.js';
import { cameraObjects } from '../src/watch/objects.js';
import { createRuleEngine, type ObjectView } from '../src/watch/rules.js';
import { BOX_COLOR, createSnapshotStore } from '../src/watch/snapshots.js';
import { createTracker, iou, type PlacedObject } from '../src/watch/tracker.js';
import { anchorOf, minAreaPx, passes, pointInPolygon, resolveZone, zonesOf, type Point } from '../src/watch/zones.js';
import { tempDir } from './helpers/fixtures.js';
import { createMemoryLogger } from '../src/util/log.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-detection-');
});
afterAll(() => tmp?.cleanup());

const px = (value: number) => ({ value, unit: 'px' as const });
const pct = (value: number) => ({ value, unit: '%' as const });
const obj = (label: string, score: number, x: number, y: number, width: number, height: number): DetectedObject => ({ label, score, box: { x, y, width, height } });
const placed = (o: DetectedObject, zones: string[] = []): PlacedObject => ({ ...o, zones });

/** The lower half of the frame, in %: a "driveway". */
const lowerHalf: ZoneConfig = { name: 'driveway', points: [[pct(0), pct(50)], [pct(100), pct(50)], [pct(100), pct(100)], [pct(0), pct(100)]], filter: { labels: '*', minScore: 0 }, at: '' };

describe('zones', () => {
  it('resolves % against the frame and keeps pixels as they are', () => {
    expect(resolveZone(lowerHalf, 200, 100).polygon).toEqual([[0, 50], [200, 50], [200, 100], [0, 100]]);
    const mixed: ZoneConfig = { ...lowerHalf, points: [[px(10), pct(10)], [pct(50), px(7)], [px(3), px(4)]] };
    expect(resolveZone(mixed, 640, 480).polygon).toEqual([[10, 48], [320, 7], [3, 4]]);
  });

  it('decides membership by the bottom-centre of the box (Frigate), edges included', () => {
    expect(anchorOf({ x: 10, y: 20, width: 30, height: 40 })).toEqual([25, 60]);
    const zones = [resolveZone(lowerHalf, 200, 100)];
    // A tall box reaching down to y = 45 overlaps nothing of the zone's inside; one standing at y = 60 is in it.
    expect(zonesOf(obj('person', 0.9, 90, 0, 20, 45), zones, 200, 100)).toEqual([]);
    expect(zonesOf(obj('person', 0.9, 90, 10, 20, 50), zones, 200, 100)).toEqual(['driveway']);
    // Most of this box is inside the zone, but its feet are not: out (the anchor, not the overlap, decides).
    expect(zonesOf(obj('person', 0.9, 0, 40, 200, 9), zones, 200, 100)).toEqual([]);
    // Standing on the frame's bottom edge (y + height = 100) and on the zone's top edge (y = 50) both count.
    expect(zonesOf(obj('car', 0.9, 0, 60, 40, 40), zones, 200, 100)).toEqual(['driveway']);
    expect(zonesOf(obj('car', 0.9, 0, 30, 40, 20), zones, 200, 100)).toEqual(['driveway']);
  });

  it('handles concave polygons (even-odd)', () => {
    // An L: the square 0..10 without its top-right quarter 5..10 x 0..5.
    const L: Point[] = [[0, 0], [5, 0], [5, 5], [10, 5], [10, 10], [0, 10]];
    expect(pointInPolygon([2, 2], L)).toBe(true);
    expect(pointInPolygon([7, 2], L)).toBe(false); // in the notch
    expect(pointInPolygon([7, 7], L)).toBe(true);
    expect(pointInPolygon([11, 7], L)).toBe(false);
    expect(pointInPolygon([5, 2], L)).toBe(true); // on the notch's edge
  });

  it('filters by label, score and least area (pixels, or % of the frame area)', () => {
    expect(minAreaPx(pct(1), 200, 100)).toBe(200);
    expect(minAreaPx(px(50), 200, 100)).toBe(50);
    expect(minAreaPx(undefined, 200, 100)).toBe(0);
    const f = { labels: ['car'], minScore: 0.5, minArea: pct(1) };
    expect(passes(obj('car', 0.6, 0, 0, 10, 20), f, 200, 100)).toBe(true); // 200 px² = 1%
    expect(passes(obj('car', 0.6, 0, 0, 10, 19), f, 200, 100)).toBe(false); // 190 px²
    expect(passes(obj('car', 0.49, 0, 0, 10, 20), f, 200, 100)).toBe(false);
    expect(passes(obj('person', 0.9, 0, 0, 10, 20), f, 200, 100)).toBe(false);
    // A zone's own filter: only cars are "in" a cars-only zone.
    const carsOnly = resolveZone({ ...lowerHalf, filter: { labels: ['car'], minScore: 0 } }, 200, 100);
    expect(zonesOf(obj('person', 0.9, 0, 60, 10, 20), [carsOnly], 200, 100)).toEqual([]);
    expect(zonesOf(obj('car', 0.9, 0, 60, 10, 20), [carsOnly], 200, 100)).toEqual(['driveway']);
  });
});

describe('IoU tracker', () => {
  it('computes IoU', () => {
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150, 12);
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 10, y: 0, width: 10, height: 10 })).toBe(0);
    expect(iou({ x: 2, y: 2, width: 4, height: 4 }, { x: 0, y: 0, width: 10, height: 10 })).toBeCloseTo(16 / 100, 12);
  });

  it('confirms after min_hits, coasts max_age frames, then leaves its zones and the frame', () => {
    const t = createTracker({ iou: 0.3, maxAge: 1, minHits: 2 });
    const f1 = t.update([placed(obj('person', 0.9, 0, 0, 10, 10))]);
    expect(f1.objects[0]!.id).toBeUndefined();
    expect(f1.transitions).toEqual([]);
    // IoU with the last box: 90 / 110 ≈ 0.82 → the same track, its 2nd hit: confirmed as #1, in the frame and the door zone.
    const f2 = t.update([placed(obj('person', 0.8, 1, 0, 10, 10), ['door'])]);
    expect(f2.objects[0]!.id).toBe(1);
    expect(f2.transitions.map((x) => [x.kind, x.zone, x.object.id])).toEqual([['enter', undefined, 1], ['enter', 'door', 1]]);
    const f3 = t.update([]); // missed once: still alive (max_age 1)
    expect(f3.transitions).toEqual([]);
    expect(t.live().map((o) => o.id)).toEqual([1]);
    const f4 = t.update([]); // missed twice: dropped, with its last box
    expect(f4.transitions.map((x) => [x.kind, x.zone, x.object.id, x.object.box.x])).toEqual([['leave', 'door', 1, 1], ['leave', undefined, 1, 1]]);
    expect(t.live()).toEqual([]);
  });

  it('reports zone changes of a live track and never gives an id to a one-frame flicker', () => {
    const t = createTracker({ iou: 0.3, maxAge: 0, minHits: 2 });
    t.update([placed(obj('car', 0.9, 0, 0, 10, 10), ['street'])]);
    const a = t.update([placed(obj('car', 0.9, 0, 1, 10, 10), ['street'])]);
    expect(a.transitions.map((x) => [x.kind, x.zone])).toEqual([['enter', undefined], ['enter', 'street']]);
    const b = t.update([placed(obj('car', 0.9, 0, 2, 10, 10), ['driveway'])]);
    expect(b.transitions.map((x) => [x.kind, x.zone, x.object.id])).toEqual([['leave', 'street', 1], ['enter', 'driveway', 1]]);
    // A flicker far away: a new track, unconfirmed, gone next frame without a word; the car's track meanwhile is dropped (max_age 0).
    const c = t.update([placed(obj('car', 0.9, 100, 100, 10, 10))]);
    expect(c.objects[0]!.id).toBeUndefined();
    expect(c.transitions.map((x) => [x.kind, x.zone])).toEqual([['leave', 'driveway'], ['leave', undefined]]);
    expect(t.update([]).transitions).toEqual([]);
  });

  it('matches greedily by best IoU, not by detection order, and never across labels', () => {
    const t = createTracker({ iou: 0.3, maxAge: 1, minHits: 1 });
    const first = t.update([placed(obj('person', 0.9, 0, 0, 10, 10)), placed(obj('person', 0.9, 8, 0, 10, 10))]);
    expect(first.objects.map((o) => o.id)).toEqual([1, 2]);
    // D0 (3,0): IoU 70/130 ≈ .54 with #1, 50/150 ≈ .33 with #2. D1 (1,0): 90/110 ≈ .82 with #1, 30/170 ≈ .18 with #2.
    // Best first: D1 ↔ #1 (.82), then D0 ↔ #2 (.33). Taking detections in order would have given D0 #1 and D1 a new track.
    const next = t.update([placed(obj('person', 0.9, 3, 0, 10, 10)), placed(obj('person', 0.9, 1, 0, 10, 10))]);
    expect(next.objects.map((o) => o.id)).toEqual([2, 1]);
    // A car exactly where person #1 stands is a new track, #3.
    const car = t.update([placed(obj('car', 0.9, 1, 0, 10, 10)), placed(obj('person', 0.9, 1, 0, 10, 10))]);
    expect(car.objects.map((o) => o.id)).toEqual([3, 1]);
  });

  it('gives only well-scored objects tracks, and counts confirmed ones per label and zone', () => {
    const cam = cameraObjects({ zones: [lowerHalf], tracker: { iou: 0.3, maxAge: 1, minHits: 1, minScore: 0.5 } });
    const { view, counts } = cam.see([obj('person', 0.9, 0, 60, 10, 20), obj('person', 0.4, 50, 0, 10, 20), obj('car', 0.8, 100, 0, 40, 30)], 200, 100);
    expect(view.objects.map((o) => [o.label, o.id, o.zones])).toEqual([['person', 1, ['driveway']], ['person', undefined, []], ['car', 2, []]]);
    expect(counts).toEqual({ camera: { car: 1, person: 1 }, zones: { driveway: { car: 0, person: 1 } } });
    // Gone from view (but coasting) → counted 0; the labels stay listed so retained counts fall back to 0.
    expect(cam.see([], 200, 100).counts).toEqual({ camera: { car: 0, person: 0 }, zones: { driveway: { car: 0, person: 0 } } });
  });
});

describe('detection rules', () => {
  const rule = (over: Partial<RuleConfig>): RuleConfig => ({ name: 'r', labels: ['person'], minScore: 0.5, k: 1, m: 1, cooldownMs: 0, severity: 'warning', message: '{count} {label} in {zone}', at: { labels: '', cameras: '' }, ...over });
  const labels = ['person', 'car'];
  const scores = [0, 0];
  const view = (objects: Array<PlacedObject & { id?: number }>, transitions: ObjectView['transitions'] = []): ObjectView => ({ objects, transitions, width: 200, height: 100, zones: ['yard', 'driveway'] });

  it('"at least 2 people in the yard": counts matching objects in the zone', () => {
    const e = createRuleEngine([rule({ objects: { trigger: 'present', zone: 'yard', count: 2 } })]);
    const two = view([placed(obj('person', 0.7, 0, 0, 10, 10), ['yard']), placed(obj('person', 0.9, 20, 0, 10, 10), ['yard']), placed(obj('person', 0.95, 50, 0, 10, 10)), placed(obj('car', 0.9, 70, 0, 10, 10), ['yard'])]);
    const [d] = e.evaluate('front', labels, scores, 0, two);
    expect(d!.message).toBe('2 person in yard');
    expect(d!.objects!.map((o) => o.score)).toEqual([0.9, 0.7]); // best first; the one outside and the car are not in it
    expect([d!.label, d!.score, d!.zone, d!.trigger]).toEqual(['person', 0.9, 'yard', 'present']);
    const one = view([placed(obj('person', 0.7, 0, 0, 10, 10), ['yard']), placed(obj('person', 0.4, 20, 0, 10, 10), ['yard'])]); // 0.4 < min_score
    expect(e.evaluate('front', labels, scores, 1, one)).toEqual([]);
  });

  it('"a car in the driveway for 3 of the last 5 frames", then its cooldown', () => {
    const e = createRuleEngine([rule({ labels: ['car'], k: 3, m: 5, cooldownMs: 10_000, objects: { trigger: 'present', zone: 'driveway', count: 1 } })]);
    const car = view([placed(obj('car', 0.8, 0, 60, 30, 20), ['driveway'])]);
    const none = view([placed(obj('car', 0.8, 0, 0, 30, 20))]); // a car, but on the street
    const frames = [car, none, car, none, car, car, car];
    expect(frames.map((f, i) => e.evaluate('front', labels, scores, i * 1000, f).length)).toEqual([0, 0, 0, 0, 1, 0, 0]);
    expect(e.evaluate('front', labels, scores, 13_999, car)).toHaveLength(0); // quiet until 4 s + 10 s
    expect(e.evaluate('front', labels, scores, 14_000, car)).toHaveLength(1); // cooldown over, still 3+ of 5
  });

  it('min_area in % of the frame; a plain rule on a detection model is "at least one, anywhere"', () => {
    const e = createRuleEngine([rule({ name: 'big', objects: { trigger: 'present', count: 1, minArea: pct(5) } }), rule({ name: 'plain', message: '{label} {score_pct}' })]);
    // 5% of 200x100 = 1000 px²: 30x30 = 900 is too small, 40x25 = 1000 is enough.
    expect(e.evaluate('front', labels, scores, 0, view([placed(obj('person', 0.9, 0, 0, 30, 30))])).map((d) => d.rule.name)).toEqual(['plain']);
    const fired = e.evaluate('front', labels, scores, 1, view([placed(obj('person', 0.6, 0, 0, 40, 25))]));
    expect(fired.map((d) => [d.rule.name, d.message])).toEqual([['big', '1 person in '], ['plain', 'person 60%']]);
  });

  it('enter and leave rules fire once per object and transition, each object quiet for the cooldown', () => {
    const e = createRuleEngine([
      rule({ name: 'in', cooldownMs: 5000, message: '#{object_id} {label} {trigger}s {zone}', objects: { trigger: 'enter', zone: 'driveway', count: 1 } }),
      rule({ name: 'gone', objects: { trigger: 'leave', count: 1 } }),
    ]);
    const p1 = { ...placed(obj('person', 0.8, 0, 60, 10, 20), ['driveway']), id: 1 };
    const p2 = { ...placed(obj('person', 0.9, 50, 60, 10, 20), ['driveway']), id: 2 };
    const enter1 = [{ kind: 'enter' as const, zone: 'driveway', object: p1 }, { kind: 'enter' as const, object: p1 }];
    const d = e.evaluate('front', labels, scores, 0, view([p1], enter1));
    expect(d.map((x) => [x.rule.name, x.message, x.objects!.map((o) => o.id)])).toEqual([['in', '#1 person enters driveway', [1]]]);
    // #1 enters again 2 s later: quiet; #2 entering at the same time fires; after 5 s #1 fires again.
    expect(e.evaluate('front', labels, scores, 2000, view([p1, p2], [enter1[0]!, { kind: 'enter', zone: 'driveway', object: p2 }])).map((x) => x.objects![0]!.id)).toEqual([2]);
    expect(e.evaluate('front', labels, scores, 5000, view([p1], [enter1[0]!]))).toHaveLength(1);
    // Leaving the frame (no zone) is "gone"; leaving the driveway is neither rule.
    const left = e.evaluate('front', labels, scores, 6000, view([], [{ kind: 'leave', zone: 'driveway', object: p2 }, { kind: 'leave', object: p2 }]));
    expect(left.map((x) => [x.rule.name, x.trigger, x.objects![0]!.id])).toEqual([['gone', 'leave', 2]]);
  });

  it('a zone rule does not run on a camera without that zone', () => {
    const e = createRuleEngine([rule({ objects: { trigger: 'present', zone: 'porch', count: 1 } })]);
    expect(e.evaluate('front', labels, scores, 0, view([placed(obj('person', 0.9, 0, 0, 10, 10), ['porch'])]))).toEqual([]);
  });
});

describe('detection config', () => {
  async function load(text: string) {
    const file = path.join(tmp.dir, `d${n++}.yaml`);
    await fs.writeFile(file, text);
    return loadWatchConfig(file);
  }
  const cam = (extra: string) => `model: ./models/det\ncameras:\n  - name: front\n    url: http://cam.local/video.mjpg\n${extra}`;

  it('reads zones (px, %, the short list form), their filters, and the tracker', async () => {
    const c = await load(
      cam(`    zones:
      driveway:
        points: [[0, 60%], [100%, 60%], [100%, 100%], [0, 100%]]
        labels: [car]
        min_score: 0.6
        min_area: 1%
      porch: [[10, 10], [200, 10], [200, 120]]
    tracker: {iou: 0.4, max_age: 5}
rules:
  - name: two-people
    label: person
    zone: porch
    count: 2
  - name: car-arrives
    label: car
    trigger: enter
    zone: driveway
    min_area: 2000
`),
    );
    const z = c.cameras[0]!.zones;
    expect(z.map((x) => x.name)).toEqual(['driveway', 'porch']);
    expect(z[0]!.points[1]).toEqual([pct(100), pct(60)]);
    expect(z[0]!.filter).toEqual({ labels: ['car'], minScore: 0.6, minArea: pct(1) });
    expect(z[1]!.points[2]).toEqual([px(200), px(120)]);
    expect(z[1]!.filter).toEqual({ labels: '*', minScore: 0 });
    expect(c.cameras[0]!.tracker).toEqual({ iou: 0.4, maxAge: 5, minHits: 2, minScore: 0.5 });
    expect(c.rules.map((r) => r.objects)).toEqual([{ trigger: 'present', zone: 'porch', count: 2 }, { trigger: 'enter', zone: 'driveway', count: 1, minArea: px(2000) }]);
    expect(() => checkRules(c.rules, ['person', 'car'], c.cameras, true)).not.toThrow();
  });

  it('names the line and column of every bad zone', async () => {
    await expect(load(cam(`    zones:\n      a: [[0, 0], [10, 10]]\n`))).rejects.toThrow(/:6:10: cameras\[0\]\.zones\.a: a zone needs at least 3 points, got 2/);
    await expect(load(cam(`    zones:\n      a: [[0, 0, 1], [10, 10], [0, 10]]\n`))).rejects.toThrow(/:6:11: cameras\[0\]\.zones\.a\[0\]: a point is \[x, y\]/);
    await expect(load(cam(`    zones:\n      a: [[0, 120%], [10, 10], [0, 10]]\n`))).rejects.toThrow(/zones\.a\[0\]\[1\]: "120%" is neither pixels/);
    await expect(load(cam(`    zones:\n      a: [[0, 0], [5, 5], [10, 10]]\n`))).rejects.toThrow(/zones\.a: the points lie on one line/);
    await expect(load(cam(`    zones:\n      a: {points: [[0, 0], [5, 0], [0, 5]], colour: red}\n`))).rejects.toThrow(/zones\.a\.colour: unknown key/);
    await expect(load(cam(`    zones:\n      a: {labels: [car]}\n`))).rejects.toThrow(/zones\.a\.points: is required/);
    await expect(load(cam(`    zones:\n      "bad zone": [[0, 0], [5, 0], [0, 5]]\n`))).rejects.toThrow(/zone name "bad zone" is not valid/);
    await expect(load(cam(`    tracker: {iou: 0, min_hits: 0}\n`))).rejects.toThrow(/tracker\.iou: must be at least 0\.01/);
  });

  it('refuses rule keys that contradict their trigger', async () => {
    const rules = (r: string) => cam(`rules:\n  - name: r\n    label: person\n${r}`);
    await expect(load(rules(`    trigger: enter\n    count: 2\n`))).rejects.toThrow(/rules\[0\]\.count: applies to trigger: present only/);
    await expect(load(rules(`    trigger: leave\n    window: 3\n`))).rejects.toThrow(/rules\[0\]\.window: window and min_hits apply to trigger: present only/);
    await expect(load(rules(`    trigger: enters\n`))).rejects.toThrow(/"enters" is not one of present, enter, leave \(did you mean enter\?\)/);
    await expect(load(rules(`    count: 0\n`))).rejects.toThrow(/rules\[0\]\.count: must be at least 1/);
  });

  it('checks zones and detection keys against the model and the cameras at start', async () => {
    const c = await load(cam(`    zones:\n      yard: [[0, 0], [50%, 0], [50%, 50%]]\nrules:\n  - name: r\n    label: person\n    zone: yard\n`));
    expect(() => checkRules(c.rules, ['person'], c.cameras, false)).toThrow(/:6:13: camera front: zones need a detection model/);
    const noZones: CameraConfig[] = c.cameras.map((x) => ({ ...x, zones: [] }));
    expect(() => checkRules(c.rules, ['person'], noZones, false)).toThrow(/:10:11: rule r: trigger, zone, count and min_area need a detection model/);
    expect(() => checkRules(c.rules, ['person'], noZones, true)).toThrow(/rule r: no zone "yard" on camera front/);
    const c2 = await load(cam(`    zones:\n      yard: {points: [[0, 0], [50%, 0], [50%, 50%]], labels: [dog]}\n`));
    expect(() => checkRules(c2.rules, ['person'], c2.cameras, true)).toThrow(/camera front, zone yard: the model has no label "dog"/);
  });
});

describe('MQTT count topics and snapshots with boxes', () => {
  it('publishes <prefix>/<camera>/<label> and <prefix>/<camera>/<zone>/<label>, never over the event topics', () => {
    const topics = countTopics('mlctl', 'front', { camera: { person: 2, 'traffic light': 1, state: 1, 'a/b': 0 }, zones: { driveway: { person: 1, state: 0 } } });
    expect(topics).toEqual([
      ['mlctl/front/person', 2],
      ['mlctl/front/traffic light', 1],
      ['mlctl/front/a_b', 0],
      ['mlctl/front/driveway/person', 1],
      ['mlctl/front/driveway/state', 0],
    ]);
  });

  it('draws the event boxes and the zone on the snapshot', async () => {
    const dir = path.join(tmp.dir, 'snaps');
    const store = createSnapshotStore({ dir, drawLabel: true, keep: 10, maxAgeMs: 3_600_000, quality: 95, logger: createMemoryLogger() });
    const frame = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg().toBuffer();
    const box = { x: 100, y: 120, width: 80, height: 100 };
    const file = await store.save('front', 'e1', frame, '#1 person', undefined, { boxes: [{ label: 'person', score: 0.9, id: 1, box }], zone: [[0, 200], [320, 200], [320, 240], [0, 240]] });
    const { data, info } = await sharp(path.join(dir, file)).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    expect(BOX_COLOR).toBe('#ff2d55');
    // JPEG halves the colour resolution: a 3-pixel red line comes back red-dominant, not exact.
    const reddish = (p: number[]) => p[0]! - p[1]! > 60 && p[0]! > 170;
    const near = (p: number[], q: number[]) => p.every((v, i) => Math.abs(v - q[i]!) < 12);
    expect(reddish(at(box.x, 170))).toBe(true); // the box's left edge
    expect(reddish(at(box.x + box.width, 170))).toBe(true); // its right edge
    expect(reddish(at(box.x - 6, 170))).toBe(false);
    expect(near(at(140, 170), [128, 128, 128])).toBe(true); // inside the box: the frame as it was
    const zoneFill = at(20, 225); // the zone is tinted blue-ish
    expect(zoneFill[2]! - zoneFill[0]!).toBeGreaterThan(15);
    expect(near(at(20, 150), [128, 128, 128])).toBe(true); // outside both
  });
});

// The rule engine: per rule and camera, a window of the last M frames; a rule fires on a hit frame when at least
// K of the window are hits, it is inside its active hours (in its own time zone) and out of its cooldown.
// With a detection model a frame is a hit when at least `count` matching objects are in it (in the rule's zone, if
// any), and enter/leave rules fire once per tracked object crossing into or out of the zone (or the frame).
import type { ActiveHours, ObjectRule, RuleConfig } from './config/types.js';
import type { TrackedObject, Transition } from './tracker.js';
import { minAreaPx } from './zones.js';

export interface Detection {
  rule: RuleConfig;
  label: string;
  score: number;
  /** Hits in the window when the rule fired, and the window size. */
  hits: number;
  window: number;
  message: string;
  /** Detection models: the objects that made the frame a hit (best first), or the one that entered or left. */
  objects?: TrackedObject[];
  trigger?: ObjectRule['trigger'];
  zone?: string;
}

/** A detection model's view of a frame: its objects (zones and track ids known) and the tracker's transitions. */
export interface ObjectView {
  objects: readonly TrackedObject[];
  transitions: readonly Transition[];
  /** The frame's size (min_area in % of it). */
  width: number;
  height: number;
  /** The camera's zone names (a rule on a zone the camera lacks does not run there). */
  zones: readonly string[];
}

interface RuleState {
  ring: boolean[];
  next: number;
  count: number;
  /** Epoch ms until which the rule stays quiet on this camera. */
  quietUntil: number;
  /** enter/leave rules: epoch ms until which each object (track id) stays quiet. */
  quietObjects: Map<number, number>;
}

const PRESENT: ObjectRule = { trigger: 'present', count: 1 };

function matches(rule: RuleConfig, o: TrackedObject, view: ObjectView): boolean {
  if (rule.labels !== '*' && !rule.labels.includes(o.label)) return false;
  if (o.score < rule.minScore) return false;
  return o.box.width * o.box.height >= minAreaPx(rule.objects?.minArea, view.width, view.height);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function clockIn(tz: string, at: number): { day: number; minutes: number; text: string } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday!);
  return { day, minutes: Number(parts.hour) * 60 + Number(parts.minute), text: `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}` };
}

/** Inside the window? A window that wraps midnight belongs to the day it starts on. */
export function isActive(hours: ActiveHours, at: number): boolean {
  const { day, minutes } = clockIn(hours.tz, at);
  const dayOk = (d: number) => hours.days.length === 0 || hours.days.includes(d);
  if (hours.from < hours.to) return minutes >= hours.from && minutes < hours.to && dayOk(day);
  if (minutes >= hours.from) return dayOk(day);
  return minutes < hours.to && dayOk((day + 6) % 7);
}

export function renderMessage(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{([a-z_]+)\}/g, (all, key: string) => (key in values ? String(values[key]) : all));
}

/** The rule's best label on this frame: the highest-scoring label in its set. */
function bestLabel(rule: RuleConfig, labels: string[], scores: ArrayLike<number>): { label: string; score: number } {
  let best = { label: '', score: -Infinity };
  for (let i = 0; i < labels.length; i++) {
    if (rule.labels !== '*' && !rule.labels.includes(labels[i]!)) continue;
    if (scores[i]! > best.score) best = { label: labels[i]!, score: scores[i]! };
  }
  return best;
}

export interface RuleEngine {
  /** Feed one classified frame (with a detection model's objects); returns the rules that fire on it. */
  evaluate(camera: string, labels: string[], scores: ArrayLike<number>, at: number, view?: ObjectView): Detection[];
  /** Forget a camera's windows (it went offline: old hits must not combine with new ones). */
  reset(camera: string): void;
}

export function createRuleEngine(rules: RuleConfig[]): RuleEngine {
  const states = new Map<string, RuleState>();
  const stateOf = (rule: RuleConfig, camera: string): RuleState => {
    const key = `${rule.name}\u0000${camera}`;
    let s = states.get(key);
    if (!s) {
      s = { ring: new Array<boolean>(rule.m).fill(false), next: 0, count: 0, quietUntil: 0, quietObjects: new Map() };
      states.set(key, s);
    }
    return s;
  };
  const clear = (s: RuleState) => {
    s.ring.fill(false);
    s.count = 0;
  };
  const message = (rule: RuleConfig, camera: string, at: number, best: { label: string; score: number }, extra: Record<string, string | number>) => {
    const time = clockIn(rule.activeHours?.tz ?? Intl.DateTimeFormat().resolvedOptions().timeZone, at).text;
    const values = { camera, rule: rule.name, label: best.label, score: best.score.toFixed(2), score_pct: `${Math.round(best.score * 100)}%`, severity: rule.severity, time, zone: '', count: '', object_id: '', trigger: '', ...extra };
    return renderMessage(rule.message, values);
  };

  /** An enter/leave rule: one detection per matching transition, each object quiet for the cooldown after it fired. */
  function transitions(rule: RuleConfig, o: ObjectRule, s: RuleState, camera: string, at: number, view: ObjectView, fired: Detection[]): void {
    for (const [id, until] of s.quietObjects) if (until <= at) s.quietObjects.delete(id);
    for (const t of view.transitions) {
      if (t.kind !== o.trigger || t.zone !== o.zone || !matches(rule, t.object, view) || s.quietObjects.has(t.object.id)) continue;
      if (rule.cooldownMs > 0) s.quietObjects.set(t.object.id, at + rule.cooldownMs);
      const extra = { zone: o.zone ?? '', object_id: t.object.id, trigger: o.trigger, hits: 1, window: 1 };
      fired.push({ rule, label: t.object.label, score: t.object.score, hits: 1, window: 1, objects: [t.object], trigger: o.trigger, ...(o.zone ? { zone: o.zone } : {}), message: message(rule, camera, at, t.object, extra) });
    }
  }

  return {
    evaluate(camera, labels, scores, at, view) {
      const fired: Detection[] = [];
      for (const rule of rules) {
        if (rule.cameras && !rule.cameras.includes(camera)) continue;
        const o = view ? (rule.objects ?? PRESENT) : undefined;
        if (o?.zone && !view!.zones.includes(o.zone)) continue; // the rule watches cameras that have its zone
        const s = stateOf(rule, camera);
        if (rule.activeHours && !isActive(rule.activeHours, at)) {
          clear(s); // hits from before the window opens must not fire it the moment it does
          continue;
        }
        if (o && o.trigger !== 'present') {
          transitions(rule, o, s, camera, at, view!, fired);
          continue;
        }
        const found = o ? view!.objects.filter((x) => matches(rule, x, view!) && (!o.zone || x.zones.includes(o.zone))).sort((a, b) => b.score - a.score) : undefined;
        const best = found ? { label: found[0]?.label ?? '', score: found[0]?.score ?? 0 } : bestLabel(rule, labels, scores);
        const hit = found ? found.length >= o!.count : best.score >= rule.minScore;
        s.count += (hit ? 1 : 0) - (s.ring[s.next] ? 1 : 0);
        s.ring[s.next] = hit;
        s.next = (s.next + 1) % rule.m;
        if (!hit || s.count < rule.k || at < s.quietUntil) continue;
        s.quietUntil = at + rule.cooldownMs;
        const extra = { hits: s.count, window: rule.m, ...(found ? { count: found.length, zone: o!.zone ?? '', trigger: 'present' } : {}) };
        const objectsPart = found ? { objects: found, trigger: 'present' as const, ...(o!.zone ? { zone: o!.zone } : {}) } : {};
        fired.push({ rule, label: best.label, score: best.score, hits: s.count, window: rule.m, ...objectsPart, message: message(rule, camera, at, best, extra) });
      }
      return fired;
    },
    reset(camera) {
      for (const [key, s] of states) {
        if (!key.endsWith(`\u0000${camera}`)) continue;
        clear(s);
        s.quietObjects.clear(); // the camera's tracks are forgotten with it
      }
    },
  };
}

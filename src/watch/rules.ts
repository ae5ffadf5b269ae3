// The rule engine: per rule and camera, a window of the last M frames; a rule fires on a hit frame when at least
// K of the window are hits, it is inside its active hours (in its own time zone) and out of its cooldown.
import type { ActiveHours, RuleConfig } from './config/types.js';

export interface Detection {
  rule: RuleConfig;
  label: string;
  score: number;
  /** Hits in the window when the rule fired, and the window size. */
  hits: number;
  window: number;
  message: string;
}

interface RuleState {
  ring: boolean[];
  next: number;
  count: number;
  /** Epoch ms until which the rule stays quiet on this camera. */
  quietUntil: number;
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
  /** Feed one classified frame; returns the rules that fire on it. */
  evaluate(camera: string, labels: string[], scores: ArrayLike<number>, at: number): Detection[];
  /** Forget a camera's windows (it went offline: old hits must not combine with new ones). */
  reset(camera: string): void;
}

export function createRuleEngine(rules: RuleConfig[]): RuleEngine {
  const states = new Map<string, RuleState>();
  const stateOf = (rule: RuleConfig, camera: string): RuleState => {
    const key = `${rule.name}\u0000${camera}`;
    let s = states.get(key);
    if (!s) {
      s = { ring: new Array<boolean>(rule.m).fill(false), next: 0, count: 0, quietUntil: 0 };
      states.set(key, s);
    }
    return s;
  };
  const clear = (s: RuleState) => {
    s.ring.fill(false);
    s.count = 0;
  };

  return {
    evaluate(camera, labels, scores, at) {
      const fired: Detection[] = [];
      for (const rule of rules) {
        if (rule.cameras && !rule.cameras.includes(camera)) continue;
        const s = stateOf(rule, camera);
        if (rule.activeHours && !isActive(rule.activeHours, at)) {
          clear(s); // hits from before the window opens must not fire it the moment it does
          continue;
        }
        const best = bestLabel(rule, labels, scores);
        const hit = best.score >= rule.minScore;
        s.count += (hit ? 1 : 0) - (s.ring[s.next] ? 1 : 0);
        s.ring[s.next] = hit;
        s.next = (s.next + 1) % rule.m;
        if (!hit || s.count < rule.k || at < s.quietUntil) continue;
        s.quietUntil = at + rule.cooldownMs;
        const time = clockIn(rule.activeHours?.tz ?? Intl.DateTimeFormat().resolvedOptions().timeZone, at).text;
        const values = { camera, rule: rule.name, label: best.label, score: best.score.toFixed(2), score_pct: `${Math.round(best.score * 100)}%`, severity: rule.severity, time, hits: s.count, window: rule.m };
        fired.push({ rule, label: best.label, score: best.score, hits: s.count, window: rule.m, message: renderMessage(rule.message, values) });
      }
      return fired;
    },
    reset(camera) {
      for (const [key, s] of states) if (key.endsWith(`\u0000${camera}`)) clear(s);
    },
  };
}

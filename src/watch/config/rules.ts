// The `rules:` list (in the watch config or a separate rules file): which labels, how sure, how many of the
// last frames, how often, when, how severe and what to say — and with a detection model, in which zone, how many
// objects, or an object entering or leaving (docs/watch-detection.md). Validated with line/column errors.
import { readFile } from 'node:fs/promises';
import { configError, displayPath, Field, parseYaml, type MapReader } from './reader.js';
import { NAME_RE } from './values.js';
import { readArea } from './zones.js';
import { RULE_TRIGGERS, SEVERITIES, type ActiveHours, type CameraConfig, type ObjectRule, type RuleConfig } from './types.js';

/** Placeholders a rule's message may use; anything else is a config error. */
export const MESSAGE_FIELDS = ['camera', 'rule', 'label', 'score', 'score_pct', 'severity', 'time', 'hits', 'window', 'zone', 'count', 'object_id', 'trigger'] as const;
export const DEFAULT_MESSAGE = '{label} on {camera} ({score_pct})';
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

function readClock(f: Field): number {
  const s = f.string();
  const m = /^([01]?\d|2[0-4]):([0-5]\d)$/.exec(s.trim());
  if (!m || (Number(m[1]) === 24 && m[2] !== '00')) f.fail(`${JSON.stringify(s)} is not a time of day: use HH:MM, e.g. "22:00" (quote it)`);
  return Number(m![1]) * 60 + Number(m![2]);
}

export function checkTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function readActiveHours(f: Field): ActiveHours {
  const m = f.map();
  const from = m.req('from', readClock);
  const to = m.req('to', readClock);
  if (from === to) m.get('to').fail('is the same as "from": leave active_hours out to watch all day');
  const days = m.opt(
    'days',
    (d) =>
      d.list().map((x) => {
        const day = x.choice([...DAYS, 'sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const);
        return DAYS.indexOf(day.slice(0, 3) as (typeof DAYS)[number]);
      }),
    [] as number[],
  );
  const tz = m.opt(
    'tz',
    (x) => {
      const s = x.string();
      if (!checkTimeZone(s)) x.fail(`${JSON.stringify(s)} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`);
      return s;
    },
    Intl.DateTimeFormat().resolvedOptions().timeZone,
  );
  m.done();
  return { from, to, days, tz };
}

function readMessage(f: Field): string {
  const s = f.string();
  for (const match of s.matchAll(/\{([^{}]*)\}/g)) {
    if (!(MESSAGE_FIELDS as readonly string[]).includes(match[1]!)) f.fail(`unknown placeholder {${match[1]}}: use ${MESSAGE_FIELDS.map((x) => `{${x}}`).join(', ')}`);
  }
  return s;
}

export function readRule(f: Field): RuleConfig {
  const m = f.map();
  const name = m.req('name', (x) => x.string({ pattern: NAME_RE, hint: 'use letters, digits, ".", "_" or "-"' }));
  const labelsField = m.has('labels') ? m.get('labels') : m.get('label');
  if (!labelsField.present) labelsField.fail('is required: the label(s) that trigger this rule, or "*" for any');
  const list = labelsField.strings();
  const labels = list.includes('*') ? ('*' as const) : list;
  const minScore = m.opt('min_score', (x) => x.number({ min: 0, max: 1 }), 0.5);
  const window = m.opt('window', (x) => x.number({ min: 1, max: 1000, integer: true }), 1);
  const hitsField = m.get('min_hits');
  const hits = hitsField.present ? hitsField.number({ min: 1, integer: true }) : window;
  if (hits > window) hitsField.fail(`is ${hits} but the window is only ${window} frame(s)`);
  const cooldownMs = m.opt('cooldown', (x) => x.duration(), 60_000);
  const camerasField = m.get('cameras');
  const cameras = camerasField.present ? camerasField.strings() : undefined;
  const activeHours = m.opt('active_hours', readActiveHours, undefined);
  const severity = m.opt('severity', (x) => x.choice(SEVERITIES), 'warning');
  const message = m.opt('message', readMessage, DEFAULT_MESSAGE);
  const objects = readObjectRule(m, window, hitsField.present);
  m.done();
  return {
    name,
    labels,
    minScore,
    k: hits,
    m: window,
    cooldownMs,
    ...(cameras ? { cameras } : {}),
    ...(activeHours ? { activeHours } : {}),
    severity,
    message,
    ...(objects ? { objects: objects.rule } : {}),
    at: { labels: labelsField.where(), cameras: camerasField.present ? camerasField.where() : f.where(), ...(objects ? { objects: objects.at } : {}) },
  };
}

/** The detection keys of a rule (zone, count, min_area, trigger); undefined when it uses none of them. */
function readObjectRule(m: MapReader, window: number, hasHits: boolean): { rule: ObjectRule; at: string } | undefined {
  const keys = ['trigger', 'zone', 'count', 'min_area'].filter((k) => m.has(k));
  if (!keys.length) {
    for (const k of ['trigger', 'zone', 'count', 'min_area']) m.get(k); // known keys, for done()
    return undefined;
  }
  const trigger = m.opt('trigger', (x) => x.choice(RULE_TRIGGERS), 'present');
  const zone = m.opt('zone', (x) => x.string({ pattern: NAME_RE, hint: 'a zone name of the camera' }), undefined);
  const countField = m.get('count');
  const count = countField.present ? countField.number({ min: 1, max: 1000, integer: true }) : 1;
  const minArea = m.opt('min_area', readArea, undefined);
  if (trigger !== 'present') {
    // An enter or leave fires once per object as it happens: counting and debouncing do not apply.
    if (countField.present) countField.fail(`applies to trigger: present only; a ${trigger} rule fires once per object that ${trigger === 'enter' ? 'enters' : 'leaves'}`);
    if (window > 1 || hasHits) m.get('window').fail(`window and min_hits apply to trigger: present only; the tracker (camera tracker: min_hits, max_age) steadies ${trigger} events`);
  }
  return { rule: { trigger, ...(zone ? { zone } : {}), count, ...(minArea ? { minArea } : {}) }, at: m.get(keys[0]!).where() };
}

export function readRules(f: Field): RuleConfig[] {
  const rules = f.list().map(readRule);
  const seen = new Map<string, string>();
  rules.forEach((r, i) => {
    const prev = seen.get(r.name);
    if (prev) f.list()[i]!.map().get('name').fail(`rule name "${r.name}" is used twice (first at ${prev}); names must be unique`);
    seen.set(r.name, f.list()[i]!.where());
  });
  return rules;
}

/** A rules file: `rules: [...]` at the top (or a bare list). */
export async function loadRulesFile(file: string): Promise<RuleConfig[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw configError(file, `cannot read the rules file (${err.code ?? err.message})`);
  });
  const { doc, origin } = parseYaml(text, displayPath(file));
  const root = new Field(origin, doc.contents, '');
  if (root.isMap()) {
    const m = root.map();
    const rules = m.req('rules', readRules);
    m.done();
    return rules;
  }
  return readRules(new Field(origin, doc.contents, 'rules'));
}

/**
 * Check rules against what is known only at start: the model's labels, whether it finds objects (zones, counts and
 * enter/leave need a detection model), and the cameras with their zones.
 */
export function checkRules(rules: RuleConfig[], labels: string[], cameraList: Array<Pick<CameraConfig, 'name' | 'zones'>>, detects = false): void {
  const cameras = cameraList.map((c) => c.name);
  if (!detects) {
    const zoned = cameraList.find((c) => c.zones.length);
    if (zoned) throw configError(zoned.zones[0]!.at, `camera ${zoned.name}: zones need a detection model (one that locates objects); this model only scores whole frames — use roi: to look at part of the frame`);
  }
  for (const c of cameraList) {
    for (const z of c.zones) {
      const unknown = z.filter.labels === '*' ? [] : z.filter.labels.filter((l) => !labels.includes(l));
      if (unknown.length) throw configError(z.at, `camera ${c.name}, zone ${z.name}: the model has no label ${unknown.map((u) => JSON.stringify(u)).join(', ')} (its labels: ${labels.join(', ')})`);
    }
  }
  for (const r of rules) {
    if (r.objects && !detects) {
      throw configError(r.at.objects!, `rule ${r.name}: trigger, zone, count and min_area need a detection model (one that locates objects); this model only scores whole frames`);
    }
    const zone = r.objects?.zone;
    if (zone) {
      const watched = cameraList.filter((c) => !r.cameras || r.cameras.includes(c.name));
      const lacking = watched.filter((c) => !c.zones.some((z) => z.name === zone)).map((c) => c.name);
      if (r.cameras ? lacking.length : lacking.length === watched.length) {
        throw configError(r.at.objects!, `rule ${r.name}: no zone ${JSON.stringify(zone)} on camera ${lacking.join(', ')} (define it under the camera's zones:${r.cameras ? '' : ', or list the cameras that have it in cameras:'})`);
      }
    }
    if (r.labels !== '*') {
      const unknown = r.labels.filter((l) => !labels.includes(l));
      if (unknown.length) throw configError(r.at.labels, `rule ${r.name}: the model has no label ${unknown.map((u) => JSON.stringify(u)).join(', ')} (its labels: ${labels.join(', ')})`);
    }
    const missing = (r.cameras ?? []).filter((c) => !cameras.includes(c));
    if (missing.length) throw configError(r.at.cameras, `rule ${r.name}: no camera named ${missing.join(', ')} (cameras: ${cameras.join(', ') || 'none'})`);
  }
}

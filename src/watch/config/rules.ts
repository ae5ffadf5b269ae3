// The `rules:` list (in the watch config or a separate rules file): which labels, how sure, how many of the
// last frames, how often, when, how severe and what to say. Validated with line/column errors.
import { readFile } from 'node:fs/promises';
import { configError, displayPath, Field, parseYaml } from './reader.js';
import { NAME_RE } from './cameras.js';
import { SEVERITIES, type ActiveHours, type RuleConfig } from './types.js';

/** Placeholders a rule's message may use; anything else is a config error. */
export const MESSAGE_FIELDS = ['camera', 'rule', 'label', 'score', 'score_pct', 'severity', 'time', 'hits', 'window'] as const;
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
    at: { labels: labelsField.where(), cameras: camerasField.present ? camerasField.where() : f.where() },
  };
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

/** Check rules against what is known only at start: the model's labels and the camera names. */
export function checkRules(rules: RuleConfig[], labels: string[], cameras: string[]): void {
  for (const r of rules) {
    if (r.labels !== '*') {
      const unknown = r.labels.filter((l) => !labels.includes(l));
      if (unknown.length) throw configError(r.at.labels, `rule ${r.name}: the model has no label ${unknown.map((u) => JSON.stringify(u)).join(', ')} (its labels: ${labels.join(', ')})`);
    }
    const missing = (r.cameras ?? []).filter((c) => !cameras.includes(c));
    if (missing.length) throw configError(r.at.cameras, `rule ${r.name}: no camera named ${missing.join(', ')} (cameras: ${cameras.join(', ') || 'none'})`);
  }
}

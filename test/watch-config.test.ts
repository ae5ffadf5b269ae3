// watch's configuration and rules: real YAML files, every mistake reported with its line and column (exit code 2),
// flags laid over the file, and the rule engine's K-of-M debounce, cooldown and time-zone active hours.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MlctlError } from '../src/errors.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import { checkRules } from '../src/watch/config/rules.js';
import type { RuleConfig } from '../src/watch/config/types.js';
import { createRuleEngine, isActive } from '../src/watch/rules.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-config-');
  await fs.mkdir(path.join(tmp.dir, 'drop'));
  await fs.writeFile(path.join(tmp.dir, 'clip.mp4'), 'not really a video; only its existence matters here');
});
afterAll(() => tmp?.cleanup());

async function write(text: string, name = `w${n++}.yaml`): Promise<string> {
  const file = path.join(tmp.dir, name);
  await fs.writeFile(file, text);
  return file;
}

/** The WATCH_CONFIG_INVALID error a config produces (fails the test if it loads). */
async function errorOf(text: string): Promise<MlctlError> {
  const file = await write(text);
  try {
    await loadWatchConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(MlctlError);
    return err as MlctlError;
  }
  throw new Error('the config loaded but should not have');
}

const BASE = `model: ./models/colors
cameras:
  - name: door
    url: http://cam.local/video.mjpg
`;

describe('watch config', () => {
  it('reads a full config: camera kinds from their URLs, defaults, notifiers, env secrets', async () => {
    process.env.MLCTL_TEST_HOOK_SECRET = 'from-env';
    const file = await write(`model: ./models/colors
fps: 2
cameras:
  - name: door
    url: http://user:pw@cam.local/video.mjpg
    roi: {x: 10%, y: 0, width: 50%, height: 240}
  - name: yard
    url: rtsp://cam2.local/stream1
    rtsp_transport: udp
  - name: inbox
    path: drop
  - name: clip
    url: clip.mp4
    loop: true
  - name: usb
    url: /dev/video7
    fps: 5
rules:
  - name: person-night
    labels: [person, cat]
    min_score: 0.7
    min_hits: 2
    window: 4
    cooldown: 5m
    cameras: [door]
    active_hours: {from: "22:00", to: "06:00", tz: Europe/Berlin, days: [fri, sat]}
    severity: critical
    message: "{label} at {camera} ({score_pct})"
notify:
  - type: webhook
    url: https://hooks.example/x
    secret: \${MLCTL_TEST_HOOK_SECRET}
    format: ntfy
  - type: mqtt
    url: mqtt://broker.local:1883
    discovery: false
  - type: exec
    command: [/usr/bin/logger, -t, mlctl]
    events: [detection]
    min_severity: warning
status: {port: 9464}
`);
    const c = await loadWatchConfig(file);
    expect(c.inference.model).toBe(path.join(tmp.dir, 'models/colors'));
    expect(c.cameras.map((x) => [x.name, x.source.kind, x.fps])).toEqual([
      ['door', 'mjpeg', 2],
      ['yard', 'ffmpeg', 2],
      ['inbox', 'folder', 0],
      ['clip', 'ffmpeg', 2],
      ['usb', 'ffmpeg', 5],
    ]);
    expect(c.cameras[1]!.source).toMatchObject({ what: 'rtsp', rtspTransport: 'udp' });
    expect(c.cameras[3]!.source).toMatchObject({ what: 'file', loop: true, input: path.join(tmp.dir, 'clip.mp4') });
    expect(c.cameras[4]!.source).toMatchObject({ what: 'v4l2', input: '/dev/video7' });
    expect(c.cameras[0]!.roi).toEqual({ x: { value: 10, unit: '%' }, y: { value: 0, unit: 'px' }, width: { value: 50, unit: '%' }, height: { value: 240, unit: 'px' } });
    const r = c.rules[0]!;
    expect(r).toMatchObject({ labels: ['person', 'cat'], minScore: 0.7, k: 2, m: 4, cooldownMs: 300_000, cameras: ['door'], severity: 'critical' });
    expect(r.activeHours).toEqual({ from: 22 * 60, to: 6 * 60, days: [5, 6], tz: 'Europe/Berlin' });
    expect(c.sinks.map((s) => [s.type, s.name])).toEqual([['webhook', 'webhook'], ['mqtt', 'mqtt'], ['exec', 'exec']]);
    expect(c.sinks[0]).toMatchObject({ secrets: ['from-env'], format: 'ntfy', snapshot: 'inline' });
    expect(c.sinks[1]).toMatchObject({ topicPrefix: 'mlctl/watch' });
    expect((c.sinks[1] as { discoveryPrefix?: string }).discoveryPrefix).toBeUndefined();
    expect(c.sinks[2]).toMatchObject({ types: ['detection'], minSeverity: 'warning' });
    expect(c.status.port).toBe(9464);
    expect(c.stateDir).toBe(path.join(tmp.dir, 'watch-state'));
  });

  it.each([
    ['a misspelt key, with a suggestion', `${BASE}rules:\n  - name: r\n    labels: [x]\n    min_scor: 0.5\n`, ':8:5', /rules\[0\]\.min_scor: unknown key \(did you mean min_score\?\)/],
    ['a score out of range', `${BASE}rules:\n  - name: r\n    labels: [x]\n    min_score: 1.5\n`, ':8:16', /min_score: must be at most 1, got 1\.5/],
    ['K larger than M', `${BASE}rules:\n  - name: r\n    label: x\n    min_hits: 5\n    window: 3\n`, ':8:15', /min_hits: is 5 but the window is only 3 frame/],
    ['a bad time zone', `${BASE}rules:\n  - name: r\n    label: x\n    active_hours: {from: "22:00", to: "06:00", tz: Mars/Olympus}\n`, ':8:52', /not an IANA time zone/],
    ['an unquoted-looking bad clock', `${BASE}rules:\n  - name: r\n    label: x\n    active_hours: {from: "25:00", to: "06:00"}\n`, ':8:26', /not a time of day/],
    ['a bad duration', `${BASE}rules:\n  - name: r\n    label: x\n    cooldown: soon\n`, ':8:15', /"soon" is not a duration/],
    ['an unknown placeholder', `${BASE}rules:\n  - name: r\n    label: x\n    message: "{lable} seen"\n`, ':8:14', /unknown placeholder \{lable\}/],
    ['a bad severity', `${BASE}rules:\n  - name: r\n    label: x\n    severity: urgent\n`, ':8:15', /"urgent" is not one of info, warning, critical/],
    ['a duplicate camera name', `${BASE}  - name: door\n    url: http://other/x.mjpg\n`, ':5:11', /camera name "door" is used twice/],
    ['a missing file', `${BASE}  - name: yard\n    url: missing.mp4\n`, ':6:10', /no such file or folder/],
    ['an option of another source kind', `${BASE}    rtsp_transport: udp\n`, ':5:21', /applies to ffmpeg cameras only; this camera is read as mjpeg/],
    ['a YAML syntax error', `${BASE}rules: [\n  - name: r\n`, ':6:3', /YAML syntax error/],
    ['a webhook without a URL scheme it can use', `${BASE}notify:\n  - type: webhook\n    url: ftp://x/y\n`, ':7:10', /ftp:\/\/ is not supported here/],
    ['a missing environment variable', `${BASE}notify:\n  - type: webhook\n    url: https://x/y\n    secret: \${MLCTL_NO_SUCH_VAR}\n`, ':8:13', /environment variable MLCTL_NO_SUCH_VAR is not set/],
  ])('rejects %s with its line and column', async (_what, text, where, message) => {
    const err = await errorOf(text);
    expect(err.code).toBe('WATCH_CONFIG_INVALID');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`.yaml${where}: `);
    expect(err.message).toMatch(message);
  });

  it('reads rules from a separate rules file, with positions in that file', async () => {
    const rules = await write('rules:\n  - name: cats\n    label: cat\n  - name: dogs\n    label: dog\n    window: zero\n', 'rules-bad.yaml');
    const err = await errorOf(`${BASE}rules_file: ${path.basename(rules)}\n`);
    expect(err.message).toMatch(/rules-bad\.yaml:6:13: rules\[1\]\.window: expected a number/);
    const good = await write('rules:\n  - name: cats\n    label: cat\n', 'rules-good.yaml');
    const c = await loadWatchConfig(await write(`${BASE}rules_file: ${path.basename(good)}\n`));
    expect(c.rules.map((r) => r.name)).toEqual(['cats']);
  });

  it('lays command-line flags over the file and names the flag when one is wrong', async () => {
    const file = await write(BASE);
    const c = await loadWatchConfig(file, { cameras: [{ name: 'yard', url: 'rtsp://cam2/live' }], webhook: 'http://127.0.0.1:9/hook', webhookSecret: 's', fps: 3, statusPort: 0 });
    expect(c.cameras.map((x) => [x.name, x.fps])).toEqual([['door', 3], ['yard', 3]]);
    expect(c.sinks).toMatchObject([{ type: 'webhook', name: 'webhook-cli', secrets: ['s'] }]);
    expect(c.status.port).toBe(0);
    await expect(loadWatchConfig(file, { cameras: [{ name: 'bad name!', url: 'http://x/y' }] })).rejects.toThrow(/^command line: cameras\[1\]\.name/);
    await expect(loadWatchConfig(undefined, { model: 'm' })).rejects.toThrow(/cameras: at least one camera is needed/);
  });

  it('checks rules against the model labels and camera names once they are known', async () => {
    const file = await write(`${BASE}rules:\n  - name: r\n    labels: [red, purple]\n    cameras: [door, garage]\n`);
    const c = await loadWatchConfig(file);
    expect(() => checkRules(c.rules, ['red', 'blue'], [{ name: 'door', zones: [] }])).toThrow(/:7:13: rule r: the model has no label "purple" \(its labels: red, blue\)/);
    expect(() => checkRules(c.rules, ['red', 'purple'], [{ name: 'door', zones: [] }])).toThrow(/:8:14: rule r: no camera named garage/);
  });
});

describe('rule engine', () => {
  const rule = (over: Partial<RuleConfig>): RuleConfig => ({ name: 'r', labels: ['red'], minScore: 0.5, k: 1, m: 1, cooldownMs: 0, severity: 'warning', message: '{label} on {camera} ({score_pct}, {hits}/{window})', at: { labels: '', cameras: '' }, ...over });
  const labels = ['red', 'blue'];
  const red = [0.9, 0.1];
  const blue = [0.2, 0.8];

  it('fires on K hits among the last M frames, only on a hit frame', () => {
    const e = createRuleEngine([rule({ k: 2, m: 3 })]);
    const fired = [red, blue, red, blue, blue, red, blue, red].map((s, i) => e.evaluate('door', labels, s, 1000 * i).length);
    expect(fired).toEqual([0, 0, 1, 0, 0, 0, 0, 1]);
    const [d] = createRuleEngine([rule({})]).evaluate('door', labels, red, 0);
    expect(d!.message).toBe('red on door (90%, 1/1)');
  });

  it('stays quiet during its cooldown, per camera', () => {
    const e = createRuleEngine([rule({ cooldownMs: 10_000 })]);
    const at = [0, 5000, 9999, 10_000, 12_000];
    expect(at.map((t) => e.evaluate('door', labels, red, t).length)).toEqual([1, 0, 0, 1, 0]);
    expect(e.evaluate('yard', labels, red, 5000)).toHaveLength(1);
  });

  it('respects min_score, label sets, "*", camera lists and reset', () => {
    const e = createRuleEngine([rule({ minScore: 0.95 }), rule({ name: 'any', labels: '*', minScore: 0.7 }), rule({ name: 'yard-only', cameras: ['yard'] })]);
    expect(e.evaluate('door', labels, red, 0).map((d) => d.rule.name)).toEqual(['any']);
    expect(e.evaluate('door', labels, blue, 1).map((d) => [d.rule.name, d.label])).toEqual([['any', 'blue']]);
    expect(e.evaluate('yard', labels, red, 2).map((d) => d.rule.name)).toEqual(['any', 'yard-only']);
    const k2 = createRuleEngine([rule({ k: 2, m: 2 })]);
    k2.evaluate('door', labels, red, 0);
    k2.reset('door');
    expect(k2.evaluate('door', labels, red, 1)).toHaveLength(0);
  });

  it('active hours: a window past midnight in the rule time zone belongs to the day it starts', () => {
    const hours = { from: 22 * 60, to: 6 * 60, days: [5], tz: 'Europe/Berlin' }; // Friday night
    // 2024-03-08 is a Friday; Berlin is UTC+1 in March (before the DST change on the 31st).
    expect(isActive(hours, Date.parse('2024-03-08T21:30:00Z'))).toBe(true); // Fri 22:30 Berlin
    expect(isActive(hours, Date.parse('2024-03-09T04:59:00Z'))).toBe(true); // Sat 05:59 Berlin, Friday's night
    expect(isActive(hours, Date.parse('2024-03-09T05:00:00Z'))).toBe(false); // Sat 06:00
    expect(isActive(hours, Date.parse('2024-03-09T21:30:00Z'))).toBe(false); // Sat 22:30: not a Friday
    expect(isActive(hours, Date.parse('2024-03-08T20:59:00Z'))).toBe(false); // Fri 21:59
    const day = { from: 9 * 60, to: 17 * 60, days: [], tz: 'America/New_York' };
    expect(isActive(day, Date.parse('2024-07-01T13:00:00Z'))).toBe(true); // 09:00 EDT
    expect(isActive(day, Date.parse('2024-07-01T12:59:00Z'))).toBe(false);
    const e = createRuleEngine([rule({ activeHours: hours })]);
    expect(e.evaluate('door', labels, red, Date.parse('2024-03-08T12:00:00Z'))).toHaveLength(0);
    expect(e.evaluate('door', labels, red, Date.parse('2024-03-08T22:00:00Z'))).toHaveLength(1);
  });
});

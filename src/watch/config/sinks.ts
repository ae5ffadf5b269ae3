// The `notify:` list: webhooks, an MQTT broker and command hooks, each with a stable name (its delivery cursor
// in the spool), an event filter and its retry policy.
import os from 'node:os';
import { NAME_RE, readHeaders } from './cameras.js';
import type { Field, MapReader } from './reader.js';
import { EVENT_TYPES, SEVERITIES, type ExecSink, type MqttSink, type SinkConfig, type WebhookSink } from './types.js';

const SINK_TYPES = ['webhook', 'mqtt', 'exec'] as const;

function readUrl(f: Field, schemes: string[]): string {
  const s = f.string();
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return f.fail(`${JSON.stringify(s)} is not a URL`);
  }
  if (!schemes.includes(u.protocol.replace(/:$/, ''))) f.fail(`${u.protocol}// is not supported here: use ${schemes.map((x) => `${x}://`).join(' or ')}`);
  return s;
}

function readCommon(m: MapReader, type: string, index: number, defaults: { initialMs: number; maxMs: number }) {
  const name = m.opt('name', (x) => x.string({ pattern: NAME_RE, hint: 'use letters, digits, ".", "_" or "-"' }), index === 0 ? type : `${type}-${index + 1}`);
  const types = m.opt('events', (x) => x.list().map((t) => t.choice(EVENT_TYPES)), [...EVENT_TYPES]);
  const minSeverity = m.opt('min_severity', (x) => x.choice(SEVERITIES), 'info');
  const maxAttempts = m.opt('max_attempts', (x) => x.number({ min: 0, integer: true }), 0);
  const backoff = m.opt(
    'retry',
    (x) => {
      const r = x.map();
      const out = { initialMs: r.opt('initial', (y) => y.duration(), defaults.initialMs), maxMs: r.opt('max', (y) => y.duration(), defaults.maxMs) };
      r.done();
      if (out.initialMs <= 0 || out.maxMs < out.initialMs) x.fail('initial must be > 0 and max ≥ initial');
      return out;
    },
    defaults,
  );
  return { name, types, minSeverity, maxAttempts, backoff };
}

function readWebhook(m: MapReader, index: number): WebhookSink {
  const url = m.req('url', (x) => readUrl(x, ['http', 'https']));
  const secrets = m.has('secrets') ? m.get('secrets').strings() : m.opt('secret', (x) => [x.string()], [] as string[]);
  return {
    type: 'webhook',
    ...readCommon(m, 'webhook', index, { initialMs: 1000, maxMs: 60_000 }),
    url,
    secrets,
    format: m.opt('format', (x) => x.choice(['json', 'ntfy', 'slack'] as const), 'json'),
    snapshot: m.opt('snapshot', (x) => x.choice(['inline', 'url', 'none'] as const), 'inline'),
    timeoutMs: m.opt('timeout', (x) => x.duration(), 10_000),
    headers: m.opt('headers', readHeaders, {}),
  };
}

function readMqtt(m: MapReader, index: number): MqttSink {
  const url = m.req('url', (x) => readUrl(x, ['mqtt', 'mqtts', 'tcp', 'tls', 'ws', 'wss']));
  const discovery = m.opt(
    'discovery',
    (x) => {
      if (!x.isMap()) return x.boolean() ? 'homeassistant' : undefined;
      const d = x.map();
      const prefix = d.opt('prefix', (y) => y.string(), 'homeassistant');
      d.done();
      return prefix;
    },
    'homeassistant' as string | undefined,
  );
  const username = m.opt('username', (x) => x.string(), undefined as string | undefined);
  const password = m.opt('password', (x) => x.string(), undefined as string | undefined);
  return {
    type: 'mqtt',
    ...readCommon(m, 'mqtt', index, { initialMs: 1000, maxMs: 60_000 }),
    url,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    clientId: m.opt('client_id', (x) => x.string(), `mlctl-watch-${os.hostname()}`.slice(0, 64)),
    topicPrefix: m.opt('topic_prefix', (x) => x.string({ pattern: /^[^#+]+[^/#+]$/, hint: 'a topic without wildcards or a trailing /' }), 'mlctl/watch'),
    ...(discovery ? { discoveryPrefix: discovery } : {}),
    timeoutMs: m.opt('timeout', (x) => x.duration(), 10_000),
  };
}

function readExec(m: MapReader, index: number): ExecSink {
  const cmd = m.req('command', (x) => (x.isMap() ? x.fail('expected a list (argv) or one shell command line') : x.isList() ? x.list().map((y) => y.string()) : x.string()));
  return { type: 'exec', ...readCommon(m, 'exec', index, { initialMs: 1000, maxMs: 60_000 }), command: cmd, timeoutMs: m.opt('timeout', (x) => x.duration(), 30_000) };
}

export function readSinks(f: Field): SinkConfig[] {
  const counts: Record<string, number> = {};
  const sinks = f.list().map((item) => {
    const m = item.map();
    const type = m.req('type', (x) => x.choice(SINK_TYPES));
    const index = counts[type] ?? 0;
    counts[type] = index + 1;
    const sink = type === 'webhook' ? readWebhook(m, index) : type === 'mqtt' ? readMqtt(m, index) : readExec(m, index);
    m.done();
    return { sink, item };
  });
  const names = new Set<string>();
  for (const { sink, item } of sinks) {
    if (names.has(sink.name)) item.map().get('name').fail(`notifier name "${sink.name}" is used twice: give each its own name (it keys the delivery cursor)`);
    names.add(sink.name);
  }
  return sinks.map((s) => s.sink);
}

// MQTT notifier (MQTT.js), in the shape Home Assistant and most hubs expect:
//   <prefix>/status                 online/offline of the watcher (retained; the last will says offline)
//   <prefix>/<camera>/availability  online/offline of each camera (retained)
//   <prefix>/<camera>/events        every event as JSON, QoS 1, with event_type for Home Assistant event entities
//   <prefix>/<camera>/state         the last detection as JSON (retained)
//   <prefix>/<camera>/snapshot      the last detection's JPEG (retained; a Home Assistant MQTT camera shows it)
//   <prefix>/<camera>/<label>       detection models: how many <label> objects are in view now (retained; Frigate's
//   <prefix>/<camera>/<zone>/<label>  per-object-type count topics), and how many are in each zone; sent on change
// plus Home Assistant discovery configs (retained) under <discovery>/<component>/<id>/config, re-sent when
// Home Assistant announces itself on <discovery>/status.
import mqtt, { type MqttClient } from 'mqtt';
import { MlctlError } from '../../errors.js';
import type { MqttSink } from '../config/types.js';
import type { WatchEvent } from '../events.js';
import type { ObjectCounts } from '../objects.js';
import { deadline, type Deadline } from '../../util/deadline.js';
import { redactUrl } from '../sources/types.js';
import { DeliveryError, type Sink } from './types.js';

export interface MqttContext {
  cameras: string[];
  /** Rule names that can fire on a camera (the event entity's event_types). */
  rulesFor(camera: string): string[];
  version: string;
  logger: { info(m: string): void; warn(m: string): void };
}

const objectId = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

/** Topics under <prefix>/<camera>/ that a label's count must not take over. */
export const RESERVED_TOPICS = new Set(['events', 'state', 'snapshot', 'availability']);

/** A label as one topic level: MQTT forbids wildcards in topic names, and "/" would add a level. */
const level = (s: string) => s.replace(/[+#/\u0000]/g, '_');

/** The count topics of a camera's counts: (topic, count) pairs, labels that clash with the event topics left out. */
export function countTopics(prefix: string, camera: string, counts: ObjectCounts): Array<[string, number]> {
  const base = `${prefix}/${camera}`;
  const out: Array<[string, number]> = [];
  for (const [label, n] of Object.entries(counts.camera)) if (!RESERVED_TOPICS.has(level(label))) out.push([`${base}/${level(label)}`, n]);
  for (const [zone, byLabel] of Object.entries(counts.zones)) for (const [label, n] of Object.entries(byLabel)) out.push([`${base}/${zone}/${level(label)}`, n]);
  return out;
}

export function discoveryMessages(cfg: MqttSink, ctx: MqttContext): Array<{ topic: string; payload: Record<string, unknown> }> {
  const dp = cfg.discoveryPrefix!;
  const node = objectId(cfg.clientId);
  const out: Array<{ topic: string; payload: Record<string, unknown> }> = [];
  for (const cam of ctx.cameras) {
    const base = `${cfg.topicPrefix}/${cam}`;
    const id = `${node}_${objectId(cam)}`;
    const device = { identifiers: [id], name: `Camera ${cam}`, manufacturer: 'mlctl', model: 'mlctl watch', sw_version: ctx.version };
    const availability = [{ topic: `${cfg.topicPrefix}/status` }, { topic: `${base}/availability` }];
    const common = { device, availability, availability_mode: 'all', origin: { name: 'mlctl' } };
    out.push(
      { topic: `${dp}/event/${id}/detection/config`, payload: { ...common, name: 'Detection', unique_id: `${id}_detection`, state_topic: `${base}/events`, event_types: [...ctx.rulesFor(cam), 'camera_offline', 'camera_online'] } },
      { topic: `${dp}/sensor/${id}/last_label/config`, payload: { ...common, name: 'Last detection', unique_id: `${id}_last_label`, state_topic: `${base}/state`, value_template: '{{ value_json.label }}', json_attributes_topic: `${base}/state` } },
      { topic: `${dp}/camera/${id}/snapshot/config`, payload: { ...common, name: 'Last snapshot', unique_id: `${id}_snapshot`, topic: `${base}/snapshot` } },
      {
        topic: `${dp}/binary_sensor/${id}/online/config`,
        payload: { device, availability: [{ topic: `${cfg.topicPrefix}/status` }], name: 'Online', unique_id: `${id}_online`, device_class: 'connectivity', state_topic: `${base}/availability`, payload_on: 'online', payload_off: 'offline', origin: { name: 'mlctl' } },
      },
    );
  }
  return out;
}

export function mqttSink(cfg: MqttSink, ctx: MqttContext): Sink {
  let client: MqttClient | undefined;
  let lastError: string | undefined;
  let readyWaiters: Array<() => void> = [];
  const cameraOnline = new Map<string, boolean>();
  /** The last count published (or to publish) on each count topic: only changes are sent, all again on reconnect. */
  const counts = new Map<string, { n: number; sent: boolean }>();
  const warned = new Set<string>();
  const status = `${cfg.topicPrefix}/status`;

  /** Publish at QoS 1 and wait for the PUBACK within `within` (a delivery's deadline) or a deadline of its own. */
  const publish = async (topic: string, payload: string | Buffer, retain: boolean, within?: Deadline) => {
    const c = client;
    if (!c?.connected) throw new DeliveryError(`not connected to ${redactUrl(cfg.url)}${lastError ? ` (${lastError})` : ''}`);
    // A broker that accepts and never acknowledges ends the attempt at the deadline.
    const d = within ?? deadline(cfg.timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new DeliveryError(d.expired() ? `no PUBACK within ${cfg.timeoutMs} ms` : 'stopped'));
        if (d.signal.aborted) return onAbort();
        d.signal.addEventListener('abort', onAbort, { once: true });
        c.publish(topic, payload, { qos: 1, retain }, (err) => {
          d.signal.removeEventListener('abort', onAbort);
          if (err) reject(new DeliveryError(err.message));
          else resolve();
        });
      });
    } finally {
      if (!within) d.clear();
    }
  };

  const announce = async () => {
    await publish(status, 'online', true);
    if (cfg.discoveryPrefix) for (const m of discoveryMessages(cfg, ctx)) await publish(m.topic, JSON.stringify(m.payload), true);
    for (const [cam, up] of cameraOnline) await publish(`${cfg.topicPrefix}/${cam}/availability`, up ? 'online' : 'offline', true);
    for (const [topic, c] of counts) {
      await publish(topic, String(c.n), true);
      c.sent = true;
    }
  };

  return {
    config: cfg,
    describe: `MQTT ${cfg.name} (${redactUrl(cfg.url)}, topics ${cfg.topicPrefix}/…)`,
    async start() {
      client = mqtt.connect(cfg.url, {
        clientId: cfg.clientId,
        ...(cfg.username !== undefined ? { username: cfg.username } : {}),
        ...(cfg.password !== undefined ? { password: cfg.password } : {}),
        clean: true,
        reconnectPeriod: 1000,
        connectTimeout: cfg.timeoutMs,
        queueQoSZero: false,
        will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true },
      });
      client.on('connect', () => {
        if (lastError) ctx.logger.info(`MQTT broker ${redactUrl(cfg.url)}: connected again`);
        lastError = undefined;
        if (cfg.discoveryPrefix) client!.subscribe(`${cfg.discoveryPrefix}/status`, { qos: 1 });
        void announce().catch(() => {}).then(() => {
          readyWaiters.splice(0).forEach((w) => w());
        });
      });
      client.on('message', (topic, payload) => {
        // Home Assistant restarted: it forgot non-retained state; send discovery and availability again.
        if (topic === `${cfg.discoveryPrefix}/status` && payload.toString() === 'online') void announce().catch(() => {});
      });
      client.on('error', (err) => {
        const msg = (err as NodeJS.ErrnoException).code ?? err.message;
        if (msg !== lastError) ctx.logger.warn(`${new MlctlError('WATCH_MQTT', [redactUrl(cfg.url), err.message]).message}; retrying every second, events wait in the spool`);
        lastError = msg;
      });
      client.on('close', () => {
        lastError ??= 'connection closed';
      });
    },
    whenReady(signal: AbortSignal) {
      if (client?.connected) return Promise.resolve();
      return new Promise<void>((resolve) => {
        readyWaiters.push(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    cameraState(camera, online) {
      cameraOnline.set(camera, online);
      if (client?.connected) void publish(`${cfg.topicPrefix}/${camera}/availability`, online ? 'online' : 'offline', true).catch(() => {});
    },
    objectCounts(camera, now) {
      for (const label of Object.keys(now.camera)) {
        if (RESERVED_TOPICS.has(level(label)) && !warned.has(label)) {
          warned.add(label);
          ctx.logger.warn(`MQTT ${cfg.name}: no count topic for label "${label}" on camera ${camera}: ${cfg.topicPrefix}/${camera}/${label} carries events (zone counts are still sent)`);
        }
      }
      for (const [topic, n] of countTopics(cfg.topicPrefix, camera, now)) {
        const prev = counts.get(topic);
        if (prev && prev.n === n && prev.sent) continue;
        const entry = { n, sent: false };
        counts.set(topic, entry);
        // Live state like availability: not spooled; a count missed while disconnected is sent on reconnect.
        if (client?.connected) {
          void publish(topic, String(n), true).then(
            () => void (entry.sent = true),
            () => {},
          );
        }
      }
    },
    async deliver(event: WatchEvent, dctx) {
      const base = `${cfg.topicPrefix}/${event.camera}`;
      const eventType = event.type === 'detection' ? event.rule! : event.type;
      // One deadline for the attempt: every PUBLISH of this event and its PUBACK.
      const d = deadline(cfg.timeoutMs, dctx.signal);
      try {
        await publish(`${base}/events`, JSON.stringify({ event_type: eventType, ...event }), false, d);
        if (event.type === 'detection') {
          await publish(`${base}/state`, JSON.stringify({ label: event.label, score: event.score, rule: event.rule, severity: event.severity, message: event.message, time: event.time, event_id: event.id }), true, d);
          const snap = event.snapshot ? await dctx.snapshot() : undefined;
          if (snap) await publish(`${base}/snapshot`, snap, true, d);
        }
      } finally {
        d.clear();
      }
      // Availability is published live by cameraState(), never from the (possibly late) spooled event.
    },
    async close() {
      const c = client;
      if (!c) return;
      if (c.connected) await publish(status, 'offline', true).catch(() => {});
      readyWaiters.splice(0).forEach((w) => w());
      await c.endAsync(false).catch(() => {});
      readyWaiters = [];
    },
  };
}

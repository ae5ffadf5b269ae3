// The MQTT notifier against a real mosquitto broker: events (QoS 1), the retained state and snapshot per camera,
// availability with a last will, Home Assistant discovery; a broker that refuses connections gets the backlog in
// order when it comes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { createMemoryLogger } from '../src/util/log.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { startWatch } from '../src/watch/watcher.js';
import { spawnCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { collectGarbageEvery, colorPackage, freePort, scriptedCamera, startMosquitto, until } from './helpers/watch.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let model: string;
let red: Buffer;
let n = 0;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-mqtt-');
  model = (await colorPackage(path.join(tmp.dir, 'models'))).dir;
  red = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#f00' } }).jpeg().toBuffer();
});
afterAll(() => tmp?.cleanup());

/** Subscribe to everything under the given filters; messages collected with topic, payload and retain flag. */
async function listen(url: string, filters: string[]) {
  const client = await mqtt.connectAsync(url, { clientId: `test-${n++}-${process.pid}`, reconnectPeriod: 200 });
  const messages: Array<{ topic: string; payload: Buffer; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, retain: packet.retain }));
  await client.subscribeAsync(filters, { qos: 1 });
  return { client, messages, text: (topic: string) => messages.filter((m) => m.topic === topic).map((m) => m.payload.toString()) };
}

async function steadyCamera(ms = 150) {
  const cam = await scriptedCamera();
  const timer = setInterval(() => cam.send(red), ms);
  return { ...cam, close: async () => (clearInterval(timer), cam.close()) };
}

describe.skipIf(!tools.mosquitto)('MQTT notifier (mosquitto)', () => {
  it('publishes events, retained state, snapshot, availability and Home Assistant discovery', async () => {
    const broker = await startMosquitto(tmp.dir);
    const cam = await steadyCamera();
    const state = path.join(tmp.dir, 'state-a');
    const file = path.join(tmp.dir, 'a.yaml');
    await fs.writeFile(file, `model: ${model}
engine: tfjs
state_dir: ${state}
cameras:
  - {name: door, url: "${cam.url}", fps: 5}
rules:
  - {name: red-seen, label: red, min_score: 0.9, cooldown: 0s}
notify:
  - {type: mqtt, url: "${broker.url}", topic_prefix: home/cams, client_id: watcher-1}
`);
    const sub = await listen(broker.url, ['home/cams/#', 'homeassistant/#']);
    const events: WatchEvent[] = [];
    const w = await startWatch({ config: await loadWatchConfig(file), logger: createMemoryLogger(), version: '9.9.9', onEvent: (e) => events.push(e) });
    try {
      await until(() => sub.text('home/cams/door/events').length >= 3, 'three events on MQTT');
      const published = sub.text('home/cams/door/events').map((t) => JSON.parse(t));
      expect(published.slice(0, 3).map((p) => p.id)).toEqual(events.slice(0, 3).map((e) => e.id));
      expect(published[0]).toMatchObject({ event_type: 'red-seen', type: 'detection', camera: 'door', label: 'red' });
      await until(() => sub.text('home/cams/door/state').length > 0 && sub.messages.some((m) => m.topic === 'home/cams/door/snapshot'), 'state and snapshot');
      expect(JSON.parse(sub.text('home/cams/door/state')[0]!)).toMatchObject({ label: 'red', rule: 'red-seen' });
      const snap = sub.messages.find((m) => m.topic === 'home/cams/door/snapshot')!.payload;
      expect((await sharp(snap).metadata()).format).toBe('jpeg');
      expect(sub.text('home/cams/status')).toContain('online');
      const cfg = sub.messages.filter((m) => m.topic.startsWith('homeassistant/'));
      expect(cfg.map((m) => m.topic).sort()).toEqual([
        'homeassistant/binary_sensor/watcher-1_door/online/config',
        'homeassistant/camera/watcher-1_door/snapshot/config',
        'homeassistant/event/watcher-1_door/detection/config',
        'homeassistant/sensor/watcher-1_door/last_label/config',
      ]);
      const ev = JSON.parse(cfg.find((m) => m.topic.includes('/event/'))!.payload.toString());
      expect(ev).toMatchObject({ state_topic: 'home/cams/door/events', event_types: ['red-seen', 'camera_offline', 'camera_online'], device: { sw_version: '9.9.9' } });
      expect(ev.availability).toEqual([{ topic: 'home/cams/status' }, { topic: 'home/cams/door/availability' }]);
      // Retained: a client that connects now still sees the state, status and discovery.
      const late = await listen(broker.url, ['home/cams/door/state', 'home/cams/status', 'homeassistant/event/#']);
      const topics = ['home/cams/door/state', 'home/cams/status', 'homeassistant/event/watcher-1_door/detection/config'];
      await until(() => topics.every((t) => late.messages.some((m) => m.topic === t)), 'retained messages');
      // The first message on each topic comes from the broker's store (later state updates are live ones).
      for (const t of topics) expect(late.messages.find((m) => m.topic === t)!.retain).toBe(true);
      await late.client.endAsync();
      // A clean stop says offline.
      await w.stop();
      await until(() => sub.text('home/cams/status').at(-1) === 'offline', 'status offline on stop');
    } finally {
      await w.stop();
      await sub.client.endAsync();
      await cam.close();
      await broker.stop();
    }
  });

  it('a broker that stops answering (SIGSTOP): each attempt gives up at its deadline, and the backlog arrives when it answers again (#28)', async () => {
    const broker = await startMosquitto(tmp.dir);
    const cam = await steadyCamera();
    const state = path.join(tmp.dir, 'state-stall');
    const file = path.join(tmp.dir, 'stall.yaml');
    await fs.writeFile(file, `model: ${model}
engine: tfjs
state_dir: ${state}
cameras:
  - {name: door, url: "${cam.url}", fps: 5}
rules:
  - {name: red, label: red, min_score: 0.9, cooldown: 0s}
notify:
  - {type: mqtt, url: "${broker.url}", topic_prefix: stall, timeout: 300ms, retry: {initial: 100ms, max: 200ms}}
`);
    const sub = await listen(broker.url, ['stall/door/events']);
    const events: WatchEvent[] = [];
    const logger = createMemoryLogger();
    const w = await startWatch({ config: await loadWatchConfig(file), logger, version: 'test', onEvent: (e) => events.push(e) });
    let stopGc = () => {};
    try {
      await until(() => sub.text('stall/door/events').length >= 1, 'a first event over MQTT');
      // Frozen: the TCP connections stay open, nothing is acknowledged. The garbage collector runs all along, so a
      // deadline that is only weakly held would be collected and never fire.
      broker.pause();
      stopGc = collectGarbageEvery(50);
      const gaveUp = () => logger.lines.filter((l) => l.level === 'warn' && /failed: no PUBACK within 300 ms/.test(l.msg)).length;
      await until(() => gaveUp() >= 2, 'attempts ending at their deadline', 20_000);
      stopGc();
      await cam.close(); // the backlog is fixed from here on
      broker.resume();
      const firstSeen = () => [...new Set(sub.text('stall/door/events').map((t) => JSON.parse(t).id as string))];
      await until(() => events.length > 0 && firstSeen().length >= events.length, 'the backlog over MQTT', 20_000);
      await w.stop();
      // At least once: an attempt that gave up may arrive as well, but every event arrives, in order.
      expect(firstSeen()).toEqual(events.map((e) => e.id));
    } finally {
      stopGc();
      await w.stop();
      await sub.client.endAsync();
      await cam.close();
      await broker.stop();
    }
  });

  it('the broker refuses connections: events wait in the spool and arrive in order when it returns; a killed watcher leaves its last will', async () => {
    const port = await freePort();
    const cam = await steadyCamera(120);
    const state = path.join(tmp.dir, 'state-b');
    const rules = path.join(tmp.dir, 'b-rules.yaml');
    await fs.writeFile(rules, 'rules:\n  - {name: red, label: red, min_score: 0.9, cooldown: 0s}\n');
    const cli = spawnCli(['watch', model, '--camera', `door=${cam.url}`, '--rules', rules, '--mqtt', `mqtt://127.0.0.1:${port}`, '--state-dir', state, '--fps', '5', '--engine', 'tfjs', '--backend', 'cpu', '--json']);
    const { child, exited } = cli;
    let broker: Awaited<ReturnType<typeof startMosquitto>> | undefined;
    try {
      await until(() => cli.out().split('\n').filter(Boolean).length >= 4, 'four events while the broker is down', 60_000);
      expect(cli.err()).toMatch(/MQTT broker mqtt:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*events wait in the spool/);
      await cam.close(); // the backlog is fixed from here on
      await new Promise((r) => setTimeout(r, 500));
      broker = await startMosquitto(tmp.dir, port);
      const sub = await listen(broker.url, ['mlctl/watch/door/events', 'mlctl/watch/status']);
      const accepted = cli.out().split('\n').filter(Boolean).map((l) => JSON.parse(l).id as string);
      await until(() => sub.text('mlctl/watch/door/events').length >= accepted.length, 'the backlog over MQTT', 30_000);
      expect(sub.text('mlctl/watch/door/events').map((t) => JSON.parse(t).id)).toEqual(accepted);
      // SIGKILL: no goodbye, so the broker publishes the last will.
      child.kill('SIGKILL');
      await exited;
      await until(() => sub.text('mlctl/watch/status').at(-1) === 'offline', 'the last will', 30_000);
      await sub.client.endAsync();
    } finally {
      child.kill('SIGKILL');
      await cam.close();
      await broker?.stop();
    }
  });
});

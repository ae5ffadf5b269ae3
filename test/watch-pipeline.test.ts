// mlctl watch end to end with real parts: ffmpeg-made video over HTTP MJPEG, a video file, a folder and (when
// installed) an RTSP server, a real model package (a colour classifier with known answers), a real webhook
// receiver that checks signatures, the status port; plus broken frames, garbage, stalls and cameras going away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { createMemoryLogger } from '../src/util/log.js';
import { openLocalClassifier } from '../src/watch/classify.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { createWatchMetrics } from '../src/watch/metrics.js';
import { createPipeline } from '../src/watch/pipeline.js';
import { startWatch, type Watcher } from '../src/watch/watcher.js';
import { freePorts, tempDir } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { COLOR_LABELS, colorJpeg, colorPackage, ffmpegMjpegCamera, ffmpegOutput, freePort, scriptedCamera, until, webhookReceiver } from './helpers/watch.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let model: string;
let run = 0;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-e2e-');
  model = (await colorPackage(path.join(tmp.dir, 'models'))).dir;
});
afterAll(() => tmp?.cleanup());

interface Running {
  watcher: Watcher;
  events: WatchEvent[];
  /** Every classified frame (onClassified): camera, seq and the top label. */
  classified: Array<{ camera: string; seq: number; top: string }>;
  logger: ReturnType<typeof createMemoryLogger>;
  state: string;
}

/** Start a watcher from YAML (model, state dir and engine filled in). */
async function watch(yaml: string): Promise<Running> {
  const state = path.join(tmp.dir, `state-${run++}`);
  const file = path.join(tmp.dir, `watch-${run}.yaml`);
  await fs.writeFile(file, `model: ${model}\nengine: tfjs\nstate_dir: ${state}\n${yaml}`);
  const config = await loadWatchConfig(file);
  const events: WatchEvent[] = [];
  const logger = createMemoryLogger();
  const classified: Running['classified'] = [];
  const onClassified = (f: { camera: string; seq: number }, scores: ArrayLike<number>) => classified.push({ camera: f.camera, seq: f.seq, top: COLOR_LABELS[Array.from(scores).indexOf(Math.max(...Array.from(scores)))]! });
  const watcher = await startWatch({ config, logger, version: 'test', onEvent: (e) => events.push(e), onClassified });
  return { watcher, events, classified, logger, state };
}

const logText = (r: Running) => r.logger.lines.map((l) => `${l.level}: ${l.msg}`).join('\n');

describe.skipIf(!tools.ffmpeg)('mlctl watch (ffmpeg cameras)', () => {
  it('alerts on the red camera only, with a signed webhook, a snapshot, the events log and metrics', async () => {
    const red = await ffmpegMjpegCamera('color=c=red:s=64x48:r=10');
    const blue = await ffmpegMjpegCamera('color=c=blue:s=64x48:r=10');
    const hook = await webhookReceiver({ secret: 'hook-secret' });
    const r = await watch(`fps: 5
cameras:
  - {name: front, url: "${red.url}"}
  - {name: back, url: "${blue.url}"}
rules:
  - name: red-seen
    labels: [red]
    min_score: 0.9
    min_hits: 2
    window: 3
    cooldown: 300ms
    severity: critical
    message: "{label} on {camera}: {score_pct}"
notify:
  - type: webhook
    url: ${hook.url}
    secret: hook-secret
status: {port: 0}
`);
    try {
      await hook.waitFor(3);
      const got = hook.received.slice(0, 3);
      for (const h of got) {
        expect(h.verified).toBe(true);
        expect(h.headers['x-mlctl-event-id']).toBe(h.json.id);
        expect(h.json).toMatchObject({ type: 'detection', camera: 'front', rule: 'red-seen', label: 'red', severity: 'critical', model: { name: 'colors', version: 1 }, hits: { window: 3 } });
        expect(h.json.score).toBeGreaterThan(0.99);
        expect(h.json.message).toBe('red on front: 100%');
        expect(h.json.top[0].label).toBe('red');
        const snap = Buffer.from(h.json.snapshot.data, 'base64');
        const meta = await sharp(snap).metadata();
        expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 64, 48]);
      }
      // Time-ordered ids, one per event, frames in order.
      expect(new Set(got.map((h) => h.json.id)).size).toBe(3);
      expect(got.map((h) => h.json.id)).toEqual([...got.map((h) => h.json.id)].sort());
      const metrics = await (await fetch(`${r.watcher.statusUrl}/metrics`)).text();
      expect(metrics).toMatch(/mlctl_watch_frames_classified_total\{camera="back"\} [1-9]/);
      expect(metrics).toMatch(/mlctl_watch_camera_up\{camera="front"\} 1/);
      expect(metrics).toMatch(/mlctl_watch_delivery_backlog\{sink="webhook"\} \d/);
      // Two cameras, at most two frames each in flight: no batch holds more than four frames.
      const batches = Number(/mlctl_watch_batch_size_count (\d+)/.exec(metrics)![1]);
      expect(batches).toBeGreaterThan(0);
      expect(Number(/mlctl_watch_batch_size_bucket\{le="4"\} (\d+)/.exec(metrics)![1])).toBe(batches);
      // promtool conventions for watch's own metrics: counters end in _total, nothing else does.
      const types = [...metrics.matchAll(/^# TYPE (mlctl_watch_\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]);
      expect(types.length).toBe(15);
      for (const [name, type] of types) expect([name, name.endsWith('_total')]).toEqual([name, type === 'counter']);
      expect((await fetch(`${r.watcher.statusUrl}/healthz`)).status).toBe(200);
      const status = (await (await fetch(`${r.watcher.statusUrl}/status`)).json()) as { cameras: Record<string, { state: string; classified: number }> };
      expect(status.cameras.back!.classified).toBeGreaterThan(0);
      const snapRes = await fetch(`${r.watcher.statusUrl}/snapshots/${got[0]!.json.snapshot.file}`);
      expect(snapRes.headers.get('content-type')).toBe('image/jpeg');
      expect((await fetch(`${r.watcher.statusUrl}/snapshots/front/..%2F..%2Fwatch.lock`)).status).toBe(404);
      const summary = await r.watcher.stop();
      expect(summary.backlog).toEqual({ webhook: 0 });
      expect(summary.cameras.back!.events).toBe(0);
      // onClassified saw every classified frame once, with its result: front is red, back blue.
      for (const [camera, label] of [['front', 'red'], ['back', 'blue']] as const) {
        const mine = r.classified.filter((c) => c.camera === camera);
        expect(mine.length).toBe(summary.cameras[camera]!.classified);
        expect(new Set(mine.map((c) => c.seq)).size).toBe(mine.length);
        expect(new Set(mine.map((c) => c.top))).toEqual(new Set([label]));
      }
      expect(r.events.every((e) => e.camera === 'front')).toBe(true);
      const log = (await fs.readFile(path.join(r.state, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as WatchEvent);
      expect(log.map((e) => e.id)).toEqual(r.events.map((e) => e.id));
      await expect(fs.stat(path.join(r.state, 'snapshots', r.events[0]!.snapshot!.file))).resolves.toBeTruthy();
    } finally {
      await r.watcher.stop();
      await Promise.all([red.close(), blue.close(), hook.close()]);
    }
  });

  it('classifies only the region of interest', async () => {
    // Left half red, right half blue: the whole frame is neither; the right half is blue.
    const cam = await ffmpegMjpegCamera('color=c=red:s=32x32:r=10[a];color=c=blue:s=32x32:r=10[b];[a][b]hstack[out0]');
    const r = await watch(`fps: 5
cameras:
  - {name: whole, url: "${cam.url}"}
  - {name: right, url: "${cam.url}", roi: {x: 50%, y: 0, width: 50%, height: 100%}}
rules:
  - {name: blue, label: blue, min_score: 0.9, cooldown: 0s}
  - {name: red, label: red, min_score: 0.9, cooldown: 0s}
`);
    try {
      await until(() => r.events.length >= 3, 'three events');
      const s = await r.watcher.stop();
      expect(s.cameras.whole!.classified).toBeGreaterThan(0);
      expect(r.events.every((e) => e.camera === 'right' && e.label === 'blue')).toBe(true);
      const snap = await fs.readFile(path.join(r.state, 'snapshots', r.events[0]!.snapshot!.file));
      expect((await sharp(snap).metadata()).width).toBe(64); // the snapshot is the whole frame, ROI outlined
    } finally {
      await r.watcher.stop();
      await cam.close();
    }
  });

  it('watches a video file to its end, then stops by itself with everything delivered', async () => {
    const file = path.join(tmp.dir, 'red-then-blue.mp4');
    await ffmpegOutput(['-f', 'lavfi', '-i', 'color=c=red:s=64x48:r=10:d=1', '-f', 'lavfi', '-i', 'color=c=blue:s=64x48:r=10:d=1', '-filter_complex', '[0][1]concat=n=2:v=1[v]', '-map', '[v]', '-c:v', 'mpeg4', '-q:v', '3', '-y', file]);
    const hook = await webhookReceiver();
    const r = await watch(`cameras:
  - {name: clip, url: "${file}", fps: 5, realtime: false}
rules:
  - {name: blue-after-red, label: blue, min_score: 0.9, min_hits: 3, window: 3, cooldown: 1h}
notify:
  - {type: webhook, url: "${hook.url}"}
`);
    try {
      const summary = await r.watcher.done;
      expect(summary.reason).toBe('every source ended');
      expect(summary.cameras.clip!.state).toBe('finished');
      expect(summary.cameras.clip!.classified).toBeGreaterThanOrEqual(9);
      expect(r.events.map((e) => [e.label, e.hits])).toEqual([['blue', { count: 3, window: 3 }]]);
      expect(hook.received.map((h) => h.json.id)).toEqual([r.events[0]!.id]);
    } finally {
      await r.watcher.stop();
      await hook.close();
    }
  });

  it.skipIf(!tools.rtspServer)('reads an RTSP camera (rtsp-server-perl fed by ffmpeg)', async () => {
    const [clientPort, sourcePort, rtpPorts] = [await freePort(), await freePort(), await freePorts(16)];
    const server = spawn('rtsp-server-perl', ['-c', String(clientPort), '-s', String(sourcePort), '--rtp_start_port', String(rtpPorts), '-l', '0'], { stdio: 'ignore' });
    await until(() => new Promise<boolean>((res) => void fetch(`http://127.0.0.1:${sourcePort}`).then(() => res(true), (e: { cause?: { code?: string } }) => res(e.cause?.code !== 'ECONNREFUSED'))), 'the RTSP server to listen');
    const publisher = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'color=c=red:s=64x48:r=10', '-c:v', 'mpeg4', '-f', 'rtsp', `rtsp://127.0.0.1:${sourcePort}/cam`], { stdio: 'ignore' });
    let r: Running | undefined;
    try {
      await new Promise((res) => setTimeout(res, 1000));
      r = await watch(`cameras:
  - {name: rtsp, url: "rtsp://127.0.0.1:${clientPort}/cam", rtsp_transport: udp, fps: 5}
rules:
  - {name: red, label: red, min_score: 0.9, cooldown: 0s}
`);
      await until(() => r!.events.length >= 2, 'events from the RTSP camera', 30_000);
      expect(r.events[0]).toMatchObject({ camera: 'rtsp', label: 'red' });
    } finally {
      await r?.watcher.stop();
      publisher.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  });
});

describe('mlctl watch with bad input', () => {
  it('skips broken frames, reconnects a stream that sends garbage or stalls, and reports a camera down and back', async () => {
    const cam = await scriptedCamera();
    const red = await colorJpeg('red').catch(async () => sharp({ create: { width: 64, height: 48, channels: 3, background: '#f00' } }).jpeg().toBuffer());
    const r = await watch(`cameras:
  - name: flaky
    url: "${cam.url}"
    fps: 0
    stall_timeout: 800ms
    offline_after: 1500ms
    reconnect: {initial: 100ms, max: 400ms}
rules:
  - {name: red, label: red, min_score: 0.9, cooldown: 0s}
`);
    try {
      await cam.connected();
      cam.send(red);
      await until(() => r.events.length >= 1, 'the first event');
      // Broken frames: truncated, empty, and a valid-looking JPEG header over garbage.
      cam.send(red.subarray(0, red.length >> 1));
      cam.send(Buffer.alloc(0));
      cam.send(Buffer.concat([red.subarray(0, 20), Buffer.alloc(200, 7), Buffer.from([0xff, 0xd9])]));
      cam.send(red);
      await until(() => r.events.length >= 2, 'an event after the broken frames');
      let corrupt = 0;
      await until(async () => (corrupt = Number(/mlctl_watch_frames_corrupt_total\{camera="flaky"\} (\d+)/.exec(await r.watcher.metrics.registry.metrics())?.[1] ?? 0)) >= 3, 'three corrupt frames');
      expect(corrupt).toBe(3);
      // Garbage instead of parts: the watcher drops the connection and connects again.
      cam.raw(Buffer.alloc(40 * 1024 * 1024, 0x20));
      await until(() => cam.connections() >= 2, 'a reconnect after garbage');
      // A stall (connected, nothing sent): reconnect after stall_timeout.
      await cam.connected();
      const before = cam.connections();
      await until(() => cam.connections() > before, 'a reconnect after a stall', 10_000);
      // The camera goes away for longer than offline_after, then comes back.
      await cam.close();
      cam.drop();
      await until(() => r.events.some((e) => e.type === 'camera_offline'), 'camera_offline', 10_000);
      // The camera comes back on the same port.
      const again = await (async () => {
        const http = await import('node:http');
        const srv = http.createServer((_req, res) => {
          res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=frame' });
          const send = () => res.write(Buffer.concat([Buffer.from(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${red.length}\r\n\r\n`), red, Buffer.from('\r\n')]));
          send();
          const t = setInterval(send, 100);
          res.on('close', () => clearInterval(t));
        });
        await new Promise<void>((res) => srv.listen(cam.port, '127.0.0.1', () => res()));
        return srv;
      })();
      try {
        await until(() => r.events.some((e) => e.type === 'camera_online'), 'camera_online', 10_000);
        const offline = r.events.find((e) => e.type === 'camera_offline')!;
        const online = r.events.find((e) => e.type === 'camera_online')!;
        expect(offline).toMatchObject({ camera: 'flaky', severity: 'warning' });
        expect(offline.reason).toMatch(/ECONNREFUSED|ECONNRESET|stalled|closed/);
        expect(online.downtime_seconds).toBeGreaterThanOrEqual(1);
        expect(r.events.indexOf(offline)).toBeLessThan(r.events.indexOf(online));
      } finally {
        await r.watcher.stop();
        again.closeAllConnections();
        again.close();
      }
      expect(logText(r)).toMatch(/camera flaky .*reconnecting in/);
      expect(logText(r)).toMatch(/skipped a broken frame/);
    } finally {
      await r.watcher.stop();
      await cam.close();
    }
  });

  it('an unreachable camera at start-up: a clear message, a camera_offline event, and no crash', async () => {
    const port = await freePort();
    const r = await watch(`cameras:
  - {name: ghost, url: "http://127.0.0.1:${port}/video.mjpg", offline_after: 500ms, reconnect: {initial: 100ms, max: 200ms}}
status: {port: 0}
`);
    try {
      await until(() => r.events.some((e) => e.type === 'camera_offline'), 'camera_offline');
      expect(r.events[0]!.reason).toBe('cannot connect (ECONNREFUSED)');
      const status = (await (await fetch(`${r.watcher.statusUrl}/status`)).json()) as { cameras: Record<string, { state: string; error?: { code: string; message: string } }> };
      expect(status.cameras.ghost).toMatchObject({ state: 'down', error: { code: 'WATCH_SOURCE', message: `camera ghost (http://127.0.0.1:${port}/video.mjpg): cannot connect (ECONNREFUSED)` } });
      expect(logText(r)).toMatch(/camera ghost is offline: cannot connect \(ECONNREFUSED\)/);
      expect(logText(r)).toMatch(/no rules: frames are classified but no detection event can fire/);
    } finally {
      await r.watcher.stop();
    }
  });

  it('a folder camera: new images are classified, undecodable files are counted as corrupt', async () => {
    const dir = path.join(tmp.dir, 'inbox');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'before.png'), await sharp({ create: { width: 20, height: 20, channels: 3, background: '#f00' } }).png().toBuffer());
    const r = await watch(`cameras:
  - {name: inbox, path: "${dir}", poll_interval: 200ms}
rules:
  - {name: red, label: red, min_score: 0.9, cooldown: 0s}
`);
    try {
      await new Promise((res) => setTimeout(res, 300));
      await fs.writeFile(path.join(dir, 'broken.jpg'), Buffer.from('this is not an image'));
      await fs.writeFile(path.join(dir, 'new.png'), await sharp({ create: { width: 20, height: 20, channels: 3, background: '#f00' } }).png().toBuffer());
      await until(() => r.events.length >= 1, 'an event for new.png');
      const s = await r.watcher.stop();
      expect(r.events.map((e) => e.frame?.file)).toEqual(['new.png']);
      expect(s.cameras.inbox!.corrupt).toBe(1);
      const snap = await fs.readFile(path.join(r.state, 'snapshots', r.events[0]!.snapshot!.file));
      expect((await sharp(snap).metadata()).format).toBe('jpeg'); // PNG frames are stored as JPEG snapshots
    } finally {
      await r.watcher.stop();
    }
  });
});

describe('local inference', () => {
  it('puts frames from several cameras in one engine batch and gives each frame its own scores', async () => {
    const batches: number[] = [];
    const classifier = await openLocalClassifier({ model, engine: 'tfjs', maxBatch: 8, maxDelayMs: 500, logger: createMemoryLogger(), onBatch: (n) => batches.push(n) });
    try {
      const jpeg = (c: string) => sharp({ create: { width: 64, height: 48, channels: 3, background: c } }).jpeg().toBuffer();
      const [red, blue] = await Promise.all([jpeg('#f00'), jpeg('#00f')]);
      const answers = new Map<string, string>();
      const failures: string[] = [];
      const pipeline = createPipeline(classifier, new Map(), createWatchMetrics({ defaultMetrics: false }), {
        async result(frame, r) {
          answers.set(frame.camera, classifier.labels[r.scores.indexOf(Math.max(...r.scores))]!);
        },
        corrupt: (camera, reason) => failures.push(`${camera}: ${reason}`),
        failed: (camera, err) => failures.push(`${camera}: ${err.message}`),
        roiOutside: () => {},
      });
      const cams = ['a', 'b', 'c', 'd'];
      // One frame from each camera at the same moment: red on a and c, blue on b and d.
      await Promise.all(cams.map((camera, i) => pipeline.offer({ camera, seq: 1, image: i % 2 ? blue : red, at: Date.now(), lossless: false })));
      expect(failures).toEqual([]);
      expect(Object.fromEntries(answers)).toEqual({ a: 'red', b: 'blue', c: 'red', d: 'blue' });
      expect(batches.reduce((x, y) => x + y, 0)).toBe(4);
      expect(Math.max(...batches)).toBeGreaterThan(1); // cameras share batches: not one engine call per frame
    } finally {
      await classifier.close();
    }
  });
});

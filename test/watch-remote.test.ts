// Remote inference: watchers that classify on mlctl serve over KServe V2 (each frame an encoded JPEG in a BYTES
// input with the binary tensor extension, or preprocessed here into the FP32 tensor a bare model on Triton takes),
// with the region of interest cropped before sending; a server that is down or answers errors is reported clearly
// and the watcher keeps going.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { MlctlError } from '../src/errors.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { startServer, type RunningServer } from '../src/serve/start.js';
import { createMemoryLogger } from '../src/util/log.js';
import { openRemoteClassifier, remoteSend } from '../src/watch/classify.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { startWatch } from '../src/watch/watcher.js';
import { tempDir } from './helpers/fixtures.js';
import { colorPackage, COLOR_LABELS, freePort, scriptedCamera, until } from './helpers/watch.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: RunningServer;
let split: Buffer;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-remote-');
  const pkg = await colorPackage(path.join(tmp.dir, 'models'));
  const repo = createRepository({ engine: 'tfjs', maxBatch: 8, maxDelayMs: 2, logger: createMemoryLogger(), metrics: createServeMetrics({ defaultMetrics: false }) });
  await repo.load(pkg.dir);
  server = await startServer(repo, { port: 0, host: '127.0.0.1', logger: false });
  // Left half red, right half blue.
  const raw = Buffer.alloc(64 * 32 * 3);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 64; x++) raw[(y * 64 + x) * 3 + (x < 32 ? 0 : 2)] = 255;
  split = await sharp(raw, { raw: { width: 64, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
});
afterAll(async () => {
  await server?.shutdown('test done');
  await tmp?.cleanup();
});

describe('remote inference (mlctl serve, KServe V2)', () => {
  it('classifies JPEGs on the server and crops the region of interest before sending', async () => {
    const c = await openRemoteClassifier({ url: server.url, model: 'colors', labels: COLOR_LABELS, timeoutMs: 10_000, headers: {}, maxInFlight: 4, logger: createMemoryLogger() });
    const red = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#f00' } }).jpeg().toBuffer();
    const whole = await c.classify(red);
    expect(Array.from(whole.scores).map((s) => Math.round(s))).toEqual([1, 0, 0]);
    const right = await c.classify(split, { left: 32, top: 0, width: 32, height: 32 });
    expect(right.scores[1]).toBeGreaterThan(0.9);
    await expect(c.classify(Buffer.from('definitely not a jpeg'))).rejects.toThrow(/decode|image/i);
  });

  it('watches a camera through the server', async () => {
    const cam = await scriptedCamera();
    const timer = setInterval(() => cam.send(split), 100);
    const file = path.join(tmp.dir, 'remote.yaml');
    await fs.writeFile(file, `server: {url: "${server.url}", model: colors}
labels: [red, blue, other]
state_dir: ${path.join(tmp.dir, 'state')}
cameras:
  - {name: right, url: "${cam.url}", fps: 5, roi: [32, 0, 32, 32]}
rules:
  - {name: blue, label: blue, min_score: 0.9, cooldown: 0s}
`);
    const events: WatchEvent[] = [];
    const w = await startWatch({ config: await loadWatchConfig(file), logger: createMemoryLogger(), version: 'test', onEvent: (e) => events.push(e) });
    try {
      await until(() => events.length >= 2, 'two events from remote inference');
      expect(events[0]).toMatchObject({ camera: 'right', label: 'blue', model: { name: 'colors' } });
      expect(w.classifier.description).toMatch(/colors on http:\/\/127\.0\.0\.1:\d+ \(KServe V2/);
    } finally {
      clearInterval(timer);
      await w.stop();
      await cam.close();
    }
  });

  it('a server that goes away: inference errors are counted, /healthz turns 503, and it recovers when the server is back', async () => {
    const pkgDir = path.join(tmp.dir, 'models', 'colors', '1');
    const serve = async (port: number) => {
      const repo = createRepository({ engine: 'tfjs', maxBatch: 4, maxDelayMs: 1, logger: createMemoryLogger(), metrics: createServeMetrics({ defaultMetrics: false }) });
      await repo.load(pkgDir);
      return startServer(repo, { port, host: '127.0.0.1', logger: false });
    };
    let own = await serve(0);
    const port = own.port;
    const cam = await scriptedCamera();
    const timer = setInterval(() => cam.send(split), 40);
    const file = path.join(tmp.dir, 'flaky-server.yaml');
    await fs.writeFile(file, `server: {url: "${own.url}", model: colors, timeout: 2s}
labels: [red, blue, other]
state_dir: ${path.join(tmp.dir, 'state-flaky')}
cameras:
  - {name: cam, url: "${cam.url}", fps: 25}
status: {port: 0}
`);
    const logger = createMemoryLogger();
    const w = await startWatch({ config: await loadWatchConfig(file), logger, version: 'test' });
    const health = async () => (await fetch(`${w.statusUrl}/healthz`)).status;
    try {
      await until(async () => (await health()) === 200 && /frames_classified_total\{camera="cam"\} [1-9]/.test(await w.metrics.registry.metrics()), 'classified frames');
      await own.shutdown('gone');
      await until(async () => (await health()) === 503, '/healthz 503 while inference fails', 30_000);
      expect(await (await fetch(`${w.statusUrl}/healthz`)).json()).toMatchObject({ status: 'failing', reason: expect.stringMatching(/inferences failed: inference server .*ECONNREFUSED/) });
      expect(logger.lines.some((l) => l.level === 'error' && /camera cam: inference failed: inference server/.test(l.msg))).toBe(true);
      own = await serve(port);
      await until(async () => (await health()) === 200, '/healthz 200 again', 30_000);
    } finally {
      clearInterval(timer);
      await w.stop();
      await cam.close();
      await own.shutdown('test done');
    }
  });

  it('without labels it names outputs by index and says how to fix it; a server that is not there is a clear error', async () => {
    const logger = createMemoryLogger();
    const c = await openRemoteClassifier({ url: server.url, model: 'colors', timeoutMs: 10_000, headers: {}, maxInFlight: 1, logger });
    expect(c.labels).toEqual(['0', '1', '2']);
    expect(logger.lines.some((l) => /publishes no labels; using "0".."2"/.test(l.msg))).toBe(true);
    const port = await freePort();
    const err = await openRemoteClassifier({ url: `http://127.0.0.1:${port}`, model: 'colors', timeoutMs: 2000, headers: {}, maxInFlight: 1, logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).message).toMatch(/inference server http:\/\/127\.0\.0\.1:\d+: cannot reach .*ECONNREFUSED.*is mlctl serve running\?/);
    const missing = await openRemoteClassifier({ url: server.url, model: 'nope', timeoutMs: 2000, headers: {}, maxInFlight: 1, logger }).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/answered 404/);
  });

  it('sends FP32 NHWC tensors preprocessed here (what a bare model on Triton takes), the region of interest cropped first', async () => {
    const logger = createMemoryLogger();
    const opts = { url: server.url, model: 'colors', labels: COLOR_LABELS, timeoutMs: 10_000, headers: {}, maxInFlight: 2, logger, input: 'fp32' as const };
    const c = await openRemoteClassifier({ ...opts, preprocessing: 'caffe' });
    expect(c.description).toMatch(/FP32 32x32 images, caffe preprocessing here/);
    const red = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#f00' } }).jpeg().toBuffer();
    const viaJpeg = await (await openRemoteClassifier({ ...opts, input: 'bytes' })).classify(red);
    const viaTensor = await c.classify(red);
    for (let i = 0; i < 3; i++) expect(viaTensor.scores[i]).toBeCloseTo(viaJpeg.scores[i]!, 4);
    expect((await c.classify(split, { left: 32, top: 0, width: 32, height: 32 })).scores[1]).toBeGreaterThan(0.9);
    await expect(c.classify(Buffer.from('definitely not a jpeg'))).rejects.toThrow(/decode|image|unsupported/i);
    // The preprocessing is applied here: the wrong one (pixels / 255) leaves the colour weights nothing to see.
    const wrong = await openRemoteClassifier({ ...opts, preprocessing: 'unit' });
    const s = (await wrong.classify(red)).scores;
    expect(COLOR_LABELS[s.indexOf(Math.max(...s))]).toBe('other');
  });

  it('picks JPEG or tensor from the server metadata, and says what to set when only the user can know', () => {
    const at = { url: 'http://triton:8000', model: 'cams' };
    const fp32 = { input: 'input_1', output: 'predictions', inputDatatype: 'FP32', inputShape: [-1, 224, 224, 3] };
    expect(remoteSend(fp32, 'mlctl', at)).toEqual({ kind: 'bytes' }); // mlctl serve decodes JPEGs with the model's own preprocessing
    expect(remoteSend({ ...fp32, inputDatatype: 'BYTES', inputShape: [-1] }, 'triton', at)).toEqual({ kind: 'bytes' });
    expect(remoteSend(fp32, 'triton', { ...at, preprocessing: 'tf' })).toEqual({ kind: 'fp32', height: 224, width: 224, preprocessing: 'tf' });
    expect(remoteSend(fp32, 'triton', { ...at, input: 'bytes' })).toEqual({ kind: 'bytes' });
    expect(() => remoteSend(fp32, 'triton', at)).toThrow(
      'inference server http://triton:8000: model cams takes FP32 [-1,224,224,3], not encoded images: set server.preprocessing to the one it was trained with (caffe, tf, torch, unit or raw), and watch preprocesses the frames itself',
    );
    expect(() => remoteSend({ ...fp32, inputShape: [-1, 3, 224, 224] }, 'triton', { ...at, preprocessing: 'caffe' })).toThrow(/\[batch, height, width, 3\] \(NHWC\)/);
    expect(() => remoteSend({ ...fp32, inputDatatype: 'INT8' }, 'triton', { ...at, preprocessing: 'caffe' })).toThrow(/takes INT8/);
  });

  it('refuses input: fp32 without the preprocessing, at its line and column', async () => {
    const file = path.join(tmp.dir, 'fp32.yaml');
    await fs.writeFile(file, `server: {url: "${server.url}", model: colors, input: fp32}\ncameras:\n  - {name: a, url: "http://127.0.0.1:9/x"}\n`);
    const err = await loadWatchConfig(file).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WATCH_CONFIG_INVALID' });
    expect((err as Error).message).toBe(`${file}:1:${`server: {url: "${server.url}", model: colors, input: `.length + 1}: server.input: fp32 needs server.preprocessing (caffe, tf, torch, unit or raw): the one the model was trained with`);
  });
});

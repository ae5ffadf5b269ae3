// Watch benchmark, on a VGG16-shaped package (random weights) at 224 px, fp32 and int8 (ONNX Runtime QDQ). The stand-in
// cameras run in a process of their own (bench/_cameras.ts), as real cameras are other devices: a watcher that lags
// cannot make them send less, and each frame carries the camera's own send time.
//   1. frames/s processed from 8 MJPEG cameras (224 px frames, sending twice what the model takes) beside the engine's raw img/s
//      at the same batch size, measured before and after (target ≥ 90% of raw);
//   2. alert latency, frame leaving the camera → webhook received, p50/p95 at 1 fps;
//   3. how many 1-fps cameras (640x480) the int8 model keeps up with: every frame the cameras sent during the window
//      classified, and p95 latency from the camera's timestamp to the classification result < 1 s (goal ≥ 20);
//   4. delivery after the webhook receiver was down for 30 s: every event delivered, in order, none twice.
// `npm run bench -- watch [--seconds 20] [--cameras auto|10,20,30] [--outage 30] [--latency-frames 30] [--models DIR]
//   [--only throughput,latency,cameras,outage]`
// (--cameras auto tries counts around the int8 engine's raw rate measured in step 1, then 20, 30, 40, up to the first failure.)
// The packages are built once into --models (default artifacts/bench/watch-models) and reused. The run ends with
// the figures beside issue 16's targets, one line each. Smoke run: --seconds 3 --cameras 2,4 --outage 4 --latency-frames 5.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { buildVgg16 } from '../src/models/backbones/vgg16.js';
import { quantizeInt8Package } from '../src/optimize/quantize-int8.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { createLogger, createMemoryLogger } from '../src/util/log.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { startWatch, type WatchOptions, type Watcher } from '../src/watch/watcher.js';
import { modelPackage, tempDir } from '../test/helpers/fixtures.js';
import { webhookReceiver } from '../test/helpers/watch.js';
import { parseStamp, type CameraSpec } from './_cameras.js';
import { arg, writeBenchResult } from './_util.js';
import { runFloat } from '../src/runtime/float.js';

const LABELS = ['checker', 'circle', 'square', 'stripes', 'triangle'];
const MAX_BATCH = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
/** A rule evaluated on every frame that cannot fire within a run (the rules' cost is part of the figure). */
const NEVER_RULE = 'rules:\n  - {name: never, labels: "*", min_score: 0.99, min_hits: 1000, window: 1000}\n';
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

/** The VGG16-shaped fp32 package and its int8 sibling, built once. */
async function models(dir: string): Promise<{ fp32: LoadedPackage; int8: LoadedPackage }> {
  const root = path.join(dir, 'artifacts');
  const existing = await Promise.all([loadPackage(path.join(root, 'vgg16w', '1')).catch(() => undefined), loadPackage(path.join(root, 'vgg16w', '2')).catch(() => undefined)]);
  if (existing[0] && existing[1]) return { fp32: existing[0], int8: existing[1] };
  await fs.rm(root, { recursive: true, force: true });
  console.log('building a VGG16-shaped package at 224 px (random weights) and its int8 version (once; reused from --models)…');
  await selectBackend('cpu');
  const base = buildVgg16({ imageSize: 224, seed: 7 });
  const x = tf.layers.flatten({ name: 'flatten' }).apply(base.outputs[0]!) as tf.SymbolicTensor;
  const y = tf.layers.dense({ units: LABELS.length, activation: 'softmax', name: 'predictions', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: base.inputs, outputs: y });
  const fp32 = await modelPackage(root, model, { name: 'vgg16w', labels: LABELS, size: 224, architecture: { type: 'vgg16', backbone: 'vgg16', head: 'flatten-dense', weights: 'random' } });
  model.dispose();
  const data = path.join(dir, 'data');
  await generateSynthDataset({ out: data, classes: LABELS.length, perClass: 8, size: 64, seed: 3 });
  const r = await quantizeInt8Package(fp32, { logger: createLogger({ level: 'warn' }), root, data, calibration: 16, latencyRuns: 0, maxAccuracyDrop: 1 });
  return { fp32, int8: r.package };
}

/** The engine alone: batches of MAX_BATCH preprocessed frames, back to back, for `seconds`. */
async function rawImgPerSec(engine: InferenceEngine, seconds: number): Promise<number> {
  const x = new Float32Array(MAX_BATCH * 224 * 224 * 3).map(() => Math.random() * 255 - 128);
  await runFloat(engine, x, MAX_BATCH); // warm-up
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await runFloat(engine, x, MAX_BATCH);
    n += MAX_BATCH;
  }
  return n / ((performance.now() - t0) / 1000);
}

const here = path.dirname(fileURLToPath(import.meta.url));

interface Streams {
  url(i: number): string;
  /** Stop / restart sending (connections stay open). */
  pause(paused: boolean): void;
  /** Epoch ms of every frame each camera sent so far (the camera's own clock, as stamped in the frames). */
  sent(): Promise<number[][]>;
  close(): Promise<void>;
}

/**
 * `count` MJPEG cameras in a child process (bench/_cameras.ts), each sending `variants` distinct width x height JPEGs
 * round-robin at `fps`, phases spread over a period; every frame stamped with its camera, sequence number and send time.
 */
async function cameras(count: number, fps: number, size: { width: number; height: number; variants: number }): Promise<Streams> {
  const spec: CameraSpec = { count, fps, ...size };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, '_cameras.ts'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error('the camera process ended');
    return JSON.parse(r.value) as { port?: number; sent?: number[][] };
  };
  const { port } = await next();
  let reports = Promise.resolve<unknown>(undefined);
  return {
    url: (i) => `http://127.0.0.1:${port}/cam/${i}`,
    pause: (p) => void child.stdin!.write(p ? 'pause\n' : 'resume\n'),
    sent() {
      // One report at a time: answers come back in the order asked.
      const got = reports.then(async () => {
        child.stdin!.write('report\n');
        return (await next()).sent!;
      });
      reports = got.catch(() => undefined);
      return got;
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      await exited;
    },
  };
}

async function watcherFor(dir: string, pkg: LoadedPackage, cams: string[], yaml: string, hooks: Pick<WatchOptions, 'onEvent' | 'onClassified'> = {}): Promise<Watcher> {
  const state = path.join(dir, `state-${Math.random().toString(36).slice(2)}`);
  const file = path.join(dir, 'watch.yaml');
  await fs.writeFile(file, `model: ${pkg.dir}\nengine: onnx\nmax_batch: ${MAX_BATCH}\nstate_dir: ${state}\nsnapshots: {draw_label: false}\ncameras:\n${cams.join('\n')}\n${yaml}`);
  return startWatch({ config: await loadWatchConfig(file), logger: createMemoryLogger(), version: 'bench', ...hooks });
}

const counter = async (w: Watcher, name: 'framesClassified' | 'framesReceived') => (await w.metrics[name].get()).values.reduce((a, v) => a + v.value, 0);
const dropped = async (w: Watcher) => (await w.metrics.framesDropped.get()).values.filter((v) => v.labels.reason !== 'shutdown').reduce((a, v) => a + v.value, 0);

/**
 * Frames classified per second over about `seconds`, timed from one batch's completion to a later one's: frames
 * finish a batch at a time, so counting over a fixed window would be off by up to a batch (8 frames in a window of
 * a few batches is tens of percent).
 */
async function classifiedPerSec(w: Watcher, seconds: number): Promise<number> {
  const c0 = await counter(w, 'framesClassified');
  const t0 = performance.now();
  let first: { t: number; c: number } | undefined;
  let last: { t: number; c: number } | undefined;
  let seen = c0;
  const elapsed = () => performance.now() - t0;
  // Past the window, wait for a second batch boundary (an engine that all but stopped gets 10x the window).
  while (elapsed() < seconds * 1000 || ((!last || last.c === first!.c) && elapsed() < 10 * seconds * 1000)) {
    await sleep(20);
    const c = await counter(w, 'framesClassified');
    if (c === seen) continue;
    seen = c;
    const mark = { t: performance.now(), c };
    first ??= mark;
    last = mark;
  }
  if (!first || !last || last.c === first.c) return (seen - c0) / ((performance.now() - t0) / 1000);
  return (last.c - first.c) / ((last.t - first.t) / 1000);
}

/**
 * 1. Frames per second through watch vs the engine alone, in interleaved rounds on a shared machine: the cameras
 * pause while the engine alone is timed, then watch is timed; each round's ratio is against the raw rate just
 * before and after it, and the median round is reported.
 */
async function throughput(dir: string, pkg: LoadedPackage, label: string, seconds: number, rounds = 3) {
  const engine = await openEngine(pkg, { engine: 'onnx' });
  const rawSeconds = Math.max(4, seconds / 4);
  try {
    const raws = [await rawImgPerSec(engine, rawSeconds)];
    // One frame per camera in each batch (two in flight): as many cameras as the batch holds keep batches full. Together
    // they send twice what the engine can take, so it never waits; more would only spend the CPU of this one machine on
    // the stand-in cameras (real ones are other devices) and on parsing frames that are dropped anyway.
    const perCamera = Math.max(1, Math.ceil((2 * raws[0]!) / MAX_BATCH));
    const streams = await cameras(MAX_BATCH, perCamera, { width: 224, height: 224, variants: 8 });
    const w = await watcherFor(dir, pkg, Array.from({ length: MAX_BATCH }, (_, i) => `  - {name: cam${i}, url: "${streams.url(i)}", fps: 0, stall_timeout: 5m}`), NEVER_RULE);
    const fps: number[] = [];
    try {
      await sleep(4000); // warm-up: connections, first batches
      for (let r = 0; r < rounds; r++) {
        // Long enough for a few batches even when the engine is slow (fp32 on a busy machine).
        fps.push(await classifiedPerSec(w, Math.max(seconds / 2, (4 * MAX_BATCH) / raws[r]!)));
        streams.pause(true);
        await sleep(1500); // let the batches in flight finish
        raws.push(await rawImgPerSec(engine, rawSeconds));
        streams.pause(false);
        await sleep(1500);
      }
    } finally {
      await w.stop();
      await streams.close();
    }
    const ratios = fps.map((f, i) => f / ((raws[i]! + raws[i + 1]!) / 2));
    const mid = [...ratios.keys()].sort((a, b) => ratios[a]! - ratios[b]!)[Math.floor(ratios.length / 2)]!;
    const raw = (raws[mid]! + raws[mid + 1]!) / 2;
    console.log(
      `${label}: watch ${fps[mid]!.toFixed(2)} frames/s from ${MAX_BATCH} MJPEG cameras (224 px, ${perCamera} fps each) vs engine ${raw.toFixed(2)} img/s raw (batch ${MAX_BATCH}) = ${(ratios[mid]! * 100).toFixed(1)}% (target ≥ 90%; median of ${rounds} interleaved rounds: ${ratios.map((x) => `${(x * 100).toFixed(0)}%`).join(', ')}) [load ${load()}]`,
    );
    return { watchFps: fps[mid]!, rawImgPerSec: raw, ratio: ratios[mid]!, rounds: fps.map((f, i) => ({ watchFps: f, rawBefore: raws[i], rawAfter: raws[i + 1], ratio: ratios[i] })), cameraFps: perCamera, load: os.loadavg() };
  } finally {
    await engine.dispose();
  }
}

/** 2. Frame leaves the camera (its own timestamp) → webhook received, at 1 fps, a rule that fires on every frame. */
export async function latency(dir: string, pkg: LoadedPackage, label: string, frames: number) {
  const hook = await webhookReceiver();
  const streams = await cameras(1, 1, { width: 640, height: 480, variants: 4 });
  /** The camera's send time of each frame the watcher classified, by the watcher's frame number (event frame.seq). */
  const sentAt = new Map<number, number>();
  const w = await watcherFor(dir, pkg, [`  - {name: door, url: "${streams.url(0)}", fps: 0}`], `rules:\n  - {name: any, labels: "*", min_score: 0, cooldown: 0s}\nnotify:\n  - {type: webhook, url: "${hook.url}"}\n`, {
    onClassified: (f) => void sentAt.set(f.seq, parseStamp(f.image)!.t),
  });
  try {
    // A slow engine drops frames (the newest wins), so fewer alerts than frames may arrive: take what came.
    await hook.waitFor(frames + 1, (frames + 30) * 1000).catch(() => {});
  } finally {
    await w.stop();
    await streams.close();
    await hook.close();
  }
  // Skip the first alert (connection set-up).
  const alerts = hook.received.slice(1, frames + 1).map((h) => {
    const e = h.json as WatchEvent;
    const sent = sentAt.get(e.frame!.seq)!;
    return { total: h.at - sent, read: Date.parse(e.frame!.at) - sent, classify: Date.parse(e.time) - Date.parse(e.frame!.at), deliver: h.at - Date.parse(e.time) };
  });
  const ms = alerts.map((a) => a.total);
  const part = (k: 'read' | 'classify' | 'deliver') => pct(alerts.map((a) => a[k]), 50);
  const r = { p50: pct(ms, 50), p95: pct(ms, 95), max: Math.max(...ms), n: ms.length, p50Parts: { read: part('read'), classifyAndSnapshot: part('classify'), spoolAndDeliver: part('deliver') }, load: os.loadavg() };
  console.log(
    `${label}: alert latency (camera's timestamp → webhook received) at 1 fps, ${r.n} alerts: p50 ${r.p50} ms, p95 ${r.p95} ms, max ${r.max} ms; p50 parts: camera → watcher ${r.p50Parts.read} ms, classify + rules + snapshot ${r.p50Parts.classifyAndSnapshot} ms, spool + delivery ${r.p50Parts.spoolAndDeliver} ms [load ${load()}]`,
  );
  return r;
}

/** What step 3 requires of N cameras, printed as checked. */
const SUSTAIN_P95_MS = 1000;
/** How long after the window a frame sent in it may still be classified (longer is late anyway: > SUSTAIN_P95_MS). */
const SUSTAIN_GRACE_MS = 2000;
const SUSTAIN_CRITERION = `every frame the cameras sent classified (within ${SUSTAIN_GRACE_MS / 1000} s), p95 camera → result < ${SUSTAIN_P95_MS} ms`;

/**
 * 3. N cameras at 1 fps (640x480) for `seconds`, the watcher classifying every frame they send (fps: 0): the frames the
 * cameras sent during the window (their own count) against those classified, and latency from each frame's camera
 * timestamp to its classification result.
 */
export async function sustain(dir: string, pkg: LoadedPackage, n: number, seconds: number) {
  const streams = await cameras(n, 1, { width: 640, height: 480, variants: 6 });
  /** Classification time of each camera frame (`cam:seq` from the frame's stamp). */
  const classifiedAt = new Map<string, number>();
  const w = await watcherFor(dir, pkg, Array.from({ length: n }, (_, i) => `  - {name: cam${i}, url: "${streams.url(i)}", fps: 0}`), NEVER_RULE, {
    onClassified: (f) => {
      const s = parseStamp(f.image)!;
      classifiedAt.set(`${s.cam}:${s.seq}`, Date.now());
    },
  });
  try {
    await sleep(4000); // connections, first batches
    const d0 = await dropped(w);
    const t0 = Date.now();
    await sleep(seconds * 1000);
    const t1 = Date.now();
    await sleep(SUSTAIN_GRACE_MS);
    const d1 = await dropped(w);
    const sent = (await streams.sent()).flatMap((times, cam) => times.map((t, k) => ({ key: `${cam}:${k + 1}`, t }))).filter((f) => f.t >= t0 && f.t < t1);
    const ms = sent.filter((f) => classifiedAt.has(f.key)).map((f) => classifiedAt.get(f.key)! - f.t);
    const r = { cameras: n, sent: sent.length, classified: ms.length, notClassified: sent.length - ms.length, p50LatencyMs: pct(ms, 50), p95LatencyMs: pct(ms, 95), maxLatencyMs: ms.length ? Math.max(...ms) : NaN, droppedByWatcher: d1 - d0, load: os.loadavg() };
    const ok = r.sent > 0 && r.notClassified === 0 && r.p95LatencyMs < SUSTAIN_P95_MS;
    console.log(
      `int8: ${n} cameras at 1 fps for ${seconds} s: cameras sent ${r.sent}, ${r.classified} classified (${r.notClassified} not; the watcher counted ${r.droppedByWatcher} dropped as busy), camera → result p50 ${r.p50LatencyMs} ms, p95 ${r.p95LatencyMs} ms, max ${r.maxLatencyMs} ms; needs ${SUSTAIN_CRITERION} → ${ok ? 'keeps up' : 'falls behind'} [load ${load()}]`,
    );
    return { ...r, ok };
  } finally {
    await w.stop();
    await streams.close();
  }
}

/** 4. The receiver is down for `outage` s while events keep coming; then it returns. */
async function outage(dir: string, pkg: LoadedPackage, outageS: number) {
  let hook = await webhookReceiver();
  const port = hook.port;
  const received: Array<{ id: string; at: number }> = [];
  const streams = await cameras(2, 1, { width: 640, height: 480, variants: 4 });
  const events: WatchEvent[] = [];
  const w = await watcherFor(dir, pkg, [0, 1].map((i) => `  - {name: cam${i}, url: "${streams.url(i)}", fps: 1}`), `rules:\n  - {name: any, labels: "*", min_score: 0, cooldown: 0s}\nnotify:\n  - {type: webhook, url: "${hook.url}"}\n`, { onEvent: (e) => events.push(e) });
  const take = () => received.push(...hook.received.splice(0).map((h) => ({ id: (h.json as WatchEvent).id, at: h.at })));
  let back = 0;
  let drained = 0;
  let duringOutage = 0;
  try {
    await sleep(5000);
    take();
    await hook.close(); // connection refused from now on
    const before = events.length;
    await sleep(outageS * 1000);
    duringOutage = events.length - before;
    hook = await webhookReceiver({ port });
    back = Date.now();
    // Drained: everything accepted before the receiver returned has arrived (new events keep coming meanwhile).
    const owed = new Set(events.map((e) => e.id));
    while (owed.size && Date.now() - back < 180_000) {
      await sleep(50);
      take();
      for (const r of received) owed.delete(r.id);
    }
    drained = Date.now() - back;
    await sleep(3000);
    await streams.close(); // no new events: wait for the rest
    const t0 = Date.now();
    while (w.spool.backlog('webhook') > 0 && Date.now() - t0 < 180_000) await sleep(100);
    take();
  } finally {
    await w.stop();
    await streams.close();
    take();
    await hook.close();
  }
  const ids = received.map((r) => r.id);
  const accepted = events.map((e) => e.id);
  const missing = accepted.filter((id) => !ids.includes(id)).length;
  const dupes = ids.length - new Set(ids).size;
  const inOrder = JSON.stringify([...new Set(ids)]) === JSON.stringify(accepted.filter((id) => ids.includes(id)));
  console.log(`outage: receiver down ${outageS} s, ${duringOutage} event(s) generated meanwhile; after it returned the backlog arrived within ${(drained / 1000).toFixed(1)} s (the next retry comes at the current backoff: retry {initial: 1s, max: 1m}); ${accepted.length} accepted, ${accepted.length - missing} delivered, ${missing} missing, ${dupes} delivered twice, in order: ${inOrder} [load ${load()}]`);
  return { outageSeconds: outageS, duringOutage, accepted: accepted.length, delivered: accepted.length - missing, missing, duplicates: dupes, inOrder, drainSeconds: drained / 1000, load: os.loadavg() };
}

/** 3 as a sweep: camera counts around the int8 engine's raw rate now ('auto'), then the goal and beyond, to the first failure. */
async function sweep(dir: string, int8: LoadedPackage, countsArg: string, seconds: number) {
  const engine = await openEngine(int8, { engine: 'onnx' });
  const raw = await rawImgPerSec(engine, 5).finally(() => engine.dispose());
  const counts = countsArg === 'auto' ? [...new Set([0.5, 0.7, 0.85].map((f) => Math.max(1, Math.floor(raw * f))).concat([20, 30, 40]))].sort((a, b) => a - b) : countsArg.split(',').map(Number);
  const runs = [];
  for (const n of counts) {
    const r = await sustain(dir, int8, n, seconds);
    runs.push(r);
    if (!r.ok) break;
  }
  const best = Math.max(0, ...runs.filter((r) => r.ok).map((r) => r.cameras));
  console.log(`int8: sustains ${best} camera(s) at 1 fps on this machine now (goal ≥ 20); the engine alone did ${raw.toFixed(1)} img/s just before, so watch keeps up with ${((best / raw) * 100).toFixed(0)}% of the engine's raw rate as 1-fps 640x480 cameras`);
  return { runs, sustained: best, rawInt8ImgPerSec: raw, fractionOfRaw: best / raw };
}

type Throughput = Awaited<ReturnType<typeof throughput>>;
type Latency = Awaited<ReturnType<typeof latency>>;

/** The measured figures beside issue 16's targets, one line each. */
function printTargets(r: { throughput?: Record<'fp32' | 'int8', Throughput>; latency?: Record<'fp32' | 'int8', Latency>; cameras?: Awaited<ReturnType<typeof sweep>>; outage?: Awaited<ReturnType<typeof outage>> }): void {
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const lines: string[] = [];
  for (const k of ['fp32', 'int8'] as const) {
    const t = r.throughput?.[k];
    if (t) lines.push(`${k} frames/s vs raw engine   ${(t.ratio * 100).toFixed(1).padStart(6)}%   target ≥ 90%   ratio ${(t.ratio / 0.9).toFixed(2)}   ${verdict(t.ratio >= 0.9)}`);
  }
  for (const k of ['int8', 'fp32'] as const) {
    const l = r.latency?.[k];
    if (l) lines.push(`${k} alert latency at 1 fps     p50 ${l.p50} ms, p95 ${l.p95} ms (${l.n} alerts)   target: reported (none set)`);
  }
  if (r.cameras) lines.push(`int8 1-fps cameras sustained   ${String(r.cameras.sustained).padStart(6)}    goal ≥ 20      ratio ${(r.cameras.sustained / 20).toFixed(2)}   ${verdict(r.cameras.sustained >= 20)} (sustained: ${SUSTAIN_CRITERION}; engine raw ${r.cameras.rawInt8ImgPerSec.toFixed(1)} img/s here)`);
  if (r.outage) {
    const o = r.outage;
    lines.push(`delivery after a ${o.outageSeconds} s outage   ${o.delivered}/${o.accepted} delivered, ${o.duplicates} twice, in order: ${o.inOrder}   target: all, none twice, in order   ${verdict(o.missing === 0 && o.duplicates === 0 && o.inOrder)}`);
  }
  if (!lines.length) return;
  const busy = os.loadavg()[0]! > os.cpus().length;
  console.log(`\nissue 16 targets (load ${load()}):\n  ${lines.join('\n  ')}`);
  // Under contention the OS shares the CPU per thread: watch (engine + decoding threads) can then get more of it
  // than the engine alone, and ratios over 100% are the machine, not the code.
  if (busy) console.log(`  (the machine was busy: load ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores; run again on a quiet machine for figures to compare)`);
}

export async function main(args: string[]): Promise<void> {
  const seconds = Number(arg(args, '--seconds', '20'));
  const countsArg = arg(args, '--cameras', 'auto');
  const outageS = Number(arg(args, '--outage', '30'));
  const latencyFrames = Number(arg(args, '--latency-frames', '30'));
  const only = new Set(arg(args, '--only', 'throughput,latency,cameras,outage').split(','));
  const modelsDir = path.resolve(arg(args, '--models', path.join('artifacts', 'bench', 'watch-models')));
  process.env.MLCTL_CACHE ??= path.join(modelsDir, 'cache');
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${load()} (1/5/15 min; shared machine)`);
  const { fp32, int8 } = await models(modelsDir);
  const tmp = await tempDir('mlctl-bench-watch-');
  try {
    const result: Record<string, unknown> = {};
    if (only.has('throughput')) result.throughput = { fp32: await throughput(tmp.dir, fp32, 'fp32', seconds), int8: await throughput(tmp.dir, int8, 'int8', seconds) };
    if (only.has('latency')) result.latency = { int8: await latency(tmp.dir, int8, 'int8', latencyFrames), fp32: await latency(tmp.dir, fp32, 'fp32', latencyFrames) };
    if (only.has('cameras')) result.cameras = await sweep(tmp.dir, int8, countsArg, seconds);
    if (only.has('outage')) result.outage = await outage(tmp.dir, int8, outageS);
    printTargets(result as Parameters<typeof printTargets>[0]);
    await writeBenchResult('watch', { cores: os.cpus().length, loadAverageAtEnd: os.loadavg(), ...result });
  } finally {
    await tmp.cleanup();
  }
}

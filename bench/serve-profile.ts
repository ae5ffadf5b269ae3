// Serving at the limit (issue #30 items 2 and 5): `mlctl serve` runs as its own process (the real CLI, default
// logging) and this process is its load generator, so the server's CPU is read from /proc for it alone — all threads,
// and its main thread (the event loop: HTTP, routing, float conversion, JSON, reply, logs) apart.
// Profile (default): MobileNetV2 224 at c=8 and c=1 on a 1024x768 JPEG. CPU per request beside decode + engine
// measured alone in this process, and the wall time per stage from the server's own statistics (Triton's statistics
// extension and Prometheus): HTTP/route/reply, decode+resize, queue wait, engine, output. `--before DIR` also runs a
// server from another checkout (e.g. main) in interleaved rounds: before/after in one run, paired by round.
// Scaling (`--scaling`): img/s, p50 and p99 at 1, 2, 4, 8, 16 clients for MobileNetV2 and VGG16, fp32 and int8.
// `npm run bench -- serve-profile [--model mobilenet_v2] [--duration 4] [--rounds 3] [--before DIR] [--serve-args '…' --serve-args-before '…'] [--env K=V,… --env-before K=V,…]`
// [--node-flags '…' --node-flags-before '…']: node's own flags for the server (e.g. --initial-old-space-size=128).
// (--serve-args-before, --env-before or --node-flags-before alone compares two settings of this checkout.)
// `npm run bench -- serve-profile --scaling [--models mobilenet_v2,mobilenet_v2-int8,vgg16,vgg16-int8] [--clients 1,2,4,8,16] [--duration 6]`
// `npm run bench -- serve-profile --fixed 400 [--checkout DIR]`: one server answers 400 requests at c=8 (a fixed amount of work to time as a whole process).
// Packages (random weights) are made once and kept under --root (default node_modules/.cache/mlctl-bench/serve).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { imageInputSpec, imageToInput } from '../src/data/preprocess.js';
import { backboneById } from '../src/models/backbones/index.js';
import { openEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { runFloat } from '../src/runtime/float.js';
import { imageBytesToInput } from '../src/serve/images.js';
import { arg, requestJpeg, writeBenchResult } from './_util.js';
import { benchPackage } from './_vgg16.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LABELS = ['cat', 'dog', 'horse', 'ship', 'truck'];
/** Issue 30.2: CPU per request ≤ decode + engine + 1.5 ms; img/s ≥ 90% of the pipeline limit; c=1 p50 ≤ decode + engine + 2 ms. */
const TARGETS = { overheadCoreMs: 1.5, limitShare: 0.9, c1OverMs: 2 } as const;

interface Case {
  key: string;
  backbone: string;
  int8: boolean;
}
const caseOf = (key: string): Case => ({ key, backbone: key.replace(/-int8$/, ''), int8: key.endsWith('-int8') });

/** The case's package under `root`, made on first use (random weights; int8 calibrated on the request image). */
async function packageFor(root: string, c: Case, jpeg: Buffer): Promise<LoadedPackage> {
  const name = c.key.replace(/_/g, '-');
  const dir = path.join(root, name, '1');
  if (existsSync(path.join(dir, 'mlctl.json'))) return loadPackage(dir);
  const t0 = performance.now();
  const calibration = c.int8 ? [{ data: await imageToInput(jpeg, imageInputSpec(224, backboneById(c.backbone).preprocessing)), batch: 1 }] : undefined;
  const pkg = await benchPackage(root, { size: 224, name, backbone: c.backbone, labels: LABELS, tool: 'bench/serve-profile.ts', ...(calibration ? { int8: calibration } : {}) });
  console.log(`made package ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${pkg.dir})`);
  return pkg;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

export interface ServeChild {
  url: string;
  pid: number;
  what: string;
  stop(): Promise<void>;
}

/** `mlctl serve DIR` from `checkout`'s sources as a child process; resolves once it answers ready. */
export async function startServe(checkout: string, pkgDir: string, extra: string[], what: string, env: Record<string, string> = {}, nodeFlags: string[] = []): Promise<ServeChild> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(checkout, 'bench', '_mlctl.ts'), 'serve', pkgDir, '--port', String(port), '--no-ui', '--no-docs', ...extra], {
    cwd: checkout,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what}: mlctl serve exited (${child.exitCode}):\n${tail}`);
    const ok = await fetch(`${url}/v2/health/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > until) throw new Error(`${what}: mlctl serve not ready after 180 s:\n${tail}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    pid: child.pid!,
    what,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** CPU ns of a process so far: every thread, and its main thread (the event loop) alone (schedstat: ns on a CPU). */
async function processCpu(pid: number): Promise<{ total: number; main: number }> {
  let total = 0;
  let main = 0;
  for (const tid of await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const ns = Number((await fs.readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0')).split(' ')[0]);
    total += ns;
    if (tid === String(pid)) main = ns;
  }
  // Threads that ended (an exited libvips worker) are in the process's own stat, not in a task: take the larger.
  const stat = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = (Number(stat[11]) + Number(stat[12])) * (1e9 / 100);
  return { total: Math.max(total, ticks), main };
}

/** The server's own stage counters: Triton statistics of the model and Prometheus request time of /predict. */
async function stageCounters(url: string, model: string) {
  const s = (await (await fetch(`${url}/v2/models/${model}/stats`)).json()) as { model_stats: Array<{ inference_count: number; execution_count: number; inference_stats: Record<string, { count: number; ns: number }> }> };
  // The busiest version (a model directory may hold more than one).
  const st = s.model_stats.sort((a, b) => b.inference_count - a.inference_count)[0]!;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const num = (re: RegExp) => Number(metrics.match(re)?.[1] ?? 0);
  const ms = (k: string) => st.inference_stats[k]!.ns / 1e6;
  return {
    requests: st.inference_stats.success!.count,
    images: st.inference_count,
    batches: st.execution_count,
    inferMs: ms('success'),
    inputMs: ms('compute_input'),
    queueMs: ms('queue'),
    engineMs: ms('compute_infer'),
    outputMs: ms('compute_output'),
    httpMs: 1000 * num(/^mlctl_request_duration_seconds_sum\{protocol="rest",route="\/predict"\} ([\d.e+-]+)$/m),
    // The main thread's garbage collection (prom-client's GC histogram covers the main isolate only).
    majorGcs: num(/^mlctl_nodejs_gc_duration_seconds_count\{kind="major"\} ([\d.e+-]+)$/m),
    gcMs: 1000 * [...metrics.matchAll(/^mlctl_nodejs_gc_duration_seconds_sum\{kind="[a-z]+"\} ([\d.e+-]+)$/gm)].reduce((a, m) => a + Number(m[1]), 0),
  };
}
type Counters = Awaited<ReturnType<typeof stageCounters>>;
const minus = (a: Counters, b: Counters): Counters => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k as keyof Counters]])) as Counters;

/** `clients` closed-loop clients POSTing the JPEG to /predict for `seconds`: latencies (ms) of the 200s. */
export async function closedLoop(url: string, jpeg: Buffer, clients: number, seconds: number) {
  const lat: number[] = [];
  let failed = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const res = await fetch(`${url}/predict`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } }).catch(() => undefined);
        if (res) await res.arrayBuffer();
        if (res?.status === 200) lat.push(performance.now() - t);
        else failed++;
      }
    }),
  );
  return { lat, failed, seconds: (performance.now() - t0) / 1000 };
}

/** One measured load phase on a server: throughput, latency, server CPU (total and main thread) and stage counters. */
interface Measured {
  seconds: number;
  lat: number[];
  failed: number;
  cpuNs: number;
  mainNs: number;
  /** This process's CPU while it generated the load: the cores the server could not have. */
  clientNs: number;
  c: Counters;
  load: number[];
}
const emptyMeasured = (): Measured => ({ seconds: 0, lat: [], failed: 0, cpuNs: 0, mainNs: 0, clientNs: 0, c: { requests: 0, images: 0, batches: 0, inferMs: 0, inputMs: 0, queueMs: 0, engineMs: 0, outputMs: 0, httpMs: 0, majorGcs: 0, gcMs: 0 }, load: [] });

async function measure(server: ServeChild, model: string, jpeg: Buffer, clients: number, seconds: number, into: Measured): Promise<void> {
  const c0 = await stageCounters(server.url, model);
  const p0 = await processCpu(server.pid);
  const u0 = process.cpuUsage();
  const r = await closedLoop(server.url, jpeg, clients, seconds);
  const u1 = process.cpuUsage(u0);
  const p1 = await processCpu(server.pid);
  const c1 = await stageCounters(server.url, model);
  into.seconds += r.seconds;
  into.lat.push(...r.lat);
  into.failed += r.failed;
  into.cpuNs += p1.total - p0.total;
  into.mainNs += p1.main - p0.main;
  into.clientNs += (u1.user + u1.system) * 1000;
  into.c = Object.fromEntries(Object.entries(minus(c1, c0)).map(([k, v]) => [k, v + into.c[k as keyof Counters]])) as Counters;
  into.load.push(os.loadavg()[0]!);
}

export const pct = (lat: number[], p: number) => {
  const s = [...lat].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

function summary(m: Measured) {
  const n = Math.max(1, m.c.requests);
  return {
    imgPerSec: m.lat.length / m.seconds,
    p50: pct(m.lat, 50),
    p99: pct(m.lat, 99),
    requests: m.lat.length,
    failed: m.failed,
    meanBatch: m.c.images / Math.max(1, m.c.batches),
    cpuMs: m.cpuNs / 1e6 / n,
    mainMs: m.mainNs / 1e6 / n,
    otherMs: (m.cpuNs - m.mainNs) / 1e6 / n,
    /** Cores the load generator (this process, on the same machine) kept busy. */
    clientCores: m.clientNs / 1e9 / Math.max(1e-9, m.seconds),
    /** Full (mark-compact) collections of the main thread per 100 requests, and its GC pause time per request. */
    majorGcsPer100: (100 * m.c.majorGcs) / n,
    gcMs: m.c.gcMs / n,
    wall: {
      request: m.c.httpMs / n,
      httpRouteReply: Math.max(0, (m.c.httpMs - m.c.inferMs) / n),
      decode: m.c.inputMs / n,
      queue: m.c.queueMs / n,
      engine: m.c.engineMs / n,
      output: m.c.outputMs / n,
    },
    loadavg: m.load.reduce((a, b) => a + b, 0) / Math.max(1, m.load.length),
  };
}
type Summary = ReturnType<typeof summary>;

/** CPU ms per call of `fn` (every thread of this process), one call at a time, and the median wall ms. */
async function costOf(fn: () => Promise<unknown>, calls: number, per = 1): Promise<{ coreMs: number; wallMs: number }> {
  for (let i = 0; i < 3; i++) await fn();
  const wall: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await fn();
    wall.push((performance.now() - t) / per);
  }
  const c = process.cpuUsage(c0);
  return { coreMs: (c.user + c.system) / 1000 / calls / per, wallMs: pct(wall, 50) };
}

/** Decode+resize+preprocess of the request image (serve's path) and the engine at batch 1 and 8, alone in this process. */
async function floors(pkg: LoadedPackage, jpeg: Buffer, calls: number) {
  const spec = pkg.manifest.input as ImageInputSpec;
  const per = spec.height * spec.width * 3;
  const out = new Float32Array(per * 8);
  const decode = await costOf(() => imageBytesToInput(jpeg, spec, out, 0), calls);
  for (let i = 1; i < 8; i++) out.copyWithin(i * per, 0, per);
  const engine: InferenceEngine = await openEngine(pkg, { engine: 'onnx' });
  try {
    const b1 = await costOf(() => runFloat(engine, out.subarray(0, per), 1), calls);
    const b8 = await costOf(() => runFloat(engine, out, 8), Math.max(3, calls >> 3), 8);
    return { decode, engineB1: b1, engineB8: b8 };
  } finally {
    await engine.dispose();
  }
}
type Floors = Awaited<ReturnType<typeof floors>>;

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

function printProfile(label: string, c8: Summary, c1: Summary, fl: Floors, cores: number) {
  // The engine's CPU per image at the batch size the server actually ran (between batch 1 and batch 8 alone).
  const b = Math.min(8, Math.max(1, c8.meanBatch));
  const engineCore = fl.engineB1.coreMs + ((fl.engineB8.coreMs - fl.engineB1.coreMs) * (b - 1)) / 7;
  const floor = fl.decode.coreMs + engineCore;
  const limit = (cores * 1000) / (fl.decode.coreMs + fl.engineB8.coreMs);
  const over = c8.cpuMs - floor;
  const c1Floor = fl.decode.wallMs + fl.engineB1.wallMs;
  const w = c8.wall;
  console.log(`\n${label}`);
  console.log(`  c=8: ${f1(c8.imgPerSec)} img/s, p50 ${f1(c8.p50)} ms, p99 ${f1(c8.p99)} ms, mean batch ${f1(c8.meanBatch)}, ${c8.requests} requests${c8.failed ? `, ${c8.failed} failed` : ''} (load average ${f1(c8.loadavg)})`);
  console.log(`  server CPU per request at c=8: ${f2(c8.cpuMs)} core-ms = main thread ${f2(c8.mainMs)} (HTTP parse, route, body, float conversion, JSON, reply, logs, GC pauses ${f2(c8.gcMs)} ms with ${f1(c8.majorGcsPer100)} full collections per 100 requests) + other threads ${f2(c8.otherMs)} (decode on libuv/libvips, engine worker + ONNX Runtime pool, V8's GC helpers)`);
  console.log(`  alone in one process: decode+resize+preprocess ${f2(fl.decode.coreMs)} core-ms, engine ${f2(engineCore)} core-ms/img at batch ${f1(b)} (${f2(fl.engineB1.coreMs)} at 1, ${f2(fl.engineB8.coreMs)} at 8)`);
  console.log(`  → overhead ${f2(over)} core-ms per request over decode + engine   target ≤ ${TARGETS.overheadCoreMs}   ${over <= TARGETS.overheadCoreMs ? 'MET' : 'NOT MET'}`);
  console.log(`  → throughput ${f1(c8.imgPerSec)} img/s = ${((100 * c8.imgPerSec) / limit).toFixed(0)}% of the pipeline limit ${f1(limit)} img/s (${cores} cores / (${f2(fl.decode.coreMs)} + ${f2(fl.engineB8.coreMs)}) core-ms)   target ≥ ${100 * TARGETS.limitShare}%   ${c8.imgPerSec >= TARGETS.limitShare * limit ? 'MET' : 'NOT MET'}`);
  // The load generator runs on the same 2 cores: what it uses, the server cannot. The limit on the cores it leaves says
  // how much of the shortfall is the server's (its overhead and idle time) rather than the client's.
  const left = cores - c8.clientCores;
  const leftLimit = (left * 1000) / (fl.decode.coreMs + fl.engineB8.coreMs);
  console.log(`    the load generator (this process) kept ${f2(c8.clientCores)} cores busy at c=8: on the ${f2(left)} cores it left, the limit is ${f1(leftLimit)} img/s and the server reached ${((100 * c8.imgPerSec) / leftLimit).toFixed(0)}% of it (server CPU ${f2(c8.cpuMs)} core-ms/request x ${f1(c8.imgPerSec)} img/s = ${f2((c8.cpuMs * c8.imgPerSec) / 1000)} cores busy)`);
  console.log(`  wall per request at c=8 (server's statistics): HTTP+route+reply ${f2(w.httpRouteReply)} | decode+resize ${f2(w.decode)} | queue ${f2(w.queue)} | engine ${f2(w.engine)} (batch) | output ${f2(w.output)} | = ${f2(w.request)} ms`);
  console.log(`  c=1: p50 ${f1(c1.p50)} ms, p99 ${f1(c1.p99)} ms; CPU ${f2(c1.cpuMs)} core-ms/request (main ${f2(c1.mainMs)}); wall: HTTP+route+reply ${f2(c1.wall.httpRouteReply)} | decode ${f2(c1.wall.decode)} | queue ${f2(c1.wall.queue)} | engine ${f2(c1.wall.engine)} | output ${f2(c1.wall.output)}`);
  console.log(`  → c=1 p50 ${f1(c1.p50)} ms vs decode ${f1(fl.decode.wallMs)} + engine ${f1(fl.engineB1.wallMs)} + ${TARGETS.c1OverMs} = ${f1(c1Floor + TARGETS.c1OverMs)} ms   ${c1.p50 <= c1Floor + TARGETS.c1OverMs ? 'MET' : 'NOT MET'} (the client's own fetch time is inside p50)`);
  return { engineCoreMs: engineCore, overheadCoreMs: over, pipelineLimit: limit, limitShare: c8.imgPerSec / limit, c1Floor, clientCores: c8.clientCores, limitOnCoresLeft: leftLimit, shareOfCoresLeft: c8.imgPerSec / leftLimit };
}

async function profile(args: string[], root: string, jpeg: Buffer): Promise<Record<string, unknown>> {
  const c = caseOf(arg(args, '--model', 'mobilenet_v2'));
  const seconds = Number(arg(args, '--duration', '4'));
  const rounds = Math.max(1, Number(arg(args, '--rounds', '3')));
  const before = arg(args, '--before', '');
  const extra = arg(args, '--serve-args', '').split(' ').filter(Boolean);
  const envOf = (s: string) => Object.fromEntries(s.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const pkg = await packageFor(root, c, jpeg);
  const name = pkg.manifest.name;
  const cores = os.availableParallelism();
  const checkout = path.resolve(here, '..');
  const servers: ServeChild[] = [];
  try {
    const envBefore = arg(args, '--env-before', '');
    const envAfter = arg(args, '--env', '');
    const argsBefore = args.includes('--serve-args-before') ? arg(args, '--serve-args-before', '').split(' ').filter(Boolean) : extra;
    // Node's own flags for the server process (V8 heap settings cannot be set from NODE_OPTIONS or at run time).
    const flagsAfter = arg(args, '--node-flags', '').split(' ').filter(Boolean);
    const flagsBefore = args.includes('--node-flags-before') ? arg(args, '--node-flags-before', '').split(' ').filter(Boolean) : flagsAfter;
    const beforeDir = before || (['--serve-args-before', '--env-before', '--node-flags-before'].some((o) => args.includes(o)) ? checkout : '');
    const settings = (env: string, a: string[], flags: string[]) => [flags.join(' '), env, a.join(' ')].filter(Boolean).join(' ');
    const named = (s: string) => (s ? ` ${s}` : '');
    if (beforeDir) servers.push(await startServe(path.resolve(beforeDir), path.dirname(pkg.dir), argsBefore, `before (${before || 'this checkout'}${named(settings(envBefore, argsBefore, flagsBefore))})`, envOf(envBefore), flagsBefore));
    servers.push(await startServe(checkout, path.dirname(pkg.dir), extra, `after (this checkout${named(settings(envAfter, extra, flagsAfter))})`, envOf(envAfter), flagsAfter));
    for (const s of servers) await closedLoop(s.url, jpeg, 8, 1);
    const acc = servers.map(() => ({ c8: emptyMeasured(), c1: emptyMeasured() }));
    let fl: Floors | undefined;
    const flAll: Floors[] = [];
    for (let r = 0; r < rounds; r++) {
      // Interleaved rounds: load drift on this shared machine hits every server alike.
      for (const [i, s] of servers.entries()) await measure(s, name, jpeg, 8, seconds, acc[i]!.c8);
      for (const [i, s] of servers.entries()) await measure(s, name, jpeg, 1, seconds / 2, acc[i]!.c1);
      flAll.push(await floors(pkg, jpeg, 30));
      console.log(`round ${r + 1}/${rounds} (load average ${os.loadavg().map(f1).join(' ')})`);
    }
    // The floors: the median round of each figure.
    const med = (get: (f: Floors) => number) => pct(flAll.map(get), 50);
    fl = {
      decode: { coreMs: med((f) => f.decode.coreMs), wallMs: med((f) => f.decode.wallMs) },
      engineB1: { coreMs: med((f) => f.engineB1.coreMs), wallMs: med((f) => f.engineB1.wallMs) },
      engineB8: { coreMs: med((f) => f.engineB8.coreMs), wallMs: med((f) => f.engineB8.wallMs) },
    };
    console.log(`\nMobileNetV2-class serving profile: ${c.key} 224, 1024x768 JPEG (${(jpeg.length / 1024).toFixed(0)} KiB) to POST /predict, mlctl serve ${extra.join(' ') || '(defaults)'}; ${cores} cores; ${rounds} interleaved rounds of ${seconds} s`);
    const out: Record<string, unknown> = { model: c.key, floors: fl, servers: [] as unknown[] };
    const sums = acc.map((a) => ({ c8: summary(a.c8), c1: summary(a.c1) }));
    servers.forEach((s, i) => (out.servers as unknown[]).push({ what: s.what, ...sums[i], verdict: printProfile(s.what, sums[i]!.c8, sums[i]!.c1, fl!, cores) }));
    if (servers.length === 2) {
      const [a, b] = sums as [{ c8: Summary; c1: Summary }, { c8: Summary; c1: Summary }];
      console.log(`\nafter / before (same rounds): c=8 img/s ${f2(b.c8.imgPerSec / a.c8.imgPerSec)}x, CPU per request ${f2(b.c8.cpuMs / a.c8.cpuMs)}x (${f2(a.c8.cpuMs)} → ${f2(b.c8.cpuMs)} core-ms), main thread ${f2(a.c8.mainMs)} → ${f2(b.c8.mainMs)} core-ms, main-thread full GCs per 100 requests ${f1(a.c8.majorGcsPer100)} → ${f1(b.c8.majorGcsPer100)}, c=1 p50 ${f1(a.c1.p50)} → ${f1(b.c1.p50)} ms`);
    }
    return out;
  } finally {
    for (const s of servers) await s.stop();
  }
}

async function scaling(args: string[], root: string, jpeg: Buffer): Promise<Record<string, unknown>> {
  const cases = arg(args, '--models', 'mobilenet_v2,mobilenet_v2-int8,vgg16,vgg16-int8').split(',').map(caseOf);
  const clients = arg(args, '--clients', '1,2,4,8,16').split(',').map(Number);
  const seconds = Number(arg(args, '--duration', '6'));
  const extra = arg(args, '--serve-args', '').split(' ').filter(Boolean);
  const rows: Array<Record<string, unknown>> = [];
  console.log(`\nserve scaling: POST /predict with a 1024x768 JPEG, closed-loop clients, ${seconds} s per point; mlctl serve ${extra.join(' ') || '(defaults: --max-batch 8 --max-delay-ms 5)'}`);
  console.log(`${'model'.padEnd(20)} ${'clients'.padStart(7)} ${'img/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'batch'.padStart(6)} ${'queue ms'.padStart(9)} ${'CPU/img'.padStart(8)} ${'load'.padStart(5)}`);
  for (const c of cases) {
    const pkg = await packageFor(root, c, jpeg);
    const server = await startServe(path.resolve(here, '..'), path.dirname(pkg.dir), extra, c.key);
    try {
      await closedLoop(server.url, jpeg, 4, c.backbone === 'vgg16' ? 3 : 1);
      for (const n of clients) {
        const m = emptyMeasured();
        await measure(server, pkg.manifest.name, jpeg, n, seconds, m);
        const s = summary(m);
        rows.push({ model: c.key, clients: n, ...s });
        console.log(`${c.key.padEnd(20)} ${String(n).padStart(7)} ${f1(s.imgPerSec).padStart(8)} ${f1(s.p50).padStart(8)} ${f1(s.p99).padStart(8)} ${f1(s.meanBatch).padStart(6)} ${f1(s.wall.queue).padStart(9)} ${f1(s.cpuMs).padStart(8)} ${f1(s.loadavg).padStart(5)}`);
      }
    } finally {
      await server.stop();
    }
  }
  return { scaling: rows };
}

/**
 * `--fixed N`: one server (from `--checkout DIR`, default this one) answers N requests at c=8, then stops — a whole
 * command with a fixed amount of work, to time as a process (before vs after, paired) with an outside timer.
 */
async function fixed(args: string[], root: string, jpeg: Buffer): Promise<Record<string, unknown>> {
  const n = Number(arg(args, '--fixed', '400'));
  const c = caseOf(arg(args, '--model', 'mobilenet_v2'));
  const pkg = await packageFor(root, c, jpeg);
  const checkout = path.resolve(arg(args, '--checkout', path.resolve(here, '..')));
  const server = await startServe(checkout, path.dirname(pkg.dir), arg(args, '--serve-args', '').split(' ').filter(Boolean), checkout);
  try {
    await closedLoop(server.url, jpeg, 8, 0.5);
    const p0 = await processCpu(server.pid);
    const t0 = performance.now();
    let left = n;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (left-- > 0) {
          const res = await fetch(`${server.url}/predict`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`serve answered ${res.status}`);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const p1 = await processCpu(server.pid);
    const r = { requests: n, imgPerSec: n / seconds, cpuMs: (p1.total - p0.total) / 1e6 / n, mainMs: (p1.main - p0.main) / 1e6 / n };
    console.log(`${checkout}: ${n} requests at c=8 in ${f1(seconds)} s = ${f1(r.imgPerSec)} img/s; server CPU ${f2(r.cpuMs)} core-ms/request (main thread ${f2(r.mainMs)}); load average ${os.loadavg().map(f1).join(' ')}`);
    return { fixed: r };
  } finally {
    await server.stop();
  }
}

export async function main(args: string[]): Promise<void> {
  if (args.includes('--fixed')) {
    await fixed(args, path.resolve(arg(args, '--root', path.join(here, '..', 'node_modules', '.cache', 'mlctl-bench', 'serve'))), await requestJpeg());
    return;
  }
  const root = path.resolve(arg(args, '--root', path.join(here, '..', 'node_modules', '.cache', 'mlctl-bench', 'serve')));
  const jpeg = await requestJpeg();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`machine: ${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average ${os.loadavg().map(f1).join(' ')}`);
  const result: Record<string, unknown> = { cores: os.availableParallelism(), cpu, loadavgStart: os.loadavg() };
  Object.assign(result, args.includes('--scaling') ? await scaling(args, root, jpeg) : await profile(args, root, jpeg));
  result.loadavgEnd = os.loadavg();
  console.log(`load average at the end: ${os.loadavg().map(f1).join(' ')} (other engineers share this machine: quote ratios from the same run)`);
  await writeBenchResult(args.includes('--scaling') ? 'serve-scaling' : 'serve-profile', result);
}

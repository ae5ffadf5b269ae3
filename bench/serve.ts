// Serve benchmark: loopback load on `mlctl serve` with a 1024x768 JPEG against a VGG16-shaped package (random
// weights, fp32 or --int8 QDQ), next to the raw engine on preprocessed tensors in the same run; batching on vs off.
// It measures the CPU cost per image of decoding (the server's own decode + preprocess path) and of the engine, and
// judges the server against the pipeline limit: cores ÷ (decode + engine core-seconds per image).
// `npm run bench -- serve [--size 224] [--duration 8] [--rounds 3] [--engine auto|onnx|tfjs] [--int8] [--package DIR | --save ROOT]`
// `npm run bench -- serve --soak [SECONDS]`: good and hostile requests mixed at concurrency 16 (bench/serve-soak.ts).
// --duration is the measuring time per phase, split into --rounds interleaved rounds.
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { imageInputSpec, imageToInput } from '../src/data/preprocess.js';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import { describeBackend, selectBackend, type BackendChoice } from '../src/runtime/backend.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../src/runtime/engine.js';
import { imageBytesToInput } from '../src/serve/images.js';
import { createRepository, type RepositoryOptions } from '../src/serve/repository.js';
import { startServer } from '../src/serve/start.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, requestJpeg, writeBenchResult } from './_util.js';
import { vgg16BenchPackage } from './_vgg16.js';
import { runFloat } from '../src/runtime/float.js';

const LABELS = ['cat', 'dog', 'horse', 'ship', 'truck'];

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Phase {
  name: string;
  concurrency: number;
  imgPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  n: number;
  statuses?: Record<string, number>;
}

function phaseOf(name: string, concurrency: number, lat: number[], images: number, seconds: number, statuses?: Record<string, number>): Phase {
  const s = [...lat].sort((a, b) => a - b);
  return { name, concurrency, imgPerSec: images / seconds, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), n: lat.length, ...(statuses ? { statuses } : {}) };
}

/** Accumulated measurements of one phase across interleaved rounds. */
interface Acc {
  lat: number[];
  images: number;
  seconds: number;
  statuses: Record<string, number>;
  /** Process CPU milliseconds (every thread) spent in the phase. */
  cpuMs: number;
  /** Engine batches the server ran in the phase, and the examples in them. */
  batches: number;
  batchExamples: number;
}
const newAcc = (): Acc => ({ lat: [], images: 0, seconds: 0, statuses: {}, cpuMs: 0, batches: 0, batchExamples: 0 });

/**
 * Engine batches so far on a server: examples and batches (from its Prometheus batch-size histogram). Retried once:
 * while the raw engine holds this process's event loop, a pooled keep-alive connection can pass the server's idle
 * timeout unnoticed and be reset on reuse (seen on a loaded machine).
 */
async function batchTotals(url: string): Promise<{ examples: number; batches: number }> {
  const get = async () => (await fetch(`${url}/metrics`)).text();
  const text = await get().catch(get);
  const total = (name: string) => [...text.matchAll(new RegExp(`^mlctl_batch_size_${name}\\{[^}]*\\} ([\\d.e+]+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { examples: total('sum'), batches: total('count') };
}

/** Process CPU time in ms, all threads (ORT's pool, libuv's, libvips'). */
function cpuMs(): number {
  const r = process.resourceUsage();
  return (r.userCPUTime + r.systemCPUTime) / 1000;
}

/** The server's own decode path (header check, decode, resize, preprocess into floats), `count` times in a row. */
async function decodeRound(jpeg: Buffer, spec: ImageInputSpec, count: number, acc: Acc): Promise<void> {
  const out = new Float32Array(spec.height * spec.width * 3);
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await imageBytesToInput(jpeg, spec, out, 0);
    acc.lat.push(performance.now() - t);
  }
  acc.images += count;
  acc.seconds += (performance.now() - t0) / 1000;
  acc.cpuMs += cpuMs() - c0;
}

/** Repeated engine calls on already-preprocessed tensors: the ceiling the server is measured against. */
async function rawRound(engine: InferenceEngine, xb: Float32Array, batch: number, seconds: number, acc: Acc): Promise<void> {
  const c0 = cpuMs();
  const t0 = performance.now();
  let runs = 0;
  while (performance.now() - t0 < seconds * 1000 || runs < 1) {
    const t = performance.now();
    await runFloat(engine, xb, batch);
    acc.lat.push(performance.now() - t);
    runs++;
  }
  acc.images += runs * batch;
  acc.seconds += (performance.now() - t0) / 1000;
  acc.cpuMs += cpuMs() - c0;
}

interface Req {
  path: string;
  body: Buffer | string;
  type: string;
  good: boolean;
}

/** `concurrency` closed-loop clients for `seconds`; latencies of good requests, status counts for all. */
async function loadPhase(url: string, concurrency: number, seconds: number, next: (i: number) => Req, onTick?: () => void) {
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let good5xx = 0;
  let goodOk = 0;
  let counter = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const req = next(counter++);
      const t = performance.now();
      let status = 0;
      try {
        const res = await fetch(url + req.path, { method: 'POST', body: req.body, headers: { 'content-type': req.type } });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = -1;
      }
      const key = `${req.good ? 'good' : 'bad'} ${status}`;
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (req.good && status === 200) {
        lat.push(performance.now() - t);
        goodOk++;
      }
      if (req.good && (status >= 500 || status < 0)) good5xx++;
      onTick?.();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { lat, statuses, good5xx, goodOk, seconds: (performance.now() - t0) / 1000 };
}

async function openServer(pkg: LoadedPackage, repoOpts: RepositoryOptions) {
  const repo = createRepository({ ...repoOpts });
  await repo.load(pkg.dir);
  return startServer(repo, { port: 0, logger: { level: 'warn', stream: process.stderr }, bodyLimit: 20 * 1024 * 1024 });
}

const fmt = (p: Phase, ref?: Phase) =>
  `${p.name.padEnd(36)} c=${String(p.concurrency).padEnd(3)} ${p.imgPerSec.toFixed(2).padStart(7)} img/s  p50 ${p.p50.toFixed(1).padStart(7)} ms  p95 ${p.p95.toFixed(1).padStart(7)} ms  p99 ${p.p99.toFixed(1).padStart(7)} ms  n=${p.n}` +
  (ref ? `   ${((100 * p.imgPerSec) / ref.imgPerSec).toFixed(0)}% of raw img/s, p50 ${p.p50 - ref.p50 >= 0 ? '+' : ''}${(p.p50 - ref.p50).toFixed(1)} ms` : '');

export async function main(args: string[]): Promise<void> {
  // `--soak [seconds]`: the hardening soak (bench/serve-soak.ts) instead of the throughput phases.
  if (args.includes('--soak')) return (await import('./serve-soak.js')).main(args);
  const size = Number(arg(args, '--size', '224'));
  const seconds = Number(arg(args, '--duration', '8'));
  const rounds = Math.max(1, Number(arg(args, '--rounds', '3')));
  const engine = arg(args, '--engine', 'auto') as EngineChoice;
  const backend = await selectBackend(arg(args, '--backend', 'auto') as BackendChoice);
  console.log(describeBackend(backend));
  const tmp = await tempDir('mlctl-bench-serve-');
  const result: Record<string, unknown> = { size, seconds, rounds, engine, backend: backend.name, cpus: os.cpus().length, loadavg: os.loadavg() };
  try {
    const W = 1024, H = 768;
    const jpeg = await requestJpeg(W, H);
    console.log(`request image: ${W}x${H} JPEG, ${(jpeg.length / 1024).toFixed(0)} KiB`);

    let t0 = performance.now();
    const int8 = args.includes('--int8');
    const calibration = int8 ? await imageToInput(jpeg, imageInputSpec(size, 'caffe')) : undefined;
    const pkg = args.includes('--package') ? await loadPackage(arg(args, '--package', '')) : await vgg16BenchPackage(args.includes('--save') ? path.resolve(arg(args, '--save', '')) : path.join(tmp.dir, 'artifacts'), { size, name: 'vgg16-bench', labels: LABELS, tfjs: true, tool: 'bench/serve.ts', ...(calibration ? { int8: [{ data: calibration, batch: 1 }] } : {}) });
    const spec = pkg.manifest.input as ImageInputSpec;
    console.log(`package ${pkg.manifest.name} v${pkg.manifest.version} (${spec.height}x${spec.width}, formats ${Object.keys(pkg.manifest.formats).join('+')}${int8 ? ', model.onnx int8 QDQ' : ''}) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    result.int8 = int8;
    const x = await imageToInput(jpeg, spec);

    t0 = performance.now();
    const raw = await openEngine(pkg, { engine });
    console.log(`engine: ${raw.description} (opened in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    result.engineDescription = raw.description;
    const x8 = new Float32Array(x.length * 8);
    for (let i = 0; i < 8; i++) x8.set(x, i * x.length);
    await runFloat(raw, x8, 8);
    const on = await openServer(pkg, { engine, maxBatch: 8, maxDelayMs: 5, maxQueue: 64 });
    const off = await openServer(pkg, { engine, maxBatch: 1, maxDelayMs: 0, maxQueue: 64 });
    const good = (): Req => ({ path: '/predict', body: jpeg, type: 'image/jpeg', good: true });
    await loadPhase(on.url, 2, 0.5, good);
    await loadPhase(off.url, 2, 0.5, good);
    // The machine is shared: interleave short rounds of every phase so load drift hits them all alike.
    const names = ['raw engine, batch 1', 'raw engine, batch 8', 'server /predict, batching on', 'server /predict, batching on', 'server /predict, batching off'] as const;
    const conc = [1, 1, 1, 8, 8];
    const accs = names.map(newAcc);
    const decode = newAcc();
    const slot = seconds / rounds;
    const addLoad = async (url: string, c: number, acc: Acc) => {
      const b0 = await batchTotals(url);
      const c0 = cpuMs();
      const r = await loadPhase(url, c, slot, good);
      acc.cpuMs += cpuMs() - c0;
      const b1 = await batchTotals(url);
      acc.batches += b1.batches - b0.batches;
      acc.batchExamples += b1.examples - b0.examples;
      acc.lat.push(...r.lat);
      acc.images += r.goodOk;
      acc.seconds += r.seconds;
      for (const [k, v] of Object.entries(r.statuses)) acc.statuses[k] = (acc.statuses[k] ?? 0) + v;
    };
    for (let round = 0; round < rounds; round++) {
      await decodeRound(jpeg, spec, 20, decode);
      await rawRound(raw, x8.subarray(0, x.length), 1, slot, accs[0]!);
      await addLoad(on.url, 1, accs[2]!);
      await rawRound(raw, x8, 8, slot, accs[1]!);
      await addLoad(on.url, 8, accs[3]!);
      await addLoad(off.url, 8, accs[4]!);
      console.log(`round ${round + 1}/${rounds} done (load average ${os.loadavg()[0]!.toFixed(1)})`);
    }
    await raw.dispose();
    await on.shutdown('bench done');
    await off.shutdown('bench done');
    const phases = accs.map((a, i) => phaseOf(names[i]!, conc[i]!, a.lat, a.images, a.seconds, i >= 2 ? a.statuses : undefined));
    const [raw1, raw8] = phases as [Phase, Phase];
    console.log('');
    phases.forEach((p, i) => console.log(fmt(p, i === 2 ? raw1 : i >= 3 ? raw8 : undefined)));
    result.phases = phases;
    const [s1, s8, off8] = phases.slice(2) as [Phase, Phase, Phase];
    // The pipeline limit: every core busy with nothing but decoding and the engine, per image.
    const cores = os.availableParallelism();
    const decodeCoreMs = decode.cpuMs / decode.images;
    const decodeWallMs = [...decode.lat].sort((a, b) => a - b)[decode.lat.length >> 1]!;
    const engineCoreMs = accs[1]!.cpuMs / accs[1]!.images;
    const pipelineLimit = (cores * 1000) / (decodeCoreMs + engineCoreMs);
    const summary = {
      cores,
      decodeCoreMs,
      decodeWallMs,
      engineCoreMsBatch8: engineCoreMs,
      engineCoreMsBatch1: accs[0]!.cpuMs / accs[0]!.images,
      pipelineLimitImgPerSec: pipelineLimit,
      throughputVsLimitAtC8: s8.imgPerSec / pipelineLimit,
      throughputVsRawAtC8: s8.imgPerSec / raw8.imgPerSec,
      p50OverRawAtC1Ms: s1.p50 - raw1.p50,
      p50OverRawPlusDecodeAtC1Ms: s1.p50 - raw1.p50 - decodeWallMs,
      batchingSpeedupAtC8: s8.imgPerSec / off8.imgPerSec,
      /** Server CPU per image at c=8 (the in-process load generator's share included) vs decode + engine alone. */
      serverCoreMsAtC8: accs[3]!.cpuMs / accs[3]!.images,
      meanBatchAtC8: accs[3]!.batchExamples / Math.max(1, accs[3]!.batches),
      cpuEfficiencyAtC8: (decodeCoreMs + engineCoreMs) / (accs[3]!.cpuMs / accs[3]!.images),
    };
    result.summary = summary;
    console.log(
      `\nper image: decode ${decodeCoreMs.toFixed(1)} core-ms (${decodeWallMs.toFixed(1)} ms wall), engine ${engineCoreMs.toFixed(1)} core-ms at batch 8 ` +
        `(${summary.engineCoreMsBatch1.toFixed(1)} at batch 1) → pipeline limit ${cores} cores / ${(decodeCoreMs + engineCoreMs).toFixed(1)} core-ms = ${pipelineLimit.toFixed(2)} img/s`,
    );
    console.log(
      `server at c=8: ${s8.imgPerSec.toFixed(2)} img/s = ${(100 * summary.throughputVsLimitAtC8).toFixed(0)}% of the pipeline limit (target >= 95%), ${(100 * summary.throughputVsRawAtC8).toFixed(0)}% of the raw engine's batch-8 img/s\n` +
        `p50 at c=1: ${summary.p50OverRawAtC1Ms.toFixed(1)} ms over the raw engine = decode ${decodeWallMs.toFixed(1)} ms + ${summary.p50OverRawPlusDecodeAtC1Ms.toFixed(1)} ms (target <= decode + 3 ms); batching on/off at c=8: ${summary.batchingSpeedupAtC8.toFixed(2)}x`,
    );
    console.log(
      `CPU per served image at c=8: ${summary.serverCoreMsAtC8.toFixed(1)} core-ms (load generator included) = ${(100 * summary.cpuEfficiencyAtC8).toFixed(0)}% spent on decode + engine ` +
        `(the load-independent part of the target: the rest is keeping ${cores} cores busy); mean engine batch ${summary.meanBatchAtC8.toFixed(1)}`,
    );
    console.log(`load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cores} cores (figures under load are noisy: phases are interleaved, ${rounds} rounds)`);

    await writeBenchResult('serve', result);
  } finally {
    await tmp.cleanup();
  }
}

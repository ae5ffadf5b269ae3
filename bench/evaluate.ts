// Evaluate benchmark: streamed evaluation throughput and peak RSS at two dataset sizes (memory must not grow with
// the dataset), engines side by side, and the metric accumulator's cost at ImageNet scale (1000 classes) beside
// VGG16's inference rate measured in the same run (interleaved). Without --package, steps 1-2 run on a toy network
// (one 3x3 conv, 4 filters, then dense) so their img/s measure evaluate's pipeline around a near-free model, and say so.
// `npm run bench -- evaluate [--small 200] [--large 1600] [--size 64] [--package DIR] [--vgg16-size 224 (0: skip)] [--rounds 3]`
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeBackend, loadPackage, openEngine, runFloat, selectBackend, type LoadedPackage } from '../src/index.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { loadEvaluationData, mapToModelLabels } from '../src/data/evaluation.js';
import { addPredictions, createAccumulator, finalizeMetrics } from '../src/tasks/classification/metrics.js';
import { evaluatePackage, type EvaluationResult } from '../src/evaluate/run.js';
import { tempDir, tinyPackage } from '../test/helpers/fixtures.js';
import { vgg16BenchPackage } from './_vgg16.js';

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** img/s of `run` over batches until `seconds` have passed (at least one batch). */
async function rateFor(seconds: number, batch: number, run: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  do {
    await run();
    n += batch;
  } while (performance.now() - t0 < seconds * 1000);
  return n / ((performance.now() - t0) / 1000);
}

/** Run `work` while sampling RSS every 20 ms; returns its result and the peak seen. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakRss: number; seconds: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakRss: peak, seconds: (performance.now() - t0) / 1000 };
  } finally {
    clearInterval(timer);
  }
}

async function evalOn(pkg: LoadedPackage, dataDir: string, engine: 'tfjs' | 'onnx' | 'auto', latency: boolean) {
  const data = await loadEvaluationData(dataDir, 'all', { seed: 42, validationSplit: 0.2, testSplit: 0 });
  const samples = mapToModelLabels(data, pkg.manifest.labels);
  return withPeakRss(() => evaluatePackage(pkg, samples, { engine, batchSize: 16, latency: latency ? { runs: 20 } : false }));
}

export async function main(args: string[]): Promise<void> {
  const small = Number(arg(args, 'small', '200'));
  const large = Number(arg(args, 'large', '1600'));
  const size = Number(arg(args, 'size', '64'));
  const backend = await selectBackend(arg(args, 'backend', 'auto') as 'auto');
  console.log(describeBackend(backend));
  const tmp = await tempDir('mlctl-bench-eval-');
  const out: Record<string, unknown> = { backend: backend.name, small, large, size };
  try {
    const classes = 4;
    const smallDir = path.join(tmp.dir, 'small');
    const largeDir = path.join(tmp.dir, 'large');
    const t0 = performance.now();
    await generateSynthDataset({ out: smallDir, classes, perClass: Math.ceil(small / classes), size, seed: 1, format: 'jpg' });
    await generateSynthDataset({ out: largeDir, classes, perClass: Math.ceil(large / classes), size, seed: 2, format: 'jpg' });
    console.log(`generated ${small} + ${large} synthetic ${size}x${size} images in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    const labels = ['circle', 'square', 'triangle', 'stripes'].sort();
    const own = args.includes('--package');
    const pkg = own ? await loadPackage(arg(args, 'package', '')) : await tinyPackage(path.join(tmp.dir, 'artifacts'), { size, labels });
    await selectBackend(backend.name); // tinyPackage switches to cpu to build the model
    const what = own
      ? `package ${pkg.manifest.name} v${pkg.manifest.version} (${String(pkg.manifest.architecture.type ?? 'unknown architecture')})`
      : `a toy network (conv 3x3x4 → max pool → dense, ${size} px, random weights): the img/s below measure evaluate's pipeline (decode, preprocess, metrics) around a near-free model, not a real network's inference — pass --package for one`;
    console.log(`model for steps 1-2: ${what}`);
    out.model = own ? { package: pkg.dir, architecture: pkg.manifest.architecture } : { toy: 'conv 3x3x4 → max pool → dense', size };

    // 1. Streaming: peak RSS for a small and an 8x larger split should be about the same.
    const s = await evalOn(pkg, smallDir, 'tfjs', false);
    const l = await evalOn(pkg, largeDir, 'tfjs', false);
    // Rate over the streamed loop itself; the wall time also includes model load and the size figures.
    const rate = (r: { value: EvaluationResult; seconds: number }) => r.value.images.evaluated / r.value.seconds;
    console.log(`\nStreamed evaluation of ${own ? pkg.manifest.name : 'the toy network'} (tfjs engine, batch 16, decode + preprocess + inference + metrics):`);
    const line = (r: typeof s) => `  ${String(r.value.images.evaluated).padStart(5)} images: ${rate(r).toFixed(1).padStart(6)} img/s, peak RSS ${mb(r.peakRss)} MB (${r.seconds.toFixed(1)}s wall incl. model load and size)`;
    console.log(line(s));
    console.log(line(l));
    console.log(`  dataset x${(l.value.images.evaluated / s.value.images.evaluated).toFixed(1)} → peak RSS x${(l.peakRss / s.peakRss).toFixed(2)}`);
    out.streaming = { small: { images: s.value.images.evaluated, imgPerSec: rate(s), peakRssMB: s.peakRss / 2 ** 20 }, large: { images: l.value.images.evaluated, imgPerSec: rate(l), peakRssMB: l.peakRss / 2 ** 20 } };

    // 2. Engines side by side on the same images (latency at batch 1, best throughput).
    console.log(`\nEngines (same images, ${own ? pkg.manifest.name : 'the toy network'}):`);
    const engines: Record<string, unknown> = {};
    let tfjsP50: number | undefined;
    for (const engine of ['tfjs', 'onnx'] as const) {
      try {
        const r = await evalOn(pkg, smallDir, engine, true);
        const lat = r.value.latency!;
        tfjsP50 ??= engine === 'tfjs' ? lat.p50Ms : undefined;
        const vs = tfjsP50 && engine !== 'tfjs' ? ` (p50 x${(tfjsP50 / lat.p50Ms).toFixed(2)} faster than tfjs)` : '';
        console.log(`  ${r.value.engine.description.padEnd(40)} accuracy ${r.value.metrics.accuracy.toFixed(4)}  p50 ${lat.p50Ms.toFixed(2)} ms  p95 ${lat.p95Ms.toFixed(2)} ms  ${lat.throughput.best.imagesPerSecond.toFixed(0)} img/s at batch ${lat.throughput.best.batchSize}${vs}`);
        engines[engine] = { description: r.value.engine.description, accuracy: r.value.metrics.accuracy, p50Ms: lat.p50Ms, p95Ms: lat.p95Ms, p99Ms: lat.p99Ms, throughput: lat.throughput.best };
      } catch (err) {
        console.log(`  ${engine.padEnd(40)} unavailable: ${(err as Error).message.split('\n')[0]}`);
        engines[engine] = { unavailable: (err as Error).message };
      }
    }
    out.engines = engines;

    // 3. Metric accumulation alone at ImageNet scale, beside what it must keep up with: VGG16 inference measured now,
    // in interleaved rounds (the machine is shared), medians compared.
    const k = 1000;
    const n = 20_000;
    const batch = 100;
    const probs = new Float32Array(batch * k).map((_, i) => ((i * 2654435761) % 1000) / 1000 + 1e-3);
    const truth = Int32Array.from({ length: batch }, (_, i) => (i * 37) % k);
    const accumulate = () => {
      const acc = createAccumulator(k, { topK: 5, worst: 10 });
      const t = performance.now();
      for (let i = 0; i < n / batch; i++) addPredictions(acc, probs, truth);
      finalizeMetrics(acc);
      return n / ((performance.now() - t) / 1000);
    };
    const vggSize = Number(arg(args, 'vgg16-size', '224'));
    const rounds = Math.max(1, Number(arg(args, 'rounds', '3')));
    const accRates: number[] = [];
    const vggRates: number[] = [];
    const vggBatch = 8;
    const vgg = vggSize > 0 ? await vgg16BenchPackage(path.join(tmp.dir, 'vgg16'), { size: vggSize, name: 'vgg16', labels: Array.from({ length: k }, (_, i) => `c${i}`), tool: 'bench/evaluate.ts' }) : undefined;
    const engine = vgg ? await openEngine(vgg, { engine: 'onnx' }) : undefined;
    try {
      const x = new Float32Array(vggBatch * vggSize * vggSize * 3).map((_, i) => (i % 255) - 128);
      if (engine) await runFloat(engine, x, vggBatch); // warm-up
      for (let r = 0; r < rounds; r++) {
        accRates.push(accumulate());
        if (engine) vggRates.push(await rateFor(3, vggBatch, () => runFloat(engine, x, vggBatch)));
      }
    } finally {
      await engine?.dispose();
    }
    const perSec = median(accRates);
    if (engine) {
      const vggPerSec = median(vggRates);
      console.log(`\nMetric accumulator: ${k} classes, ${n} predictions → ${perSec.toFixed(0)} predictions/s; VGG16 (${vggSize} px, ${k} classes, ONNX fp32, batch ${vggBatch}) inference measured now: ${vggPerSec.toFixed(2)} img/s → the accumulator keeps up with x${(perSec / vggPerSec).toFixed(0)} that rate (medians of ${rounds} interleaved rounds)`);
      out.accumulator = { classes: k, predictions: n, perSecond: perSec, rounds: accRates, vgg16: { size: vggSize, batch: vggBatch, imgPerSec: vggPerSec, rounds: vggRates }, headroom: perSec / vggPerSec };
    } else {
      console.log(`\nMetric accumulator: ${k} classes, ${n} predictions → ${perSec.toFixed(0)} predictions/s (median of ${rounds}; --vgg16-size 0: no inference rate measured to compare with)`);
      out.accumulator = { classes: k, predictions: n, perSecond: perSec, rounds: accRates };
    }

    const dir = path.resolve('artifacts/bench');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'evaluate.json'), JSON.stringify(out, null, 2) + '\n');
    console.log(`\nwrote ${path.join(dir, 'evaluate.json')}`);
  } finally {
    await tmp.cleanup();
  }
}

// Predict benchmark: `mlctl predict` on a VGG16-shaped classifier (VGG16 base + Flatten → Dense(1024) → Dense(10),
// random weights, ONNX — int8 QDQ by default, fp32 with --fp32) over JPEGs (a few unique 640x480 files hard-linked
// under many names): img/s on N inputs vs the raw engine on preprocessed batches (target ≥ 90%), and the peak RSS
// of whole `mlctl predict` processes at N and 8N inputs (target: flat, ratio ≤ 1.1). Each round runs the raw engine,
// predict on N and predict on 8N back to back: throughput compares the best of each, memory divides each round's 8N
// peak by the same round's N peak and reports the median round (every round's ratio printed).
// `npm run bench -- predict [--fp32] [--size 224] [--n 5000] [--big 40000 (0: skip)] [--unique 48] [--photo 640x480] [--batch 16]
// [--raw-batches 25] [--rounds 3]`. On a busy shared machine, measure throughput at 224 with a smaller --n and --big 0, and memory
// with a small --size and --photo (the pipeline's memory does not depend on the image size).
import * as tf from '@tensorflow/tfjs';
import Table from 'cli-table3';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { imageInputSpec, imageToInput, openEngine, runFloat, selectBackend, type LoadedPackage } from '../src/index.js';
import { useColor } from '../src/util/log.js';
import { createRng } from '../src/util/random.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';
import { vgg16BenchPackage } from './_vgg16.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLASSES = 10;
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

/** The bench's classifier, int8 calibrated on two random preprocessed-range batches (speed does not depend on them). */
async function buildPackage(root: string, size: number, int8: boolean): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const calibration = [0, 1].map((i) => ({ data: tf.tidy(() => tf.randomUniform([2, size, size, 3], -124, 152, 'float32', 50 + i).dataSync() as Float32Array), batch: 2 }));
  const labels = Array.from({ length: CLASSES }, (_, i) => `class${i}`);
  return vgg16BenchPackage(root, { size, name: int8 ? 'vgg16-int8' : 'vgg16-fp32', labels, seed: 3, tool: 'bench/predict.ts', ...(int8 ? { int8: calibration } : {}) });
}

/** `unique` photo-like JPEGs (smooth gradients plus noise, so they compress and decode like photos). */
async function uniqueJpegs(dir: string, unique: number, [w, h]: [number, number]): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const rng = createRng(7);
  const files: string[] = [];
  for (let i = 0; i < unique; i++) {
    const px = Buffer.alloc(w * h * 3);
    const [a, b, c] = [rng() * 255, rng() * 255, rng() * 255];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        px[o] = (a + x * 0.3 + rng() * 24) & 255;
        px[o + 1] = (b + y * 0.4 + rng() * 24) & 255;
        px[o + 2] = (c + (x + y) * 0.2 + rng() * 24) & 255;
      }
    const f = path.join(dir, `u${i}.jpg`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toFile(f);
    files.push(f);
  }
  return files;
}

/** `n` inputs in folders of 1000: hard links to the unique files, each its own path (and its own row). */
async function linkedInputs(dir: string, files: string[], n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 1000)).padStart(3, '0')}`);
    if (i % 1000 === 0) await fs.mkdir(sub, { recursive: true });
    await fs.link(files[i % files.length]!, path.join(sub, `${String(i).padStart(6, '0')}.jpg`));
  }
}

/** The raw engine on preprocessed batches (no decode, no output): img/s. */
async function rawEngine(pkg: LoadedPackage, files: string[], batch: number, batches: number): Promise<number> {
  const spec = pkg.manifest.input as ReturnType<typeof imageInputSpec>;
  const per = spec.height * spec.width * 3;
  const x = new Float32Array(batch * per);
  for (let i = 0; i < batch; i++) await imageToInput(files[i % files.length]!, spec, x, i * per);
  const engine = await openEngine(pkg, { engine: 'onnx' });
  try {
    await runFloat(engine, x, batch);
    const t0 = performance.now();
    for (let i = 0; i < batches; i++) await runFloat(engine, x, batch);
    return (batches * batch) / ((performance.now() - t0) / 1000);
  } finally {
    await engine.dispose();
  }
}

interface PredictRun {
  inputs: number;
  imagesPerSecond: number;
  seconds: number;
  peakRssMb: number;
  errors: number;
}

/** A whole `mlctl predict` process: its --json summary and its peak RSS. */
function predictProcess(pkg: LoadedPackage, inputs: string, out: string, batch: number, cache: string): PredictRun {
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, '_mlctl.ts'), 'predict', pkg.dir, inputs, '--out', out, '--batch-size', String(batch), '--engine', 'onnx', '--json', '--quiet'], {
    env: { ...process.env, MLCTL_CACHE: cache },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const m = /mlctl-peak-rss-kb (\d+)/.exec(child.stderr);
  if (child.status !== 0 || !m) throw new Error(`mlctl predict failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
  const doc = JSON.parse(child.stdout) as { rows: number; errors: number; imagesPerSecond: number; seconds: number };
  return { inputs: doc.rows, imagesPerSecond: doc.imagesPerSecond, seconds: doc.seconds, peakRssMb: Number(m[1]) / 1024, errors: doc.errors };
}

export async function main(args: string[]): Promise<void> {
  const int8 = !args.includes('--fp32');
  const size = Number(arg(args, '--size', '224'));
  const n = Number(arg(args, '--n', '5000'));
  const big = Number(arg(args, '--big', '40000'));
  const unique = Number(arg(args, '--unique', '48'));
  const batch = Number(arg(args, '--batch', '16'));
  const rawBatches = Number(arg(args, '--raw-batches', '25'));
  const photo = arg(args, '--photo', '640x480').split('x').map(Number) as [number, number];
  const { dir, cleanup } = await tempDir('mlctl-bench-predict-');
  try {
    console.log(`model: VGG16-shaped classifier (VGG16 base ${size}x${size}, Flatten → Dense(1024) → Dense(${CLASSES})), random weights, ONNX ${int8 ? 'int8 QDQ' : 'fp32'}; ${os.availableParallelism()} cores, load ${load()}`);
    const pkg = await buildPackage(path.join(dir, 'artifacts'), size, int8);
    const files = await uniqueJpegs(path.join(dir, 'unique'), unique, photo);
    console.log(`inputs: ${unique} unique ${photo.join('x')} JPEGs hard-linked as ${n}${big ? ` and ${big}` : ''} inputs (one row each), batch ${batch}`);
    await linkedInputs(path.join(dir, `in-${n}`), files, n);
    if (big) await linkedInputs(path.join(dir, `in-${big}`), files, big);
    const cache = path.join(dir, 'cache');
    // The machine is shared: raw engine, predict N and predict 8N alternate for --rounds rounds; throughput compares the
    // best of each, memory each round's 8N peak with the same round's N peak.
    const rounds = Math.max(1, Number(arg(args, '--rounds', '3')));
    const raws: number[] = [];
    const smalls: PredictRun[] = [];
    const larges: PredictRun[] = [];
    const loads: string[] = [];
    for (let r = 0; r < rounds; r++) {
      raws.push(await rawEngine(pkg, files, batch, rawBatches));
      smalls.push(predictProcess(pkg, path.join(dir, `in-${n}`), path.join(dir, `out-${n}-${r}.csv`), batch, cache));
      if (big) larges.push(predictProcess(pkg, path.join(dir, `in-${big}`), path.join(dir, `out-${big}-${r}.csv`), batch, cache));
      loads.push(load());
      const mem = big ? `; peak RSS ${smalls[r]!.peakRssMb.toFixed(0)} MB at ${n}, ${larges[r]!.peakRssMb.toFixed(0)} MB at ${big} = ${(larges[r]!.peakRssMb / smalls[r]!.peakRssMb).toFixed(2)}` : '';
      console.log(`round ${r + 1}/${rounds}: raw engine ${raws[r]!.toFixed(1)} img/s, predict ${n} inputs ${smalls[r]!.imagesPerSecond.toFixed(1)} img/s${mem} (load ${loads[r]})`);
    }
    const raw = Math.max(...raws);
    const best = (runs: PredictRun[]) => runs.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
    const small = best(smalls);
    const large = big ? best(larges) : undefined;
    const [raw1, raw2] = [Math.max(...raws), Math.min(...raws)];
    const rssRatios = larges.map((l, r) => l.peakRssMb / smalls[r]!.peakRssMb);
    const mid = [...rssRatios.keys()].sort((a, b) => rssRatios[a]! - rssRatios[b]!)[Math.floor(rssRatios.length / 2)];
    const t = new Table({ head: ['run', 'inputs', 'img/s', 'vs raw engine', 'peak RSS', 'seconds', 'load (1/5/15 min)'], style: useColor(process.stdout) ? {} : { head: [], border: [] } });
    t.push([`raw engine (preprocessed batches), best of ${rounds}`, String(rawBatches * batch), `${raw1.toFixed(1)} (worst ${raw2.toFixed(1)})`, '—', '—', '—', '—']);
    for (const [label, runs] of [[String(n), smalls], ...(big ? [[String(big), larges]] : [])] as Array<[string, PredictRun[]]>) {
      const b = best(runs);
      const peaks = runs.map((x) => x.peakRssMb);
      t.push([`mlctl predict, best of ${rounds}`, label, b.imagesPerSecond.toFixed(1), `${((100 * b.imagesPerSecond) / raw).toFixed(1)}%`, `${peaks.map((p) => p.toFixed(0)).join(' / ')} MB`, b.seconds.toFixed(0), loads[runs.indexOf(b)]!]);
    }
    console.log(t.toString());
    const ratio = small.imagesPerSecond / raw;
    console.log(`throughput: predict ${n} = ${(100 * ratio).toFixed(1)}% of the raw engine (target ≥ 90%) ${ratio >= 0.9 ? 'MET' : 'NOT MET'}`);
    const rss = mid !== undefined ? rssRatios[mid]! : undefined;
    if (rss !== undefined) console.log(`memory: peak RSS ${big} / ${n} inputs in the same round = ${rss.toFixed(2)} (median of ${rounds} rounds: ${rssRatios.map((x) => x.toFixed(2)).join(', ')}; target ≤ 1.10, flat) ${rss <= 1.1 ? 'MET' : 'NOT MET'}`);
    const errors = [...smalls, ...larges].reduce((a, x) => a + x.errors, 0);
    if (errors) console.log(`unreadable inputs: ${errors} over all runs (expected 0)`);
    await writeBenchResult('predict', { model: int8 ? 'vgg16-int8-qdq' : 'vgg16-fp32', size, photo, batch, rawImagesPerSecond: raws, predictImagesPerSecond: smalls.map((x) => x.imagesPerSecond), small, large, smalls, larges, throughputRatio: ratio, rssRatio: rss, rssRatios, loadavg: loads });
  } finally {
    await cleanup();
  }
}

// Optimize benchmark: the before/after table for a sample model — VGG16 (--weights none) with a head tuned on the
// synthetic dataset — as float32, float16, uint8, head-pruned, fully pruned and pruned+uint8: size raw and gzip,
// validation accuracy, batch-1 latency, all side by side in one run with ratios to float32; then int8 (ONNX Runtime
// QDQ) against fp32 ONNX for VGG16 at --int8-size (224 by default; target ≥ 1.5x fp32 img/s at batch 1).
// `npm run bench -- optimize [--size 64] [--per-class 40] [--classes 5] [--engine tfjs|onnx|auto] [--runs 20] [--int8-size 224|0]`
import path from 'node:path';
import { loadPackage } from '../src/artifacts/package.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { figuresTable, type Figures } from '../src/optimize/measure.js';
import { prunePackage } from '../src/optimize/prune.js';
import { quantizePackage } from '../src/optimize/quantize.js';
import { quantizeInt8Package } from '../src/optimize/quantize-int8.js';
import type { StepOptions } from '../src/optimize/step.js';
import { tunePipeline } from '../src/optimize/tune-run.js';
import { describeBackend, selectBackend } from '../src/runtime/backend.js';
import type { EngineChoice } from '../src/runtime/engine.js';
import { createLogger } from '../src/util/log.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '64'));
  const perClass = Number(arg(args, '--per-class', '40'));
  const classes = Number(arg(args, '--classes', '5'));
  const engine = arg(args, '--engine', 'tfjs') as EngineChoice;
  const runs = Number(arg(args, '--runs', '20'));
  const logger = createLogger({ level: 'warn' });
  const backend = await selectBackend('auto');
  console.log(describeBackend(backend));
  const tmp = await tempDir('mlctl-bench-optimize-');
  try {
    const data = path.join(tmp.dir, 'data');
    const root = path.join(tmp.dir, 'artifacts');
    const cacheDir = path.join(tmp.dir, 'cache');
    await generateSynthDataset({ out: data, classes, perClass, size, format: 'mixed', seed: 42 });

    // The sample model: what `mlctl train --weights none` builds, its head picked by a short search on cached features.
    let t0 = performance.now();
    const tuned = await tunePipeline({ data, name: 'sample', trials: 2, strategy: 'random', search: ['lr'], imageSize: size, weights: 'none', pooling: 'flatten', epochs: 8, patience: 3, seed: 42, validationSplit: 0.2, engine: 'auto', logger, root, cacheDir });
    console.log(`sample model: VGG16 (random init) + Dense(${tuned.results[0]!.params.units}) head at ${size}px, ${tuned.features.train} train / ${tuned.features.val} val images, tuned in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    const source = await loadPackage(tuned.package.dir);
    const step: StepOptions = { logger, root, data, engine, latencyRuns: runs, maxAccuracyDrop: 1 };

    const rows: Figures[] = [];
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      t0 = performance.now();
      const v = await work();
      timings[name] = (performance.now() - t0) / 1000;
      return v;
    };
    const f16 = await timed('float16', () => quantizePackage(source, 'float16', step));
    rows.push({ ...f16.before, label: 'float32' }, { ...f16.after, label: 'float16' });
    const u8 = await timed('uint8', () => quantizePackage(source, 'uint8', step));
    rows.push({ ...u8.after, label: 'uint8' });
    const head = await timed('prune-head', () => prunePackage(source, { ...step, sparsity: 0.8, layers: ['fc1'], epochs: 3, lr: 5e-4, batchSize: 16, cacheDir }));
    rows.push({ ...head.after, label: 'pruned fc1 80% (fine-tuned)' });
    const all = await timed('prune-all', () => prunePackage(source, { ...step, sparsity: 0.5, epochs: 2, lr: 5e-4, batchSize: 16, cacheDir }));
    rows.push({ ...all.after, label: 'pruned 50% (default layers)' });
    const both = await timed('prune+uint8', () => quantizePackage(all.package, 'uint8', { ...step, accuracyBefore: all.after.accuracy }));
    rows.push({ ...both.after, label: 'pruned 50% + uint8' });

    console.log(figuresTable(rows));
    const base = rows[0]!;
    console.log(
      [
        `uint8 / float32 weight bytes: ${((u8.weightBytesAfter / u8.weightBytesBefore) * 100).toFixed(1)}% (target ≤ 26%); whole model: ${((u8.after.size.raw / base.size.raw) * 100).toFixed(1)}%`,
        `float16 / float32 size: ${((f16.after.size.raw / base.size.raw) * 100).toFixed(1)}%`,
        `pruned 50% gzip / float32 gzip: ${((all.after.size.gzip / base.size.gzip) * 100).toFixed(1)}%; pruned+uint8 gzip: ${((both.after.size.gzip / base.size.gzip) * 100).toFixed(1)}%`,
        `step times: ${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}`,
      ].join('\n'),
    );

    let int8: Record<string, unknown> | undefined;
    const int8Size = Number(arg(args, '--int8-size', '224'));
    if (int8Size > 0) {
      // A smaller folder keeps VGG16-224 feature extraction short; the figures that matter here are img/s and size.
      const data8 = path.join(tmp.dir, 'data-int8');
      await generateSynthDataset({ out: data8, classes, perClass: 12, size: 64, format: 'mixed', seed: 7 });
      t0 = performance.now();
      const big = await tunePipeline({ data: data8, name: `sample${int8Size}`, trials: 1, strategy: 'random', search: ['lr'], imageSize: int8Size, weights: 'none', pooling: 'flatten', epochs: 6, patience: 3, seed: 42, validationSplit: 0.2, engine: 'auto', logger, root, cacheDir });
      console.log(`\nint8: VGG16 ${int8Size}px sample model tuned in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
      t0 = performance.now();
      const r = await quantizeInt8Package(await loadPackage(big.package.dir), { ...step, data: data8, calibration: 32, latencyRuns: Math.max(10, Math.round(runs / 2)) });
      timings.int8 = (performance.now() - t0) / 1000;
      console.log(figuresTable([r.before, r.after]));
      const fpsFp32 = 1000 / r.before.latencyMs!;
      const fpsInt8 = 1000 / r.after.latencyMs!;
      console.log(`int8 vs fp32 (ONNX Runtime, batch 1): ${fpsInt8.toFixed(2)} vs ${fpsFp32.toFixed(2)} img/s = ${(fpsInt8 / fpsFp32).toFixed(2)}x (target ≥ 1.5x); size ${((r.int8OnnxBytes / r.fp32OnnxBytes) * 100).toFixed(1)}% of fp32; ${r.quantizedNodes} int8 Conv/MatMul nodes, ${r.calibrationImages} calibration images; quantize step ${timings.int8.toFixed(1)}s`);
      int8 = { size: int8Size, before: r.before, after: r.after, imgPerSecFp32: fpsFp32, imgPerSecInt8: fpsInt8, speedup: fpsInt8 / fpsFp32, quantizedNodes: r.quantizedNodes };
    }
    await writeBenchResult('optimize', { backend: backend.name, size, classes, perClass, engine, rows, layers: all.layers, timings, ...(int8 ? { int8 } : {}) });
  } finally {
    await tmp.cleanup();
  }
}

// Optimize benchmark: the before/after table for a sample model — VGG16 (--weights none) with a head tuned on the
// synthetic dataset — as float32, float16, uint8, head-pruned, fully pruned and pruned+uint8: size raw and gzip,
// validation accuracy, batch-1 latency, all side by side in one run with ratios to float32.
// `npm run bench -- optimize [--size 64] [--per-class 40] [--classes 5] [--engine tfjs|onnx|auto] [--runs 20]`
import path from 'node:path';
import { loadPackage } from '../src/artifacts/package.js';
import { generateSynthDataset } from '../src/data/synth.js';
import { figuresTable, type Figures } from '../src/optimize/measure.js';
import { prunePackage } from '../src/optimize/prune.js';
import { quantizePackage } from '../src/optimize/quantize.js';
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
        `int8 (ONNX Runtime QDQ): not measured — src/optimize/onnx-qdq.ts has not landed`,
        `step times: ${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}`,
      ].join('\n'),
    );
    await writeBenchResult('optimize', { backend: backend.name, size, classes, perClass, engine, rows, layers: all.layers, timings });
  } finally {
    await tmp.cleanup();
  }
}

// ONNX benchmark: VGG16 base (random weights) converted to ONNX; mlctl's ONNX engine vs a raw onnxruntime-node
// session on the same file (target ≥ 95%) vs the TF.js wasm backend, img/s side by side per batch size.
// `npm run bench -- onnx [--size 224] [--batches 1,8] [--iters 5] [--tfjs-iters 1] [--no-tfjs] [--threads N]`
import * as tf from '@tensorflow/tfjs';
import Table from 'cli-table3';
import * as ort from 'onnxruntime-node';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { convertLayersModel } from '../src/export/onnx/index.js';
import { buildVgg16 } from '../src/models/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';
import { onnxEngineFromFile, onnxSessionOptions, ORT_VERSION } from '../src/runtime/onnx-engine.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';

interface Row {
  batch: number;
  engineImgPerSec: number;
  rawImgPerSec: number;
  engineVsRaw: number;
  tfjsImgPerSec?: number;
  engineVsTfjs?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function timeRuns(n: number, run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await run();
  return (performance.now() - t0) / 1000;
}

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '224'));
  const batches = arg(args, '--batches', '1,8').split(',').map(Number);
  const iters = Number(arg(args, '--iters', '5'));
  const tfjsIters = Number(arg(args, '--tfjs-iters', '1'));
  const threads = Number(arg(args, '--threads', String(os.availableParallelism())));
  const withTfjs = !args.includes('--no-tfjs');
  if (!batches.every((b) => Number.isInteger(b) && b > 0) || !(iters > 0)) throw new Error('--batches must be positive integers and --iters > 0');

  const backend = await selectBackend(withTfjs ? 'wasm' : 'cpu');
  const tmp = await tempDir('mlctl-bench-onnx-');
  const model = buildVgg16({ imageSize: size, seed: 3 });
  try {
    const t0 = performance.now();
    const bytes = convertLayersModel(model, { inputName: 'input_1', outputName: 'features' });
    const convertSeconds = (performance.now() - t0) / 1000;
    const file = path.join(tmp.dir, 'vgg16.onnx');
    await fs.writeFile(file, bytes);
    console.log(`VGG16 base ${size}x${size}: ${(model.countParams() / 1e6).toFixed(1)}M params, converted in ${convertSeconds.toFixed(2)} s → ${(bytes.length / 1e6).toFixed(1)} MB`);
    console.log(`onnxruntime-node ${ORT_VERSION}, ${threads} intra-op threads, graph optimisation 'all' (engine and raw share these options); tfjs ${backend.name}; ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`);

    const engine = await onnxEngineFromFile(file, { threads, inputName: 'input_1', outputName: 'features' });
    const raw = await ort.InferenceSession.create(file, onnxSessionOptions(threads));
    const rows: Row[] = [];
    try {
      for (const batch of batches) {
        const x = tf.tidy(() => tf.randomUniform([batch, size, size, 3], -124, 152, 'float32', batch).dataSync() as Float32Array);
        const runEngine = () => engine.run(x, batch);
        const runRaw = () => raw.run({ input_1: new ort.Tensor('float32', x, [batch, size, size, 3]) });
        await runEngine();
        await runRaw();
        // Interleave in ABBA order so both see the same machine load (the CPU is shared), and use the median run
        // so one load spike does not decide the ratio.
        const engineTimes: number[] = [];
        const rawTimes: number[] = [];
        for (let i = 0; i < iters; i++) {
          if (i % 2 === 0) {
            engineTimes.push(await timeRuns(1, runEngine));
            rawTimes.push(await timeRuns(1, runRaw));
          } else {
            rawTimes.push(await timeRuns(1, runRaw));
            engineTimes.push(await timeRuns(1, runEngine));
          }
        }
        const [engineSec, rawSec] = [median(engineTimes), median(rawTimes)];
        const row: Row = { batch, engineImgPerSec: batch / engineSec, rawImgPerSec: batch / rawSec, engineVsRaw: rawSec / engineSec };
        console.log(`batch ${batch}: engine ${row.engineImgPerSec.toFixed(2)} img/s, raw ${row.rawImgPerSec.toFixed(2)} img/s`);
        rows.push(row);
      }
    } finally {
      await engine.dispose();
      await raw.release();
    }

    if (withTfjs) {
      // tfjs is an order of magnitude slower: one warm-up at batch 1, then --tfjs-iters runs per batch size.
      tf.tidy(() => (model.predict(tf.zeros([1, size, size, 3])) as tf.Tensor).dataSync());
      for (const row of rows) {
        const x = tf.randomUniform([row.batch, size, size, 3], -124, 152, 'float32', row.batch);
        const sec = await timeRuns(tfjsIters, async () => {
          const y = model.predict(x) as tf.Tensor;
          await y.data();
          y.dispose();
        });
        x.dispose();
        row.tfjsImgPerSec = (row.batch * tfjsIters) / sec;
        row.engineVsTfjs = row.engineImgPerSec / row.tfjsImgPerSec;
        console.log(`batch ${row.batch}: tfjs ${backend.name} ${row.tfjsImgPerSec.toFixed(2)} img/s`);
      }
    }

    const table = new Table({ head: ['batch', 'mlctl onnx img/s', 'raw ORT img/s', 'mlctl / raw', ...(withTfjs ? [`tfjs ${backend.name} img/s`, `onnx / tfjs`] : [])] });
    for (const r of rows) {
      table.push([r.batch, r.engineImgPerSec.toFixed(2), r.rawImgPerSec.toFixed(2), `${(r.engineVsRaw * 100).toFixed(1)}%`, ...(withTfjs ? [r.tfjsImgPerSec!.toFixed(2), `${r.engineVsTfjs!.toFixed(1)}x`] : [])]);
    }
    console.log(table.toString());
    console.log(`target: mlctl engine ≥ 95% of raw onnxruntime-node — ${rows.every((r) => r.engineVsRaw >= 0.95) ? 'met' : 'NOT met'} (median of ${iters} interleaved runs per batch; a shared CPU makes single runs noisy)`);
    await writeBenchResult('onnx', { size, batches, iters, tfjsIters, threads, ortVersion: ORT_VERSION, tfjsBackend: backend.name, convertSeconds, onnxBytes: bytes.length, loadavg: os.loadavg(), rows });
  } finally {
    model.dispose();
    await tmp.cleanup();
  }
}

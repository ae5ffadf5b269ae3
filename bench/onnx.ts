// ONNX benchmark: VGG16 base (random weights) converted to ONNX; mlctl's ONNX engine vs a raw onnxruntime-node
// session on the same file (target ≥ 95%) vs the TF.js wasm backend, img/s side by side per batch size. Every variant
// is warmed up at each batch size and timed in the same interleaved rounds (median run), TF.js included.
// With --int8, also the QDQ int8 model from optimize/onnx-qdq.ts (calibrated on random inputs) on the mlctl engine.
// `npm run bench -- onnx [--size 224] [--batches 1,8] [--iters 5] [--tfjs-iters 3] [--no-tfjs] [--int8] [--threads N]`
// (TF.js is an order of magnitude slower: it takes part in the first --tfjs-iters rounds only.)
import * as tf from '@tensorflow/tfjs';
import Table from 'cli-table3';
import { useColor } from '../src/util/log.js';
import '../src/runtime/ort-env.js';
import * as ort from 'onnxruntime-node';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { convertLayersModel } from '../src/onnx/index.js';
import { buildVgg16 } from '../src/models/backbones/vgg16.js';
import { quantizeOnnxQdq } from '../src/optimize/onnx-qdq.js';
import { selectBackend } from '../src/runtime/backend.js';
import { onnxSessionOptions, ORT_VERSION } from '../src/runtime/ort.js';
import { openEngine } from '../src/runtime/engine.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';
import { runFloat } from '../src/runtime/float.js';

interface Row {
  batch: number;
  engineImgPerSec: number;
  rawImgPerSec: number;
  engineVsRaw: number;
  /** Fastest and slowest single run, img/s, to show how much the shared machine moved the figures. */
  engineSpread: [number, number];
  rawSpread: [number, number];
  tfjsImgPerSec?: number;
  int8ImgPerSec?: number;
  int8VsFp32?: number;
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
  const tfjsIters = Math.min(iters, Number(arg(args, '--tfjs-iters', '3')));
  const threads = Number(arg(args, '--threads', String(os.availableParallelism())));
  const withTfjs = !args.includes('--no-tfjs');
  const withInt8 = args.includes('--int8');
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

    let int8: Awaited<ReturnType<typeof quantizeOnnxQdq>> | undefined;
    if (withInt8) {
      const calibration = [0, 1].map((i) => ({ data: tf.tidy(() => tf.randomUniform([2, size, size, 3], -124, 152, 'float32', 50 + i).dataSync() as Float32Array), batch: 2 }));
      const q0 = performance.now();
      int8 = await quantizeOnnxQdq(bytes, { calibration, threads });
      console.log(`int8 QDQ: ${int8.quantizedNodes} nodes quantized in ${((performance.now() - q0) / 1000).toFixed(1)} s → ${(int8.bytes.length / 1e6).toFixed(1)} MB`);
    }

    const engine = await openEngine({ kind: 'onnx', model: file }, { engine: 'onnx', threads });
    const raw = await ort.InferenceSession.create(file, onnxSessionOptions(threads));
    const engine8 = int8 ? await openEngine({ kind: 'onnx', model: int8.bytes }, { engine: 'onnx', threads }) : undefined;
    const rows: Row[] = [];
    try {
      for (const batch of batches) {
        const xt = tf.randomUniform([batch, size, size, 3], -124, 152, 'float32', batch);
        const x = xt.dataSync() as Float32Array;
        const tfjsRun = async () => {
          const y = model.predict(xt) as tf.Tensor;
          await y.data();
          y.dispose();
        };
        const variants: Array<[string, () => Promise<unknown>]> = [
          ['engine', () => runFloat(engine, x, batch)],
          ['raw', () => raw.run({ input_1: new ort.Tensor('float32', x, [batch, size, size, 3]) })],
          ...(engine8 ? [['int8', () => runFloat(engine8, x, batch)] as [string, () => Promise<unknown>]] : []),
          ...(withTfjs ? [['tfjs', tfjsRun] as [string, () => Promise<unknown>]] : []),
        ];
        for (const [, run] of variants) await run(); // warm-up at this batch size, TF.js included
        // Interleave with a rotating order so every variant sees the same machine load (the CPU is shared), and
        // use the median run so one load spike does not decide a ratio.
        const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
        for (let i = 0; i < iters; i++) {
          for (let j = 0; j < variants.length; j++) {
            const [name, run] = variants[(i + j) % variants.length]!;
            if (name === 'tfjs' && i >= tfjsIters) continue;
            times.get(name)!.push(await timeRuns(1, run));
          }
        }
        xt.dispose();
        const rate = (name: string) => batch / median(times.get(name)!);
        const spread = (name: string): [number, number] => [batch / Math.max(...times.get(name)!), batch / Math.min(...times.get(name)!)];
        const row: Row = { batch, engineImgPerSec: rate('engine'), rawImgPerSec: rate('raw'), engineVsRaw: rate('engine') / rate('raw'), engineSpread: spread('engine'), rawSpread: spread('raw') };
        if (engine8) {
          row.int8ImgPerSec = rate('int8');
          row.int8VsFp32 = row.int8ImgPerSec / row.engineImgPerSec;
        }
        if (withTfjs) {
          row.tfjsImgPerSec = rate('tfjs');
          row.engineVsTfjs = row.engineImgPerSec / row.tfjsImgPerSec;
        }
        const fmt = ([lo, hi]: [number, number]) => `${lo.toFixed(2)}–${hi.toFixed(2)}`;
        console.log(
          `batch ${batch}: engine ${row.engineImgPerSec.toFixed(2)} img/s (runs ${fmt(row.engineSpread)}), raw ${row.rawImgPerSec.toFixed(2)} img/s (runs ${fmt(row.rawSpread)})` +
            (engine8 ? `, int8 ${row.int8ImgPerSec!.toFixed(2)} img/s (runs ${fmt(spread('int8'))})` : '') +
            (withTfjs ? `, tfjs ${backend.name} ${row.tfjsImgPerSec!.toFixed(2)} img/s (warm, median of ${tfjsIters}; runs ${fmt(spread('tfjs'))})` : ''),
        );
        rows.push(row);
      }
    } finally {
      await engine.dispose();
      await raw.release();
      await engine8?.dispose();
    }

    const table = new Table({
      head: ['batch', 'mlctl onnx img/s', 'raw ORT img/s', 'mlctl / raw', ...(withTfjs ? [`tfjs ${backend.name} img/s`, 'onnx / tfjs'] : []), ...(withInt8 ? ['mlctl int8 img/s', 'int8 / fp32'] : [])],
      // No colour codes in logs and redirected output.
      style: useColor(process.stdout) ? {} : { head: [], border: [] },
    });
    for (const r of rows) {
      table.push([
        r.batch,
        r.engineImgPerSec.toFixed(2),
        r.rawImgPerSec.toFixed(2),
        `${(r.engineVsRaw * 100).toFixed(1)}%`,
        ...(withTfjs ? [r.tfjsImgPerSec!.toFixed(2), `${r.engineVsTfjs!.toFixed(1)}x`] : []),
        ...(withInt8 ? [r.int8ImgPerSec!.toFixed(2), `${r.int8VsFp32!.toFixed(2)}x`] : []),
      ]);
    }
    console.log(table.toString());
    console.log(`target: mlctl engine ≥ 95% of raw onnxruntime-node — ${rows.every((r) => r.engineVsRaw >= 0.95) ? 'met' : 'NOT met'} (median of ${iters} interleaved runs per batch${withTfjs ? `, TF.js in the first ${tfjsIters}` : ''}, each variant warmed up at that batch; a shared CPU makes single runs noisy)`);
    await writeBenchResult('onnx', { size, batches, iters, tfjsIters, int8: withInt8, threads, ortVersion: ORT_VERSION, tfjsBackend: backend.name, convertSeconds, onnxBytes: bytes.length, loadavg: os.loadavg(), rows });
  } finally {
    model.dispose();
    await tmp.cleanup();
  }
}

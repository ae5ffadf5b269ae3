// Export benchmark on a VGG16-sized package: wall time, peak RSS and output size of every format side by side,
// the size ratio of uint8/float16 TF.js and ONNX to the fp32 TF.js model, how closely the exported ONNX (ONNX
// Runtime) agrees with mlctl's TF.js engine, and quantized packages (float16, uint8) exported to ONNX at their size.
// Usage: npm run bench -- export [--size 224] [--classes 5]
import * as tf from '@tensorflow/tfjs';
import '../src/runtime/ort-env.js';
import * as ort from 'onnxruntime-node';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { quantizePackage } from '../src/optimize/quantize.js';
import { createMemoryLogger } from '../src/util/log.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { exportModel, type ExportOptions } from '../src/export/index.js';
import { applyHead } from '../src/models/head.js';
import { buildVgg16 } from '../src/models/backbones/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine } from '../src/runtime/engine.js';
import { arg, writeBenchResult } from './_util.js';
import { runFloat } from '../src/runtime/float.js';

/**
 * Quantized packages (mlctl quantize float16 / uint8) exported to ONNX: the file against the package's weight bytes
 * (target: within 5%), against the fp32 export, and what ONNX Runtime predicts against the package itself.
 */
async function quantizedExports(fp32: LoadedPackage, root: string, size: number): Promise<Array<Record<string, number | string>>> {
  const weightBytes = (p: LoadedPackage) => Object.entries(p.manifest.files).filter(([f]) => f.endsWith('.bin')).reduce((a, [, e]) => a + e.bytes, 0);
  const fp32Onnx = (await stat(path.join(root, 'out', 'onnx', 'model.onnx'))).size;
  const x = Float32Array.from({ length: size * size * 3 }, (_, i) => (((i * 7919) % 255) - 120) / 4);
  const rows: Array<Record<string, number | string>> = [];
  for (const dtype of ['float16', 'uint8'] as const) {
    const q = await quantizePackage(fp32, dtype, { logger: createMemoryLogger(), latencyRuns: 0, root, name: `vgg16-bench-${dtype}` });
    const out = path.join(root, 'out', `onnx-${dtype}`);
    const t0 = performance.now();
    await exportModel(q.package, { format: 'onnx', out });
    const seconds = (performance.now() - t0) / 1000;
    const onnxBytes = (await stat(path.join(out, 'model.onnx'))).size;
    const session = await ort.InferenceSession.create(path.join(out, 'model.onnx'), { logSeverityLevel: 3, graphOptimizationLevel: 'basic' });
    const y = (await session.run({ input: new ort.Tensor('float32', x, [1, size, size, 3]) })).predictions!.data as Float32Array;
    await session.release();
    const engine = await openEngine(q.package, { engine: 'tfjs' });
    const ref = await runFloat(engine, x, 1);
    await engine.dispose();
    const maxDiff = y.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
    rows.push({ dtype, packageWeightMiB: weightBytes(q.package) / 2 ** 20, onnxMiB: onnxBytes / 2 ** 20, vsPackage: onnxBytes / weightBytes(q.package), vsFp32Onnx: onnxBytes / fp32Onnx, seconds, maxDiff });
  }
  console.log('\nquantized package → onnx   package weights MiB   onnx MiB   onnx / package (target ≤ 1.05)   onnx / fp32 onnx   seconds   max |ORT − package|');
  for (const r of rows) {
    console.log(
      `${String(r.dtype).padEnd(26)} ${(r.packageWeightMiB as number).toFixed(1).padStart(19)}   ${(r.onnxMiB as number).toFixed(1).padStart(8)}   ${(r.vsPackage as number).toFixed(3).padStart(30)}   ${(r.vsFp32Onnx as number).toFixed(3).padStart(16)}   ${(r.seconds as number).toFixed(2).padStart(7)}   ${(r.maxDiff as number).toExponential(2)}`,
    );
  }
  return rows;
}

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '224'));
  const classes = Number(arg(args, '--classes', '5'));
  const backend = await selectBackend(arg(args, '--backend', 'wasm') as 'wasm');
  const root = await mkdtemp(path.join(os.tmpdir(), 'mlctl-bench-export-'));
  try {
    const base = buildVgg16({ imageSize: size });
    const model = tf.model({ inputs: base.inputs, outputs: applyHead(base.outputs[0]!, { pooling: 'gap', units: 256, dropout: 0.5, classes }) });
    const labels = Array.from({ length: classes }, (_, i) => `class_${i}`);
    const pkg = await savePackage({
      root,
      name: 'vgg16-bench',
      draft: {
        task: 'image-classification',
        labels,
        input: imageInputSpec(size, 'caffe'),
        output: { name: 'predictions', kind: 'probabilities', size: classes },
        architecture: { backbone: 'vgg16', params: model.countParams() },
        formats: { tfjs: 'model.json' },
        lineage: [{ op: 'bench', at: new Date().toISOString(), tool: 'bench/export' }],
      },
      write: (dir) => writeTfjsModel(dir, model),
    });
    model.dispose();
    const pkgBytes = Object.values(pkg.manifest.files).reduce((a, f) => a + f.bytes, 0);
    console.log(`package: VGG16 ${size}x${size} + head, ${(pkgBytes / 2 ** 20).toFixed(1)} MiB, backend ${backend.name}`);

    const runs: Array<{ label: string; opts: Omit<ExportOptions, 'out'> }> = [
      { label: 'tfjs', opts: { format: 'tfjs' } },
      { label: 'tfjs uint8', opts: { format: 'tfjs', quantize: 'uint8' } },
      { label: 'tfjs float16', opts: { format: 'tfjs', quantize: 'float16' } },
      { label: 'onnx', opts: { format: 'onnx' } },
      { label: 'triton', opts: { format: 'triton' } },
      { label: 'bundle', opts: { format: 'bundle' } },
    ];
    const rows: Array<{ label: string; seconds: number; mib: number; sizeVsTfjs: number; peakRssMiB: number; files: number }> = [];
    for (const r of runs) {
      let peak = process.memoryUsage().rss;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const t0 = performance.now();
      const res = await exportModel(pkg, { ...r.opts, out: path.join(root, 'out', r.label.replace(' ', '-')) });
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(timer);
      const bytes = Object.values(res.files).reduce((a, f) => a + f.bytes, 0);
      rows.push({ label: r.label, seconds, mib: bytes / 2 ** 20, sizeVsTfjs: bytes / pkgBytes, peakRssMiB: peak / 2 ** 20, files: Object.keys(res.files).length });
    }
    console.log('\nformat         seconds   output MiB   size vs fp32 tfjs   peak RSS MiB   files');
    for (const r of rows) {
      console.log(`${r.label.padEnd(14)} ${r.seconds.toFixed(2).padStart(7)}   ${r.mib.toFixed(1).padStart(10)}   ${r.sizeVsTfjs.toFixed(3).padStart(17)}   ${r.peakRssMiB.toFixed(0).padStart(12)}   ${String(r.files).padStart(5)}`);
    }

    // Agreement: exported ONNX in ONNX Runtime vs mlctl's TF.js engine on the same preprocessed inputs.
    const batch = 2;
    const x = Float32Array.from({ length: batch * size * size * 3 }, (_, i) => ((i * 7919) % 255) - 120);
    const session = await ort.InferenceSession.create(path.join(root, 'out', 'onnx', 'model.onnx'));
    const t0 = performance.now();
    const y = (await session.run({ input: new ort.Tensor('float32', x, [batch, size, size, 3]) })).predictions!.data as Float32Array;
    const ortMs = performance.now() - t0;
    await session.release();
    const engine = await openEngine(pkg, { engine: 'tfjs' });
    const t1 = performance.now();
    const ref = await runFloat(engine, x, batch);
    const tfjsMs = performance.now() - t1;
    await engine.dispose();
    const maxDiff = y.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
    console.log(`\nagreement on ${batch} inputs: max |onnxruntime - tfjs ${backend.name}| = ${maxDiff.toExponential(2)}; batch time onnxruntime ${ortMs.toFixed(0)} ms vs tfjs ${tfjsMs.toFixed(0)} ms (${(tfjsMs / ortMs).toFixed(1)}x)`);
    const quantized = await quantizedExports(pkg, root, size);
    await writeBenchResult('export', { size, classes, backend: backend.name, packageMiB: pkgBytes / 2 ** 20, rows, agreement: { maxDiff, ortMs, tfjsMs }, quantized });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

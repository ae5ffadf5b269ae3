// Decode/preprocess benchmark: img/s of mlctl's streamed pipeline (sharp decode + resize + caffe preprocessing)
// vs bare sharp decode+resize, at 1 and N concurrent decodes, and peak RSS over 1,000 vs 5,000 images.
// Usage: npm run bench -- decode [--images 5000] [--size 224] [--source-width 1024] [--source-height 768]
import sharp from 'sharp';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { imageBatches, defaultConcurrency } from '../src/data/batches.js';
import { scanImageFolder } from '../src/data/imagefolder.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { writeBenchResult, arg } from './_util.js';

async function makeDataset(root: string, images: number, width: number, height: number, distinct = 32): Promise<void> {
  const sources: string[] = [];
  await mkdir(path.join(root, '_src'), { recursive: true });
  for (let i = 0; i < distinct; i++) {
    const file = path.join(root, '_src', `src_${i}.jpg`);
    await sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 100 + i, sigma: 40 } } }).jpeg({ quality: 85 }).toFile(file);
    sources.push(file);
  }
  // Many files pointing at a few real JPEGs: every file is decoded in full, the disk stays small.
  for (const cls of ['a', 'b']) await mkdir(path.join(root, 'data', cls), { recursive: true });
  for (let i = 0; i < images; i++) await symlink(sources[i % distinct]!, path.join(root, 'data', i % 2 ? 'a' : 'b', `img_${i}.jpg`));
}

async function run(samples: Awaited<ReturnType<typeof scanImageFolder>>['samples'], size: number, concurrency: number) {
  const spec = imageInputSpec(size, 'caffe');
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const start = performance.now();
  let n = 0;
  for await (const batch of imageBatches(samples, { spec, batchSize: 32, concurrency })) n += batch.count;
  const seconds = (performance.now() - start) / 1000;
  clearInterval(timer);
  return { images: n, seconds, imgPerSec: n / seconds, peakRssMiB: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 };
}

async function bareSharp(files: string[], size: number, concurrency: number) {
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++]!;
      await sharp(f).removeAlpha().resize(size, size, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return files.length / ((performance.now() - start) / 1000);
}

export async function main(args: string[]): Promise<void> {
  const images = Number(arg(args, '--images', '5000'));
  const size = Number(arg(args, '--size', '224'));
  const width = Number(arg(args, '--source-width', '1024'));
  const height = Number(arg(args, '--source-height', '768'));
  const root = await mkdtemp(path.join(os.tmpdir(), 'mlctl-bench-decode-'));
  try {
    console.log(`generating ${images} files (${width}x${height} JPEG) …`);
    await makeDataset(root, images, width, height);
    const folder = await scanImageFolder(path.join(root, 'data'));
    const conc = defaultConcurrency();
    const sample1k = folder.samples.slice(0, Math.min(1000, images));
    const warm = await run(sample1k.slice(0, 64), size, conc);
    void warm;
    const bare1 = await bareSharp(sample1k.slice(0, 300).map((s) => s.path), size, 1);
    const bareN = await bareSharp(sample1k.slice(0, 600).map((s) => s.path), size, conc);
    const one = await run(folder.samples.slice(0, 300), size, 1);
    const small = await run(sample1k, size, conc);
    const full = await run(folder.samples, size, conc);
    const rows = [
      ['bare sharp decode+resize, 1 at a time', bare1.toFixed(1), '', ''],
      [`bare sharp decode+resize, ${conc} in flight`, bareN.toFixed(1), '', ''],
      ['mlctl pipeline, concurrency 1 (300 images)', one.imgPerSec.toFixed(1), (one.imgPerSec / bare1).toFixed(2), one.peakRssMiB.toFixed(0)],
      [`mlctl pipeline, concurrency ${conc} (${small.images} images)`, small.imgPerSec.toFixed(1), (small.imgPerSec / bareN).toFixed(2), small.peakRssMiB.toFixed(0)],
      [`mlctl pipeline, concurrency ${conc} (${full.images} images)`, full.imgPerSec.toFixed(1), (full.imgPerSec / bareN).toFixed(2), full.peakRssMiB.toFixed(0)],
    ];
    console.log(`\ndecode + resize to ${size}x${size} + caffe preprocessing, batches of 32, ${os.availableParallelism()} cores`);
    console.log(['case'.padEnd(50), 'img/s'.padStart(8), 'vs bare'.padStart(8), 'peak RSS MiB'.padStart(13)].join(' '));
    for (const r of rows) console.log([r[0]!.padEnd(50), r[1]!.padStart(8), r[2]!.padStart(8), r[3]!.padStart(13)].join(' '));
    console.log(`\npeak RSS ${small.images} images: ${small.peakRssMiB.toFixed(0)} MiB; ${full.images} images: ${full.peakRssMiB.toFixed(0)} MiB (growth ${(full.peakRssMiB - small.peakRssMiB).toFixed(0)} MiB)`);
    await writeBenchResult('decode', { images, size, source: `${width}x${height}`, concurrency: conc, bare1, bareN, one, small, full });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

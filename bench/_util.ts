// Shared benchmark helpers: argument lookup, writing results under artifacts/bench/, the serve benches' request photo.
import path from 'node:path';
import sharp from 'sharp';
import { writeJsonAtomic } from '../src/artifacts/atomic.js';

export function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}

export async function writeBenchResult(name: string, result: Record<string, unknown>): Promise<string> {
  const file = path.resolve('artifacts', 'bench', `${name}.json`);
  await writeJsonAtomic(file, { name, at: new Date().toISOString(), node: process.version, ...result });
  console.log(`results written to ${path.relative(process.cwd(), file)}`);
  return file;
}

/**
 * The serve benches' request image: a 1024x768 photo-like JPEG (smooth gradients plus noise, quality 90), so decode
 * and resize cost what a camera image costs. Deterministic.
 */
export async function requestJpeg(W = 1024, H = 768): Promise<Buffer> {
  const px = Buffer.alloc(W * H * 3);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const o = (y * W + x) * 3;
    px[o] = (x / W) * 200 + rnd() * 55;
    px[o + 1] = (y / H) * 200 + rnd() * 55;
    px[o + 2] = 128 + 60 * Math.sin(x / 40) + rnd() * 40;
  }
  return sharp(px, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

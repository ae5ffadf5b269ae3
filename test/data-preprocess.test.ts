// Preprocessing: Keras "caffe" mode values, decoding of every supported format, orientation, and the pixel guard.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { CAFFE_MEAN_BGR, decodeRgb, imageInputSpec, imageToInput, pixelsToInput, preprocessingFor } from '../src/data/preprocess.js';
import { MlctlError } from '../src/errors.js';

function solid(r: number, g: number, b: number, w = 4, h = 4) {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } });
}

describe('pixelsToInput', () => {
  it('caffe mode: RGB → BGR minus the ImageNet means, no scaling (Keras imagenet_utils)', () => {
    const rgb = new Uint8Array([10, 20, 30, 255, 0, 128]);
    const out = pixelsToInput(rgb, preprocessingFor('caffe'));
    const [mb, mg, mr] = CAFFE_MEAN_BGR as [number, number, number];
    const expected = [30 - mb, 20 - mg, 10 - mr, 128 - mb, 0 - mg, 255 - mr];
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
  });

  it('tf mode scales to [-1, 1] and torch mode normalises with ImageNet mean/std', () => {
    const rgb = new Uint8Array([0, 255, 51]);
    const tfm = pixelsToInput(rgb, preprocessingFor('tf'));
    expect(Array.from(tfm).map((v) => +v.toFixed(4))).toEqual([-1, 1, -0.6]);
    const torch = pixelsToInput(rgb, preprocessingFor('torch'));
    expect(torch[0]).toBeCloseTo((0 - 0.485) / 0.229, 4);
    expect(torch[1]).toBeCloseTo((1 - 0.456) / 0.224, 4);
    expect(torch[2]).toBeCloseTo((0.2 - 0.406) / 0.225, 4);
  });

  it('writes in place at an offset (batch packing)', () => {
    const out = new Float32Array(12).fill(7);
    pixelsToInput(new Uint8Array([1, 2, 3, 4, 5, 6]), preprocessingFor('raw'), out, 6);
    expect(Array.from(out)).toEqual([7, 7, 7, 7, 7, 7, 1, 2, 3, 4, 5, 6]);
  });
});

describe('decodeRgb', () => {
  it('decodes jpg, png, webp, gif and tiff to RGB at the requested size', async () => {
    const base = solid(200, 40, 90, 20, 10);
    const encoded = {
      png: await base.clone().png().toBuffer(),
      jpg: await base.clone().jpeg({ quality: 100 }).toBuffer(),
      webp: await base.clone().webp({ lossless: true }).toBuffer(),
      gif: await base.clone().gif().toBuffer(),
      tiff: await base.clone().tiff().toBuffer(),
    };
    for (const [fmt, buf] of Object.entries(encoded)) {
      const rgb = await decodeRgb(buf, 8, 6);
      expect(rgb.length, fmt).toBe(8 * 6 * 3);
      const tol = fmt === 'jpg' || fmt === 'gif' ? 12 : 1;
      expect(Math.abs(rgb[0]! - 200), fmt).toBeLessThanOrEqual(tol);
      expect(Math.abs(rgb[1]! - 40), fmt).toBeLessThanOrEqual(tol);
      expect(Math.abs(rgb[2]! - 90), fmt).toBeLessThanOrEqual(tol);
    }
  });

  it('converts greyscale and drops alpha', async () => {
    const grey = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 77, g: 77, b: 77 } } }).greyscale().png().toBuffer();
    const rgb = await decodeRgb(grey, 2, 2);
    expect(Array.from(rgb.slice(0, 3))).toEqual([77, 77, 77]);
    const rgba = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).png().toBuffer();
    expect((await decodeRgb(rgba, 2, 2)).length).toBe(12);
  });

  it('honours EXIF orientation', async () => {
    // 4x2 image, left half red, right half blue, stored rotated with orientation 6 (90° CW on display).
    const raw = new Uint8Array(4 * 2 * 3);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) raw.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
    const buf = await sharp(raw, { raw: { width: 4, height: 2, channels: 3 } }).withMetadata({ orientation: 6 }).png().toBuffer();
    const rgb = await decodeRgb(buf, 4, 2); // displayed as 2 wide x 4 tall: top half red
    expect(rgb[0]).toBeGreaterThan(200);
    expect(rgb[(3 * 2 + 1) * 3 + 2]).toBeGreaterThan(200);
  });

  it('refuses corrupt data and decompression bombs with clear errors', async () => {
    const corrupt = await decodeRgb(Buffer.from('not an image'), 4, 4).catch((e: unknown) => e);
    expect(corrupt).toBeInstanceOf(MlctlError);
    expect((corrupt as MlctlError).code).toBe('IMAGE_DECODE');
    const big = await solid(0, 0, 0, 2000, 2000).png({ compressionLevel: 9 }).toBuffer();
    const bomb = await decodeRgb(big, 4, 4, 'fill', { maxPixels: 1_000_000 }).catch((e: unknown) => e);
    expect(bomb).toBeInstanceOf(MlctlError);
    expect((bomb as MlctlError).code).toBe('IMAGE_TOO_LARGE');
  });
});

describe('imageToInput', () => {
  it('is decode + resize + preprocess as the manifest spec says', async () => {
    const png = await solid(10, 20, 30).png().toBuffer();
    const spec = imageInputSpec(2, 'caffe');
    const x = await imageToInput(png, spec);
    expect(x.length).toBe(2 * 2 * 3);
    expect(x[0]).toBeCloseTo(30 - CAFFE_MEAN_BGR[0]!, 3);
    expect(x[2]).toBeCloseTo(10 - CAFFE_MEAN_BGR[2]!, 3);
  });
});

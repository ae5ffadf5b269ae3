// Preprocessing: Keras "caffe" mode values, decoding of every supported format, orientation, and the pixel guard.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { CAFFE_MEAN_BGR, decodeRgb, describeResize, imageInputSpec, imageToInput, pixelsToInput, preprocessingFor } from '../src/data/preprocess.js';
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

/** A smooth test pattern with some noise, 240x240 RGB (deterministic). */
function pattern(w: number, h: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  let s = 12345;
  const r = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 4294967296);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 60 * Math.sin(x * 0.3 + c) + 50 * Math.cos(y * 0.21 * (c + 1)) + r() * 40 - 20)));
  return px;
}

/** Separable triangle filter whose support widens with the scale factor: antialiased bilinear (Pillow's BILINEAR). */
function antialiasedBilinear(src: Uint8Array, w: number, out: number): Float64Array {
  const scale = w / out, support = Math.max(1, scale);
  const at = (x: number, y: number, c: number) => src[(Math.min(w - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3 + c]!;
  const res = new Float64Array(out * out * 3);
  for (let y = 0; y < out; y++) for (let x = 0; x < out; x++) for (let c = 0; c < 3; c++) {
    const cx = (x + 0.5) * scale, cy = (y + 0.5) * scale;
    let sum = 0, ws = 0;
    for (let yy = Math.floor(cy - support); yy <= Math.ceil(cy + support); yy++) {
      const wy = Math.max(0, 1 - Math.abs((yy + 0.5 - cy) / support));
      for (let xx = Math.floor(cx - support); xx <= Math.ceil(cx + support); xx++) {
        const wx = Math.max(0, 1 - Math.abs((xx + 0.5 - cx) / support));
        sum += wx * wy * at(xx, yy, c);
        ws += wx * wy;
      }
    }
    res[(y * out + x) * 3 + c] = sum / ws;
  }
  return res;
}

/** Plain bilinear sampling of the 2x2 neighbours (cv2.INTER_LINEAR, tf.image.resize antialias=False). */
function pointBilinear(src: Uint8Array, w: number, out: number): Float64Array {
  const scale = w / out;
  const at = (x: number, y: number, c: number) => src[(Math.min(w - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3 + c]!;
  const res = new Float64Array(out * out * 3);
  for (let y = 0; y < out; y++) for (let x = 0; x < out; x++) for (let c = 0; c < 3; c++) {
    const sx = (x + 0.5) * scale - 0.5, sy = (y + 0.5) * scale - 0.5;
    const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
    res[(y * out + x) * 3 + c] = at(x0, y0, c) * (1 - fx) * (1 - fy) + at(x0 + 1, y0, c) * fx * (1 - fy) + at(x0, y0 + 1, c) * (1 - fx) * fy + at(x0 + 1, y0 + 1, c) * fx * fy;
  }
  return res;
}

const meanAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! - b[i]!);
  return d / a.length;
};

describe('the recorded resize (interpolation, antialias)', () => {
  it('every mode records a stretch to the model size, bilinear with antialiasing', () => {
    for (const mode of ['caffe', 'tf', 'torch', 'unit', 'raw'] as const) expect(preprocessingFor(mode)).toMatchObject({ resize: 'fill', interpolation: 'bilinear', antialias: true });
    expect(describeResize(imageInputSpec(96, 'tf'))).toMatch(/stretched .* to 96x96, bilinear with antialiasing .*Pillow.*BILINEAR.*antialias=True/);
  });

  it('is what decodeRgb does: antialiased bilinear to within a level, unlike 2x2 bilinear or sharp\'s default lanczos3', async () => {
    const w = 240, src = pattern(w, w);
    const png = await sharp(src, { raw: { width: w, height: w, channels: 3 } }).png().toBuffer();
    const out = 96;
    const ours = await decodeRgb(png, out, out, 'fill');
    const lanczos = await sharp(png).resize(out, out, { fit: 'fill' }).raw().toBuffer();
    expect(meanAbs(ours, antialiasedBilinear(src, w, out))).toBeLessThan(1);
    expect(meanAbs(ours, pointBilinear(src, w, out))).toBeGreaterThan(3);
    expect(meanAbs(ours, lanczos)).toBeGreaterThan(2);
  });

  it('reads a manifest written before the fields existed as bilinear with antialiasing, and keeps its feature store names', async () => {
    const { validateManifest } = await import('../src/artifacts/manifest.js');
    const { preprocessingKey } = await import('../src/data/preprocess.js');
    const legacy = { mode: 'tf', channelOrder: 'RGB', mean: [1, 1, 1], std: [1, 1, 1], scale: 1 / 127.5, resize: 'fill' };
    const m = validateManifest(
      { schemaVersion: 1, name: 'old', version: 1, labels: ['a'], input: { ...imageInputSpec(32, 'tf'), preprocessing: legacy }, output: { name: 'p', kind: 'probabilities', size: 1 }, files: {}, formats: {}, lineage: [] },
      'old/1',
    );
    expect(m.input.kind === 'image' && m.input.preprocessing).toEqual({ ...legacy, interpolation: 'bilinear', antialias: true });
    // Feature stores and ONNX conversions are named by the spec as it was written before: the same resize, the same name.
    expect(preprocessingKey(preprocessingFor('tf'))).toEqual(legacy);
  });
});

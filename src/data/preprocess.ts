// The one implementation of image preprocessing: decode with sharp, resize, and turn RGB pixels into the model's
// input floats as the manifest's PreprocessingSpec says. train, evaluate and serve all call imageToInput().
import sharp from 'sharp';
import { LEGACY_RESIZE, type ImageInputSpec, type PreprocessingSpec } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';
import { jpegFrame } from './jpeg-header.js';

export type PreprocessingMode = PreprocessingSpec['mode'];
export const PREPROCESSING_MODES: readonly PreprocessingMode[] = ['caffe', 'tf', 'torch', 'unit', 'raw'];

/** ImageNet channel means in BGR order, as Keras's imagenet_utils "caffe" mode subtracts them. */
export const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];

/** How images are resized for every mode: stretched to the model size, bilinear with antialiasing (what sharp's "linear" kernel does). */
export const RESIZE = { resize: 'fill', ...LEGACY_RESIZE } as const satisfies Pick<PreprocessingSpec, 'resize' | 'interpolation' | 'antialias'>;

/** sharp's kernel for each recorded interpolation: the spec says what decodeRgb does, and decodeRgb does what it says. */
const SHARP_KERNEL: Record<PreprocessingSpec['interpolation'], 'linear'> = { bilinear: 'linear' };

export function preprocessingFor(mode: PreprocessingMode): PreprocessingSpec {
  switch (mode) {
    case 'caffe':
      return { mode, channelOrder: 'BGR', mean: CAFFE_MEAN_BGR, std: [1, 1, 1], scale: 1, ...RESIZE };
    case 'tf':
      return { mode, channelOrder: 'RGB', mean: [1, 1, 1], std: [1, 1, 1], scale: 1 / 127.5, ...RESIZE };
    case 'torch':
      return { mode, channelOrder: 'RGB', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255, ...RESIZE };
    case 'unit':
      return { mode, channelOrder: 'RGB', mean: [0, 0, 0], std: [1, 1, 1], scale: 1 / 255, ...RESIZE };
    case 'raw':
      return { mode, channelOrder: 'RGB', mean: [0, 0, 0], std: [1, 1, 1], scale: 1, ...RESIZE };
  }
}

/**
 * The resize in words, for READMEs, model cards and logs: "stretched to 224x224, bilinear with antialiasing (…)"
 * — enough for a client in another language to feed the model the pixels it was trained on.
 */
export function describeResize(spec: Pick<ImageInputSpec, 'height' | 'width' | 'preprocessing'>): string {
  const p = spec.preprocessing;
  const fit = p.resize === 'fill' ? 'stretched (aspect ratio not kept)' : p.resize === 'cover' ? 'scaled to cover and centre-cropped' : 'scaled to fit and padded with black';
  const kernel = `${p.interpolation ?? LEGACY_RESIZE.interpolation}${(p.antialias ?? LEGACY_RESIZE.antialias) ? ' with antialiasing' : ' without antialiasing'}`;
  return `${fit} to ${spec.height}x${spec.width}, ${kernel} (sharp kernel "linear"; Pillow Image.resize(BILINEAR), tf.image.resize(method="bilinear", antialias=True) — not cv2.INTER_LINEAR or sharp's default lanczos3)`;
}

/** The part of a spec that names a feature store or a conversion: older stores were named without the resize kernel it always had. */
export function preprocessingKey(p: PreprocessingSpec): Omit<PreprocessingSpec, 'interpolation' | 'antialias'> & Partial<PreprocessingSpec> {
  const { interpolation, antialias, ...rest } = p;
  return interpolation === LEGACY_RESIZE.interpolation && antialias === LEGACY_RESIZE.antialias ? rest : p;
}

/** The per-example tensor shape an image input takes: [H, W, 3] (NHWC) or [3, H, W] (NCHW). */
export function imageTensorShape(spec: Pick<ImageInputSpec, 'height' | 'width' | 'channels' | 'layout'>): number[] {
  return spec.layout === 'NCHW' ? [spec.channels, spec.height, spec.width] : [spec.height, spec.width, spec.channels];
}

export function imageInputSpec(size: number | { height: number; width: number }, mode: PreprocessingMode = 'caffe'): ImageInputSpec {
  const { height, width } = typeof size === 'number' ? { height: size, width: size } : size;
  return { kind: 'image', name: 'input', height, width, channels: 3, layout: 'NHWC', dtype: 'float32', preprocessing: preprocessingFor(mode) };
}

/** Largest decoded image accepted (pixels). Guards against decompression bombs before any allocation. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

/**
 * Bytes one decoded pixel may take at most, per pixel of the pixel limit: the limit is counted at 8-bit RGBA, so a
 * 16-bit RGBA image (8 bytes a pixel) may have half as many pixels. What a decode allocates is bit depth x channels.
 */
export const DECODED_BYTES_PER_LIMIT_PIXEL = 4;

export interface DecodeOptions {
  maxPixels?: number;
  /** Largest decoded size (width x height x channels x bytes per sample); default maxPixels x 4 (8-bit RGBA). */
  maxDecodedBytes?: number;
  /** Crop to this pixel rectangle (after EXIF rotation) before resizing: a camera's region of interest. */
  region?: { left: number; top: number; width: number; height: number };
}

/** Bytes per sample of libvips band formats, as sharp's metadata().depth names them. */
const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 1 : 0)} MiB`;

/**
 * Decodes bigger than this (decoded bytes) take turns through one process-wide gate: together they hold at most
 * DECODE_BUDGET bytes and LARGE_DECODE_SLOTS of libuv's threads, so a flood of huge images waits in line instead
 * of filling memory and every decode thread, while camera frames and photos (below the threshold) never wait.
 */
const LARGE_DECODE_BYTES = 48 * 2 ** 20;
const DECODE_BUDGET = 512 * 2 ** 20;
const LARGE_DECODE_SLOTS = 2;

const largeDecodes = (() => {
  let bytes = 0;
  let running = 0;
  const waiting: Array<{ cost: number; go: () => void }> = [];
  const pump = () => {
    while (waiting.length) {
      const next = waiting[0]!;
      if (running >= LARGE_DECODE_SLOTS || (running > 0 && bytes + next.cost > DECODE_BUDGET)) return;
      waiting.shift();
      bytes += next.cost;
      running++;
      next.go();
    }
  };
  return async <T>(decodedBytes: number, fn: () => Promise<T>): Promise<T> => {
    if (decodedBytes <= LARGE_DECODE_BYTES) return fn();
    const cost = Math.min(decodedBytes, DECODE_BUDGET);
    await new Promise<void>((go) => {
      waiting.push({ cost, go });
      pump();
    });
    try {
      return await fn();
    } finally {
      bytes -= cost;
      running--;
      pump();
    }
  };
})();

/**
 * Read an image's header (no pixel decoded) and refuse it, IMAGE_TOO_LARGE, when decoding it would pass the pixel
 * limit or the decoded-bytes limit (width x height x channels x bytes per sample). Returns the decoded size.
 */
export async function checkImageHeader(input: string | Uint8Array, opts: Pick<DecodeOptions, 'maxPixels' | 'maxDecodedBytes'> = {}): Promise<{ width: number; height: number; decodedBytes: number; orientation?: number }> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = opts.maxDecodedBytes ?? maxPixels * DECODED_BYTES_PER_LIMIT_PIXEL;
  const label = typeof input === 'string' ? input : `(${input.byteLength} bytes)`;
  // An 8-bit JPEG's frame header is read from its bytes (no libvips call: serve's hot path); anything else asks sharp.
  const frame = typeof input === 'string' ? undefined : jpegFrame(input);
  let meta: Pick<sharp.Metadata, 'width' | 'height' | 'channels' | 'depth' | 'orientation'>;
  if (frame && frame.bits === 8) meta = { width: frame.width, height: frame.height, channels: frame.channels as sharp.Channels, depth: 'uchar', ...(frame.orientation ? { orientation: frame.orientation } : {}) };
  else {
    try {
      meta = await sharp(input, { limitInputPixels: false, pages: 1 }).metadata();
    } catch (err) {
      throw new MlctlError('IMAGE_DECODE', [label, ((err as Error).message ?? String(err)).split('\n')[0]!], { cause: err });
    }
  }
  const { width, height } = meta;
  if (!width || !height) throw new MlctlError('IMAGE_DECODE', [label, 'the image has no dimensions']);
  const refuse = (reason: string) => new MlctlError('IMAGE_TOO_LARGE', [label, reason], { details: { reason } });
  if (width * height > maxPixels) throw refuse(`${width}x${height} = ${width * height} pixels, more than the ${maxPixels}-pixel limit`);
  const channels = meta.channels ?? 4;
  const sample = SAMPLE_BYTES[meta.depth ?? 'uchar'] ?? 8;
  const decodedBytes = width * height * channels * sample;
  if (decodedBytes > maxBytes) {
    throw refuse(`${width}x${height} with ${channels} channel${channels === 1 ? '' : 's'} of ${sample * 8} bits = ${mib(decodedBytes)} decoded, more than the ${mib(maxBytes)} limit (the pixel limit counted at 8-bit RGBA)`);
  }
  return { width, height, decodedBytes, ...(meta.orientation ? { orientation: meta.orientation } : {}) };
}

/**
 * Where a decoded picture landed in the model input, so outputs in input pixels (detection boxes) map back to the
 * picture: input = (picture - (left, top)) · scale + offset. `offset` is the letterbox padding ("contain") or minus
 * the centre crop ("cover"); 0 for "fill". Sizes after EXIF rotation; `left`/`top` place a cropped region in the frame.
 */
export interface ImageGeometry {
  /** The picture (the region, when one was cropped) in its own pixels. */
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
  /** Where the picture sits in the full frame: a region's corner, else 0. */
  left: number;
  top: number;
}

/**
 * The geometry sharp produces resizing a width x height picture to the input with `fit`: "contain" scales by the
 * smaller ratio to round(size · scale) and centres it (padding floor((input - size) / 2)); "cover" scales by the larger
 * ratio and crops floor((size - input + 1) / 2) from the start (sharp's CalculateEmbedPosition / CalculateCrop).
 */
export function resizeGeometry(width: number, height: number, inputWidth: number, inputHeight: number, fit: PreprocessingSpec['resize'], at: { left?: number; top?: number } = {}): ImageGeometry {
  const place = { width, height, left: at.left ?? 0, top: at.top ?? 0 };
  if (fit === 'fill') return { ...place, scaleX: inputWidth / width, scaleY: inputHeight / height, offsetX: 0, offsetY: 0 };
  const s = fit === 'contain' ? Math.min(inputWidth / width, inputHeight / height) : Math.max(inputWidth / width, inputHeight / height);
  const rw = Math.max(1, Math.round(width * s));
  const rh = Math.max(1, Math.round(height * s));
  const shift = (resized: number, input: number) => (fit === 'contain' ? Math.floor((input - resized) / 2) : 0 - Math.floor((resized - input + 1) / 2));
  return { ...place, scaleX: rw / width, scaleY: rh / height, offsetX: shift(rw, inputWidth), offsetY: shift(rh, inputHeight) };
}

/** The geometry of an input that came preprocessed (no picture behind it): input pixels are the picture's. */
export const identityGeometry = (width: number, height: number): ImageGeometry => ({ width, height, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0, left: 0, top: 0 });

/** A box in model-input pixels → the picture's (frame) pixels, clipped to the picture. */
export function boxToPicture(box: { x: number; y: number; width: number; height: number }, g: ImageGeometry): { x: number; y: number; width: number; height: number } {
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  const x0 = clip((box.x - g.offsetX) / g.scaleX, g.width);
  const y0 = clip((box.y - g.offsetY) / g.scaleY, g.height);
  const x1 = clip((box.x + box.width - g.offsetX) / g.scaleX, g.width);
  const y1 = clip((box.y + box.height - g.offsetY) / g.scaleY, g.height);
  return { x: x0 + g.left, y: y0 + g.top, width: x1 - x0, height: y1 - y0 };
}

/**
 * Decode any sharp-supported image (jpg, png, webp, gif first frame, tiff), honour EXIF orientation,
 * drop alpha, convert to sRGB and resize to height x width. Returns HWC uint8 RGB. The header is checked first
 * (checkImageHeader) and large decodes wait their turn (see LARGE_DECODE_BYTES).
 */
export async function decodeRgb(
  input: string | Uint8Array,
  height: number,
  width: number,
  fit: PreprocessingSpec['resize'] = 'fill',
  opts: DecodeOptions = {},
  interpolation: PreprocessingSpec['interpolation'] = LEGACY_RESIZE.interpolation,
): Promise<Uint8Array> {
  return (await decodeRgbPlaced(input, height, width, fit, opts, interpolation)).rgb;
}

/** decodeRgb, also saying where the picture landed in the input (ImageGeometry). */
export async function decodeRgbPlaced(
  input: string | Uint8Array,
  height: number,
  width: number,
  fit: PreprocessingSpec['resize'] = 'fill',
  opts: DecodeOptions = {},
  interpolation: PreprocessingSpec['interpolation'] = LEGACY_RESIZE.interpolation,
): Promise<{ rgb: Uint8Array; geometry: ImageGeometry }> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const label = typeof input === 'string' ? input : `(${input.byteLength} bytes)`;
  const header = await checkImageHeader(input, opts);
  // EXIF orientations 5-8 turn the picture a quarter: its displayed width is the stored height.
  const turned = (header.orientation ?? 1) >= 5;
  const picture = opts.region ?? { left: 0, top: 0, width: turned ? header.height : header.width, height: turned ? header.width : header.height };
  const geometry = resizeGeometry(picture.width, picture.height, width, height, fit, picture);
  return largeDecodes(header.decodedBytes, async () => {
    try {
      const img = sharp(input, { limitInputPixels: maxPixels, failOn: 'error', pages: 1 }).rotate();
      // Chained after rotate(), extract() works in displayed (EXIF-oriented) coordinates, before the resize.
      if (opts.region) img.extract(opts.region);
      const { data, info } = await img
        .removeAlpha()
        .toColourspace('srgb')
        .resize(width, height, { fit: fit === 'fill' ? 'fill' : fit, kernel: SHARP_KERNEL[interpolation] ?? 'linear', background: { r: 0, g: 0, b: 0 } })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels === 3) return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), geometry };
      // Single-channel results (rare colourspace edge cases): replicate to RGB.
      const out = new Uint8Array(height * width * 3);
      for (let i = 0, p = 0; i < height * width; i++, p += info.channels) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[p]!;
      return { rgb: out, geometry };
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      if (/pixel limit/i.test(msg)) throw new MlctlError('IMAGE_TOO_LARGE', [label, `more than the ${maxPixels}-pixel limit`], { cause: err });
      throw new MlctlError('IMAGE_DECODE', [label, msg.split('\n')[0]!], { cause: err });
    }
  });
}

/**
 * RGB uint8 HWC pixels → model input floats (in place into `out` at `offset` when given), in the model's layout:
 * NHWC interleaved (h, w, c) or NCHW planar (c, h, w), as channels-first PyTorch exports take them.
 */
export function pixelsToInput(rgb: Uint8Array, spec: PreprocessingSpec, out?: Float32Array, offset = 0, layout: ImageInputSpec['layout'] = 'NHWC'): Float32Array {
  const n = rgb.length / 3;
  const dst = out ?? new Float32Array(rgb.length);
  // (c·scale - mean) / std as one multiply-add per value; BGR models read the source channels in reverse.
  const [m0, m1, m2] = spec.mean as [number, number, number];
  const [s0, s1, s2] = spec.std as [number, number, number];
  const [a0, a1, a2] = [spec.scale / s0, spec.scale / s1, spec.scale / s2];
  const [b0, b1, b2] = [-m0 / s0, -m1 / s1, -m2 / s2];
  const [first, last] = spec.channelOrder === 'BGR' ? [2, 0] : [0, 2];
  if (layout === 'NCHW') {
    for (let i = 0, p = 0, o = offset; p < n; i += 3, p++, o++) {
      dst[o] = rgb[i + first]! * a0 + b0;
      dst[o + n] = rgb[i + 1]! * a1 + b1;
      dst[o + 2 * n] = rgb[i + last]! * a2 + b2;
    }
    return dst;
  }
  for (let i = 0, o = offset; i < n * 3; i += 3, o += 3) {
    dst[o] = rgb[i + first]! * a0 + b0;
    dst[o + 1] = rgb[i + 1]! * a1 + b1;
    dst[o + 2] = rgb[i + last]! * a2 + b2;
  }
  return dst;
}

/** Decode + resize + preprocess one image into the model's input floats (H*W*3). */
export async function imageToInput(input: string | Uint8Array, spec: ImageInputSpec, out?: Float32Array, offset = 0, opts: DecodeOptions = {}): Promise<Float32Array> {
  return (await imageToInputPlaced(input, spec, out, offset, opts)).x;
}

/** imageToInput, also saying where the picture landed in the input: what maps boxes back to the picture. */
export async function imageToInputPlaced(input: string | Uint8Array, spec: ImageInputSpec, out?: Float32Array, offset = 0, opts: DecodeOptions = {}): Promise<{ x: Float32Array; geometry: ImageGeometry }> {
  const { rgb, geometry } = await decodeRgbPlaced(input, spec.height, spec.width, spec.preprocessing.resize, opts, spec.preprocessing.interpolation);
  return { x: pixelsToInput(rgb, spec.preprocessing, out, offset, spec.layout), geometry };
}

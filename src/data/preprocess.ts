// The one implementation of image preprocessing: decode with sharp, resize, and turn RGB pixels into the model's
// input floats as the manifest's PreprocessingSpec says. train, evaluate and serve all call imageToInput().
import sharp from 'sharp';
import { LEGACY_RESIZE, type ImageInputSpec, type PreprocessingSpec } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';

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

export function imageInputSpec(size: number | { height: number; width: number }, mode: PreprocessingMode = 'caffe'): ImageInputSpec {
  const { height, width } = typeof size === 'number' ? { height: size, width: size } : size;
  return { kind: 'image', name: 'input', height, width, channels: 3, layout: 'NHWC', dtype: 'float32', preprocessing: preprocessingFor(mode) };
}

/** Largest decoded image accepted (pixels). Guards against decompression bombs before any allocation. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

export interface DecodeOptions {
  maxPixels?: number;
  /** Crop to this pixel rectangle (after EXIF rotation) before resizing: a camera's region of interest. */
  region?: { left: number; top: number; width: number; height: number };
}

/**
 * Decode any sharp-supported image (jpg, png, webp, gif first frame, tiff), honour EXIF orientation,
 * drop alpha, convert to sRGB and resize to height x width. Returns HWC uint8 RGB.
 */
export async function decodeRgb(
  input: string | Uint8Array,
  height: number,
  width: number,
  fit: PreprocessingSpec['resize'] = 'fill',
  opts: DecodeOptions = {},
  interpolation: PreprocessingSpec['interpolation'] = LEGACY_RESIZE.interpolation,
): Promise<Uint8Array> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const label = typeof input === 'string' ? input : `(${input.byteLength} bytes)`;
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
    if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // Single-channel results (rare colourspace edge cases): replicate to RGB.
    const out = new Uint8Array(height * width * 3);
    for (let i = 0, p = 0; i < height * width; i++, p += info.channels) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[p]!;
    return out;
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    if (/pixel limit/i.test(msg)) throw new MlctlError('IMAGE_TOO_LARGE', [label, maxPixels], { cause: err });
    throw new MlctlError('IMAGE_DECODE', [label, msg.split('\n')[0]!], { cause: err });
  }
}

/** RGB uint8 HWC pixels → model input floats (in place into `out` at `offset` when given). */
export function pixelsToInput(rgb: Uint8Array, spec: PreprocessingSpec, out?: Float32Array, offset = 0): Float32Array {
  const n = rgb.length / 3;
  const dst = out ?? new Float32Array(rgb.length);
  // (c·scale - mean) / std as one multiply-add per value; BGR models read the source channels in reverse.
  const [m0, m1, m2] = spec.mean as [number, number, number];
  const [s0, s1, s2] = spec.std as [number, number, number];
  const [a0, a1, a2] = [spec.scale / s0, spec.scale / s1, spec.scale / s2];
  const [b0, b1, b2] = [-m0 / s0, -m1 / s1, -m2 / s2];
  const [first, last] = spec.channelOrder === 'BGR' ? [2, 0] : [0, 2];
  for (let i = 0, o = offset; i < n * 3; i += 3, o += 3) {
    dst[o] = rgb[i + first]! * a0 + b0;
    dst[o + 1] = rgb[i + 1]! * a1 + b1;
    dst[o + 2] = rgb[i + last]! * a2 + b2;
  }
  return dst;
}

/** Decode + resize + preprocess one image into the model's input floats (H*W*3). */
export async function imageToInput(input: string | Uint8Array, spec: ImageInputSpec, out?: Float32Array, offset = 0, opts: DecodeOptions = {}): Promise<Float32Array> {
  const rgb = await decodeRgb(input, spec.height, spec.width, spec.preprocessing.resize, opts, spec.preprocessing.interpolation);
  return pixelsToInput(rgb, spec.preprocessing, out, offset);
}

// Encoded image bytes → model input floats for serve. Reads the header first (sharp metadata) so a
// decompression bomb is refused from its declared size without decoding; then the training code's own
// preprocessing (imageToInput, from the manifest) fills the batch buffer.
import sharp from 'sharp';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { DEFAULT_MAX_PIXELS, imageToInput } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { badRequest } from './errors.js';

export { DEFAULT_MAX_PIXELS };

export async function imageBytesToInput(bytes: Uint8Array, spec: ImageInputSpec, out: Float32Array, offset: number, maxPixels = DEFAULT_MAX_PIXELS, what = 'image'): Promise<void> {
  if (bytes.byteLength === 0) throw badRequest(`${what} is empty`);
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw badRequest(`${what} is not a readable image (${firstLine(err)}); send a JPEG, PNG, WebP, GIF or TIFF file`, err);
  }
  const { width, height } = meta;
  if (!width || !height) throw badRequest(`${what} has no dimensions; send a JPEG, PNG, WebP, GIF or TIFF file`);
  if (width * height > maxPixels) throw badRequest(`${what} is ${width}x${height} = ${width * height} pixels, more than the ${maxPixels}-pixel limit; it was not decoded`);
  try {
    await imageToInput(bytes, spec, out, offset, { maxPixels });
  } catch (err) {
    if (err instanceof MlctlError) throw badRequest(`${what}: ${err.message}`, err);
    throw badRequest(`${what} could not be decoded (${firstLine(err)})`, err);
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
}

// Encoded image bytes → model input floats for serve: only the formats serve accepts (by magic number), then the
// one decoding path (data/preprocess.ts imageToInput: header check against bombs, then the manifest's preprocessing).
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { DEFAULT_MAX_PIXELS, imageToInputPlaced, type ImageGeometry } from '../data/preprocess.js';
import { MlctlError } from '../errors.js';
import { badRequest } from './errors.js';

export { DEFAULT_MAX_PIXELS };

const ACCEPTED = 'JPEG, PNG, WebP, GIF or TIFF';

const startsWith = (b: Uint8Array, sig: number[], at = 0) => b.byteLength >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/**
 * The format of encoded image bytes from their magic numbers, or undefined: only the formats serve accepts. Checked
 * before sharp sees the data, so its other loaders (SVG, PDF, HEIF, raw pixel formats …) are never reachable.
 */
export function imageFormat(b: Uint8Array): 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | undefined {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return 'gif';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  return undefined;
}

/** Decode one encoded image into `out` at `offset`; returns where the picture landed in the input (for boxes). */
export async function imageBytesToInput(bytes: Uint8Array, spec: ImageInputSpec, out: Float32Array, offset: number, maxPixels = DEFAULT_MAX_PIXELS, what = 'image'): Promise<ImageGeometry> {
  if (bytes.byteLength === 0) throw badRequest(`${what} is empty`);
  if (!imageFormat(bytes)) {
    const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
    const looks = /<svg|<\?xml/i.test(head) ? '; it looks like SVG/XML, which is not accepted' : '';
    throw badRequest(`${what} is not a readable image (no ${ACCEPTED} signature${looks}); send a ${ACCEPTED} file`);
  }
  try {
    // The one decoding path: its header check refuses bombs (pixels, decoded bytes) before any pixel is decoded,
    // and large decodes take turns so a flood of them cannot hold up ordinary requests.
    return (await imageToInputPlaced(bytes, spec, out, offset, { maxPixels })).geometry;
  } catch (err) {
    if (err instanceof MlctlError && err.code === 'IMAGE_TOO_LARGE') {
      throw new MlctlError('IMAGE_TOO_LARGE', [what, String((err.details as { reason?: string } | undefined)?.reason ?? firstLine(err))], { cause: err });
    }
    if (err instanceof MlctlError && err.code === 'IMAGE_DECODE') throw badRequest(`${what} is not a readable image (${firstLine(err).replace(/^cannot decode image \(\d+ bytes\): /, '')}); send a ${ACCEPTED} file`, err);
    if (err instanceof MlctlError) throw badRequest(`${what}: ${err.message}`, err);
    throw badRequest(`${what} could not be decoded (${firstLine(err)})`, err);
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
}

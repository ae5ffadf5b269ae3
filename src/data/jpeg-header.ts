// A JPEG's frame header (SOF) read straight from its bytes: size, components and sample precision, for the decode
// limits checked before any pixel is decoded — without a second libvips call per image (serve's hot path).

export interface JpegFrame {
  width: number;
  height: number;
  /** Components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK): what the decoder produces per pixel. */
  channels: number;
  /** Bits per sample (8, or 12 in rare extended JPEGs). */
  bits: number;
}

/** SOFn markers carry the frame header; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * The frame header of a baseline, extended, progressive or lossless JPEG, or undefined when the bytes are not a JPEG
 * or the header cannot be found before the scan data (truncated, malformed, height given later by a DNL marker):
 * callers then ask the decoder itself, which reports such files its own way.
 */
export function jpegFrame(b: Uint8Array): JpegFrame | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1]!;
    if (m === 0xff) {
      i++; // fill byte before a marker
      continue;
    }
    // Markers without a length: TEM, RSTn, SOI. End of image or start of scan before any frame header: give up.
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return undefined;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (len < 2) return undefined;
    if (isSof(m)) {
      if (len < 8 || i + 9 >= b.length) return undefined;
      const bits = b[i + 4]!;
      const height = (b[i + 5]! << 8) | b[i + 6]!;
      const width = (b[i + 7]! << 8) | b[i + 8]!;
      const channels = b[i + 9]!;
      if (!width || !height || !channels) return undefined;
      return { width, height, channels, bits };
    }
    i += 2 + len;
  }
  return undefined;
}

// A JPEG's frame header (SOF) read straight from its bytes: size, components and sample precision, for the decode
// limits checked before any pixel is decoded — without a second libvips call per image (serve's hot path).

export interface JpegFrame {
  width: number;
  height: number;
  /** Components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK): what the decoder produces per pixel. */
  channels: number;
  /** Bits per sample (8, or 12 in rare extended JPEGs). */
  bits: number;
  /** EXIF orientation (1-8) from an APP1 Exif segment before the frame header, when there is one. */
  orientation?: number;
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
  let orientation: number | undefined;
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
      return { width, height, channels, bits, ...(orientation ? { orientation } : {}) };
    }
    if (m === 0xe1 && orientation === undefined) orientation = exifOrientation(b, i + 4, Math.min(b.length, i + 2 + len));
    i += 2 + len;
  }
  return undefined;
}

/**
 * The Orientation tag (0x0112) of an APP1 segment's EXIF block (TIFF header, IFD0), read from bytes [start, end), or
 * undefined when the segment is not EXIF or carries no valid orientation (sharp's metadata reads the same tag).
 */
function exifOrientation(b: Uint8Array, start: number, end: number): number | undefined {
  // "Exif\0\0", then the TIFF header: byte order (II little-endian, MM big-endian), 42, offset of IFD0.
  if (end - start < 14 || b[start] !== 0x45 || b[start + 1] !== 0x78 || b[start + 2] !== 0x69 || b[start + 3] !== 0x66 || b[start + 4] !== 0 || b[start + 5] !== 0) return undefined;
  const t = start + 6;
  const little = b[t] === 0x49 && b[t + 1] === 0x49;
  if (!little && !(b[t] === 0x4d && b[t + 1] === 0x4d)) return undefined;
  const u16 = (o: number) => (little ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!);
  const u32 = (o: number) => (little ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 2 ** 24 : b[o]! * 2 ** 24 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!));
  if (u16(t + 2) !== 42) return undefined;
  const ifd = t + u32(t + 4);
  if (ifd + 2 > end) return undefined;
  const entries = u16(ifd);
  for (let k = 0; k < entries; k++) {
    const e = ifd + 2 + k * 12;
    if (e + 12 > end) return undefined;
    // Orientation is one SHORT (type 3), stored in the entry's value field.
    if (u16(e) === 0x0112) {
      const v = u16(e + 2) === 3 ? u16(e + 8) : 0;
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}

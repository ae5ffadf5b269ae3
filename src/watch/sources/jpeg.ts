// JPEG framing without decoding: the size from the SOF header, a completeness check (SOI … EOI) that catches
// truncated frames before they reach the decoder, and a splitter for a byte stream of back-to-back JPEGs
// (ffmpeg's image2pipe, multipart parts without Content-Length). The splitter walks marker segments and the
// entropy-coded data, so an EXIF thumbnail's own FFD9 inside APP1 does not end the frame early.

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** Markers without a length field: SOI, EOI, RSTn, TEM. */
const standalone = (m: number) => m === 0xd8 || m === 0xd9 || (m >= 0xd0 && m <= 0xd7) || m === 0x01;

export interface JpegInfo {
  width: number;
  height: number;
}

/** Width and height from the first SOF segment, or undefined when `buf` does not look like a JPEG. */
export function jpegInfo(buf: Uint8Array): JpegInfo | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) return undefined;
    const marker = buf[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (standalone(marker)) {
      p += 2;
      continue;
    }
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (isSof(marker) && p + 9 <= buf.length) return { height: (buf[p + 5]! << 8) | buf[p + 6]!, width: (buf[p + 7]! << 8) | buf[p + 8]! };
    if (marker === 0xda) return undefined; // scan data before any SOF
    p += 2 + len;
  }
  return undefined;
}

/** True when the frame starts with SOI and ends with EOI (allowing trailing padding zeros or CR/LF). */
export function isCompleteJpeg(buf: Uint8Array): boolean {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return false;
  let end = buf.length;
  while (end > 2 && (buf[end - 1] === 0x00 || buf[end - 1] === 0x0a || buf[end - 1] === 0x0d)) end--;
  return buf[end - 2] === 0xff && buf[end - 1] === 0xd9;
}

/** Scan position inside a partly received JPEG, so the next chunk resumes instead of rescanning. */
export interface ScanState {
  p: number;
  inScan: boolean;
}

/**
 * Where the JPEG starting at `start` ends (index after EOI), or -1 when `buf` does not hold all of it yet; pass the
 * same `state` again (with more data appended to `buf`) to resume.
 */
export function jpegEnd(buf: Uint8Array, start: number, state: ScanState = { p: start + 2, inScan: false }): number {
  let { p, inScan } = state;
  const save = () => {
    state.p = p;
    state.inScan = inScan;
    return -1;
  };
  while (p + 1 < buf.length) {
    if (buf[p] !== 0xff) {
      // Entropy-coded data (or stray bytes between segments): jump to the next 0xFF natively.
      const q = buf.indexOf(0xff, p);
      if (q < 0) {
        p = buf.length;
        break;
      }
      p = q;
      continue;
    }
    const marker = buf[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (inScan && (marker === 0x00 || (marker >= 0xd0 && marker <= 0xd7))) {
      p += 2; // stuffed 0xFF or a restart marker inside the scan
      continue;
    }
    inScan = false;
    if (marker === 0xd9) return p + 2;
    if (standalone(marker)) {
      p += 2;
      continue;
    }
    if (p + 3 >= buf.length) return save();
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (p + 2 + len > buf.length) return save();
    p += 2 + len;
    if (marker === 0xda) inScan = true;
  }
  return save();
}

export interface SplitterOptions {
  /** Largest frame accepted; a frame growing past it means the stream is not JPEG (or broken). */
  maxBytes: number;
  onFrame(jpeg: Buffer): void;
}

/** Feed chunks of a stream of back-to-back JPEGs; whole frames come out of onFrame. Throws on runaway data. */
export function createJpegSplitter(opts: SplitterOptions): { push(chunk: Buffer): void; pending(): number } {
  let buf: Buffer = Buffer.alloc(0);
  /** Scan state of the frame at buf[0] (undefined until its SOI is found). */
  let state: ScanState | undefined;
  return {
    push(chunk) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        if (!state) {
          const start = buf.indexOf(SOI);
          if (start < 0) {
            // Keep up to two trailing bytes: they may be the start of the next SOI.
            buf = buf.subarray(Math.max(0, buf.length - 2));
            return;
          }
          buf = buf.subarray(start);
          state = { p: 2, inScan: false };
        }
        const end = jpegEnd(buf, 0, state);
        if (end < 0) {
          if (buf.length > opts.maxBytes) throw new Error(`no end of JPEG within ${opts.maxBytes} bytes: the stream is not a sequence of JPEG frames`);
          return;
        }
        opts.onFrame(Buffer.from(buf.subarray(0, end)));
        buf = buf.subarray(end);
        state = undefined;
      }
    },
    pending: () => buf.length,
  };
}

const SOI = Buffer.from([0xff, 0xd8, 0xff]);

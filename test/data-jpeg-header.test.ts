// The JPEG frame header read from the bytes (data/jpeg-header.ts): the same size and components libvips reports, for
// every kind of JPEG serve sees, and the decode limits still refuse a bomb from its header alone.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { checkImageHeader, decodeRgb } from '../src/data/preprocess.js';
import { jpegFrame } from '../src/data/jpeg-header.js';

const base = () => sharp({ create: { width: 37, height: 23, channels: 3, background: { r: 200, g: 90, b: 10 } } });

describe('jpegFrame', () => {
  it('reads width, height and components as libvips does: baseline, progressive, grey, CMYK, EXIF-rotated, ICC', async () => {
    const cases: Record<string, Buffer> = {
      baseline: await base().jpeg().toBuffer(),
      progressive: await base().jpeg({ progressive: true }).toBuffer(),
      grey: await base().greyscale().jpeg().toBuffer(),
      cmyk: await base().toColourspace('cmyk').jpeg().toBuffer(),
      rotated: await base().withMetadata({ orientation: 6 }).jpeg().toBuffer(),
      icc: await base().withIccProfile('p3').jpeg().toBuffer(),
    };
    for (const [what, jpeg] of Object.entries(cases)) {
      const meta = await sharp(jpeg).metadata();
      expect({ what, ...jpegFrame(jpeg) }).toEqual({ what, width: meta.width, height: meta.height, channels: meta.channels, bits: 8, ...(meta.orientation ? { orientation: meta.orientation } : {}) });
    }
    // Every EXIF orientation as libvips reads it (detection maps boxes through it).
    for (const orientation of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const jpeg = await base().withMetadata({ orientation }).jpeg().toBuffer();
      expect(jpegFrame(jpeg)?.orientation).toBe((await sharp(jpeg).metadata()).orientation);
      expect((await checkImageHeader(jpeg)).orientation).toBe(orientation);
    }
    // An Exif-rotated JPEG is measured by sharp (the frame header knows no orientation): turned a quarter, as displayed.
    const rotated = await base().withMetadata({ orientation: 6 }).jpeg().toBuffer();
    expect(await checkImageHeader(rotated)).toMatchObject({ orientation: 6 });
    expect(jpegFrame((await base().png().toBuffer()) as Uint8Array)).toBeUndefined();
  });

  it('gives up (the decoder then decides) on truncated or malformed bytes', async () => {
    const jpeg = await base().jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(2);
    expect(jpegFrame(jpeg.subarray(0, sof + 4))).toBeUndefined();
    const broken = Buffer.from(jpeg);
    broken[sof - 1] = 0x00; // the segment before the frame header no longer ends on a marker
    broken[2] = 0x12;
    expect(jpegFrame(broken)).toBeUndefined();
    await expect(decodeRgb(broken, 8, 8)).rejects.toMatchObject({ code: 'IMAGE_DECODE' });
  });

  it('lets the header check refuse a JPEG whose frame claims more pixels than the limit, before decoding', async () => {
    const jpeg = Buffer.from(await base().jpeg().toBuffer());
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(60000, sof + 5); // height
    jpeg.writeUInt16BE(60000, sof + 7); // width
    expect(jpegFrame(jpeg)).toMatchObject({ width: 60000, height: 60000 });
    await expect(checkImageHeader(jpeg)).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE', message: expect.stringMatching(/60000x60000 = 3600000000 pixels/) });
    await expect(checkImageHeader(await base().jpeg().toBuffer())).resolves.toEqual({ width: 37, height: 23, decodedBytes: 37 * 23 * 3 });
  });
});

// Decoding bounds of mlctl serve (issue #28 item 6) on a real server: an image is refused from its header when
// decoding it would take more bytes than the pixel limit counted at 8-bit RGBA (bit depth x channels count), and a
// flood of large images takes turns through the one decoding path so an ordinary request is not queued behind them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

const LIMIT = 1024 * 1024; // --max-pixels for the first server: 1024x1024 is exactly at the limit

let tmp: { dir: string; cleanup: () => Promise<void> };
let small: SecureServer;
let normal: SecureServer;

const solidPng = (side: number, bits: 8 | 16, channels: 3 | 4) => {
  const img = sharp({ create: { width: side, height: side, channels, background: { r: 10, g: 20, b: 30, alpha: 1 } } });
  return (bits === 16 ? img.toColourspace(channels === 4 ? 'rgb16' : 'rgb16') : img).png({ compressionLevel: 9 }).toBuffer();
};
const post = (srv: SecureServer, body: Buffer) => fetch(`${srv.url}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body });

beforeAll(async () => {
  tmp = await tempDir('mlctl-decode-bounds-');
  const root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny' });
  small = await startSecureServer(path.join(root, 'tiny'), {}, { maxPixels: LIMIT });
  normal = await startSecureServer(path.join(root, 'tiny'), {}, { maxBatch: 1 });
});

afterAll(async () => {
  await small?.close();
  await normal?.close();
  await tmp?.cleanup();
});

describe('decoded-size limit', () => {
  it('refuses a 16-bit RGBA PNG at the pixel limit from its header (it would decode to twice the 8-bit RGBA size)', async () => {
    const png16 = await solidPng(1024, 16, 4);
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const res = await post(small, png16);
    const body = await json(res);
    expect(res.status).toBe(400);
    expect(body.code).toBe('IMAGE_TOO_LARGE');
    expect(body.error).toMatch(/1024x1024 with 4 channels of 16 bits = 8 MiB decoded, more than the 4 MiB limit/);
    expect(body.error).toMatch(/not decoded/);
  });

  it('accepts the same image at 8 bits, and a 16-bit RGB image within the byte limit', async () => {
    expect((await post(small, await solidPng(1024, 8, 4))).status).toBe(200);
    // 724x724 RGB at 16 bits: 3.0 MiB decoded, under the 4 MiB that 1024x1024 8-bit RGBA takes.
    const ok = await post(small, await solidPng(724, 16, 3));
    expect(ok.status, JSON.stringify(await ok.clone().json())).toBe(200);
  });

  it('still refuses by pixel count first (a header claiming more pixels than the limit)', async () => {
    const res = await post(small, await solidPng(1100, 8, 3));
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(/1100x1100 = 1210000 pixels, more than the 1048576-pixel limit/);
  });
});

describe('decode concurrency', () => {
  it('an ordinary request is answered while a flood of 16 large images (64 MiB decoded each) is still being decoded', async () => {
    const big = await solidPng(4096, 8, 4);
    const tiny = await pngOf(200, 100, 50, 64);
    const order: string[] = [];
    const flood = Array.from({ length: 16 }, (_, i) =>
      post(normal, big).then(async (r) => {
        expect(r.status).toBe(200);
        await r.arrayBuffer();
        order.push(`big${i}`);
      }),
    );
    // Let the flood reach the server and start decoding before the ordinary request.
    await new Promise((r) => setTimeout(r, 300));
    const res = await post(normal, tiny);
    expect(res.status).toBe(200);
    order.push('ordinary');
    await Promise.all(flood);
    // Before the fix the ordinary decode queued behind every big one in libuv's pool (4 threads): it came 13th or
    // later. Now big decodes take at most 2 threads, two at a time, and it overtakes most of them.
    expect(order.indexOf('ordinary'), order.join(' ')).toBeLessThan(8);
  });
});

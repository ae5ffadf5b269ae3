// watch's frame sources on real ffmpeg output: the JPEG splitter on image2pipe bytes and the multipart parser on
// `ffmpeg -f mpjpeg` bytes (cut at every kind of chunk boundary), the MJPEG source against an HTTP camera fed by
// ffmpeg and against a snapshot URL, the ffmpeg source on a video file, and a folder with its journal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { createLogger } from '../src/util/log.js';
import { ffmpegArgs, ffmpegSource } from '../src/watch/sources/ffmpeg.js';
import { folderSource } from '../src/watch/sources/folder.js';
import { createJpegSplitter, isCompleteJpeg, jpegInfo } from '../src/watch/sources/jpeg.js';
import { mjpegSource, splitCredentials } from '../src/watch/sources/mjpeg.js';
import { boundaryOf, createMultipartParser } from '../src/watch/sources/multipart.js';
import type { SourceFrame } from '../src/watch/sources/types.js';
import { tempDir } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { ffmpegMjpegCamera, ffmpegOutput, scriptedCamera, until } from './helpers/watch.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const logger = createLogger({ level: 'warn' });

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-sources-');
});
afterAll(() => tmp?.cleanup());

/** Feed `data` in pieces of the given sizes (cycled). */
function feed(push: (b: Buffer) => void, data: Buffer, sizes: number[]) {
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    push(data.subarray(off, off + n));
    off += n;
  }
}

/** Run a source until `count` frames arrived (or it ends), then stop it. */
async function collect(run: (signal: AbortSignal, sink: { frame(f: SourceFrame): void }) => Promise<void>, count: number, timeoutMs = 20_000): Promise<{ frames: SourceFrame[]; error?: Error }> {
  const frames: SourceFrame[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('test timeout')), timeoutMs);
  let error: Error | undefined;
  await run(ac.signal, {
    frame(f) {
      frames.push(f);
      if (frames.length >= count) ac.abort(new Error('enough'));
    },
  }).catch((err: Error) => {
    if (err.message !== 'enough') error = err;
  });
  clearTimeout(timer);
  return { frames, ...(error ? { error } : {}) };
}

describe('JPEG framing', () => {
  it.skipIf(!tools.ffmpeg)('splits ffmpeg image2pipe output into the exact frames, whatever the chunking', async () => {
    const stream = await ffmpegOutput(['-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=10', '-frames:v', '12', '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1']);
    for (const sizes of [[stream.length], [1], [7, 13, 1000], [4096], [2, 3]]) {
      const frames: Buffer[] = [];
      const splitter = createJpegSplitter({ maxBytes: 1 << 20, onFrame: (f) => frames.push(f) });
      feed((b) => splitter.push(b), stream, sizes);
      expect(frames).toHaveLength(12);
      expect(Buffer.concat(frames).equals(stream)).toBe(true);
      expect(frames.every(isCompleteJpeg)).toBe(true);
    }
    expect(jpegInfo(stream)).toEqual({ width: 96, height: 64 });
  });

  it('keeps a frame whole when an EXIF thumbnail inside it has its own end marker', async () => {
    const thumb = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } }).jpeg().toBuffer();
    const main = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#00f' } }).jpeg().toBuffer();
    // APP1 segment whose payload carries a complete JPEG (SOI … EOI), as EXIF thumbnails do.
    const payload = Buffer.concat([Buffer.from('Exif\0\0'), thumb]);
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
    const withThumb = Buffer.concat([main.subarray(0, 2), app1, main.subarray(2)]);
    const frames: Buffer[] = [];
    const splitter = createJpegSplitter({ maxBytes: 1 << 20, onFrame: (f) => frames.push(f) });
    feed((b) => splitter.push(b), Buffer.concat([Buffer.from('junk'), withThumb, withThumb]), [5]);
    expect(frames.map((f) => f.length)).toEqual([withThumb.length, withThumb.length]);
    expect((await sharp(frames[0]!).metadata()).width).toBe(40);
  });

  it('refuses a stream that is not JPEG instead of buffering it forever', () => {
    const splitter = createJpegSplitter({ maxBytes: 1000, onFrame: () => {} });
    expect(() => splitter.push(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0, 0]), Buffer.alloc(2000, 0x41)]))).toThrow(/no end of JPEG within 1000 bytes/);
    expect(isCompleteJpeg(Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0x00]))).toBe(false);
  });
});

describe('MJPEG multipart parsing', () => {
  it.skipIf(!tools.ffmpeg)('parses ffmpeg -f mpjpeg output cut anywhere', async () => {
    const body = await ffmpegOutput(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '8', '-f', 'mpjpeg', '-q:v', '5', 'pipe:1']);
    const frames = await ffmpegOutput(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '8', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '5', 'pipe:1']);
    for (const sizes of [[body.length], [1], [3, 50, 7], [1024]]) {
      const parts: Buffer[] = [];
      const parser = createMultipartParser({ boundary: 'ffmpeg', maxBytes: 1 << 20, onPart: (b) => parts.push(b) });
      feed((b) => parser.push(b), body, sizes);
      expect(parts).toHaveLength(8);
      expect(parts.every(isCompleteJpeg)).toBe(true);
      expect(Buffer.concat(parts).equals(frames)).toBe(true);
    }
  });

  it('handles parts without Content-Length, boundaries declared with "--", and quoted boundaries', async () => {
    const a = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#123' } }).jpeg().toBuffer();
    const b = await sharp({ create: { width: 12, height: 10, channels: 3, background: '#456' } }).jpeg().toBuffer();
    const body = Buffer.concat([Buffer.from('--myb\r\nContent-Type: image/jpeg\r\n\r\n'), a, Buffer.from('\r\n--myb\r\nContent-Type: image/jpeg\r\n\r\n'), b, Buffer.from('\r\n--myb\r\n')]);
    expect(boundaryOf('multipart/x-mixed-replace; boundary="--myb"')).toBe('--myb');
    expect(boundaryOf('multipart/x-mixed-replace;boundary=myb')).toBe('myb');
    for (const boundary of ['myb', '--myb']) {
      const parts: Buffer[] = [];
      const parser = createMultipartParser({ boundary, maxBytes: 1 << 20, onPart: (p) => parts.push(p) });
      feed((x) => parser.push(x), body, [9]);
      expect(parts.map((p) => p.length)).toEqual([a.length, b.length]);
    }
  });

  it('moves URL credentials into a Basic header (and out of the URL that is logged)', () => {
    const r = splitCredentials('http://admin:p%40ss@cam.local/video.mjpg', {});
    expect(r.url).toBe('http://cam.local/video.mjpg');
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('admin:p@ss').toString('base64')}`);
  });
});

describe('sources', () => {
  it.skipIf(!tools.ffmpeg)('reads an MJPEG camera fed by ffmpeg over HTTP', async () => {
    const cam = await ffmpegMjpegCamera('testsrc=size=80x60:rate=15');
    try {
      const src = mjpegSource({ url: cam.url, headers: {}, fps: 0, maxFrameBytes: 1 << 20 });
      const { frames, error } = await collect((s, k) => src.run(s, k), 5);
      expect(error).toBeUndefined();
      expect(frames).toHaveLength(5);
      for (const f of frames) expect(jpegInfo(f.image)).toEqual({ width: 80, height: 60 });
    } finally {
      await cam.close();
    }
  });

  it('polls a snapshot URL, sends Basic auth, and explains a 401 and a wrong content type', async () => {
    const jpeg = await sharp({ create: { width: 20, height: 16, channels: 3, background: '#0f0' } }).jpeg().toBuffer();
    let hits = 0;
    const server = http.createServer((req, res) => {
      if (req.url === '/text') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) return void res.writeHead(401).end();
      hits++;
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      const ok = mjpegSource({ url: `http://u:p@127.0.0.1:${port}/snap.jpg`, headers: {}, fps: 20, maxFrameBytes: 1 << 20 });
      const r = await collect((s, k) => ok.run(s, k), 3);
      expect(r.frames.map((f) => f.image.equals(jpeg))).toEqual([true, true, true]);
      expect(hits).toBeGreaterThanOrEqual(3);
      expect(ok.describe).toBe(`http://u:***@127.0.0.1:${port}/snap.jpg`);
      const noAuth = mjpegSource({ url: `http://127.0.0.1:${port}/snap.jpg`, headers: {}, fps: 1, maxFrameBytes: 1 << 20 });
      expect((await collect((s, k) => noAuth.run(s, k), 1)).error?.message).toMatch(/HTTP 401 .*wants credentials/);
      const html = mjpegSource({ url: `http://127.0.0.1:${port}/text`, headers: {}, fps: 1, maxFrameBytes: 1 << 20 });
      expect((await collect((s, k) => html.run(s, k), 1)).error?.message).toMatch(/unexpected Content-Type "text\/html"/);
      const refused = mjpegSource({ url: 'http://127.0.0.1:1/x', headers: {}, fps: 1, maxFrameBytes: 1 << 20 });
      expect((await collect((s, k) => refused.run(s, k), 1)).error?.message).toMatch(/cannot connect \(ECONNREFUSED\)/);
    } finally {
      server.close();
    }
  });

  it('reports a stream that sends garbage instead of multipart parts', async () => {
    const cam = await scriptedCamera();
    try {
      const src = mjpegSource({ url: cam.url, headers: {}, fps: 0, maxFrameBytes: 4096 });
      const run = collect((s, k) => src.run(s, k), 1, 10_000);
      await cam.connected();
      cam.raw(Buffer.alloc(10_000, 0x61));
      expect((await run).error?.message).toMatch(/not valid MJPEG: no multipart boundary "frame" within 4096 bytes/);
    } finally {
      await cam.close();
    }
  });

  it.skipIf(!tools.ffmpeg)('reads a video file through ffmpeg at the requested fps and ends with it', async () => {
    const file = path.join(tmp.dir, 'clip.mp4');
    await ffmpegOutput(['-f', 'lavfi', '-i', 'testsrc=size=128x96:rate=25:duration=2', '-c:v', 'mpeg4', '-q:v', '5', '-y', file]);
    const spec = { kind: 'ffmpeg' as const, input: file, what: 'file' as const, inputOptions: [], rtspTransport: 'tcp' as const, loop: false, realtime: false };
    expect(ffmpegArgs(spec, 5)).toEqual(expect.arrayContaining(['-vf', 'fps=5', '-f', 'image2pipe']));
    expect(ffmpegArgs({ ...spec, what: 'rtsp', input: 'rtsp://x' }, 1)).toEqual(expect.arrayContaining(['-rtsp_transport', 'tcp']));
    // A V4L2 device (none on the test machine): the demuxer and the user's input options come before -i.
    const v4l2 = ffmpegArgs({ ...spec, what: 'v4l2', input: '/dev/video7', inputOptions: ['-video_size', '1280x720'] }, 2);
    expect(v4l2.slice(v4l2.indexOf('-f'), v4l2.indexOf('-i') + 2)).toEqual(['-f', 'v4l2', '-video_size', '1280x720', '-i', '/dev/video7']);
    const src = ffmpegSource(spec, 5, 1 << 22);
    expect(src.endIsFinal).toBe(true);
    const { frames, error } = await collect((s, k) => src.run(s, k), 1000);
    expect(error).toBeUndefined(); // ended by itself
    expect(frames.length).toBeGreaterThanOrEqual(9);
    expect(frames.length).toBeLessThanOrEqual(11);
    expect(jpegInfo(frames[0]!.image)).toEqual({ width: 128, height: 96 });
    const missing = ffmpegSource({ ...spec, input: path.join(tmp.dir, 'nope.mp4') }, 5, 1 << 22);
    expect((await collect((s, k) => missing.run(s, k), 1)).error?.message).toMatch(/ffmpeg exited with 1: .*No such file or directory/);
  });

  it('takes new files from a folder, journals them, and skips them after a restart', async () => {
    const dir = path.join(tmp.dir, 'drop');
    await fs.mkdir(dir);
    const img = (c: string) => sharp({ create: { width: 16, height: 16, channels: 3, background: c } }).png().toBuffer();
    await fs.writeFile(path.join(dir, 'old.png'), await img('#111'));
    const journalFile = path.join(tmp.dir, 'journals', 'drop.jsonl');
    const src = folderSource({ dir, existing: 'skip', pollMs: 100, journalFile, maxFrameBytes: 1 << 20, logger });
    const seen: string[] = [];
    const ac = new AbortController();
    const running = src.run(ac.signal, { frame: async (f) => void seen.push(f.file!) }).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    await fs.writeFile(path.join(dir, 'a.png'), await img('#f00'));
    await fs.writeFile(path.join(dir, 'notes.txt'), 'not an image');
    await until(() => seen.includes('a.png'), 'a.png to be taken');
    await fs.writeFile(path.join(dir, 'b.png'), await img('#0f0'));
    await until(() => seen.includes('b.png'), 'b.png to be taken');
    ac.abort(new Error('stop'));
    await running;
    expect(seen).toEqual(['a.png', 'b.png']); // old.png was there before the first start
    // While stopped, c.png arrives; after a restart only c.png is new.
    await fs.writeFile(path.join(dir, 'c.png'), await img('#00f'));
    const again: string[] = [];
    const ac2 = new AbortController();
    const running2 = src.run(ac2.signal, { frame: async (f) => void again.push(f.file!) }).catch(() => {});
    await until(() => again.includes('c.png'), 'c.png after the restart');
    await new Promise((r) => setTimeout(r, 300));
    ac2.abort(new Error('stop'));
    await running2;
    expect(again).toEqual(['c.png']);
    const journal = (await fs.readFile(journalFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).f);
    expect(journal.sort()).toEqual(['a.png', 'b.png', 'c.png', 'old.png']);
  });
});

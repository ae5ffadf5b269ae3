// Stand-in MJPEG cameras for bench/watch.ts, in a process of their own: a watcher that lags cannot slow them down (a
// real camera is another device), and every frame carries the camera's own send time in a JPEG comment (COM segment,
// `mlctl-bench cam=I seq=K t=EPOCH_MS`), so latency is timed from the camera and each frame is counted sent vs classified.
// Run: node --import tsx bench/_cameras.ts '{"count":8,"fps":2,"width":224,"height":224,"variants":8}'. It prints
// {"port":N} once listening; stdin lines: "pause", "resume", "report" (prints {"sent":[[t, …] per camera]}).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';

export interface CameraSpec {
  count: number;
  fps: number;
  width: number;
  height: number;
  /** Distinct images sent round-robin. */
  variants: number;
}

/** The comment a frame carries; parseStamp reads it back from the bytes the watcher classified. */
const STAMP = 'mlctl-bench';

/** `jpeg` with a COM segment holding the stamp inserted right after SOI (any JPEG decoder skips it). */
export function stamp(jpeg: Buffer, cam: number, seq: number, t: number): Buffer {
  const text = Buffer.from(`${STAMP} cam=${cam} seq=${seq} t=${t}`);
  const head = Buffer.from([0xff, 0xfe, 0, 0]);
  head.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), head, text, jpeg.subarray(2)]);
}

/** The camera's stamp in a frame (undefined for a frame without one). */
export function parseStamp(frame: Uint8Array): { cam: number; seq: number; t: number } | undefined {
  if (frame[2] !== 0xff || frame[3] !== 0xfe) return undefined;
  const len = (frame[4]! << 8) | frame[5]!;
  const m = /^mlctl-bench cam=(\d+) seq=(\d+) t=(\d+)$/.exec(Buffer.from(frame.subarray(6, 4 + len)).toString());
  return m ? { cam: Number(m[1]), seq: Number(m[2]), t: Number(m[3]) } : undefined;
}

async function frames(n: number, width: number, height: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const raw = Buffer.alloc(width * height * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (p * (i + 3) + ((p / (width * 3)) | 0) * 7) & 0xff;
    out.push(await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer());
  }
  return out;
}

async function serve(spec: CameraSpec): Promise<void> {
  const images = await frames(spec.variants, spec.width, spec.height);
  const sent: number[][] = Array.from({ length: spec.count }, () => []);
  let paused = false;
  const server = http.createServer((req, res) => {
    const i = Number(/^\/cam\/(\d+)$/.exec(req.url ?? '')?.[1]);
    if (!(i >= 0 && i < spec.count)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=b' });
    const send = () => {
      if (paused) return;
      const t = Date.now();
      const seq = sent[i]!.length + 1;
      const f = stamp(images[(i + seq) % images.length]!, i, seq, t);
      // Written whatever the socket's backlog: a watcher that reads late sees late frames, and their stamps say so.
      res.write(Buffer.concat([Buffer.from(`--b\r\nContent-Type: image/jpeg\r\nContent-Length: ${f.length}\r\n\r\n`), f, Buffer.from('\r\n')]));
      sent[i]!.push(t);
    };
    // Phases spread over one period, so the cameras do not all send at the same instant.
    const start = setTimeout(() => {
      send();
      const timer = setInterval(send, 1000 / spec.fps);
      res.on('close', () => clearInterval(timer));
    }, ((i * 1000) / spec.count) % (1000 / spec.fps));
    res.on('close', () => clearTimeout(start));
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line === 'pause') paused = true;
    else if (line === 'resume') paused = false;
    else if (line === 'report') process.stdout.write(`${JSON.stringify({ sent })}\n`);
  }
  // stdin closed: the bench is done with us.
  server.closeAllConnections();
  server.close();
}

// Run as a process (not when bench/watch.ts imports parseStamp).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await serve(JSON.parse(process.argv[2]!) as CameraSpec);

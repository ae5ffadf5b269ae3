// Real parts for the watch tests: a colour classifier package (red / blue / other, decided by fixed weights so
// results are known), MJPEG cameras served over HTTP from ffmpeg's own mpjpeg output or from frames under the
// test's control (garbage, truncation, stalls), a webhook receiver that checks signatures, and a mosquitto broker.
import * as tf from '@tensorflow/tfjs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { LoadedPackage } from '../../src/artifacts/package.js';
import { verifySignature, SIGNATURE_HEADER } from '../../src/watch/notify/sign.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { modelPackage } from './fixtures.js';
import { freePort } from './fixtures.js';

export const COLOR_LABELS = ['red', 'blue', 'other'];

/**
 * Global average pooling + Dense(3) with hand-set weights over caffe-preprocessed input (B, G, R minus means):
 * red = 0.05·(R − B), blue = 0.05·(B − R), other = 3. A red frame scores red ≈ 1, blue → blue, grey → other.
 */
export async function colorPackage(root: string, size = 32, name = 'colors'): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const model = tf.sequential();
  model.add(tf.layers.globalAveragePooling2d({ inputShape: [size, size, 3], name: 'gap' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' }));
  const w = tf.tensor2d([
    [-0.05, 0.05, 0], // channel 0 = B
    [0, 0, 0], // channel 1 = G
    [0.05, -0.05, 0], // channel 2 = R
  ]);
  const b = tf.tensor1d([0, 0, 3]);
  model.layers[1]!.setWeights([w, b]);
  try {
    return await modelPackage(root, model, { name, labels: COLOR_LABELS, size, architecture: { type: 'test-color-classifier' } });
  } finally {
    model.dispose();
    w.dispose();
    b.dispose();
  }
}

export { freePort };

/** Run ffmpeg to completion and return its stdout (e.g. JPEG frames from a lavfi source). */
export async function ffmpegOutput(args: string[]): Promise<Buffer> {
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${err}`);
  return Buffer.concat(chunks);
}

/** One JPEG of a solid colour, made by ffmpeg. */
export async function colorJpeg(color: string, size = '64x48'): Promise<Buffer> {
  return ffmpegOutput(['-f', 'lavfi', '-i', `color=c=${color}:s=${size}`, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1']);
}

export interface HttpCamera {
  url: string;
  /** Connections served so far. */
  connections(): number;
  close(): Promise<void>;
}

/** An MJPEG camera fed by ffmpeg: each client gets its own `ffmpeg -re -f lavfi -i GRAPH -f mpjpeg` process. */
export async function ffmpegMjpegCamera(graph: string): Promise<HttpCamera> {
  const children = new Set<ChildProcess>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    connections++;
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', graph, '-f', 'mpjpeg', '-q:v', '5', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(child);
    res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace;boundary=ffmpeg', 'cache-control': 'no-cache' });
    child.stdout.pipe(res);
    const end = () => {
      child.kill('SIGKILL');
      children.delete(child);
    };
    req.on('close', end);
    child.on('close', () => res.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/video.mjpg`,
    connections: () => connections,
    async close() {
      for (const c of children) c.kill('SIGKILL');
      server.closeAllConnections();
      server.close();
    },
  };
}

/** An MJPEG camera under the test's control: it sends whatever the test pushes, with or without Content-Length. */
export async function scriptedCamera(opts: { boundary?: string; contentLength?: boolean; auth?: string } = {}) {
  const boundary = opts.boundary ?? 'frame';
  const clients = new Set<http.ServerResponse>();
  let connections = 0;
  let connectWaiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    if (opts.auth && req.headers.authorization !== `Basic ${Buffer.from(opts.auth).toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="cam"' }).end();
      return;
    }
    connections++;
    res.writeHead(200, { 'content-type': `multipart/x-mixed-replace; boundary=${boundary}` });
    res.flushHeaders();
    clients.add(res);
    req.on('close', () => clients.delete(res));
    connectWaiters.splice(0).forEach((w) => w());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/stream`,
    port,
    connections: () => connections,
    clients: () => clients.size,
    /** Resolves when a client is connected (now or later). */
    connected(): Promise<void> {
      return clients.size ? Promise.resolve() : new Promise((r) => connectWaiters.push(r));
    },
    /** Send one part to every connected client. */
    send(body: Buffer) {
      const head = `--${boundary}\r\nContent-Type: image/jpeg\r\n${opts.contentLength === false ? '' : `Content-Length: ${body.length}\r\n`}\r\n`;
      for (const c of clients) c.write(Buffer.concat([Buffer.from(head), body, Buffer.from('\r\n')]));
    },
    /** Raw bytes (garbage) to every client. */
    raw(bytes: Buffer) {
      for (const c of clients) c.write(bytes);
    },
    /** Drop every connection (the camera reboots). */
    drop() {
      for (const c of clients) c.destroy();
      clients.clear();
    },
    async close() {
      connectWaiters = [];
      server.closeAllConnections();
      server.close();
    },
  };
}

export interface ReceivedHook {
  method: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json?: any;
  at: number;
  verified?: boolean;
}

/**
 * A webhook receiver: records requests, verifies signatures, answers `status()` (200 by default). While `stall(true)`,
 * it accepts TCP connections and never answers them (a hung receiver); connections made after
 * `stall(false)` are answered again.
 */
export async function webhookReceiver(opts: { secret?: string; port?: number } = {}) {
  const received: ReceivedHook[] = [];
  let status = 200;
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'receiver says no' }));
      return;
    }
    let json: any;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    const sig = req.headers[SIGNATURE_HEADER] as string | undefined;
    const verified = opts.secret ? verifySignature(sig, body, opts.secret).ok : undefined;
    received.push({ method: req.method!, headers: req.headers, body, json, at: Date.now(), ...(verified !== undefined ? { verified } : {}) });
    res.writeHead(200).end('ok');
    waiters = waiters.filter((w) => {
      if (received.length >= w.n) w.resolve();
      return received.length < w.n;
    });
  });
  // A raw TCP front: answered connections are handed to the HTTP server, stalled ones are held and never answered.
  let stalled = false;
  let stalledTotal = 0;
  const held = new Set<net.Socket>();
  const handed = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    const set = stalled ? held : handed;
    set.add(socket);
    socket.on('close', () => set.delete(socket));
    socket.on('error', () => {});
    if (stalled) {
      stalledTotal++;
      socket.resume(); // read (and drop) the request, so the client's close is seen; never answer
    } else server.emit('connection', socket);
  });
  front.listen(opts.port ?? 0, '127.0.0.1');
  await once(front, 'listening');
  const port = (front.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    setStatus(s: number) {
      status = s;
    },
    /** Accept and never answer new connections (true), or answer them again (false). */
    stall(on: boolean) {
      stalled = on;
    },
    /** Connections accepted while stalled, and how many of them the client still holds open. */
    stalledConnections: () => ({ total: stalledTotal, open: held.size }),
    /** Resolves once `n` requests have been accepted (status 200). */
    waitFor(n: number, timeoutMs = 30_000): Promise<void> {
      if (received.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`webhook receiver: ${received.length} of ${n} requests after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
    async close() {
      for (const s of [...held, ...handed]) s.destroy();
      front.close();
      await once(front, 'close').catch(() => {});
    },
  };
}

/** A real mosquitto broker on a free loopback port (anonymous access, no persistence). */
export async function startMosquitto(dir: string, port?: number) {
  const p = port ?? (await freePort());
  const conf = path.join(dir, `mosquitto-${p}.conf`);
  await fs.writeFile(conf, `listener ${p} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const bin = (await fs.stat('/usr/sbin/mosquitto').then(() => true, () => false)) ? '/usr/sbin/mosquitto' : 'mosquitto';
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c));
  // Ready once the port accepts connections.
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(p, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `mqtt://127.0.0.1:${p}`,
    port: p,
    /** Freeze the broker (SIGSTOP): connections stay open and the kernel keeps accepting, but nothing is answered. */
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/**
 * Run the garbage collector every `ms` until the returned stop() (V8's gc exposed at run time): a timer or signal
 * that is only weakly held shows itself by never firing.
 */
export function collectGarbageEvery(ms = 50): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const timer = setInterval(() => gc(), ms);
  return () => clearInterval(timer);
}

/**
 * A small real filesystem for disk-full tests: a tmpfs of `size` mounted at `dir` (which must exist), or undefined
 * where this process may not mount (not root, or a container that forbids it): the caller skips, saying so. Not a
 * Debian tool of the CI set — the same fix is also covered by a /dev/full test that runs everywhere.
 */
export function mountTmpfs(dir: string, size: string): { unmount: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
  return ok ? { unmount: () => void spawnSync('umount', ['-l', dir], { stdio: 'ignore' }) } : undefined;
}

/** Poll `check` until it returns a truthy value (events the code under test does not announce). */
export async function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 50): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

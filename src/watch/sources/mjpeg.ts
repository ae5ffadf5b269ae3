// HTTP cameras read in Node (no ffmpeg): an MJPEG stream (multipart/x-mixed-replace) is parsed part by part; a URL
// that answers a single image (a camera's snapshot.jpg) is polled at the camera's frame rate instead.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { boundaryOf, createMultipartParser } from './multipart.js';
import { abortable, redactUrl, sleep, SourceFailure, type FrameSink, type OpenedSource } from './types.js';

export interface MjpegOptions {
  url: string;
  headers: Record<string, string>;
  fps: number;
  maxFrameBytes: number;
}

/** URL credentials become a Basic Authorization header (and never reach logs with the URL). */
export function splitCredentials(url: string, headers: Record<string, string>): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (!u.username && !u.password) return { url, headers };
  const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.toString(), headers: { authorization: `Basic ${auth}`, ...headers } };
}

function statusHint(status: number): string {
  if (status === 401) return ': the camera wants credentials (put them in the URL, http://user:password@host/…, or in headers:; digest auth is not supported)';
  if (status === 403) return ': the credentials are not allowed to view this stream';
  if (status === 404) return ": no stream at this path (check the camera's MJPEG URL, e.g. /video.mjpg, /mjpg/video.mjpg, /?action=stream)";
  return '';
}

/**
 * GET with node:http rather than fetch(): fetch refuses ports on the WHATWG "bad ports" list (6000, 10080 …) that
 * some cameras use. Follows up to three redirects.
 */
function get(url: string, headers: Record<string, string>, signal: AbortSignal, redirects = 3): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).get(u, { headers: { 'user-agent': 'mlctl-watch', ...headers }, signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(get(new URL(res.headers.location, u).toString(), headers, signal, redirects - 1));
        return;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        reject(new SourceFailure(`HTTP ${status} ${res.statusMessage ?? ''}`.trim() + statusHint(status)));
        return;
      }
      resolve(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => reject(signal.aborted ? signal.reason : new SourceFailure(`cannot connect (${err.code ?? err.message})`)));
  });
}

async function readStream(res: IncomingMessage, boundary: string, opts: MjpegOptions, signal: AbortSignal, sink: FrameSink): Promise<void> {
  const parser = createMultipartParser({ boundary, maxBytes: opts.maxFrameBytes, onPart: (body) => void sink.frame({ image: body }) });
  try {
    for await (const chunk of res) {
      try {
        parser.push(chunk as Buffer);
      } catch (err) {
        throw new SourceFailure(`the stream is not valid MJPEG: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof SourceFailure) throw err;
    throw new SourceFailure(`the stream broke off (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    res.destroy();
  }
  if (signal.aborted) throw signal.reason;
  throw new SourceFailure('the camera closed the stream');
}

async function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.destroy();
      throw new SourceFailure(`a snapshot larger than the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function pollSnapshots(first: IncomingMessage, opts: MjpegOptions, url: string, headers: Record<string, string>, signal: AbortSignal, sink: FrameSink): Promise<void> {
  const interval = opts.fps > 0 ? 1000 / opts.fps : 1000;
  let res = first;
  for (;;) {
    const started = performance.now();
    void sink.frame({ image: await abortable(signal, readBody(res, opts.maxFrameBytes)) });
    await sleep(Math.max(0, interval - (performance.now() - started)), signal);
    if (signal.aborted) throw signal.reason;
    res = await get(url, headers, signal);
  }
}

export function mjpegSource(opts: MjpegOptions): OpenedSource {
  const { url, headers } = splitCredentials(opts.url, opts.headers);
  return {
    describe: redactUrl(opts.url),
    endIsFinal: false,
    quietIsNormal: false,
    paced: false,
    async run(signal, sink) {
      const res = await get(url, headers, signal);
      const type = res.headers['content-type'] ?? '';
      if (/^multipart\//i.test(type)) {
        const boundary = boundaryOf(type);
        if (!boundary) throw new SourceFailure(`Content-Type "${type}" has no boundary parameter`);
        return readStream(res, boundary, opts, signal, sink);
      }
      if (/^image\//i.test(type)) return pollSnapshots(res, opts, url, headers, signal, sink);
      res.destroy();
      throw new SourceFailure(`unexpected Content-Type "${type || '(none)'}": expected multipart/x-mixed-replace (MJPEG) or image/jpeg (a snapshot URL)`);
    },
  };
}

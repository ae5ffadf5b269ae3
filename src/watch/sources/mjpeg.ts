// HTTP cameras read in Node (no ffmpeg): an MJPEG stream (multipart/x-mixed-replace) is parsed part by part; a URL
// that answers a single image (a camera's snapshot.jpg) is polled at the camera's frame rate instead.
import { boundaryOf, createMultipartParser } from './multipart.js';
import { abortable, redactUrl, sleep, SourceFailure, type FrameSink, type OpenedSource } from './types.js';

export interface MjpegOptions {
  url: string;
  headers: Record<string, string>;
  fps: number;
  maxFrameBytes: number;
}

/** fetch() refuses URLs with credentials: move user:password into a Basic Authorization header. */
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
  if (status === 404) return ': no stream at this path (check the camera\'s MJPEG URL, e.g. /video.mjpg, /mjpg/video.mjpg, /?action=stream)';
  return '';
}

async function connect(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { headers, signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new SourceFailure(`cannot connect (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new SourceFailure(`HTTP ${res.status} ${res.statusText}${statusHint(res.status)}`);
  }
  return res;
}

async function readStream(res: Response, boundary: string, opts: MjpegOptions, signal: AbortSignal, sink: FrameSink): Promise<void> {
  const parser = createMultipartParser({ boundary, maxBytes: opts.maxFrameBytes, onPart: (body) => void sink.frame({ image: body }) });
  const reader = res.body!.getReader();
  const cancel = () => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      try {
        parser.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      } catch (err) {
        throw new SourceFailure(`the stream is not valid MJPEG: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof SourceFailure) throw err;
    throw new SourceFailure(`the stream broke off (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`);
  } finally {
    signal.removeEventListener('abort', cancel);
  }
  throw new SourceFailure('the camera closed the stream');
}

async function pollSnapshots(first: Response, opts: MjpegOptions, url: string, headers: Record<string, string>, signal: AbortSignal, sink: FrameSink): Promise<void> {
  const interval = opts.fps > 0 ? 1000 / opts.fps : 1000;
  let res = first;
  for (;;) {
    const started = performance.now();
    const body = Buffer.from(await abortable(signal, res.arrayBuffer()));
    if (body.length > opts.maxFrameBytes) throw new SourceFailure(`a snapshot of ${body.length} bytes is larger than the ${opts.maxFrameBytes}-byte limit`);
    void sink.frame({ image: body });
    await sleep(Math.max(0, interval - (performance.now() - started)), signal);
    if (signal.aborted) throw signal.reason;
    res = await connect(url, headers, signal);
  }
}

export function mjpegSource(opts: MjpegOptions): OpenedSource {
  const { url, headers } = splitCredentials(opts.url, opts.headers);
  return {
    describe: redactUrl(opts.url),
    endIsFinal: false,
    quietIsNormal: false,
    async run(signal, sink) {
      const res = await connect(url, headers, signal);
      const type = res.headers.get('content-type') ?? '';
      if (/^multipart\//i.test(type)) {
        const boundary = boundaryOf(type);
        if (!boundary) throw new SourceFailure(`Content-Type "${type}" has no boundary parameter`);
        return readStream(res, boundary, opts, signal, sink);
      }
      if (/^image\//i.test(type)) return pollSnapshots(res, opts, url, headers, signal, sink);
      await res.body?.cancel().catch(() => {});
      throw new SourceFailure(`unexpected Content-Type "${type || '(none)'}": expected multipart/x-mixed-replace (MJPEG) or image/jpeg (a snapshot URL)`);
    },
  };
}

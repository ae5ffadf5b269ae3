// The `cameras:` section: each camera's source (its kind guessed from the URL or path unless `type` says),
// frame rate, region of interest and reconnect timing.
import { statSync } from 'node:fs';
import path from 'node:path';
import type { CameraConfig, Extent, RoiSpec, SourceSpec } from './types.js';
import type { Field, MapReader } from './reader.js';
import { NAME_RE, readExtent } from './values.js';
import { DEFAULT_TRACKER, readTracker, readZones } from './zones.js';

export { NAME_RE };

const NAME_HINT = 'use letters, digits, ".", "_" or "-" (up to 64, starting with a letter or digit)';
const SOURCE_TYPES = ['auto', 'mjpeg', 'ffmpeg', 'folder'] as const;

function pathKind(p: string): 'file' | 'dir' | 'char' | undefined {
  try {
    const s = statSync(p);
    return s.isDirectory() ? 'dir' : s.isCharacterDevice() ? 'char' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

const KIND_KEYS: Record<SourceSpec['kind'], string[]> = {
  mjpeg: ['headers'],
  ffmpeg: ['input_options', 'rtsp_transport', 'loop', 'realtime'],
  folder: ['existing', 'poll_interval'],
};

/** Decide a source from `url` (or `path`) and the optional explicit type. */
function readSource(m: MapReader, baseDir: string): SourceSpec {
  const type = m.opt('type', (f) => f.choice(SOURCE_TYPES), 'auto');
  const urlField = m.has('url') || !m.has('path') ? m.get('url') : m.get('path');
  if (!urlField.present) urlField.fail('is required: http:// (MJPEG or snapshot), rtsp://, a video file, /dev/videoN, or a folder of images (path:)');
  const raw = urlField.string();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  const source = decideSource(m, type, raw, scheme, baseDir, urlField);
  for (const [kind, keys] of Object.entries(KIND_KEYS)) {
    if (kind === source.kind) continue;
    for (const k of keys) if (m.has(k)) m.get(k).fail(`applies to ${kind} cameras only; this camera is read as ${source.kind}`);
  }
  return source;
}

function decideSource(m: MapReader, type: (typeof SOURCE_TYPES)[number], raw: string, scheme: string | undefined, baseDir: string, urlField: Field): SourceSpec {
  const ffmpeg = (input: string, what: Extract<SourceSpec, { kind: 'ffmpeg' }>['what']): SourceSpec => ({
    kind: 'ffmpeg',
    input,
    what,
    inputOptions: m.opt('input_options', (f) => f.list().map((x) => x.string()), []),
    rtspTransport: m.opt('rtsp_transport', (f) => f.choice(['tcp', 'udp'] as const), 'tcp'),
    loop: m.opt('loop', (f) => f.boolean(), false),
    realtime: m.opt('realtime', (f) => f.boolean(), true),
  });
  if (type === 'mjpeg' || (type === 'auto' && (scheme === 'http' || scheme === 'https'))) {
    if (scheme !== 'http' && scheme !== 'https') urlField.fail('an mjpeg camera needs an http:// or https:// URL');
    return { kind: 'mjpeg', url: raw, headers: m.opt('headers', readHeaders, {}) };
  }
  if (type === 'folder') {
    if (scheme && scheme !== 'file') urlField.fail('a folder camera needs a local path');
  } else if (scheme && scheme !== 'file') {
    return ffmpeg(raw, scheme.startsWith('rtsp') ? 'rtsp' : 'stream');
  } else if (type === 'ffmpeg' && m.has('input_options')) {
    return ffmpeg(raw, 'stream'); // e.g. input_options: [-f, lavfi] with a filter graph as the input
  }
  const local = path.resolve(baseDir, scheme === 'file' ? new URL(raw).pathname : raw);
  const kind = pathKind(local);
  if (type === 'folder' || (type === 'auto' && kind === 'dir')) {
    if (kind !== 'dir') urlField.fail(`${local} is not a folder`);
    return { kind: 'folder', dir: local, existing: m.opt('existing', (f) => f.choice(['skip', 'process'] as const), 'skip'), pollMs: m.opt('poll_interval', (f) => f.duration(), 2000) };
  }
  if (kind === 'char' || local.startsWith('/dev/video')) return ffmpeg(local, 'v4l2');
  if (kind !== 'file') urlField.fail(`no such file or folder: ${local}`);
  return ffmpeg(local, 'file');
}

export function readHeaders(f: Field): Record<string, string> {
  const m = f.map();
  const out: Record<string, string> = {};
  for (const k of m.keys()) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) m.get(k).fail('is not a valid HTTP header name');
    out[k] = m.get(k).string();
  }
  m.done();
  return out;
}

/** roi: {x, y, width, height} or [x, y, width, height]; each pixels or "NN%". */
function readRoi(f: Field): RoiSpec {
  const keys = ['x', 'y', 'width', 'height'] as const;
  let parts: Extent[];
  if (f.isMap()) {
    const m = f.map();
    parts = keys.map((k) => m.req(k, readExtent));
    m.done();
  } else {
    const items = f.list();
    if (items.length !== 4) f.fail('expected [x, y, width, height] or {x, y, width, height}');
    parts = items.map(readExtent);
  }
  const [x, y, width, height] = parts as [Extent, Extent, Extent, Extent];
  if (width.value === 0 || height.value === 0) f.fail('width and height must be greater than 0');
  for (const [a, b, what] of [[x, width, 'x + width'], [y, height, 'y + height']] as const) {
    if (a.unit === '%' && b.unit === '%' && a.value + b.value > 100) f.fail(`${what} is more than 100% of the frame`);
  }
  return { x, y, width, height };
}

export function readCamera(f: Field, defaults: { fps: number }, baseDir: string): CameraConfig {
  const m = f.map();
  const name = m.req('name', (x) => x.string({ pattern: NAME_RE, hint: NAME_HINT }));
  const source = readSource(m, baseDir);
  const fps = m.opt('fps', (x) => x.number({ min: 0, max: 120 }), source.kind === 'folder' ? 0 : defaults.fps);
  const roi = m.opt('roi', readRoi, undefined);
  const zones = m.opt('zones', readZones, []);
  const tracker = m.opt('tracker', readTracker, DEFAULT_TRACKER);
  const stallTimeoutMs = m.opt('stall_timeout', (x) => x.duration(), Math.max(10_000, fps > 0 ? 3000 / fps : 0));
  const offlineAfterMs = m.opt('offline_after', (x) => x.duration(), 15_000);
  const reconnect = m.opt(
    'reconnect',
    (x) => {
      const r = x.map();
      const out = { initialMs: r.opt('initial', (y) => y.duration(), 1000), maxMs: r.opt('max', (y) => y.duration(), 60_000) };
      r.done();
      if (out.maxMs < out.initialMs) x.fail('max must not be less than initial');
      return out;
    },
    { initialMs: 1000, maxMs: 60_000 },
  );
  m.done();
  return { name, source, fps, ...(roi ? { roi } : {}), zones, tracker, stallTimeoutMs, offlineAfterMs, reconnect };
}

// One camera's supervisor: runs its source, samples frames to the camera's fps, drops frames that are not whole
// JPEGs, reconnects with exponential backoff (and jitter) when the source fails or stalls, and reports the
// camera going down (after offline_after) and coming back.
import path from 'node:path';
import type { Logger } from '../util/log.js';
import type { CameraConfig } from './config/types.js';
import { ffmpegSource } from './sources/ffmpeg.js';
import { folderSource } from './sources/folder.js';
import { isCompleteJpeg } from './sources/jpeg.js';
import { mjpegSource } from './sources/mjpeg.js';
import { sleep, type OpenedSource, type SourceFrame } from './sources/types.js';

export interface Frame {
  camera: string;
  /** Accepted frames on this camera so far (1-based). */
  seq: number;
  image: Buffer;
  /** Epoch ms the frame arrived from the source. */
  at: number;
  file?: string;
  /** From a paced source (folder, file): never replaced by a newer frame, handled in order. */
  lossless: boolean;
}

export interface CameraHooks {
  /** A sampled frame; paced sources (folder, file) wait for the returned promise before the next. */
  frame(frame: Frame): Promise<void> | void;
  /** Frames the source delivered (before sampling) and frames rejected as broken. */
  received(camera: string): void;
  corrupt(camera: string, reason: string): void;
  /** Frames flow again (from starting, failing or down) / stopped flowing (the source failed or stalled). */
  up(camera: string): void;
  down(camera: string, reason: string): void;
  offline(camera: string, reason: string): void;
  online(camera: string, downtimeMs: number): void;
  reconnect(camera: string, reason: string, delayMs: number): void;
}

export interface CameraHandle {
  readonly name: string;
  readonly describe: string;
  /** 'starting' until the first frame, 'up', 'failing' (down, not yet reported), 'down', 'finished' (a file ended). */
  state(): 'starting' | 'up' | 'failing' | 'down' | 'finished';
  /** Why the source last failed, while the camera is not up. */
  lastError(): string | undefined;
  stop(): Promise<void>;
  /** Resolves when the supervisor loop has ended (stopped, or a video file finished). */
  readonly finished: Promise<void>;
}

/** A stream that sends this many broken frames in a row is reconnected. */
const MAX_CORRUPT_IN_A_ROW = 25;
const MAX_FRAME_BYTES = 32 * 1024 * 1024;

export function openSource(cfg: CameraConfig, stateDir: string, logger: Logger): OpenedSource {
  const s = cfg.source;
  if (s.kind === 'mjpeg') return mjpegSource({ url: s.url, headers: s.headers, fps: cfg.fps, maxFrameBytes: MAX_FRAME_BYTES });
  if (s.kind === 'ffmpeg') return ffmpegSource(s, cfg.fps, MAX_FRAME_BYTES);
  return folderSource({ dir: s.dir, existing: s.existing, pollMs: s.pollMs, journalFile: path.join(stateDir, 'journals', `${cfg.name}.jsonl`), maxFrameBytes: MAX_FRAME_BYTES, logger });
}

/** Sampling to `fps`: one frame per interval on average, tolerant of jitter in the source's own timing. */
export function createSampler(fps: number): (now: number) => boolean {
  if (fps <= 0) return () => true;
  const interval = 1000 / fps;
  let due = -Infinity;
  return (now) => {
    if (now < due - interval / 2) return false;
    due = now - due < interval ? due + interval : now + interval;
    return true;
  };
}

export function startCamera(cfg: CameraConfig, source: OpenedSource, hooks: CameraHooks, logger: Logger): CameraHandle {
  const stopper = new AbortController();
  let state: ReturnType<CameraHandle['state']> = 'starting';
  let downSince = Date.now();
  let lastReason = 'no frame yet';
  let offlineTimer: NodeJS.Timeout | undefined;
  let seq = 0;
  const sample = createSampler(cfg.fps);

  const armOffline = () => {
    if (offlineTimer) return;
    offlineTimer = setTimeout(() => {
      offlineTimer = undefined;
      if (state === 'up' || state === 'finished') return;
      state = 'down';
      hooks.offline(cfg.name, lastReason);
    }, cfg.offlineAfterMs);
    offlineTimer.unref();
  };
  const markUp = () => {
    if (state === 'up') return;
    if (offlineTimer) clearTimeout(offlineTimer);
    offlineTimer = undefined;
    if (state === 'down') hooks.online(cfg.name, Date.now() - downSince);
    else if (state === 'starting') logger.info(`camera ${cfg.name}: receiving frames from ${source.describe}`);
    state = 'up';
    hooks.up(cfg.name);
  };

  async function session(): Promise<{ ended: boolean; frames: number; error?: Error }> {
    const ac = new AbortController();
    const onStop = () => ac.abort(stopper.signal.reason);
    stopper.signal.addEventListener('abort', onStop, { once: true });
    let frames = 0;
    let corruptRun = 0;
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      if (source.quietIsNormal) return;
      if (stallTimer) clearTimeout(stallTimer);
      stallTimer = setTimeout(() => ac.abort(new Error(`stalled: no frame for ${Math.round(cfg.stallTimeoutMs / 1000)} s`)), cfg.stallTimeoutMs);
    };
    armStall();
    const sink = {
      frame(f: SourceFrame) {
        const now = Date.now();
        hooks.received(cfg.name);
        if (!f.file && !isCompleteJpeg(f.image)) {
          hooks.corrupt(cfg.name, f.image.length === 0 ? 'empty frame' : 'not a complete JPEG (truncated or garbage)');
          if (++corruptRun >= MAX_CORRUPT_IN_A_ROW) ac.abort(new Error(`${corruptRun} broken frames in a row: the stream sends garbage`));
          return;
        }
        corruptRun = 0;
        frames++;
        armStall();
        markUp();
        // A paced source's frames are already at the camera's fps (ffmpeg's fps filter) or are files: no wall-clock sampling.
        if (!source.paced && !sample(now)) return;
        return hooks.frame({ camera: cfg.name, seq: ++seq, image: f.image, at: now, lossless: source.paced, ...(f.file ? { file: f.file } : {}) });
      },
    };
    try {
      await source.run(ac.signal, sink);
      return { ended: true, frames };
    } catch (err) {
      return { ended: false, frames, error: err as Error };
    } finally {
      if (stallTimer) clearTimeout(stallTimer);
      stopper.signal.removeEventListener('abort', onStop);
    }
  }

  async function loop(): Promise<void> {
    armOffline();
    let attempt = 0;
    while (!stopper.signal.aborted) {
      const r = await session();
      if (stopper.signal.aborted) break;
      if (r.ended && source.endIsFinal) {
        logger.info(`camera ${cfg.name}: ${source.describe} ended after ${seq} sampled frame(s)`);
        state = 'finished';
        break;
      }
      const reason = r.error?.message ?? 'the stream ended';
      if (r.error && (r.error as { code?: string }).code === 'WATCH_FFMPEG_MISSING') {
        logger.error(r.error.message);
      }
      if (r.frames > 0) attempt = 0;
      if (state === 'up' || state === 'starting') {
        if (state === 'up') {
          state = 'failing';
          downSince = Date.now();
          hooks.down(cfg.name, reason);
        }
        armOffline();
      }
      lastReason = reason;
      const base = Math.min(cfg.reconnect.maxMs, cfg.reconnect.initialMs * 2 ** attempt);
      const delay = Math.round(base * (0.5 + Math.random() * 0.5));
      attempt++;
      hooks.reconnect(cfg.name, reason, delay);
      await sleep(delay, stopper.signal);
    }
    if (offlineTimer) clearTimeout(offlineTimer);
  }

  const finished = loop();
  return {
    name: cfg.name,
    describe: source.describe,
    state: () => state,
    lastError: () => (state === 'up' || state === 'finished' ? undefined : lastReason),
    async stop() {
      stopper.abort(new Error('stopping'));
      await finished;
    },
    finished,
  };
}

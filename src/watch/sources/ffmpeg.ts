// RTSP streams, video files and V4L2 devices through Debian's ffmpeg as a child process: it decodes whatever the
// camera sends and pipes JPEG frames (image2pipe, at the camera's --fps) to stdout, where they are split apart.
import { spawn, spawnSync } from 'node:child_process';
import { MlctlError } from '../../errors.js';
import type { SourceSpec } from '../config/types.js';
import { createJpegSplitter } from './jpeg.js';
import { redactUrl, SourceFailure, type OpenedSource } from './types.js';

type FfmpegSpec = Extract<SourceSpec, { kind: 'ffmpeg' }>;

export function ffmpegPath(): string {
  return process.env.MLCTL_FFMPEG || 'ffmpeg';
}

/** Fail early, with the package to install, when a camera needs ffmpeg and there is none. */
export function checkFfmpeg(camera: string): void {
  const bin = ffmpegPath();
  const r = spawnSync(bin, ['-hide_banner', '-version'], { stdio: 'ignore', timeout: 20_000 });
  if (r.error || r.status !== 0) {
    const why = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? `"${bin}" was not found` : `"${bin} -version" failed (${r.error?.message ?? `exit ${r.status}`})`;
    throw new MlctlError('WATCH_FFMPEG_MISSING', [camera, why]);
  }
}

/** The ffmpeg command line for a camera: input options by kind, then JPEG frames at `fps` on stdout. */
export function ffmpegArgs(spec: FfmpegSpec, fps: number): string[] {
  const input: string[] = [];
  if (spec.what === 'rtsp') input.push('-rtsp_transport', spec.rtspTransport, '-timeout', '10000000');
  if (spec.what === 'v4l2') input.push('-f', 'v4l2');
  if (spec.what === 'file') {
    if (spec.realtime) input.push('-re');
    if (spec.loop) input.push('-stream_loop', '-1');
  }
  input.push(...spec.inputOptions);
  const filters = fps > 0 ? ['-vf', `fps=${fps}`] : [];
  return ['-hide_banner', '-nostdin', '-loglevel', 'error', ...input, '-i', spec.input, '-an', ...filters, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3', 'pipe:1'];
}

export function ffmpegSource(spec: FfmpegSpec, fps: number, maxFrameBytes: number): OpenedSource {
  // A file read as fast as possible is paced by us: ffmpeg's stdout is paused while a frame is being handled.
  const paced = spec.what === 'file' && !spec.realtime;
  return {
    describe: spec.what === 'file' || spec.what === 'v4l2' ? spec.input : redactUrl(spec.input),
    endIsFinal: spec.what === 'file' && !spec.loop,
    quietIsNormal: false,
    paced,
    run(signal, sink) {
      return new Promise<void>((resolve, reject) => {
        const child = spawn(ffmpegPath(), ffmpegArgs(spec, fps), { stdio: ['ignore', 'pipe', 'pipe'] });
        const stderr: string[] = [];
        let failure: Error | undefined;
        let waiting = 0;
        const splitter = createJpegSplitter({
          maxBytes: maxFrameBytes,
          onFrame: (image) => {
            const handled = sink.frame({ image });
            if (!paced || !handled) return;
            waiting++;
            child.stdout.pause();
            void handled.finally(() => {
              if (--waiting === 0) child.stdout.resume();
            });
          },
        });
        child.stdout.on('data', (chunk: Buffer) => {
          try {
            splitter.push(chunk);
          } catch (err) {
            failure ??= new SourceFailure(`ffmpeg output is not JPEG frames: ${(err as Error).message}`);
            child.kill('SIGKILL');
          }
        });
        child.stderr.setEncoding('utf8').on('data', (s: string) => {
          stderr.push(...s.split('\n').filter((l) => l.trim()));
          if (stderr.length > 20) stderr.splice(0, stderr.length - 20);
        });
        let killTimer: NodeJS.Timeout | undefined;
        const onAbort = () => {
          failure ??= signal.reason as Error;
          child.kill('SIGTERM');
          killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
          killTimer.unref();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        child.on('error', (err: NodeJS.ErrnoException) => {
          failure ??= err.code === 'ENOENT' ? new MlctlError('WATCH_FFMPEG_MISSING', [spec.input, `"${ffmpegPath()}" was not found`]) : err;
        });
        child.on('close', (code, sig) => {
          signal.removeEventListener('abort', onAbort);
          if (killTimer) clearTimeout(killTimer);
          if (failure) return reject(failure);
          if (code === 0) return resolve();
          const last = stderr.slice(-3).join(' | ').replace(/\s+/g, ' ').trim();
          reject(new SourceFailure(`ffmpeg exited with ${code ?? sig}${last ? `: ${redactText(last, spec.input)}` : ''}`));
        });
      });
    },
  };
}

/** ffmpeg echoes the input URL in its errors: keep passwords out of logs. */
function redactText(text: string, input: string): string {
  const safe = redactUrl(input);
  return safe === input ? text : text.split(input).join(safe);
}

// Progress for long work: a redrawn bar with rate and ETA on a TTY, plain periodic lines otherwise (CI logs),
// and nothing at all when the logger is quiet.
import type { Logger } from './log.js';

export interface Progress {
  /** Advance by n units; `status` is shown beside the bar (e.g. "loss 0.31 acc 0.92"). */
  tick(n?: number, status?: string): void;
  /** Replace the status text without advancing. */
  status(text: string): void;
  /** Finish: prints a final line with the total time. */
  done(summary?: string): void;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  unit?: string;
  logger: Logger;
  /** Stream for the TTY bar (defaults to stderr). */
  stream?: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Minimum interval between plain (non-TTY) lines. */
  plainIntervalMs?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const { label, total, unit = 'items', logger } = opts;
  const stream = opts.stream ?? process.stderr;
  const tty = logger.interactive;
  const plainInterval = opts.plainIntervalMs ?? 5000;
  const start = Date.now();
  let current = 0;
  let statusText = '';
  let lastPlain = 0;
  let lastDraw = 0;

  const line = (): string => {
    const elapsed = (Date.now() - start) / 1000;
    const rate = elapsed > 0 ? current / elapsed : 0;
    const rateText = `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} ${unit}/s`;
    if (total && total > 0) {
      const frac = Math.min(1, current / total);
      const eta = rate > 0 ? (total - current) / rate : NaN;
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = tty ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` : '';
      return `${label} ${bar}${current}/${total} (${(frac * 100).toFixed(0)}%) ${rateText} ETA ${formatDuration(eta)}${statusText ? ` ${statusText}` : ''}`;
    }
    return `${label} ${current} ${unit} ${rateText}${statusText ? ` ${statusText}` : ''}`;
  };

  const draw = (force = false) => {
    const now = Date.now();
    if (tty) {
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      const cols = (stream as { columns?: number }).columns ?? 100;
      stream.write(`\r\u001b[K${line().slice(0, cols - 1)}`);
    } else if (force || now - lastPlain >= plainInterval) {
      lastPlain = now;
      logger.info(line());
    }
  };

  return {
    tick(n = 1, status) {
      current += n;
      if (status !== undefined) statusText = status;
      draw(total !== undefined && current >= total);
    },
    status(text) {
      statusText = text;
      draw();
    },
    done(summary) {
      const elapsed = formatDuration((Date.now() - start) / 1000);
      if (tty) stream.write('\r\u001b[K');
      logger.info(`${label}: ${summary ?? `${current} ${unit}`} in ${elapsed}`);
    },
  };
}

/**
 * Run `work` with a spinner on a TTY (ora) or a plain start line otherwise; ends with ✓/✗ and the elapsed time.
 * For indeterminate steps (loading a model, converting to ONNX); counted work uses createProgress.
 */
export async function withSpinner<T>(logger: Logger, text: string, work: () => Promise<T>): Promise<T> {
  const start = Date.now();
  const elapsed = () => formatDuration((Date.now() - start) / 1000);
  if (!logger.interactive) {
    logger.info(`${text}…`);
    const result = await work();
    logger.debug(`${text}: done in ${elapsed()}`);
    return result;
  }
  const { default: ora } = await import('ora');
  const spinner = ora({ text, stream: process.stderr, color: 'cyan', isEnabled: true }).start();
  try {
    const result = await work();
    spinner.succeed(`${text} (${elapsed()})`);
    return result;
  } catch (err) {
    spinner.fail(`${text} (${elapsed()})`);
    throw err;
  }
}

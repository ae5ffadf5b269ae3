// Logging to stderr for humans and CI: stdout is reserved for results (and for --json, one JSON document).
// Colour only on a TTY and never when NO_COLOR is set. Long-running servers choose a format (--log-format): text
// lines, or JSON lines in pino's shape so mlctl's own lines and Fastify's read alike in one log collector.
import os from 'node:os';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** True when interactive niceties (spinners, bars, colour) are appropriate. */
  readonly interactive: boolean;
  readonly color: boolean;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFormat = 'text' | 'json';

export interface LoggerOptions {
  level?: Level;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** text (default): plain lines; json: one pino-shaped object per line ({level, time, pid, hostname, msg}). */
  format?: LogFormat;
}

/** pino's numeric levels: what Fastify's logger writes, so both kinds of line filter the same way. */
export const PINO_LEVELS: Record<Level, number> = { debug: 20, info: 30, warn: 40, error: 50 };

/** One log line as pino writes it (Fastify's logger), for --log-format json. */
export function jsonLogLine(level: Level, msg: string): string {
  return `${JSON.stringify({ level: PINO_LEVELS[level], time: Date.now(), pid: process.pid, hostname: os.hostname(), msg })}\n`;
}

const PINO_NAMES: Record<number, Level> = { 10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'error' };
const PINO_CORE = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

/**
 * A stream for Fastify's logger that writes its JSON lines as text lines ("warning: msg key=value …"): what
 * --log-format text gives the request logs, so they read like mlctl's own lines.
 */
export function pinoTextStream(target: { write(s: string): unknown } = process.stderr): { write(line: string): void } {
  return {
    write(line: string) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        target.write(line);
        return;
      }
      const level = PINO_NAMES[Number(o.level)] ?? 'info';
      const prefix = level === 'warn' ? 'warning: ' : level === 'error' ? 'error: ' : level === 'debug' ? 'debug: ' : '';
      const extra = Object.entries(o)
        .filter(([k]) => !PINO_CORE.has(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      target.write(`${prefix}${String(o.msg ?? '')}${extra ? ` ${extra}` : ''}\n`);
    },
  };
}

export function useColor(stream: { isTTY?: boolean } = process.stderr): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

export function isInteractive(stream: { isTTY?: boolean } = process.stderr): boolean {
  return Boolean(stream.isTTY) && !process.env.CI && process.env.TERM !== 'dumb';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const min = ORDER[options.level ?? 'info'];
  const json = options.format === 'json';
  const color = !json && useColor(stream);
  const paint = (code: string, s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const emit = (level: Level, msg: string) => {
    if (ORDER[level] < min) return;
    if (json) {
      stream.write(jsonLogLine(level, msg));
      return;
    }
    const prefix = level === 'warn' ? paint('33', 'warning: ') : level === 'error' ? paint('31', 'error: ') : level === 'debug' ? paint('90', 'debug: ') : '';
    stream.write(`${prefix}${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    // JSON lines only: no spinner or progress bar redraws in between.
    interactive: !json && isInteractive(stream),
    color,
  };
}

/** A logger that records lines, for tests and for library callers that want silence. */
export function createMemoryLogger(): Logger & { lines: Array<{ level: Level; msg: string }> } {
  const lines: Array<{ level: Level; msg: string }> = [];
  const push = (level: Level) => (msg: string) => void lines.push({ level, msg });
  return { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error'), interactive: false, color: false, lines };
}

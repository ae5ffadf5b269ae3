// Logging to stderr for humans and CI: stdout is reserved for results (and for --json, one JSON document).
// Colour only on a TTY and never when NO_COLOR is set.

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

export interface LoggerOptions {
  level?: Level;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
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
  const color = useColor(stream);
  const paint = (code: string, s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const emit = (level: Level, msg: string) => {
    if (ORDER[level] < min) return;
    const prefix = level === 'warn' ? paint('33', 'warning: ') : level === 'error' ? paint('31', 'error: ') : level === 'debug' ? paint('90', 'debug: ') : '';
    stream.write(`${prefix}${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    interactive: isInteractive(stream),
    color,
  };
}

/** A logger that records lines, for tests and for library callers that want silence. */
export function createMemoryLogger(): Logger & { lines: Array<{ level: Level; msg: string }> } {
  const lines: Array<{ level: Level; msg: string }> = [];
  const push = (level: Level) => (msg: string) => void lines.push({ level, msg });
  return { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error'), interactive: false, color: false, lines };
}

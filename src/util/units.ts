// Human-friendly sizes ("10mb", "20gb") and durations ("10s", "500ms") for options and environment variables.
import { MlctlError } from '../errors.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "10mb" → 10485760 (binary units, as Express/Fastify users expect). */
export function parseSize(text: string | number, flag = 'size'): number {
  if (typeof text === 'number') return text;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new MlctlError('OPTION_INVALID', [`${flag} "${text}" is not a size: use e.g. 512kb, 10mb or 1gb`]);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < 1) throw new MlctlError('OPTION_INVALID', [`${flag} must be at least 1 byte`]);
  return bytes;
}

/** 1288490188 → "1.2 GiB" (binary units, matching parseSize). */
export function formatSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) (n /= 1024), u++;
  return u === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[u]}`;
}

const TIME_UNITS: Record<string, number> = { ms: 1, '': 1000, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** "10s" → 10000 ms; a bare number means seconds. */
export function parseDuration(text: string | number, flag = 'duration'): number {
  if (typeof text === 'number') return text * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? TIME_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new MlctlError('OPTION_INVALID', [`${flag} "${text}" is not a duration: use e.g. 500ms, 10s, 2m, 12h or 30d`]);
  return Number(m[1]) * unit;
}

// Inputs → model input floats for predict: files and http(s) downloads through the one preprocessing
// (data/preprocess.ts imageToInput, driven by the manifest), a chunk at a time with bounded concurrency.
// A failure is the item's error message, never an exception: it becomes an error row.
import type { ImageInputSpec } from '../artifacts/manifest.js';
import { DEFAULT_MAX_PIXELS, imageToInputPlaced, type ImageGeometry } from '../data/preprocess.js';
import type { InputItem } from './inputs.js';

export interface DecodeOptions {
  maxPixels?: number;
  /** Per-download time limit (default 30 s). */
  timeoutMs?: number;
  /** Largest download accepted (default 50 MiB). */
  maxDownloadBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_DOWNLOAD = 50 * 1024 * 1024;

/** At most `n` tasks at once, started in call order. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 500);

/** GET a URL into memory, refusing bodies over the limit (by Content-Length, and while streaming). */
export async function download(url: string, opts: DecodeOptions = {}): Promise<Uint8Array> {
  const max = opts.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD;
  const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS), redirect: 'follow' });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the download is ${declared} bytes, over the ${max}-byte limit`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of res.body ?? []) {
    total += (part as Uint8Array).byteLength;
    if (total > max) throw new Error(`the download is over the ${max}-byte limit`);
    parts.push(part as Uint8Array);
  }
  return Buffer.concat(parts, total);
}

/**
 * Decode one input into `out` at `offset`; returns the error message, or undefined when it worked (then `placed`
 * hears where the picture landed in the input, for boxes).
 */
export async function decodeInput(item: InputItem, spec: ImageInputSpec, out: Float32Array, offset: number, opts: DecodeOptions = {}, placed?: (g: ImageGeometry) => void): Promise<string | undefined> {
  if (item.error) return item.error;
  try {
    const source = item.kind === 'url' ? await download(item.source, opts).catch((err) => {
      throw new Error(`cannot download ${item.source}: ${(err as Error).name === 'TimeoutError' ? `no answer within ${(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s` : firstLine(err)}`);
    }) : item.source;
    const { geometry } = await imageToInputPlaced(source, spec, out, offset, { maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS });
    placed?.(geometry);
    return undefined;
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === 'ENOENT' || /no such file|Input file is missing/i.test(firstLine(err))) return `cannot read ${item.key}: no such file`;
    return firstLine(err);
  }
}

export interface DecodedChunk {
  items: InputItem[];
  /** Per item: the error, or undefined when its floats are in `x`. */
  errors: Array<string | undefined>;
  /** The decoded items' inputs, packed in item order (failed ones left out). */
  x: Float32Array;
  decoded: number;
  /** Where each decoded item's picture landed in its input, packed like `x`. */
  images: ImageGeometry[];
}

/** Decode a chunk of items into `buffer` (room for items.length inputs), packing the successes at the front. */
export async function decodeChunk(items: InputItem[], spec: ImageInputSpec, buffer: Float32Array, limit: ReturnType<typeof limiter>, opts: DecodeOptions = {}): Promise<DecodedChunk> {
  const per = spec.height * spec.width * 3;
  const placed: Array<ImageGeometry | undefined> = [];
  const errors = await Promise.all(items.map((item, i) => limit(() => decodeInput(item, spec, buffer, i * per, opts, (g) => (placed[i] = g)))));
  const images = placed.filter((g, i): g is ImageGeometry => g !== undefined && errors[i] === undefined);
  let n = 0;
  errors.forEach((e, i) => {
    if (e !== undefined) return;
    if (n !== i) buffer.copyWithin(n * per, i * per, (i + 1) * per);
    n++;
  });
  return { items, errors, x: buffer.subarray(0, n * per), decoded: n, images };
}

// Dense float32 rows with fast dot products against any chosen rows, the inner loop of every kernel row the SVM
// solvers and SVM prediction compute: WebAssembly SIMD (kernel.wat) when the rows fit in wasm32 memory, else a
// Float32Array and a JS loop. float32 halves the bytes each kernel row streams; the partial sums are added in f64.
import { KERNEL_WASM_BASE64 } from './kernel-wasm.js';
import type { Matrix } from './linalg.js';

export interface DenseRows {
  readonly rows: number;
  readonly cols: number;
  /** ‖xᵢ‖² of the rows as given (f64), as libsvm's x_square. */
  readonly sq: Float64Array;
  /** 'wasm-simd' or 'js' (the fallback). */
  readonly engine: 'wasm-simd' | 'js';
  /** out[t − start] = ⟨xᵢ, x_perm[t]⟩ for t in [start, end). */
  dots(i: number, perm: Int32Array, start: number, end: number, out: Float64Array): void;
  /** out[t − start] = ⟨v, x_perm[t]⟩ for an outside vector v of length cols. */
  dotsWith(v: ArrayLike<number>, perm: Int32Array, start: number, end: number, out: Float64Array): void;
}

/** Rows of indices handed to WebAssembly per call; bounds the scratch memory. */
const CHUNK = 8192;
const PAGE = 65536;
const MAX_PAGES = 65536;

/** The slice of the WebAssembly JS API used here (the project's TS lib set has no WebAssembly globals). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface KernelExports {
  dots(v: number, data: number, perm: number, start: number, end: number, stride: number, out: number): void;
  gemm_xwt(x: number, rows: number, stride: number, w: number, k: number, z: number): void;
  gemm_etx(x: number, rows: number, stride: number, e: number, k: number, g: number): void;
}

let compiled: object | undefined;

/**
 * A kernel.wat instance over its own memory of `bytes` (zero-filled), or undefined when that is more than wasm32
 * can address or this process can allocate (callers then use their JS loops).
 */
export function kernelInstance(bytes: number): { buffer: ArrayBuffer; fn: KernelExports } | undefined {
  const pages = Math.ceil(bytes / PAGE);
  if (pages > MAX_PAGES) return undefined;
  try {
    const mem = new wasm.Memory({ initial: pages, maximum: pages });
    compiled ??= new wasm.Module(Buffer.from(KERNEL_WASM_BASE64, 'base64'));
    return { buffer: mem.buffer, fn: new wasm.Instance(compiled, { env: { mem } }).exports as unknown as KernelExports };
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/** Floats per stored row: cols rounded up to a multiple of 8 (the SIMD loops read 4 or 8 at a time; padding is 0). */
export function paddedCols(cols: number): number {
  return Math.ceil(cols / 8) * 8;
}

/** Copy x (rows x cols, f64) into float32 rows of `stride` floats (zero-padded), with ‖xᵢ‖² in f64. */
export function fillRows(dst: Float32Array, x: Matrix, stride: number, sq: Float64Array): void {
  const { rows, cols, data } = x;
  for (let i = 0; i < rows; i++) {
    const o = i * stride, src = i * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const v = data[src + j]!;
      dst[o + j] = v;
      s += v * v;
    }
    sq[i] = s;
  }
}

export function denseRows(x: Matrix, opts: { engine?: 'wasm-simd' | 'js' } = {}): DenseRows {
  const stride = paddedCols(x.cols);
  const inst = opts.engine === 'js' ? undefined : kernelInstance(x.rows * stride * 4 + stride * 4 + CHUNK * 12);
  return inst ? wasmRows(x, stride, inst.buffer, inst.fn) : jsRows(x, stride);
}

function wasmRows(x: Matrix, stride: number, buffer: ArrayBuffer, fn: KernelExports): DenseRows {
  const rowBytes = stride * 4;
  const vPtr = x.rows * rowBytes, permPtr = vPtr + rowBytes, outPtr = permPtr + CHUNK * 4;
  const data = new Float32Array(buffer, 0, x.rows * stride);
  const sq = new Float64Array(x.rows);
  fillRows(data, x, stride, sq);
  const v = new Float32Array(buffer, vPtr, stride);
  const permBuf = new Int32Array(buffer, permPtr, CHUNK);
  const outBuf = new Float64Array(buffer, outPtr, CHUNK);
  const chunked = (vecPtr: number, perm: Int32Array, start: number, end: number, out: Float64Array) => {
    for (let s = start; s < end; s += CHUNK) {
      const e = Math.min(end, s + CHUNK);
      permBuf.set(perm.subarray(s, e));
      fn.dots(vecPtr, 0, permPtr, 0, e - s, rowBytes, outPtr);
      out.set(outBuf.subarray(0, e - s), s - start);
    }
  };
  return {
    rows: x.rows,
    cols: x.cols,
    sq,
    engine: 'wasm-simd',
    dots: (i, perm, start, end, out) => chunked(i * rowBytes, perm, start, end, out),
    dotsWith(vec, perm, start, end, out) {
      for (let j = 0; j < x.cols; j++) v[j] = vec[j]!;
      chunked(vPtr, perm, start, end, out);
    },
  };
}

function jsRows(x: Matrix, stride: number): DenseRows {
  const data = new Float32Array(x.rows * stride);
  const sq = new Float64Array(x.rows);
  fillRows(data, x, stride, sq);
  const v = new Float32Array(stride);
  const run = (src: Float32Array, so: number, perm: Int32Array, start: number, end: number, out: Float64Array) => {
    for (let t = start; t < end; t++) {
      const o = perm[t]! * stride;
      // Four independent accumulators: about twice the throughput of one dependent chain in V8.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < stride; k += 4) {
        s0 += src[so + k]! * data[o + k]!;
        s1 += src[so + k + 1]! * data[o + k + 1]!;
        s2 += src[so + k + 2]! * data[o + k + 2]!;
        s3 += src[so + k + 3]! * data[o + k + 3]!;
      }
      out[t - start] = s0 + s1 + s2 + s3;
    }
  };
  return {
    rows: x.rows,
    cols: x.cols,
    sq,
    engine: 'js',
    dots: (i, perm, start, end, out) => run(data, i * stride, perm, start, end, out),
    dotsWith(vec, perm, start, end, out) {
      for (let j = 0; j < x.cols; j++) v[j] = vec[j]!;
      run(v, 0, perm, start, end, out);
    },
  };
}

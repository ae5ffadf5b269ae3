// One shard of fc1 for the ONNX head trainer: a contiguous block of its input rows (weights, Adam moments, the batch's
// matching input columns) in one WebAssembly memory. ONNX Runtime reads the weights there without a copy for the
// forward product; the fused kernel (fc-kernel.ts) writes the Adam update there in place. Runs in the calling thread
// or in a worker (onnx-worker.ts), one shard per core.
// Its imports stay light (no TF.js, no protobuf): a worker thread loads them at the start of every training run.
import { ort, onnxSessionOptions } from '../runtime/ort.js';
import { KERAS_ADAM } from './adam.js';
import { FC_BLOCK, instantiateFcAdam, type FcAdamKernel } from './fc-kernel.js';

export interface FcShardInit {
  /** Input rows of fc1 in this shard. */
  rows: number;
  units: number;
  /** Largest batch the shard is given. */
  maxBatch: number;
  /** This shard's rows of w1 [rows, units] and of its Adam moments (none before the first step: zeros). */
  w: Float32Array;
  m?: Float32Array;
  v?: Float32Array;
  /** ONNX Runtime threads for the forward product. */
  threads: number;
  /** The forward product's ONNX model (fc-graph.ts fcForwardGraph), made by the caller; made here when absent. */
  graph?: Uint8Array;
}

/** Full-size arrays a snapshot of fc1 is written into. */
export interface FcSnapshot {
  w: Float32Array;
  m?: Float32Array;
  v?: Float32Array;
}

/** What a shard does, in the calling thread or through a worker. */
export interface FcShardApi {
  /**
   * Partial fc1 pre-activations z = x_s·w_s [n, units] for the shard's input columns x_s [n, rows]. A worker takes
   * x's buffer over and hands it back as `x`; in this thread `x` is the same array.
   */
  forward(x: Float32Array, n: number): Promise<{ z: Float32Array; x: Float32Array }>;
  /** Gradient x_sᵀ·dz of the last forward's batch and the Adam step on the shard's weights (lrT bias-corrected). */
  update(dz: Float32Array, n: number, lrT: number): Promise<void>;
  /**
   * Copy the shard's weights (and the moments given a place) into rows [row0, row0 + rows) of full [in, units]
   * arrays; a worker needs them on SharedArrayBuffers.
   */
  readInto(dst: FcSnapshot, row0: number): Promise<void>;
  dispose(): Promise<void>;
}

/** Byte layout of a shard's memory: w, m, v [rows, padded]; x [maxBatch, rows]; dz [maxBatch, padded]; nz scratch. */
function layout(rows: number, padded: number, maxBatch: number) {
  const align = (n: number) => Math.ceil(n / 64) * 64;
  const param = align(rows * padded * 4);
  const w = 0;
  const m = w + param;
  const v = m + param;
  const x = v + param;
  const dz = x + align(maxBatch * rows * 4);
  const nz = dz + align(maxBatch * padded * 4);
  return { w, m, v, x, dz, nz, bytes: nz + align(maxBatch * 8) };
}

/** A shard in this thread. */
export async function openFcShard(init: FcShardInit): Promise<FcShardApi> {
  const { rows, units, maxBatch } = init;
  const padded = Math.ceil(units / FC_BLOCK) * FC_BLOCK;
  const at = layout(rows, padded, maxBatch);
  const kernel: FcAdamKernel = await instantiateFcAdam(at.bytes);
  const buf = kernel.memory.buffer;
  const view = (offset: number, length: number) => new Float32Array(buf, offset, length);
  const [w, m, v] = [at.w, at.m, at.v].map((o) => view(o, rows * padded)) as [Float32Array, Float32Array, Float32Array];
  // Rows are stored padded to the kernel's block; padding stays zero (zero gradient keeps it zero under Adam).
  const put = (dst: Float32Array, src: Float32Array) => {
    for (let r = 0; r < rows; r++) dst.set(src.subarray(r * units, (r + 1) * units), r * padded);
  };
  const take = (src: Float32Array, dst: Float32Array | undefined, row0: number) => {
    if (dst) for (let r = 0; r < rows; r++) dst.set(src.subarray(r * padded, r * padded + units), (row0 + r) * units);
  };
  put(w, init.w);
  if (init.m) put(m, init.m);
  if (init.v) put(v, init.v);
  const graph = init.graph ?? (await import('./fc-graph.js')).fcForwardGraph(rows, units);
  const session = await ort.InferenceSession.create(graph, onnxSessionOptions(init.threads));
  const wTensor = new ort.Tensor('float32', w, [rows, padded]);
  const dzView = view(at.dz, maxBatch * padded);
  let lastN = 0;
  const { beta1: b1, beta2: b2, epsilon: eps } = KERAS_ADAM;
  return {
    async forward(x, n) {
      if (n > maxBatch) throw new RangeError(`fc1 shard: batch ${n} exceeds ${maxBatch}`);
      const xs = view(at.x, n * rows);
      xs.set(x.subarray(0, n * rows));
      lastN = n;
      const out = await session.run({ x: new ort.Tensor('float32', xs, [n, rows]), w: wTensor });
      return { z: out.z!.data as Float32Array, x };
    },
    async update(dz, n, lrT) {
      if (n !== lastN) throw new Error(`fc1 shard: update for a batch of ${n} after a forward of ${lastN}`);
      for (let k = 0; k < n; k++) dzView.set(dz.subarray(k * units, (k + 1) * units), k * padded);
      kernel.adamOuter(at.w, at.m, at.v, at.x, rows, at.dz, rows, padded, n, at.nz, lrT, b1, 1 - b1, b2, 1 - b2, eps);
    },
    async readInto(dst, row0) {
      take(w, dst.w, row0);
      take(m, dst.m, row0);
      take(v, dst.v, row0);
    },
    async dispose() {
      await session.release();
    },
  };
}

// Tensors crossing to or from an engine's worker thread: numeric data travels as transferred buffers (any datatype,
// BigInt64Array included), BYTES elements are cloned. One copy on the sending side where the sender keeps its arrays.
import type { Tensor } from '../runtime/tensor.js';

type Numeric = Exclude<Tensor['data'], Uint8Array[]>;

/**
 * Tensors to post and the buffers to transfer with them. With `copy` every numeric array is copied first (the caller
 * keeps its own); without, only arrays that do not span their whole buffer are (a transfer moves the whole buffer).
 */
export function forTransfer(tensors: readonly Tensor[], copy: boolean): { tensors: Tensor[]; transfer: ArrayBuffer[] } {
  const transfer = new Set<ArrayBuffer>();
  const out = tensors.map((t) => {
    if (Array.isArray(t.data)) return t;
    let data = t.data as Numeric;
    if (copy || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || transfer.has(data.buffer as ArrayBuffer)) data = data.slice();
    transfer.add(data.buffer as ArrayBuffer);
    return { ...t, data } as Tensor;
  });
  return { tensors: out, transfer: [...transfer] };
}

// Reusable float buffers for serve's decoded inputs. A request's buffer that a shared batch has copied is garbage
// holding external memory; at a hundred 224x224 pictures a second that is 60 MB/s, and V8 answers external memory
// growth with full mark-compact collections of the whole heap on the main thread. Reusing the buffers avoids them.

export interface FloatPool {
  /** A buffer of exactly `length` floats: a returned one when there is one (its contents are stale), else a new one. */
  take(length: number): Float32Array;
  /** Hand a buffer back for reuse (kept only while fewer than the cap of its length are waiting; detached ones never). */
  give(buffer: Float32Array): void;
}

/** A pool keeping at most `perLength` idle buffers of each length. */
export function createFloatPool(perLength = 16): FloatPool {
  const idle = new Map<number, Float32Array[]>();
  return {
    take(length) {
      return idle.get(length)?.pop() ?? new Float32Array(length);
    },
    give(buffer) {
      // A whole buffer only: a view would hand out memory that another owner still uses.
      if (buffer.byteLength === 0 || buffer.byteOffset !== 0 || buffer.buffer.byteLength !== buffer.byteLength) return;
      const list = idle.get(buffer.length) ?? [];
      if (list.length >= perLength) return;
      list.push(buffer);
      idle.set(buffer.length, list);
    },
  };
}

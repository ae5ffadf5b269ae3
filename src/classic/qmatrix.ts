// The Q matrix the SMO solver reads, Qᵢⱼ = yᵢyⱼK(xᵢ, xⱼ), as libsvm builds it: C-SVC rows are computed on demand
// for the solver's active prefix only and kept in a byte-bounded LRU of variable-length rows that follows the
// solver's index swaps (shrinking); ε-SVR reads whole kernel rows of its l data rows for its 2l variables.
import type { DenseRows } from './dense.js';
import { dotsToKernel, kernelDiag, type KernelRows, type KernelSpec } from './kernel.js';

type NumberArray = Int8Array | Uint8Array | Int32Array | Float32Array | Float64Array;

/** Exchange entries i and j (the solver's variable swaps, which follow shrinking). */
export function swapEntries(a: NumberArray, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

export interface QMatrix {
  /** Qᵢᵢ per variable (swapped along with the variables). */
  readonly QD: Float64Array;
  /** Row i of Q, valid on [0, len). The array may be reused by the next call but one: read, don't keep. */
  getQ(i: number, len: number): Float32Array;
  /** Exchange variables i and j (the solver moves shrunk variables to the end). */
  swapIndex(i: number, j: number): void;
}

/**
 * libsvm's Cache: row `index` holds Q[index][0, len) for some len; requesting a longer prefix extends it. Rows are
 * evicted least recently used first until the new floats fit in the budget, which always holds at least two full rows.
 */
export class QCache {
  private readonly data: Array<Float32Array | undefined>;
  private readonly lens: Int32Array;
  /** Doubly linked LRU list over row indices; node l is the head (oldest next, newest prev). */
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private free: number;
  hits = 0;
  misses = 0;

  constructor(private readonly l: number, bytes: number) {
    this.data = new Array(l).fill(undefined);
    this.lens = new Int32Array(l);
    this.prev = new Int32Array(l + 1).fill(l);
    this.next = new Int32Array(l + 1).fill(l);
    this.free = Math.max(Math.floor(bytes / 4), 2 * l);
  }

  private unlink(h: number): void {
    this.next[this.prev[h]!] = this.next[h]!;
    this.prev[this.next[h]!] = this.prev[h]!;
  }

  private append(h: number): void {
    const head = this.l;
    this.next[h] = head;
    this.prev[h] = this.prev[head]!;
    this.next[this.prev[h]!] = h;
    this.prev[head] = h;
  }

  /** The cached row of `index` after make room for [0, len); returns the first position still to be filled. */
  request(index: number, len: number): number {
    const have = this.lens[index]!;
    if (have) this.unlink(index);
    const more = len - have;
    if (more > 0) {
      this.misses++;
      while (this.free < more) {
        const old = this.next[this.l]!;
        this.unlink(old);
        this.free += this.lens[old]!;
        this.data[old] = undefined;
        this.lens[old] = 0;
      }
      const grown = new Float32Array(len);
      const prior = this.data[index];
      if (prior) grown.set(prior.subarray(0, have));
      this.data[index] = grown;
      this.free -= more;
      this.lens[index] = len;
    } else this.hits++;
    this.append(index);
    return more > 0 ? have : len;
  }

  row(index: number): Float32Array {
    return this.data[index]!;
  }

  swapIndex(i: number, j: number): void {
    if (i === j) return;
    const { data, lens, l } = this;
    if (lens[i]) this.unlink(i);
    if (lens[j]) this.unlink(j);
    [data[i], data[j]] = [data[j], data[i]];
    swapEntries(lens, i, j);
    if (lens[i]) this.append(i);
    if (lens[j]) this.append(j);
    if (i > j) [i, j] = [j, i];
    for (let h = this.next[l]!; h !== l; ) {
      const after = this.next[h]!;
      if (lens[h]! > i) {
        if (lens[h]! > j) {
          const r = data[h]!;
          const t = r[i]!;
          r[i] = r[j]!;
          r[j] = t;
        } else {
          // The row covers i but not j: it cannot be kept consistent, so it goes (as libsvm does).
          this.unlink(h);
          this.free += lens[h]!;
          data[h] = undefined;
          lens[h] = 0;
        }
      }
      h = after;
    }
  }
}

/** Q for a C-SVC over data rows `rows` (one variable each) with labels y ∈ {−1, +1}. */
export function svcQ(dense: DenseRows, kernel: KernelSpec, rows: Int32Array, y: Int8Array, cacheBytes: number): QMatrix & { cache: QCache } {
  const l = rows.length;
  const perm = Int32Array.from(rows);
  const yq = Int8Array.from(y);
  const sq = dense.sq;
  const QD = Float64Array.from(perm, (r) => kernelDiag(kernel, sq[r]!));
  const scratch = new Float64Array(l);
  const cache = new QCache(l, cacheBytes);
  return {
    QD,
    cache,
    getQ(i, len) {
      const start = cache.request(i, len);
      const row = cache.row(i);
      if (start < len) {
        const ri = perm[i]!;
        dense.dots(ri, perm, start, len, scratch);
        dotsToKernel(kernel, sq[ri]!, sq, perm, start, len, scratch);
        const yi = yq[i]!;
        for (let t = start; t < len; t++) row[t] = yi * yq[t]! * scratch[t - start]!;
      }
      return row;
    },
    swapIndex(i, j) {
      cache.swapIndex(i, j);
      swapEntries(perm, i, j);
      swapEntries(yq, i, j);
      swapEntries(QD, i, j);
    },
  };
}

/**
 * Q for ε-SVR's 2l variables (αᵢ with sign +1, αᵢ* with sign −1, both on data row i mod l): whole kernel rows of
 * the l data rows come from the LRU `kernel`, and each request is gathered into one of two alternating buffers.
 */
export function svrQ(kernel: KernelRows, l: number): QMatrix {
  const sign = new Int8Array(2 * l), index = new Int32Array(2 * l), QD = new Float64Array(2 * l);
  for (let k = 0; k < l; k++) {
    sign[k] = 1;
    sign[k + l] = -1;
    index[k] = index[k + l] = k;
    QD[k] = QD[k + l] = kernel.diag(k);
  }
  const buffers = [new Float32Array(2 * l), new Float32Array(2 * l)];
  let next = 0;
  return {
    QD,
    getQ(i, len) {
      const K = kernel.row(index[i]!);
      const buf = buffers[next]!;
      next ^= 1;
      const si = sign[i]!;
      for (let j = 0; j < len; j++) buf[j] = si * sign[j]! * K[index[j]!]!;
      return buf;
    },
    swapIndex(i, j) {
      swapEntries(sign, i, j);
      swapEntries(index, i, j);
      swapEntries(QD, i, j);
    },
  };
}

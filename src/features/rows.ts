// Feature rows with labels, read by index in any order: in memory, from the on-disk store, pooled on the fly, or
// computed on demand (augmentation). Trainers read batches through this one interface, so memory stays bounded by
// the batch, not the dataset.

export interface FeatureRows {
  readonly count: number;
  /** Values per row. */
  readonly dim: number;
  /** Class index per row. */
  readonly labels: Int32Array;
  /** Source image per row (empty when rows have no files behind them). */
  readonly paths: readonly string[];
  /** Copy rows order[from..to) into `out` row-major and return the filled part (length (to - from) * dim). */
  read(order: ArrayLike<number>, from: number, to: number, out: Float32Array): Promise<Float32Array>;
}

/** A feature matrix held in memory, e.g. [count, dim] row-major. */
export interface FeatureMatrix {
  x: Float32Array;
  labels: Int32Array;
  count: number;
  dim: number;
  paths: string[];
}

export function memoryRows(m: FeatureMatrix): FeatureRows {
  return {
    count: m.count,
    dim: m.dim,
    labels: m.labels,
    paths: m.paths,
    async read(order, from, to, out) {
      const d = m.dim;
      for (let i = from; i < to; i++) out.set(m.x.subarray(order[i]! * d, order[i]! * d + d), (i - from) * d);
      return out.subarray(0, (to - from) * d);
    },
  };
}

/** No rows, only a width (a trainer whose rows come per epoch still needs to know it). */
export function emptyRows(dim: number): FeatureRows {
  return { count: 0, dim, labels: new Int32Array(0), paths: [], read: async (_order, _from, _to, out) => out.subarray(0, 0) };
}

/** 0, 1, …, n-1: the identity order for reading rows as stored. */
export function identityOrder(n: number): Uint32Array {
  const o = new Uint32Array(n);
  for (let i = 0; i < n; i++) o[i] = i;
  return o;
}

/** Every row in a fixed-size buffer, in order: for evaluation passes. The yielded arrays are reused. */
export async function* rowBatches(rows: FeatureRows, batchSize: number): AsyncGenerator<{ x: Float32Array; labels: Int32Array; from: number; n: number }> {
  const order = identityOrder(rows.count);
  const buf = new Float32Array(batchSize * rows.dim);
  for (let from = 0; from < rows.count; from += batchSize) {
    const to = Math.min(rows.count, from + batchSize);
    const x = await rows.read(order, from, to, buf);
    yield { x, labels: rows.labels.subarray(from, to), from, n: to - from };
  }
}

/** All rows in memory (for small features: classic models on 512 pooled values, tune's trials). */
export async function toMatrix(rows: FeatureRows): Promise<FeatureMatrix> {
  const x = new Float32Array(rows.count * rows.dim);
  await rows.read(identityOrder(rows.count), 0, rows.count, x);
  return { x, labels: rows.labels, count: rows.count, dim: rows.dim, paths: [...rows.paths] };
}

/** Global average pooling of [h, w, c] rows to [c] while reading (the GAP head's input), no second copy of the data. */
export function pooledRows(rows: FeatureRows, featureShape: readonly number[]): FeatureRows {
  const [h, w, c] = featureShape as [number, number, number];
  if (h * w * c !== rows.dim) throw new Error(`pooledRows: rows of ${rows.dim} values are not [${featureShape.join(', ')}]`);
  let scratch = new Float32Array(0);
  return {
    count: rows.count,
    dim: c,
    labels: rows.labels,
    paths: rows.paths,
    async read(order, from, to, out) {
      const n = to - from;
      if (scratch.length < n * rows.dim) scratch = new Float32Array(n * rows.dim);
      const raw = await rows.read(order, from, to, scratch);
      const dst = out.subarray(0, n * c);
      dst.fill(0);
      for (let r = 0; r < n; r++) {
        const base = r * rows.dim;
        const o = r * c;
        for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) dst[o + k]! += raw[base + p * c + k]!;
        for (let k = 0; k < c; k++) dst[o + k]! /= h * w;
      }
      return dst;
    },
  };
}

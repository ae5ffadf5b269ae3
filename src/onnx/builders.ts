// Small builders for ONNX graph pieces (nodes, attributes, initializers, value infos) shared by the layer
// converter and the QDQ quantizer; a GraphBuilder hands out unique names so generated graphs never collide.
import { AttributeType, DataType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

export type AttrValue = number | string | number[] | string[] | TensorProto | { float: number } | { floats: number[] };

/**
 * One attribute. Numbers are INT when integral; wrap in `{ float }` / `{ floats }` to force FLOAT(S) for
 * integral-looking float attributes (e.g. `alpha: { float: 1 }`).
 */
export function attr(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      return { name, type: AttributeType.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) };
    }
    const nums = value as number[];
    return nums.every(Number.isInteger) ? { name, type: AttributeType.INTS, ints: nums } : { name, type: AttributeType.FLOATS, floats: nums };
  }
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  return { name, type: AttributeType.TENSOR, t: value };
}

export function makeNode(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue | undefined> = {}, name?: string): NodeProto {
  const attribute = Object.entries(attrs)
    .filter((e): e is [string, AttrValue] => e[1] !== undefined)
    .map(([k, v]) => attr(k, v));
  return { ...(name ? { name } : {}), opType, input: inputs, output: outputs, ...(attribute.length ? { attribute } : {}) };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  // ONNX raw_data is little-endian, as are all platforms Node runs on.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function floatTensor(name: string, dims: number[], values: Float32Array | number[]): TensorProto {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  checkSize(name, dims, data.length);
  return { name, dims, dataType: DataType.FLOAT, rawData: bytesOf(data) };
}

export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  checkSize(name, dims, values.length);
  return { name, dims, dataType: DataType.INT64, rawData: bytesOf(BigInt64Array.from(values.map((v) => BigInt(v)))) };
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  checkSize(name, dims, values.length);
  return { name, dims, dataType: DataType.INT8, rawData: bytesOf(values) };
}

export function uint8Tensor(name: string, dims: number[], values: Uint8Array): TensorProto {
  checkSize(name, dims, values.length);
  return { name, dims, dataType: DataType.UINT8, rawData: bytesOf(values) };
}

export function int32Tensor(name: string, dims: number[], values: Int32Array): TensorProto {
  checkSize(name, dims, values.length);
  return { name, dims, dataType: DataType.INT32, rawData: bytesOf(values) };
}

function checkSize(name: string, dims: number[], n: number): void {
  const expected = dims.reduce((a, d) => a * d, 1);
  if (expected !== n) throw new Error(`initializer ${name}: dims [${dims}] need ${expected} values, got ${n}`);
}

/** Float32 values of a FLOAT initializer (raw_data or float_data). */
export function tensorFloats(t: TensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor ${t.name} is not float32 (data type ${t.dataType})`);
  if (t.rawData && t.rawData.byteLength) {
    // Copy: raw_data may be an unaligned view (a Node Buffer, whose slice() does not copy) into the decoded bytes.
    const copy = new Uint8Array(t.rawData.byteLength);
    copy.set(t.rawData);
    return new Float32Array(copy.buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** A tensor value info; string dims are symbolic (dim_param), numbers fixed, -1 unknown. */
export function valueInfo(name: string, elemType: number, dims: Array<number | string>): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : d >= 0 ? { dimValue: d } : {})) },
      },
    },
  };
}

/** Accumulates a graph and hands out unique tensor/node names. */
export interface GraphBuilder {
  readonly nodes: NodeProto[];
  readonly initializers: TensorProto[];
  /** A fresh name starting with `base` (suffixed if taken). */
  unique(base: string): string;
  /** Add a node; `outputs` are taken verbatim (callers pass names from unique()). Returns the first output. */
  node(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, AttrValue | undefined>, name?: string): string;
  /** Add an initializer under a fresh name derived from `base`; returns its name. */
  initializer(base: string, make: (name: string) => TensorProto): string;
  /** A float constant (initializer), deduplicated for scalars so e.g. Clip bounds are shared. */
  floatConst(base: string, dims: number[], values: Float32Array | number[]): string;
  int64Const(base: string, dims: number[], values: number[]): string;
}

export function graphBuilder(reserved: Iterable<string> = []): GraphBuilder {
  const taken = new Set<string>(reserved);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const scalarCache = new Map<string, string>();
  const unique = (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  const b: GraphBuilder = {
    nodes,
    initializers,
    unique,
    node(opType, inputs, outputs, attrs = {}, name) {
      nodes.push(makeNode(opType, inputs, outputs, attrs, unique(name ?? `${outputs[0] ?? opType}_node`)));
      return outputs[0]!;
    },
    initializer(base, make) {
      const name = unique(base);
      initializers.push(make(name));
      return name;
    },
    floatConst(base, dims, values) {
      const small = values.length <= 1;
      const key = small ? `f:${dims.join(',')}:${Array.from(values).join(',')}` : '';
      if (small && scalarCache.has(key)) return scalarCache.get(key)!;
      const name = b.initializer(base, (n) => floatTensor(n, dims, values));
      if (small) scalarCache.set(key, name);
      return name;
    },
    int64Const(base, dims, values) {
      const key = `i:${dims.join(',')}:${values.join(',')}`;
      if (scalarCache.has(key)) return scalarCache.get(key)!;
      const name = b.initializer(base, (n) => int64Tensor(n, dims, values));
      scalarCache.set(key, name);
      return name;
    },
  };
  return b;
}

export function emptyGraph(name: string): GraphProto {
  return { name, node: [], initializer: [], input: [], output: [] };
}

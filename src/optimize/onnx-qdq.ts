// Static int8 quantization of an ONNX model in QDQ form (QuantizeLinear/DequantizeLinear pairs), the format ONNX
// Runtime fuses into QLinearConv/QLinearMatMul: per-channel symmetric int8 weights, uint8 activations from min/max or
// percentile calibration (the float graph run by ORT with every calibrated tensor exposed as an output).
import { MlctlError } from '../errors.js';
import { DataType, decodeModel, encodeModel, floatTensor, int32Tensor, int8Tensor, makeNode, tensorFloats, uint8Tensor, valueInfo, type ModelProto, type NodeProto, type TensorProto } from '../onnx/index.js';
import { ort, onnxSessionOptions } from '../runtime/ort.js';

export interface QdqOptions {
  /** Calibration batches for the model's (first) input, already preprocessed like inference input (NHWC float32). */
  calibration: Array<{ data: Float32Array; batch: number }>;
  /** Per-channel weight scales (default true); false = one scale per weight tensor. */
  perChannel?: boolean;
  /** Node names to leave in float (e.g. the classifier layer when its accuracy matters most). */
  excludeNodes?: string[];
  /** Leave the first and/or last layers (edgeLayerNodes) in float. */
  floatLayers?: { input?: boolean; output?: boolean };
  threads?: number;
  /** Called after each calibration chunk with examples done / total (for createProgress). */
  onProgress?: (done: number, total: number) => void;
  /** ModelProto.doc_string of the int8 model (the float model's is replaced: it no longer describes this graph). */
  docString?: string;
  /** Activation ranges: min/max of the calibration values (default), or the range holding `percentile` % of them. */
  activationRange?: { percentile: number };
}

/** Examples per calibration run: every calibrated activation comes back as an output (VGG16 at 224: ~60 MB each). */
const CALIBRATION_CHUNK = 4;

export interface QdqResult {
  bytes: Uint8Array;
  /** Conv/MatMul nodes now fed by int8 weights. */
  quantizedNodes: number;
  /** Activation tensors given a uint8 QuantizeLinear/DequantizeLinear pair. */
  quantizedTensors: number;
  /** Calibrated [min, max] per activation tensor (with activationRange, the percentile's range). */
  ranges: Record<string, [number, number]>;
  /** Conv/MatMul nodes left in float, and why. */
  floatNodes: Array<{ node: string; reason: string }>;
}

/** Ops whose output range lies within their input range: their output reuses the input's quantization parameters,
 * so ORT can run them directly on uint8 (and drop the Q/DQ pair around them). */
const RANGE_PRESERVING = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Transpose', 'Reshape', 'Flatten', 'Identity']);
/** Activations folded into the preceding Conv/MatMul by ORT when their output is quantized (Relu→Q, Clip→Q fusions). */
const FOLDABLE_ACTIVATIONS = new Set(['Relu', 'Clip']);

interface QParams {
  scale: number;
  zeroPoint: number;
}

function activationParams(min: number, max: number): QParams {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Symmetric int8 weights with one scale per slice along `axis` (or one for all). */
function quantizeWeights(w: Float32Array, dims: number[], axis: number | undefined): { q: Int8Array; scales: Float32Array } {
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) maxAbs[channelOf(i)] = Math.max(maxAbs[channelOf(i)]!, Math.abs(w[i]!));
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / scales[channelOf(i)]!)));
  return { q, scales };
}

const WEIGHTED = new Set(['Conv', 'MatMul', 'Gemm']);

/**
 * The model's first or last layers: the Conv/MatMul/Gemm nodes reached from a graph input (`'input'`), or from which a
 * graph output is reached (`'output'`), without passing through another of them — what lies between is layout,
 * activations, concatenation, decoding. A detection head's last convs are its output layers: their outputs are the
 * scores, sizes and offsets themselves.
 */
export function edgeLayerNodes(proto: ModelProto, edge: 'input' | 'output'): NodeProto[] {
  const g = proto.graph;
  const next = new Map<string, NodeProto[]>();
  const link = (t: string, n: NodeProto) => next.set(t, [...(next.get(t) ?? []), n]);
  for (const n of g.node) {
    if (edge === 'output') for (const o of n.output) link(o, n);
    else for (const i of n.input) if (i) link(i, n);
  }
  const inits = new Set(g.initializer.map((t) => t.name));
  const stack = edge === 'output' ? g.output.map((o) => o.name) : g.input.map((i) => i.name).filter((n) => !inits.has(n));
  const found = new Set<NodeProto>();
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const n of next.get(t) ?? []) {
      if (WEIGHTED.has(n.opType)) found.add(n); // a weighted node ends its branch
      else stack.push(...(edge === 'output' ? n.input : n.output).filter(Boolean));
    }
  }
  return g.node.filter((n) => found.has(n));
}

/** How activation ranges are calibrated, in the words the model's metadata and the package manifest use. */
export const rangeWords = (opts: Pick<QdqOptions, 'activationRange'>) => (opts.activationRange ? `${opts.activationRange.percentile} percentile` : 'min/max');

/** Histogram bins of the percentile pass, between each tensor's calibrated min and max (ORT's default is 2048 on |x|). */
const PERCENTILE_BINS = 4096;

/**
 * Run the float model with `tensors` exposed as outputs over the calibration batches: min/max per tensor, then with
 * a percentile p, a second pass histograms each tensor between its min and max and cuts (100 − p) % of the values off
 * each end (ORT's CalibrationMethod.Percentile, TensorRT's percentile calibrator).
 */
async function calibrate(proto: ModelProto, tensors: string[], opts: QdqOptions): Promise<Map<string, [number, number]>> {
  const probe: ModelProto = { ...proto, graph: { ...proto.graph, output: [...proto.graph.output, ...tensors.filter((t) => !proto.graph.output.some((o) => o.name === t)).map((t) => valueInfo(t, DataType.FLOAT, []))] } };
  // valueInfo with an empty dim list would declare a scalar: drop the shape so ORT infers it.
  for (const o of probe.graph.output) if (tensors.includes(o.name) && o.type?.tensorType?.shape?.dim?.length === 0) delete o.type.tensorType.shape;
  const session = await ort.InferenceSession.create(encodeModel(probe), { ...onnxSessionOptions(opts.threads), graphOptimizationLevel: 'basic' });
  const ranges = new Map<string, [number, number]>();
  try {
    const input = proto.graph.input[0]!;
    const perExample = (input.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => d.dimValue ?? 0);
    if (perExample.some((d) => !d)) throw new MlctlError('OPTION_CONFLICT', [`the model input ${input.name} needs a static shape beyond the batch dimension for calibration`]);
    const size = perExample.reduce((a, d) => a * d, 1);
    for (const { data, batch } of opts.calibration) {
      if (data.length !== batch * size) throw new MlctlError('OPTION_INVALID', [`calibration batch has ${data.length} values, expected ${batch} x [${perExample.join(', ')}]`]);
    }
    const percentile = opts.activationRange?.percentile;
    const passes = percentile === undefined ? 1 : 2;
    const total = opts.calibration.reduce((a, c) => a + c.batch, 0);
    let done = 0;
    /** One pass over the calibration examples, `visit` called with every tensor's values of each chunk. */
    const pass = async (visit: (t: string, v: Float32Array) => void) => {
      for (const { data, batch } of opts.calibration) for (let start = 0; start < batch; start += CALIBRATION_CHUNK) {
        const n = Math.min(CALIBRATION_CHUNK, batch - start);
        const chunk = data.subarray(start * size, (start + n) * size);
        const out = await session.run({ [input.name]: new ort.Tensor('float32', chunk, [n, ...perExample]) }, tensors);
        done += n;
        opts.onProgress?.(done, total * passes);
        for (const t of tensors) visit(t, out[t]!.data as Float32Array);
      }
    };
    await pass((t, v) => {
      let [lo, hi] = ranges.get(t) ?? [Infinity, -Infinity];
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      ranges.set(t, [lo, hi]);
    });
    if (percentile !== undefined) {
      const hists = new Map(tensors.map((t) => [t, new Float64Array(PERCENTILE_BINS)]));
      await pass((t, v) => {
        const [lo, hi] = ranges.get(t)!;
        const h = hists.get(t)!;
        const perBin = hi > lo ? (PERCENTILE_BINS - 1) / (hi - lo) : 0;
        for (let i = 0; i < v.length; i++) h[Math.round((v[i]! - lo) * perBin)]++;
      });
      for (const t of tensors) ranges.set(t, percentileRange(hists.get(t)!, ranges.get(t)!, percentile));
    }
  } finally {
    await session.release();
  }
  return ranges;
}

/** [lo, hi] narrowed to the bins that hold the middle `percentile` % of the values (bin i spans lo + i·width). */
function percentileRange(h: Float64Array, [lo, hi]: [number, number], percentile: number): [number, number] {
  const cut = (h.reduce((a, x) => a + x, 0) * (100 - percentile)) / 100;
  let i = 0;
  for (let below = 0; i < h.length - 1 && below + h[i]! <= cut; i++) below += h[i]!;
  let j = h.length - 1;
  for (let above = 0; j > i && above + h[j]! <= cut; j--) above += h[j]!;
  const width = (hi - lo) / (h.length - 1);
  return [lo + i * width, lo + j * width];
}

/**
 * Quantize Conv and MatMul nodes with constant weights to QDQ int8. Returns the new model bytes; the input model
 * is not modified. Graph inputs/outputs stay float32, so callers and serving code are unchanged.
 */
export async function quantizeOnnxQdq(model: Uint8Array, opts: QdqOptions): Promise<QdqResult> {
  if (!opts.calibration.length) throw new MlctlError('OPTION_REQUIRED', ['int8 quantization needs calibration data: pass at least one batch of representative inputs']);
  const proto = decodeModel(model);
  const opset = proto.opsetImport.find((o) => !o.domain)?.version ?? 0;
  if (opset < 13) throw new MlctlError('OPTION_CONFLICT', [`per-channel QDQ quantization needs ai.onnx opset 13 or later; this model uses ${opset}`]);
  const g = proto.graph;
  const inits = new Map(g.initializer.map((t) => [t.name!, t]));
  const producers = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const o of n.output) producers.set(o, n);
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const exclude = new Set(opts.excludeNodes ?? []);
  const floatNodes = (opts.excludeNodes ?? []).map((node) => ({ node, reason: 'excluded by the caller' }));
  for (const edge of ['input', 'output'] as const) {
    if (!opts.floatLayers?.[edge]) continue;
    for (const n of edgeLayerNodes(proto, edge)) if (n.name && !exclude.has(n.name)) {
      exclude.add(n.name);
      floatNodes.push({ node: n.name, reason: edge === 'input' ? 'first layer: reads the picture itself' : 'output layer: its outputs are the model\'s results' });
    }
  }

  const isFloatInit = (name: string | undefined, rank: number) => {
    const t = name ? inits.get(name) : undefined;
    return !!t && t.dataType === DataType.FLOAT && (t.dims?.length ?? 0) === rank;
  };
  const targets = g.node.filter((n) => !exclude.has(n.name ?? '') && ((n.opType === 'Conv' && isFloatInit(n.input[1], 4)) || (n.opType === 'MatMul' && isFloatInit(n.input[1], 2) && !inits.has(n.input[0]!))));

  // Activation tensors to quantize: each target's data input, and its output (after a foldable activation).
  const activations = new Set<string>();
  const outputOf = (n: NodeProto) => {
    let t = n.output[0]!;
    const next = consumers.get(t) ?? [];
    if (n.opType === 'Conv' && next.length === 1 && FOLDABLE_ACTIVATIONS.has(next[0]!.opType)) t = next[0]!.output[0]!;
    return t;
  };
  for (const n of targets) {
    activations.add(n.input[0]!);
    const out = outputOf(n);
    if (!graphOutputs.has(out)) activations.add(out);
  }

  // Calibrate everything, then let range-preserving ops inherit their input's parameters.
  const calibrated = await calibrate(proto, [...activations], opts);
  const params = new Map<string, QParams>();
  const nodeIndex = new Map(g.node.map((n, i) => [n, i]));
  const ordered = [...activations].sort((a, b) => (producers.has(a) ? nodeIndex.get(producers.get(a)!)! : -1) - (producers.has(b) ? nodeIndex.get(producers.get(b)!)! : -1));
  const inherited = (t: string): QParams | undefined => {
    for (let cur = t, p = producers.get(cur); p && RANGE_PRESERVING.has(p.opType); p = producers.get(cur)) {
      cur = p.input[0]!;
      if (params.has(cur)) return params.get(cur);
    }
    return undefined;
  };
  for (const t of ordered) {
    const [lo, hi] = calibrated.get(t)!;
    params.set(t, inherited(t) ?? activationParams(lo, hi));
  }

  const prologue: NodeProto[] = [];
  const newInits: TensorProto[] = [];
  const rename = new Map<string, string>();
  const qdqAfter = new Map<string, NodeProto[]>();
  for (const t of ordered) {
    const p = params.get(t)!;
    const [s, z, q, dq] = [`${t}_scale`, `${t}_zero_point`, `${t}_quantized`, `${t}_dequantized`];
    newInits.push(floatTensor(s, [], [p.scale]), uint8Tensor(z, [], Uint8Array.of(p.zeroPoint)));
    const pair = [makeNode('QuantizeLinear', [t, s, z], [q], {}, `${t}_QuantizeLinear`), makeNode('DequantizeLinear', [q, s, z], [dq], {}, `${t}_DequantizeLinear`)];
    const producer = producers.get(t);
    if (producer) qdqAfter.set(t, pair);
    else prologue.push(...pair); // a graph input
    rename.set(t, dq);
  }

  // Weights (and Conv biases) become int8/int32 initializers behind DequantizeLinear.
  const perChannel = opts.perChannel !== false;
  const replacedInits = new Set<string>();
  for (const n of targets) {
    const w = inits.get(n.input[1]!)!;
    const axis = perChannel ? (n.opType === 'Conv' ? 0 : 1) : undefined;
    const { q, scales } = quantizeWeights(tensorFloats(w), w.dims!, axis);
    const base = w.name!;
    const zeros = new Int8Array(scales.length);
    const scaleDims = axis === undefined ? [] : [scales.length];
    newInits.push(int8Tensor(`${base}_quantized`, w.dims!, q), floatTensor(`${base}_scale`, scaleDims, scales), int8Tensor(`${base}_zero_point`, scaleDims, zeros));
    prologue.push(makeNode('DequantizeLinear', [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], [`${base}_dequantized`], axis === undefined ? {} : { axis }, `${base}_DequantizeLinear`));
    n.input[1] = `${base}_dequantized`;
    replacedInits.add(base);
    if (n.opType === 'Conv' && n.input[2] && isFloatInit(n.input[2], 1)) {
      // int32 bias with scale = input scale x weight scale, as QLinearConv expects.
      const b = inits.get(n.input[2])!;
      const inScale = params.get(n.input[0]!)!.scale;
      const bv = tensorFloats(b);
      const bs = Float32Array.from(bv, (_, c) => inScale * scales[axis === undefined ? 0 : c]!);
      const bq = Int32Array.from(bv, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bs[c]!))));
      const bbase = b.name!;
      newInits.push(int32Tensor(`${bbase}_quantized`, [bv.length], bq), floatTensor(`${bbase}_scale`, [bv.length], bs), int32Tensor(`${bbase}_zero_point`, [bv.length], new Int32Array(bv.length)));
      prologue.push(makeNode('DequantizeLinear', [`${bbase}_quantized`, `${bbase}_scale`, `${bbase}_zero_point`], [`${bbase}_dequantized`], { axis: 0 }, `${bbase}_DequantizeLinear`));
      n.input[2] = `${bbase}_dequantized`;
      replacedInits.add(bbase);
    }
  }

  // Rewire every consumer to the dequantized tensors and splice the Q/DQ pairs in after their producers.
  const nodes: NodeProto[] = [...prologue];
  for (const n of g.node) {
    n.input = n.input.map((i) => rename.get(i) ?? i);
    nodes.push(n);
    for (const o of n.output) nodes.push(...(qdqAfter.get(o) ?? []));
  }
  const stillUsed = new Set(nodes.flatMap((n) => n.input));
  g.node = nodes;
  g.initializer = [...g.initializer.filter((t) => !replacedInits.has(t.name!) || stillUsed.has(t.name!)), ...newInits];
  if (opts.docString !== undefined) proto.docString = opts.docString;
  proto.metadataProps = [...(proto.metadataProps ?? []).filter((p) => p.key !== 'mlctl.quantization'), { key: 'mlctl.quantization', value: JSON.stringify({ format: 'QDQ', weights: perChannel ? 'int8 symmetric per-channel' : 'int8 symmetric per-tensor', activations: `uint8 asymmetric ${rangeWords(opts)}`, ...(floatNodes.length ? { floatNodes: floatNodes.map((f) => f.node) } : {}), calibrationBatches: opts.calibration.length }) }];
  const ranges: Record<string, [number, number]> = {};
  for (const [t, r] of calibrated) ranges[t] = r;
  return { bytes: encodeModel(proto), quantizedNodes: targets.length, quantizedTensors: ordered.length, ranges, floatNodes };
}

// ONNX exports of quantized packages at the package's size: a float16 package's weights become FLOAT16 initializers
// behind Cast (ONNX Runtime computes in fp32), a uint8 package's become weight-only DequantizeLinear. Each initializer
// is rewritten only when its stored form reproduces the float values the package decodes to; anything else stays fp32.
import { DataType, floatTensor, makeNode, tensorFloats, uint8Tensor, type ModelProto, type NodeProto, type TensorProto } from '../onnx/index.js';
import type { PackageWeight, WeightStorage } from '../artifacts/variant.js';
import { float16BitsToNumber, float32ToFloat16Bits } from '../artifacts/weight-quant.js';

export interface StorageReport {
  storage: WeightStorage;
  /** Initializers stored in the reduced form, and float initializers left as fp32 (name → why). */
  converted: number;
  keptFp32: Record<string, string>;
  /** Largest |stored − package value| over all converted weights (0 for fp16: the conversion is exact). */
  maxAbsError: number;
  initializerBytes: { before: number; after: number };
}

/** Float constants smaller than this are left as they are (Clip bounds, shapes): the Cast/DQ would cost more. */
const MIN_ELEMENTS = 16;

function count(t: TensorProto): number {
  return (t.dims ?? []).reduce((a, d) => a * d, 1);
}

function bytesOf(t: TensorProto): number {
  return t.rawData?.byteLength ?? (t.floatData?.length ?? 0) * 4;
}

/** The storage a package's weights manifest calls for: the dtype of its quantized entries (fp32 when none are). */
/** Rewire a graph: `prologue` nodes first (they produce the names the initializers had), then the original nodes. */
function splice(proto: ModelProto, replaced: Set<string>, added: TensorProto[], prologue: NodeProto[]): void {
  const g = proto.graph;
  g.initializer = [...g.initializer.filter((t) => !replaced.has(t.name!)), ...added];
  g.node = [...prologue, ...g.node];
  // Initializers listed as graph inputs (old IRs) must not stay declared once they are node outputs.
  g.input = g.input.filter((v) => !replaced.has(v.name));
}

function toFp16(proto: ModelProto, report: StorageReport): void {
  const replaced = new Set<string>();
  const added: TensorProto[] = [];
  const prologue: NodeProto[] = [];
  for (const t of proto.graph.initializer) {
    if (t.dataType !== DataType.FLOAT || count(t) < MIN_ELEMENTS) continue;
    const v = tensorFloats(t);
    const half = new Uint16Array(v.length);
    let exact = true;
    for (let i = 0; i < v.length && exact; i++) {
      half[i] = float32ToFloat16Bits(v[i]!);
      exact = Object.is(float16BitsToNumber(half[i]!), v[i]!) || (Number.isNaN(v[i]!) && Number.isNaN(float16BitsToNumber(half[i]!)));
    }
    if (!exact) {
      report.keptFp32[t.name!] = 'values are not all float16-exact (computed by the conversion, not stored by the package)';
      continue;
    }
    const name = `${t.name}_fp16`;
    added.push({ name, dims: t.dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(half.buffer) });
    prologue.push(makeNode('Cast', [name], [t.name!], { to: DataType.FLOAT }, `${t.name}_Cast`));
    replaced.add(t.name!);
    report.converted++;
  }
  splice(proto, replaced, added, prologue);
}

/** Candidates for an initializer: the manifest entry of the same name (converter names are `<layer>/<weight>`), then any of equal size. */
function candidatesFor(t: TensorProto, weights: PackageWeight[]): PackageWeight[] {
  const n = count(t);
  const sized = weights.filter((w) => w.scale !== undefined && w.shape.reduce((a, d) => a * d, 1) === n);
  const named = sized.filter((w) => t.name === w.name || t.name!.endsWith(`/${w.name}`) || t.name!.replace(/_\d+$/, '') === w.name);
  return [...named, ...sized.filter((w) => !named.includes(w))];
}

interface Affine {
  q: Uint8Array | Uint16Array;
  scale: number;
  min: number;
  /** Integer zero point when min = −zp·scale (then DequantizeLinear alone reproduces the values). */
  zeroPoint?: number;
  maxAbsError: number;
}

/** Recover the codes q of float values decoded as q * scale + min; undefined when they do not fit within rounding. */
function recover(v: Float32Array, w: PackageWeight, qmax: number): Affine | undefined {
  const scale = w.scale!;
  const min = w.min!;
  if (!(scale > 0) || !Number.isFinite(min)) return undefined;
  const zp = -min / scale;
  const zeroPoint = Math.abs(zp - Math.round(zp)) < 1e-6 && Math.round(zp) >= 0 && Math.round(zp) <= qmax ? Math.round(zp) : undefined;
  const scale32 = Math.fround(scale);
  const min32 = Math.fround(min);
  const q = qmax === 255 ? new Uint8Array(v.length) : new Uint16Array(v.length);
  let maxAbs = 0;
  for (const x of v) maxAbs = Math.max(maxAbs, Math.abs(x));
  // Within a few float32 rounding steps of the largest magnitude involved (value or one step of the grid).
  const tolerance = Math.max(maxAbs, scale * qmax, Math.abs(min)) * 2 ** -21;
  let maxErr = 0;
  for (let i = 0; i < v.length; i++) {
    const code = Math.round((v[i]! - min) / scale);
    if (code < 0 || code > qmax) return undefined;
    q[i] = code;
    // What ONNX Runtime computes: DequantizeLinear (x − zp)·scale, or x·scale then + min, in float32.
    const stored = zeroPoint !== undefined ? Math.fround((code - zeroPoint) * scale32) : Math.fround(Math.fround(code * scale32) + min32);
    const err = Math.abs(stored - v[i]!);
    if (err > tolerance) return undefined;
    maxErr = Math.max(maxErr, err);
  }
  return { q, scale, min, zeroPoint, maxAbsError: maxErr };
}

function toAffine(proto: ModelProto, weights: PackageWeight[], storage: 'uint8' | 'uint16', report: StorageReport): void {
  const qmax = storage === 'uint8' ? 255 : 65535;
  const replaced = new Set<string>();
  const added: TensorProto[] = [];
  const prologue: NodeProto[] = [];
  for (const t of proto.graph.initializer) {
    if (t.dataType !== DataType.FLOAT || count(t) < MIN_ELEMENTS) continue;
    const v = tensorFloats(t);
    let fit: Affine | undefined;
    for (const w of candidatesFor(t, weights)) if ((fit = recover(v, w, qmax))) break;
    if (!fit) {
      report.keptFp32[t.name!] = `no ${storage} weight of the package reproduces its values (computed by the conversion)`;
      continue;
    }
    const base = t.name!;
    const node = (op: string, ins: string[], out: string, attrs = {}) => prologue.push(makeNode(op, ins, [out], attrs, `${out}_${op}`));
    if (storage === 'uint8') {
      // Weight-only QDQ: int8 runtimes and TensorRT recognise DequantizeLinear on a constant as a quantized weight.
      added.push(uint8Tensor(`${base}_quantized`, t.dims!, fit.q as Uint8Array), floatTensor(`${base}_scale`, [], [fit.scale]), uint8Tensor(`${base}_zero_point`, [], Uint8Array.of(fit.zeroPoint ?? 0)));
      if (fit.zeroPoint !== undefined) node('DequantizeLinear', [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], base);
      else {
        // A one-sided range (all weights of one sign): TF.js decodes q·scale + min with a min that is no multiple of scale.
        node('DequantizeLinear', [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], `${base}_dequantized`);
        added.push(floatTensor(`${base}_min`, [], [fit.min]));
        node('Add', [`${base}_dequantized`, `${base}_min`], base);
      }
    } else {
      // DequantizeLinear takes uint16 only from opset 21: the same affine map as Cast, Mul, Add.
      const q = fit.q as Uint16Array;
      added.push({ name: `${base}_quantized`, dims: t.dims, dataType: DataType.UINT16, rawData: new Uint8Array(q.buffer, q.byteOffset, q.byteLength) });
      added.push(floatTensor(`${base}_scale`, [], [fit.scale]), floatTensor(`${base}_min`, [], [fit.min]));
      node('Cast', [`${base}_quantized`], `${base}_codes`, { to: DataType.FLOAT });
      node('Mul', [`${base}_codes`, `${base}_scale`], `${base}_scaled`);
      node('Add', [`${base}_scaled`, `${base}_min`], base);
    }
    replaced.add(base);
    report.converted++;
    report.maxAbsError = Math.max(report.maxAbsError, fit.maxAbsError);
  }
  splice(proto, replaced, added, prologue);
}

/**
 * Store the graph's float weights as the package stores them (in place). The graph was converted from the package's
 * decoded (float32) weights, so every value it holds is one the package's encoding produced; conversion arithmetic
 * (permutes are exact, folds are not) decides per initializer, checked value by value.
 */
export function storeWeightsAs(proto: ModelProto, weights: PackageWeight[], storage: WeightStorage): StorageReport {
  const before = proto.graph.initializer.reduce((a, t) => a + bytesOf(t), 0);
  const report: StorageReport = { storage, converted: 0, keptFp32: {}, maxAbsError: 0, initializerBytes: { before, after: before } };
  if (storage === 'fp16') toFp16(proto, report);
  else if (storage === 'uint8' || storage === 'uint16') toAffine(proto, weights, storage, report);
  report.initializerBytes.after = proto.graph.initializer.reduce((a, t) => a + bytesOf(t), 0);
  return report;
}

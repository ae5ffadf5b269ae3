// TF.js weight quantization as the tfjs converter writes it (tensorflowjs/quantization.py): affine uint8/uint16
// with a zero-exact nudged min, or IEEE half floats, recorded in weightsManifest so stock tf.loadLayersModel decodes it.
import type * as tf from '@tensorflow/tfjs';

export const WEIGHT_DTYPES = ['float16', 'uint8', 'uint16'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export interface AffineParams {
  min: number;
  scale: number;
}

const QUANT_MAX: Record<'uint8' | 'uint16', number> = { uint8: 255, uint16: 65535 };

/** numpy's np.round: round half to even (the converter's rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The converter's range: scale = (max − min) / qmax; when min ≤ 0 ≤ max the zero point is rounded to an integer
 * and min moved to −zp·scale, so q = zp decodes to exactly 0 (zero padding and pruned weights stay exact).
 * Arithmetic in float64 like the converter; `min`/`scale` are stored as float64 JSON numbers.
 */
export function affineRange(minVal: number, maxVal: number, dtype: 'uint8' | 'uint16'): { scale: number; min: number; max: number } {
  const qmax = QUANT_MAX[dtype];
  const scale = (maxVal - minVal) / qmax;
  if (minVal <= 0 && 0 <= maxVal) {
    const zp = roundHalfEven((0 - minVal) / scale);
    const min = -zp * scale;
    return { scale, min, max: qmax * scale + min };
  }
  return { scale, min: minVal, max: maxVal };
}

/** Quantize float32 values to uint8/uint16 codes; decoding is q * scale + min (tfjs-core io_utils decodeWeight). */
export function quantizeAffine(values: Float32Array, dtype: 'uint8' | 'uint16'): { data: Uint8Array | Uint16Array; params: AffineParams } {
  const out = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  if (values.length === 0) return { data: out, params: { min: 0, scale: 1 } };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isNaN(v) || !Number.isFinite(v)) throw new Error(`cannot quantize a non-finite weight value (${v})`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  // A constant tensor: every code is 0 and min carries the value (the converter's special case).
  if (lo === hi) return { data: out, params: { min: lo, scale: 1 } };
  const { scale, min, max } = affineRange(lo, hi, dtype);
  const qmax = QUANT_MAX[dtype];
  for (let i = 0; i < values.length; i++) {
    const clipped = Math.min(max, Math.max(min, values[i]!));
    out[i] = Math.min(qmax, Math.max(0, roundHalfEven((clipped - min) / scale)));
  }
  return { data: out, params: { min, scale } };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 binary16 bits, round to nearest even, overflow to ±Inf (numpy's astype(np.float16)). */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and can reach Inf).
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++;
  return sign | q;
}

/** IEEE 754 binary16 bits → the number they encode (exact: every half is a float32). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
  return out;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function entryBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, d) => a * d, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const per = BYTES[dtype];
  if (per === undefined) throw new Error(`weight ${spec.name} has dtype ${dtype}, which weight quantization cannot carry through`);
  return size * per;
}

export interface QuantizedWeights {
  weightData: ArrayBuffer;
  specs: tf.io.WeightsManifestEntry[];
  /** Weights whose values were re-encoded, and those copied as they were (non-float32 or already quantized). */
  quantized: string[];
  kept: string[];
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Re-encode a weight buffer (specs + concatenated little-endian data, as model.save() produces) with `dtype`.
 * Only plain float32 entries are quantized, like the converter; everything else is copied byte for byte.
 */
export function quantizeWeightData(weightData: ArrayBuffer, specs: tf.io.WeightsManifestEntry[], dtype: WeightDtype): QuantizedWeights {
  const chunks: Uint8Array[] = [];
  const outSpecs: tf.io.WeightsManifestEntry[] = [];
  const quantized: string[] = [];
  const kept: string[] = [];
  let offset = 0;
  for (const spec of specs) {
    const n = entryBytes(spec);
    if (offset + n > weightData.byteLength) throw new Error(`weight data is shorter than its manifest (at ${spec.name})`);
    const raw = new Uint8Array(weightData, offset, n);
    offset += n;
    if (spec.dtype !== 'float32' || spec.quantization) {
      chunks.push(raw.slice());
      outSpecs.push(spec);
      kept.push(spec.name);
      continue;
    }
    // Copy so the Float32Array is aligned whatever the entry's offset.
    const values = new Float32Array(raw.slice().buffer);
    if (dtype === 'float16') {
      chunks.push(new Uint8Array(toFloat16(values).buffer));
      outSpecs.push({ ...spec, dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } as NonNullable<tf.io.WeightsManifestEntry['quantization']> });
    } else {
      const { data, params } = quantizeAffine(values, dtype);
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      outSpecs.push({ ...spec, dtype: 'float32', quantization: { dtype, min: params.min, scale: params.scale, original_dtype: 'float32' } as NonNullable<tf.io.WeightsManifestEntry['quantization']> });
    }
    quantized.push(spec.name);
  }
  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return { weightData: out.buffer, specs: outSpecs, quantized, kept, bytesBefore: offset, bytesAfter: total };
}

// What a package runs as, without converting it: its input variant (preprocessed floats or raw pixels) and how its
// weights are stored (fp32, the TF.js quantized storage, int8 QDQ), and the mlctl.* props that describe both (ONNX
// metadata_props, Triton config parameters) — shared by export and serve.
import { LEGACY_RESIZE, type ImageInputSpec, type Manifest } from './manifest.js';
import { readModelFile, type LoadedPackage } from './package.js';
import type { ModelJson } from './tfjs-io.js';

/** One entry of the package's TF.js weights manifest, as the quantizer recorded it. */
export interface PackageWeight {
  name: string;
  shape: number[];
  /** Storage dtype: float32, float16, uint8, uint16. */
  dtype: string;
  /** Affine parameters of uint8/uint16 entries (decoded value = q * scale + min). */
  scale?: number;
  min?: number;
}

export type WeightStorage = 'fp32' | 'fp16' | 'uint8' | 'uint16';

export function storageOf(weights: PackageWeight[]): WeightStorage {
  const dtypes = new Set(weights.map((w) => w.dtype).filter((d) => d !== 'float32'));
  if (dtypes.has('uint8')) return 'uint8';
  if (dtypes.has('uint16')) return 'uint16';
  if (dtypes.has('float16')) return 'fp16';
  return 'fp32';
}

/** What the exported graph's input takes: preprocessed floats (the package's own contract) or raw RGB pixels. */
export type InputVariant = 'preprocessed' | 'pixels';
/** How the exported graph stores its weights: as converted, at the package's quantized precision, or int8 QDQ. */
export type WeightsVariant = 'fp32' | WeightStorage | 'int8-qdq';

export const INPUT_VARIANTS: Record<InputVariant, string> = {
  preprocessed: 'FP32 NHWC, preprocessed as mlctl.preprocessing says (the package\'s own input)',
  pixels: 'UINT8 RGB NHWC pixels 0-255 resized to the model size as mlctl.resize says (bilinear with antialiasing); channel order, scale and mean are done in the graph',
};

export const WEIGHTS_VARIANTS: Record<WeightsVariant, string> = {
  fp32: 'float32 weights',
  fp16: 'float16 weights (Cast to float32 for compute)',
  uint8: 'uint8 weight-only quantization (DequantizeLinear), float32 compute',
  uint16: 'uint16 weight-only quantization (Cast, Mul, Add), float32 compute',
  'int8-qdq': 'int8 QDQ: int8 per-channel weights, uint8 calibrated activations (QuantizeLinear/DequantizeLinear)',
};

/**
 * How a client must resize images before the model sees them: {"width", "height", "fit", "interpolation",
 * "antialias"} — resizing with another kernel (sharp's default lanczos3, OpenCV's INTER_LINEAR) costs accuracy.
 */
export function resizeProp(input: ImageInputSpec): string {
  const p = input.preprocessing;
  return JSON.stringify({ width: input.width, height: input.height, fit: p.resize, interpolation: p.interpolation ?? LEGACY_RESIZE.interpolation, antialias: p.antialias ?? LEGACY_RESIZE.antialias });
}

/** The props that say how to feed the model and what it holds (also Triton config parameters, served or exported). */
export function variantProps(m: Pick<Manifest, 'labels' | 'input'>, variant: { input: InputVariant; weights: WeightsVariant }): Record<string, string> {
  return {
    'mlctl.labels': JSON.stringify(m.labels),
    ...(m.input.kind === 'image' ? { 'mlctl.preprocessing': JSON.stringify(m.input.preprocessing), 'mlctl.resize': resizeProp(m.input) } : {}),
    'mlctl.input_variant': variant.input,
    'mlctl.weights': variant.weights,
  };
}

/** The package's TF.js weights manifest entries (name, shape, storage dtype and affine parameters). */
export async function packageWeights(pkg: LoadedPackage): Promise<PackageWeight[]> {
  const rel = pkg.manifest.formats.tfjs;
  if (!rel) return [];
  const json = JSON.parse(new TextDecoder().decode(await readModelFile(pkg, rel))) as ModelJson;
  return json.weightsManifest.flatMap((g) =>
    g.weights.map((w) => {
      const q = w.quantization as { dtype: string; scale?: number; min?: number } | undefined;
      return { name: w.name, shape: w.shape, dtype: q?.dtype ?? w.dtype, ...(q?.scale !== undefined ? { scale: q.scale, min: q.min } : {}) };
    }),
  );
}

/**
 * How an export of this package stores its weights, without converting it: its own ONNX model's precision (int8 from
 * `quantize --dtype int8`, else fp32), or the storage of its TF.js weights (float16, uint8 …).
 */
export async function weightsVariantOf(pkg: LoadedPackage): Promise<WeightsVariant> {
  if (pkg.manifest.formats.onnx) return pkg.manifest.architecture.int8 ? 'int8-qdq' : 'fp32';
  return storageOf(await packageWeights(pkg));
}


// ONNX Runtime engine (onnxruntime-node): placeholder until the ONNX converter lands.
import type { LoadedPackage } from '../artifacts/package.js';
import type { EngineOptions, InferenceEngine } from './engine.js';
import { MlctlError } from '../errors.js';

export async function openOnnxEngine(_pkg: LoadedPackage, _opts: EngineOptions): Promise<InferenceEngine> {
  throw new MlctlError('NOT_IMPLEMENTED', ['the ONNX engine']);
}

// What an imported detector (an ONNX file run directly in onnxruntime, outside mlctl's engines) finds in a picture:
// the package's head decoding onnxruntime's own answer for the same preprocessed picture, boxes mapped back to the
// picture's pixels — the reference serve, predict and watch are compared with.
import * as ort from 'onnxruntime-node';
import { loadPackage } from '../../src/artifacts/package.js';
import { boxToPicture, imageTensorShape, imageToInputPlaced } from '../../src/data/preprocess.js';
import { decodeDetections } from '../../src/models/detection/outputs.js';
import type { Tensor } from '../../src/runtime/tensor.js';

export interface ReferenceBox {
  label: string;
  classIndex: number;
  score: number;
  box: { x: number; y: number; width: number; height: number };
}

/** The boxes package `name` (imported from `onnx`) should answer for `image`, in the picture's pixels. */
export async function onnxRuntimeDetections(name: string, onnx: string, limits: { minScore: number; maxDetections: number }, image: Buffer | string): Promise<ReferenceBox[]> {
  const m = (await loadPackage(name)).manifest;
  if (m.input.kind !== 'image' || !m.detection) throw new Error('not an image detector');
  const { x, geometry } = await imageToInputPlaced(image, m.input);
  const session = await ort.InferenceSession.create(onnx);
  try {
    const dims = (session.inputMetadata as unknown as Array<{ shape: unknown[] }>)[0]?.shape?.length === 3 ? imageTensorShape(m.input) : [1, ...imageTensorShape(m.input)];
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, dims) });
    const fetches: Tensor[] = session.outputNames.map((n) => ({ name: n, datatype: out[n]!.type === 'int64' ? 'INT64' : 'FP32', shape: [...out[n]!.dims], data: out[n]!.data }) as Tensor);
    return decodeDetections(m.detection, fetches, limits)[0]!
      .map((b) => ({ label: m.labels[b.label]!, classIndex: b.label, score: b.score, box: boxToPicture(b, geometry) }))
      .filter((d) => d.box.width > 0 && d.box.height > 0);
  } finally {
    await session.release();
  }
}

// Non-ONNX model files import brings to ONNX with mlctl's own converter (onnx/convert.ts), so every imported package
// runs in onnxruntime like any other: TF.js layers models (model.json + shards) and whole-model Keras .h5 files
// (architecture from model_config, weights through models/hdf5.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadLayersModelFromDir } from '../artifacts/tfjs-io.js';
import { MlctlError } from '../errors.js';
import { loadKerasH5Weights, readKerasModelConfig } from '../models/hdf5.js';
import { convertLayersModel } from '../onnx/index.js';
import { selectBackend } from '../runtime/backend.js';
import type { Logger } from '../util/log.js';

export type ModelKind = 'onnx' | 'tfjs-layers' | 'keras-h5';

/** What a file is, by its content (and model.json's format field): ONNX, a TF.js layers model, or a Keras HDF5 file. */
export async function modelKindOf(file: string): Promise<ModelKind> {
  let head: Buffer;
  try {
    const fh = await fs.open(file, 'r');
    try {
      head = Buffer.alloc(8);
      await fh.read(head, 0, 8, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MlctlError('IMPORT_UNREADABLE', [file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory: give the model file (model.onnx, model.json or model.h5)' : (err as Error).message], { cause: err });
  }
  if (head.equals(Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'keras-h5';
  if (path.basename(file).endsWith('.json') || head.toString('utf8').trimStart().startsWith('{')) {
    let json: { format?: string; modelTopology?: unknown };
    try {
      json = JSON.parse(await fs.readFile(file, 'utf8')) as typeof json;
    } catch (err) {
      throw new MlctlError('IMPORT_UNREADABLE', [file, `it is not valid JSON (${(err as Error).message})`], { cause: err });
    }
    if (json.format === 'graph-model') throw new MlctlError('IMPORT_UNREADABLE', [file, 'it is a TF.js graph model, which mlctl cannot convert to ONNX; export the source model to ONNX (tf2onnx for TensorFlow SavedModels) and import that, or import the Keras model (.h5) it came from']);
    if (!json.modelTopology) throw new MlctlError('IMPORT_UNREADABLE', [file, 'it is JSON but not a TF.js model.json (no modelTopology)']);
    return 'tfjs-layers';
  }
  return 'onnx';
}

/** Convert a TF.js layers model or a Keras .h5 model to ONNX bytes (UNSUPPORTED_LAYER names a layer mlctl cannot convert). */
export async function convertToOnnx(file: string, kind: Exclude<ModelKind, 'onnx'>, logger?: Logger): Promise<{ bytes: Uint8Array; sourceBytes: Uint8Array }> {
  const tf = await import('@tensorflow/tfjs');
  await selectBackend();
  let model: import('@tensorflow/tfjs').LayersModel;
  if (kind === 'tfjs-layers') {
    try {
      model = await loadLayersModelFromDir(path.dirname(file));
    } catch (err) {
      throw new MlctlError('IMPORT_UNREADABLE', [file, `TF.js cannot load it: ${(err as Error).message.split('\n')[0]}`], { cause: err });
    }
  } else {
    const config = await readKerasModelConfig(file).catch((err: unknown) => {
      throw new MlctlError('IMPORT_UNREADABLE', [file, (err as Error).message], { cause: err });
    });
    if (!config) throw new MlctlError('IMPORT_UNREADABLE', [file, 'it is a Keras weights file without a model_config (saved with save_weights): import needs a whole model saved with model.save("model.h5")']);
    try {
      model = (await tf.models.modelFromJSON({ modelTopology: config } as never)) as import('@tensorflow/tfjs').LayersModel;
    } catch (err) {
      throw new MlctlError('IMPORT_UNREADABLE', [file, `TF.js cannot build its model_config: ${(err as Error).message.split('\n')[0]}`], { cause: err });
    }
    await loadKerasH5Weights(file, model);
  }
  try {
    logger?.info(`converting ${file} (${kind}, ${model.layers.length} layers) to ONNX`);
    const bytes = await convertLayersModel(model, { inputName: model.inputs[0]!.name.split(':')[0]!, outputName: model.outputs[0]!.name.split('/')[0]! });
    return { bytes, sourceBytes: await fs.readFile(file) };
  } finally {
    model.dispose();
  }
}

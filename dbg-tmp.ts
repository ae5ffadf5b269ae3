import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { selectBackend } from './src/runtime/backend.js';
import { BACKBONES } from './src/models/backbones.js';
import { convertLayersModel } from './src/onnx/index.js';
import { quantizeOnnxQdq } from './src/optimize/onnx-qdq.js';
import { calibrateBatchNorms } from './test/helpers/backbones.js';
await selectBackend('cpu');
for (const id of process.argv.slice(2)) {
  const m = BACKBONES[id]!.build({ imageSize: 32, alpha: id === 'mobilenet_v2' ? 0.35 : undefined, seed: 4 });
  const x = tf.randomUniform([8, 32, 32, 3], id === 'mobilenet_v2' ? -1 : 0, id === 'mobilenet_v2' ? 1 : 255, 'float32', 5);
  calibrateBatchNorms(m, x);
  const bytes = convertLayersModel(m);
  const data = x.dataSync() as Float32Array;
  const q = await quantizeOnnxQdq(bytes, { calibration: [{ data: data.slice(0, 4 * 32 * 32 * 3), batch: 4 }] });
  const s1 = await ort.InferenceSession.create(bytes);
  const s2 = await ort.InferenceSession.create(q.bytes);
  const feed = { [s1.inputNames[0]!]: new ort.Tensor('float32', data.slice(4 * 3072), [4, 32, 32, 3]) };
  const a = (await s1.run(feed))[s1.outputNames[0]!]!.data as Float32Array;
  const b = (await s2.run(feed))[s2.outputNames[0]!]!.data as Float32Array;
  let d = 0, n = 0, dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); n = Math.max(n, Math.abs(a[i]!)); dot += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  console.log(id, 'max rel', d / n, 'cosine', dot / Math.sqrt(na * nb), q.quantizedNodes);
}

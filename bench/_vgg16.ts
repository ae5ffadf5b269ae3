// The benchmarks' classifiers: a backbone (VGG16 by default, or MobileNetV2 …) + Keras-style head (VGG16's Flatten →
// Dense(1024) → Dense(softmax), GAP for the others), random weights (speed does not depend on them), saved as a package
// with TF.js and/or ONNX, fp32 or int8 QDQ.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { backboneById } from '../src/models/backbones/index.js';
import { buildFullModel } from '../src/models/head.js';
import { convertLayersModel } from '../src/onnx/index.js';
import { quantizeOnnxQdq } from '../src/optimize/onnx-qdq.js';

export interface BenchPackageOptions {
  size: number;
  name: string;
  labels: string[];
  /** Backbone id (src/models/backbones); default vgg16. */
  backbone?: string;
  /** Also write the TF.js model (serve's TF.js engine); ONNX is always written. */
  tfjs?: boolean;
  /** Preprocessed batches to calibrate an int8 QDQ model.onnx on (as `mlctl quantize --dtype int8` does); fp32 without. */
  int8?: Array<{ data: Float32Array; batch: number }>;
  seed?: number;
  /** Which bench made it (lineage). */
  tool: string;
}

export async function benchPackage(root: string, o: BenchPackageOptions): Promise<LoadedPackage> {
  const def = backboneById(o.backbone ?? 'vgg16');
  const pooling = def.id === 'vgg16' ? 'flatten' : 'gap';
  const base = def.build({ imageSize: o.size, seed: o.seed ?? 7 });
  const model = buildFullModel(base, { pooling, units: 1024, dropout: 0, classes: o.labels.length });
  try {
    const fp32 = convertLayersModel(model, { inputName: 'input', outputName: 'predictions' });
    const onnx = o.int8 ? (await quantizeOnnxQdq(fp32, { calibration: o.int8, threads: os.availableParallelism() })).bytes : fp32;
    return await savePackage({
      root,
      name: o.name,
      draft: {
        task: 'image-classification',
        labels: o.labels,
        input: imageInputSpec(o.size, def.preprocessing),
        output: { name: 'predictions', kind: 'probabilities', size: o.labels.length },
        architecture: { type: `${def.id}-transfer`, backbone: def.id, head: { pooling, dense: [1024, o.labels.length] }, precision: o.int8 ? 'int8-qdq' : 'fp32', params: model.countParams() },
        formats: o.tfjs ? { tfjs: 'model.json', onnx: 'model.onnx' } : { onnx: 'model.onnx' },
        lineage: [{ op: o.int8 ? 'bench-fixture-int8' : 'bench-fixture', at: new Date().toISOString(), tool: o.tool }],
      },
      write: async (dir) => {
        if (o.tfjs) await writeTfjsModel(dir, model);
        await fs.writeFile(path.join(dir, 'model.onnx'), onnx);
      },
    });
  } finally {
    model.dispose();
  }
}

export async function vgg16BenchPackage(root: string, o: Omit<BenchPackageOptions, 'backbone'>): Promise<LoadedPackage> {
  return benchPackage(root, { ...o, backbone: 'vgg16' });
}

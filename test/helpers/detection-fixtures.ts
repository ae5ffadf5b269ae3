// Detection fixtures: a tiny CenterNet (models/detection/centernet.ts) on a tiny stride-32 backbone, saved as a real
// package with a valid detection manifest, and "oracle" COCO datasets whose boxes are what that model predicts (made
// independently of mlctl's evaluation: the TF.js model run directly, decode.ts, the fill resize's scale factors), so
// evaluation has known answers.
import * as tf from '@tensorflow/tfjs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { CenterNetSection as DetectionSection } from '../../src/artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../../src/artifacts/package.js';
import { cocoDocument, type DetectionSample } from '../../src/data/detection/index.js';
import { imageInputSpec, imageToInput } from '../../src/data/preprocess.js';
import { buildDetectionModel, outputGrid, outputStride, CENTERNET_LAYERS } from '../../src/models/detection/centernet.js';
import { decodeCenterNet, type DecodedBox } from '../../src/models/detection/decode.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { createRng } from '../../src/util/random.js';

export const DET_INPUT = 64;
export const DET_LABELS = ['circle', 'square'];

/** Backbone (conv stride 2, two 4x max-pools: stride 32) + CenterNet with one upsampling (stride 16, a 4x4 grid). */
export function tinyDetector(seed = 3, opts: { input?: number; boxCells?: number; maxDetections?: number } = {}): { model: tf.LayersModel; section: DetectionSection } {
  const size = opts.input ?? DET_INPUT;
  const cells = opts.boxCells ?? 1.5;
  const input = tf.input({ shape: [size, size, 3], name: 'image' });
  let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), name: 'bb_conv' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 4, name: 'bb_pool1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 4, name: 'bb_pool2' }).apply(x) as tf.SymbolicTensor;
  const base = tf.model({ inputs: input, outputs: x, name: 'tiny_backbone' });
  const spec = { classes: DET_LABELS.length, upsample: 1, channels: 8 };
  const model = buildDetectionModel(base, spec);
  // Boxes of 1.5 cells (24 input pixels) centred in their cell by default: sizes a dataset's validation accepts.
  for (const [name, bias] of [[CENTERNET_LAYERS.size, [cells, cells]], [CENTERNET_LAYERS.offset, [0.5, 0.5]]] as const) {
    const layer = model.getLayer(name);
    const [k] = layer.getWeights();
    layer.setWeights([tf.zerosLike(k!), tf.tensor1d([...bias])]);
  }
  const grid = outputGrid(base.outputs[0]!.shape.slice(1) as number[], spec);
  return {
    model,
    section: { head: 'centernet', classes: spec.classes, grid, stride: outputStride(spec), maxDetections: opts.maxDetections ?? 3, categoryIds: [7, 9], resize: 'fill' },
  };
}

/** The tiny detector as a package (TF.js), with the detection manifest training writes. */
export async function tinyDetectionPackage(root: string, opts: { name?: string; seed?: number; maxDetections?: number } = {}): Promise<{ pkg: LoadedPackage; model: tf.LayersModel; section: DetectionSection }> {
  await selectBackend('cpu');
  const { model, section } = tinyDetector(opts.seed, { maxDetections: opts.maxDetections });
  const pkg = await savePackage({
    root,
    name: opts.name ?? 'det',
    draft: {
      task: 'detection',
      labels: DET_LABELS,
      input: { ...imageInputSpec(DET_INPUT, 'unit'), name: 'image' },
      output: { name: CENTERNET_LAYERS.output, kind: 'detection', size: section.grid[0] * section.grid[1] * (section.classes + 4) },
      detection: section,
      architecture: { type: 'test-tiny-centernet' },
      formats: { tfjs: 'model.json' },
      lineage: [],
    },
    write: (dir) => writeTfjsModel(dir, model),
  });
  return { pkg, model, section };
}

/** Pictures of noise (or black: `clean`) with a few bright squares (so the heat map varies), `width` x `height`, as PNG files. */
export async function noisePictures(dir: string, n: number, width: number, height: number, seed = 5, clean = false): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const rng = createRng(seed);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = new Uint8Array(width * height * 3).map(() => (clean ? 0 : Math.floor(rng() * 255)));
    for (let k = 0; k < 3; k++) {
      const x0 = Math.floor(rng() * (width - 20));
      const y0 = Math.floor(rng() * (height - 20));
      for (let y = y0; y < y0 + 20; y++) for (let x = x0; x < x0 + 20; x++) px.set([255, 40 * k, 255 - 80 * k], (y * width + x) * 3);
    }
    const file = path.join(dir, `pic_${i}.png`);
    await sharp(px, { raw: { width, height, channels: 3 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

/** What the model detects on each file, in the picture's pixels: run directly, decoded, scaled by the fill resize. */
export async function oracleBoxes(model: tf.LayersModel, section: DetectionSection, files: string[], size: { width: number; height: number }): Promise<DecodedBox[][]> {
  const spec = imageInputSpec(DET_INPUT, 'unit');
  const out: DecodedBox[][] = [];
  for (const f of files) {
    const x = await imageToInput(f, spec);
    const y = tf.tidy(() => (model.predict(tf.tensor4d(x, [1, DET_INPUT, DET_INPUT, 3])) as tf.Tensor).dataSync());
    const sx = size.width / DET_INPUT;
    const sy = size.height / DET_INPUT;
    out.push(
      decodeCenterNet(y, section.grid, section.classes, [DET_INPUT, DET_INPUT], { maxDetections: section.maxDetections }).map((b) => {
        const x0 = Math.max(0, b.x * sx);
        const y0 = Math.max(0, b.y * sy);
        const x1 = Math.min(size.width, (b.x + b.width) * sx);
        const y1 = Math.min(size.height, (b.y + b.height) * sy);
        return { ...b, x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
      }),
    );
  }
  return out;
}

/** A COCO dataset (annotations.json beside the pictures) with these boxes as its ground truth. */
export async function writeCocoDataset(dir: string, files: string[], size: { width: number; height: number }, boxes: Array<Array<{ label: number; x: number; y: number; width: number; height: number }>>): Promise<void> {
  const samples: DetectionSample[] = files.map((f, i) => ({ id: i + 1, path: f, width: size.width, height: size.height, boxes: boxes[i]!.map((b, j) => ({ label: b.label, box: { x: b.x, y: b.y, width: b.width, height: b.height }, source: `${i}:${j}` })) }));
  await writeFile(path.join(dir, 'annotations.json'), JSON.stringify(cocoDocument(samples, DET_LABELS, [7, 9], dir)));
}

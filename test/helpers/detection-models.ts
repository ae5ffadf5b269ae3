// A detection package around a hand-built ONNX CenterNet map: the output is a fixed [n, 4, 4, 2 + 4] map (two labels,
// stride 16 on a 64x64 input) whatever the image, so the boxes in input pixels are known exactly and a test checks
// how they come back in each picture's own pixels (fill, letterbox, crop) through serve and predict.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DetectionSection, PreprocessingSpec } from '../../src/artifacts/manifest.js';
import { savePackage, type LoadedPackage } from '../../src/artifacts/package.js';
import { imageInputSpec } from '../../src/data/preprocess.js';
import { DataType, encodeModel, graphBuilder, irVersionForOpset, valueInfo } from '../../src/onnx/index.js';

export const DET = { size: 64, grid: 4, stride: 16, labels: ['cat', 'dog'], categoryIds: [3, 7] } as const;
const C = DET.labels.length + 4;

/** The peaks of the fixed map: cell, label, score, size (w, h) and offset in grid cells; and the box each decodes to in input pixels. */
export const PEAKS = [
  { y: 1, x: 2, label: 0, score: 0.9, w: 1.5, h: 1, dx: 0.5, dy: 0.5, box: { x: 28, y: 16, width: 24, height: 16 } },
  { y: 2, x: 0, label: 1, score: 0.5, w: 1, h: 2, dx: 0.5, dy: 0.5, box: { x: 0, y: 24, width: 16, height: 32 } },
  { y: 3, x: 3, label: 0, score: 0.2, w: 0.5, h: 0.5, dx: 0.5, dy: 0.5, box: { x: 52, y: 52, width: 8, height: 8 } },
] as const;

/** The map itself, [4, 4, 6] row-major. */
export function detectionMap(): Float32Array {
  const map = new Float32Array(DET.grid * DET.grid * C);
  for (const p of PEAKS) {
    const o = (p.y * DET.grid + p.x) * C;
    map[o + p.label] = p.score;
    map.set([p.w, p.h, p.dx, p.dy], o + DET.labels.length);
  }
  return map;
}

/** out = map + 0 · mean(input): the batch dimension comes from the input, the values from the map. */
export function detectionModel(): Uint8Array {
  const g = graphBuilder(['input', 'detections']);
  const mean = g.node('ReduceMean', ['input'], [g.unique('mean')], { axes: [1, 2, 3], keepdims: 1 });
  const zero = g.node('Mul', [mean, g.floatConst('zero', [], [0])], [g.unique('zeroed')]);
  g.node('Add', [zero, g.floatConst('map', [DET.grid, DET.grid, C], detectionMap())], ['detections']);
  const graph = {
    name: 'centernet_map',
    node: g.nodes,
    initializer: g.initializers,
    input: [valueInfo('input', DataType.FLOAT, ['batch', DET.size, DET.size, 3])],
    output: [valueInfo('detections', DataType.FLOAT, ['batch', DET.grid, DET.grid, C])],
  };
  return encodeModel({ irVersion: irVersionForOpset(13), opsetImport: [{ domain: '', version: 13 }], producerName: 'mlctl-test', graph });
}

/** A valid detection package (task "detection", ONNX format) around detectionModel(), resized by `resize`. */
export async function detectionPackage(root: string, opts: { name?: string; resize?: PreprocessingSpec['resize']; minScore?: number } = {}): Promise<LoadedPackage> {
  const resize = opts.resize ?? 'contain';
  const input = imageInputSpec(DET.size, 'unit');
  input.preprocessing = { ...input.preprocessing, resize };
  const detection: DetectionSection = {
    head: 'centernet',
    classes: DET.labels.length,
    grid: [DET.grid, DET.grid],
    stride: DET.stride,
    maxDetections: 10,
    categoryIds: [...DET.categoryIds],
    resize,
    ...(opts.minScore !== undefined ? { minScore: opts.minScore } : {}),
  };
  return savePackage({
    root,
    name: opts.name ?? `det-${resize}`,
    draft: {
      task: 'detection',
      labels: [...DET.labels],
      input,
      output: { name: 'detections', kind: 'detection', size: DET.grid * DET.grid * C },
      detection,
      architecture: { type: 'test-centernet-map' },
      formats: { onnx: 'model.onnx' },
      lineage: [],
    },
    write: async (dir) => writeFile(path.join(dir, 'model.onnx'), detectionModel()),
  });
}

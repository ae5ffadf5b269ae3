// Keras .h5 files mlctl did not write: test/fixtures/keras_h5.py writes them with h5py as Keras's saving code does
// (Keras 1 "block1_conv1_W_1:0", Keras 2 "conv1_bn/gamma:0", Keras 3 variable paths; split layer_names; the
// keras_version/backend attributes; layer names and shapes from keras.applications), and every array must land in
// mlctl's VGG16 and ResNet50 value-exact — so a reader bug that mlctl's own writer shares cannot pass.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKBONES } from '../src/models/backbones/index.js';
import { loadKerasH5Weights, readKerasH5 } from '../src/models/hdf5.js';
import { selectBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers/fixtures.js';
import { PYTHON, tools } from './helpers/tools.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'keras_h5.py');

interface Written {
  file: string;
  layerNames: string[];
  arrays: Array<{ layer: string; index: number; name: string; shape: number[]; offset: number }>;
  /** Every array as written, little-endian float32 in `arrays` order. */
  raw: Buffer;
}

/** Run the h5py writer; headerLimit lowers Keras's 64512-byte attribute limit so a small model's lists split. */
async function kerasFile(dir: string, arch: string, style: string, headerLimit?: number): Promise<Written> {
  const file = path.join(dir, `${arch}-${style}${headerLimit ? `-split${headerLimit}` : ''}.h5`);
  const r = spawnSync(PYTHON, [SCRIPT, file, arch, style, ...(headerLimit ? [String(headerLimit)] : [])], { encoding: 'utf8', maxBuffer: 64 << 20 });
  expect(r.status, r.stderr).toBe(0);
  const manifest = JSON.parse(r.stdout) as { layer_names: string[]; arrays: Written['arrays'] };
  return { file, layerNames: manifest.layer_names, arrays: manifest.arrays, raw: await fs.readFile(`${file}.f32`) };
}

/** The file's raw attribute names at the root (h5py, not mlctl), to show what the file actually carries. */
function rootAttrs(file: string): string[] {
  const r = spawnSync(PYTHON, ['-c', 'import h5py,sys,json; print(json.dumps(sorted(h5py.File(sys.argv[1], "r").attrs.keys())))', file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  await selectBackend('cpu');
  tmp = await tempDir('mlctl-keras-h5-');
});
afterAll(() => tmp?.cleanup());

const CASES: Array<{ label: string; arch: 'vgg16' | 'resnet50'; style: 'keras1' | 'keras2' | 'keras3'; headerLimit?: number; attrs: string[] }> = [
  // The published VGG16 no-top file's layout.
  { label: 'VGG16, Keras 1 (block1_conv1_W_1:0, no version attributes)', arch: 'vgg16', style: 'keras1', attrs: ['layer_names'] },
  { label: 'VGG16, Keras 2 (block1_conv1/kernel:0, layer_names split in four)', arch: 'vgg16', style: 'keras2', headerLimit: 64, attrs: ['backend', 'keras_version', 'layer_names0', 'layer_names1', 'layer_names2', 'layer_names3'] },
  // The published ResNet50 no-top file's layout: BatchNormalization's gamma, beta, moving_mean, moving_variance.
  { label: 'ResNet50, Keras 2 (conv1_bn/moving_mean:0)', arch: 'resnet50', style: 'keras2', attrs: ['backend', 'keras_version', 'layer_names'] },
  { label: 'ResNet50, Keras 3 (variable paths, sorted groups, top_level_model_weights, layer_names split)', arch: 'resnet50', style: 'keras3', headerLimit: 1024, attrs: ['backend', 'keras_version', 'layer_names0', 'layer_names1', 'layer_names2', 'layer_names3'] },
];

describe.skipIf(!tools.h5py)('Keras .h5 weights written by h5py as Keras writes them', () => {
  it.each(CASES)('$label: every array lands in its layer, value-exact', async ({ arch, style, headerLimit, attrs }) => {
    const written = await kerasFile(tmp.dir, arch, style, headerLimit);
    expect(rootAttrs(written.file)).toEqual(attrs);
    // mlctl reads the layer list whole, in the file's order, however Keras split it.
    const read = await readKerasH5(written.file);
    expect(read.map((l) => l.name)).toEqual(written.layerNames);
    expect(read.flatMap((l) => l.weights.map((w) => `${l.name}:${w.name}`))).toEqual(written.arrays.map((a) => `${a.layer}:${a.name}`));

    const model = BACKBONES[arch]!.build({ imageSize: 32, seed: 3 });
    try {
      const result = await loadKerasH5Weights(written.file, model);
      const weighted = model.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
      expect([...new Set(written.arrays.map((a) => a.layer))].sort()).toEqual([...weighted].sort());
      expect(result.tensors).toBe(written.arrays.length);
      expect(result.unused).toEqual([]);
      expect(result.layers).toEqual(weighted);
      const byLayer = new Map(model.layers.map((l) => [l.name, l.getWeights()]));
      let bn = 0;
      for (const a of written.arrays) {
        const t = byLayer.get(a.layer)![a.index]!;
        expect(t.shape, `${a.layer} ${a.name}`).toEqual(a.shape);
        const got = t.dataSync() as Float32Array;
        const want = written.raw.subarray(a.offset, a.offset + got.byteLength);
        expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), `${a.layer} ${a.name} differs`).toBe(true);
        if (/moving_variance/.test(a.name)) bn++;
      }
      expect(bn).toBe(arch === 'resnet50' ? 53 : 0);
    } finally {
      model.dispose();
    }
  }, 180_000);
});

// Training rows computed as they are read: each read decodes its images (augmented with the epoch's seeded
// transform), then runs them through the frozen part of the network (an engine session) — or hands the pixels over
// when nothing is frozen. Nothing is stored, and the result is the same for the same seed whatever the batch.
import { imageBatches } from '../data/batches.js';
import type { Sample } from '../data/imagefolder.js';
import { imageToInput } from '../data/preprocess.js';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { FeatureRows } from '../features/rows.js';
import { augmentImage, type Augmentation } from './augment.js';

export interface ComputedRowsOptions {
  spec: ImageInputSpec;
  augment: readonly Augmentation[];
  seed: number;
  /** Augmentation key prefix (an image's transform is seeded by `${key}:${path}`), e.g. the epoch. */
  key: string;
  /** Values per row; with `run`, its output width (without `run`, rows are the preprocessed pixels). */
  dim: number;
  run?: (x: Float32Array, n: number) => Promise<Float32Array>;
}

export function computedRows(samples: readonly Sample[], o: ComputedRowsOptions): FeatureRows {
  const { spec } = o;
  const per = spec.height * spec.width * 3;
  let x = new Float32Array(0);
  return {
    count: samples.length,
    dim: o.dim,
    labels: Int32Array.from(samples, (s) => s.label),
    paths: samples.map((s) => s.path),
    async read(order, from, to, out) {
      const n = to - from;
      const pixels = o.run ? (x.length < n * per ? (x = new Float32Array(n * per)) : x) : out;
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const s = samples[order[from + i]!]!;
          await imageToInput(s.path, spec, pixels, i * per);
          augmentImage(pixels.subarray(i * per, (i + 1) * per), spec.height, o.augment, o.seed, `${o.key}:${s.path}`);
        }),
      );
      if (o.run) out.set(await o.run(pixels.subarray(0, n * per), n));
      return out.subarray(0, n * o.dim);
    },
  };
}

/** The samples that decode (rows read them again and again; an unreadable one is left out once, and reported). */
export async function readableSamples(samples: readonly Sample[], spec: ImageInputSpec, onSkip: (s: { path: string; reason: string }) => void): Promise<Sample[]> {
  const ok = new Set<string>();
  for await (const b of imageBatches(samples, { spec, batchSize: 32, onSkip })) for (const p of b.paths) ok.add(p);
  return samples.filter((s) => ok.has(s.path));
}

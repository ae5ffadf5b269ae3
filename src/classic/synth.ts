// Deterministic generated problems with known structure for the classic models' tests and benchmark:
// linear data with known weights, 2-D circles/XOR, and high-dimensional data with a non-linear class boundary.
import { renderSynthImage, SYNTH_CLASSES } from '../data/synth.js';
import { createRng, deriveSeed, gaussian } from '../util/random.js';
import { matrix, type Matrix } from './linalg.js';

export interface Generated {
  x: Matrix;
  labels: Int32Array;
}

/** y = Xw + b + noise, X ~ N(0, 1). */
export function linearData(n: number, w: number[], b: number, noise: number, seed: number): { x: Matrix; y: Float64Array } {
  const rng = createRng(seed);
  const d = w.length;
  const x = matrix(n, d);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b;
    for (let j = 0; j < d; j++) {
      const v = gaussian(rng);
      x.data[i * d + j] = v;
      s += w[j]! * v;
    }
    y[i] = s + noise * gaussian(rng);
  }
  return { x, y };
}

/** Two concentric rings (radius 1 and 2.2) with Gaussian jitter: not linearly separable. */
export function circles(n: number, seed: number, jitter = 0.2): Generated {
  const rng = createRng(seed);
  const x = matrix(n, 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const r = (c === 0 ? 1 : 2.2) + jitter * gaussian(rng);
    const t = 2 * Math.PI * rng();
    x.data[i * 2] = r * Math.cos(t);
    x.data[i * 2 + 1] = r * Math.sin(t);
    labels[i] = c;
  }
  return { x, labels };
}

/** XOR of the signs of two uniform coordinates. */
export function xor(n: number, seed: number): Generated {
  const rng = createRng(seed);
  const x = matrix(n, 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rng() * 2 - 1, b = rng() * 2 - 1;
    x.data[i * 2] = a;
    x.data[i * 2 + 1] = b;
    labels[i] = a * b > 0 ? 1 : 0;
  }
  return { x, labels };
}

/** Gaussian blobs, one per class, in d dimensions, centred at ±4 on successive axes (pairwise 4√2 apart). */
export function blobs(n: number, classes: number, d: number, seed: number, spread = 0.6): Generated {
  const rng = createRng(seed);
  const centres = Array.from({ length: classes }, (_, c) => Array.from({ length: d }, (_, j) => (j === c % d ? (Math.floor(c / d) % 2 ? -4 : 4) : 0)));
  const x = matrix(n, d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    labels[i] = c;
    for (let j = 0; j < d; j++) x.data[i * d + j] = centres[c]![j]! + spread * gaussian(rng);
  }
  return { x, labels };
}

/**
 * n samples in d dimensions (e.g. 784, an MNIST-sized row) from a `latent`-dimensional Gaussian mapped through a
 * fixed random linear embedding plus isotropic noise. Class = whether the first three latent coordinates lie
 * outside the median-radius sphere: a curved boundary no hyperplane can follow ('plane': the sign of z₀ + z₁, a
 * linear boundary, for contrast).
 */
export function sphereShells(n: number, d: number, seed: number, latent = 8, noise = 0.5, boundary: 'sphere' | 'plane' = 'sphere'): Generated {
  const rng = createRng(seed);
  const embed = Float64Array.from({ length: d * latent }, () => gaussian(rng) / Math.sqrt(latent));
  const x = matrix(n, d);
  const labels = new Int32Array(n);
  const z = new Float64Array(latent);
  // Median of a chi-square with 3 degrees of freedom: balanced classes.
  const median = 2.366;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < latent; k++) z[k] = gaussian(rng);
    labels[i] = boundary === 'plane' ? (z[0]! + z[1]! > 0 ? 1 : 0) : z[0]! * z[0]! + z[1]! * z[1]! + z[2]! * z[2]! > median ? 1 : 0;
    for (let j = 0; j < d; j++) {
      let s = noise * gaussian(rng);
      for (let k = 0; k < latent; k++) s += embed[j * latent + k]! * z[k]!;
      x.data[i * d + j] = s;
    }
  }
  return { x, labels };
}

/**
 * n synthetic images (src/data/synth.ts's shapes, colours and noise) of size x size RGB, flattened to size²·3 pixel
 * features in [0, 1] as `--features pixels` gives them; classes cycle through the first `classes` shapes.
 */
export function synthImagePixels(n: number, size: number, classes: number, seed: number, noise = 18): Generated {
  const d = size * size * 3;
  const x = matrix(n, d);
  const labels = new Int32Array(n);
  const rngs = SYNTH_CLASSES.slice(0, classes).map((kind) => createRng(deriveSeed(seed, kind)));
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    const px = renderSynthImage(SYNTH_CLASSES[c]!, c, classes, size, rngs[c]!, noise);
    for (let j = 0; j < d; j++) x.data[i * d + j] = px[j]! / 255;
    labels[i] = c;
  }
  return { x, labels };
}

// Keras's Adam in plain arrays, shared by every head trainer and by the fc1 shards' worker threads (which must not
// load TF.js just for these constants: it would add seconds to each worker's start).

/** Keras Adam defaults: beta_1 0.9, beta_2 0.999, epsilon 1e-7. */
export const KERAS_ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

/** Adam state kept in plain arrays (one fused pass per parameter); slots 0..3 = w1, b1, w2, b2 in Keras layout. */
export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export function newAdamState(sizes: number[]): AdamState {
  return { step: 0, m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
}

/** Keras's bias-corrected step size lrₜ = lr·√(1-β2ᵗ)/(1-β1ᵗ). */
export function adamStepSize(lr: number, step: number): number {
  const { beta1: b1, beta2: b2 } = KERAS_ADAM;
  return (lr * Math.sqrt(1 - Math.pow(b2, step))) / (1 - Math.pow(b1, step));
}

/** One Keras Adam update in place: m, v moments; w -= lrₜ · m / (√v + ε). */
export function adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, step: number): void {
  const { beta1: b1, beta2: b2, epsilon: eps } = KERAS_ADAM;
  const lrT = adamStepSize(lr, step);
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    const mi = (m[i] = b1 * m[i]! + c1 * gi);
    const vi = (v[i] = b2 * v[i]! + c2 * gi * gi);
    w[i] = w[i]! - (lrT * mi) / (Math.sqrt(vi) + eps);
  }
}

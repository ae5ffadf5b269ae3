// Test helpers for backbone graphs with random weights: BatchNormalization statistics calibrated on a batch, so a
// random network's activations look like a trained one's (normalised, non-degenerate) instead of vanishing or exploding.
import * as tf from '@tensorflow/tfjs';

/**
 * One eager pass over the layers in graph order: each BatchNormalization gets the moments of its actual input on `x`
 * as moving statistics (so its output is normalised given everything upstream), random gamma in [0.5, 1.5] and beta
 * in [-0.2, 0.2].
 */
export function calibrateBatchNorms(model: tf.LayersModel, x: tf.Tensor, seed = 1): void {
  const values = new Map<number, tf.Tensor>([[model.inputs[0]!.id, x]]);
  let k = seed;
  tf.tidy(() => {
    for (const layer of model.layers) {
      if (layer.getClassName() === 'InputLayer') continue;
      const node = layer.inboundNodes[0]!;
      const ins = node.inputTensors.map((t) => values.get(t.id)!);
      if (layer.getClassName() === 'BatchNormalization') {
        const c = layer.weights[0]!.shape[0]!;
        const { mean, variance } = tf.moments(ins[0]!, [0, 1, 2]);
        layer.setWeights([tf.randomUniform([c], 0.5, 1.5, 'float32', k++), tf.randomUniform([c], -0.2, 0.2, 'float32', k++), mean, tf.add(variance, 1e-3)]);
      }
      const out = layer.apply(ins.length === 1 ? ins[0]! : ins) as tf.Tensor;
      values.set(node.outputTensors[0]!.id, out);
    }
  });
}

// A backbone definition made real: built with its Keras layer names, given its weights (ImageNet download, a local
// .h5 or seeded random init), optionally with global average pooling on top (features leave the engine pooled).
import * as tf from '@tensorflow/tfjs';
import { loadKerasH5Weights } from '../hdf5.js';
import type { BackboneDef, BackboneOptions } from './types.js';
import { resolveWeights, type WeightsSource } from '../weights.js';
import type { Logger } from '../../util/log.js';

/** A backbone definition with its weights (train, classic --features, tune). */
export interface BackboneBase {
  backbone: BackboneDef;
  options: BackboneOptions;
  /** imagenet | none | PATH of a Keras .h5 file. */
  weights: string;
  seed: number;
  /** Overrides of the published weights' address and hash (tests, mirrors). */
  weightsUrl?: string;
  weightsMd5?: string;
}

export interface LoadedBackbone {
  /** The no-top base (with pooling when asked for). */
  model: tf.LayersModel;
  /** The no-top base itself (the layers a package's full model is built on). */
  base: tf.LayersModel;
  weights: WeightsSource;
  dispose(): void;
}

/** The base with GlobalAveragePooling2D on top, sharing its layers. */
export function pooledModel(base: tf.LayersModel): tf.LayersModel {
  const pooled = tf.layers.globalAveragePooling2d({ name: 'features_gap' }).apply(base.outputs[0]!) as tf.SymbolicTensor;
  return tf.model({ inputs: base.inputs, outputs: pooled, name: `${base.name}_gap` });
}

export async function loadBackbone(b: BackboneBase, pooling: 'none' | 'gap', logger: Logger): Promise<LoadedBackbone> {
  const def = b.backbone;
  const options = { ...b.options, seed: b.seed };
  def.checkOptions(options);
  const weights = await resolveWeights(b.weights, { logger, seed: b.seed, backbone: def, backboneOptions: options, url: b.weightsUrl, md5: b.weightsMd5 });
  const base = def.build(options);
  try {
    if (weights.path) {
      const r = await loadKerasH5Weights(weights.path, base);
      logger.info(`loaded ${r.tensors} weight tensors for ${r.layers.length} ${def.id} layers from ${weights.path}`);
    }
  } catch (err) {
    base.dispose();
    throw err;
  }
  const model = pooling === 'gap' ? pooledModel(base) : base;
  return {
    model,
    base,
    weights,
    dispose() {
      // The pooled model shares the base's layers: whichever is still alive is released here.
      for (const m of new Set([model, base])) {
        try {
          m.dispose();
        } catch {
          // already released through the other model
        }
      }
    },
  };
}

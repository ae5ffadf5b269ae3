// What a backbone is to mlctl: the no-top network built with Keras's layer names, the preprocessing its ImageNet
// weights expect, where Keras publishes those weights, and its fine-tuning blocks. Train, the feature session,
// classic --features, tune and prune read a backbone only through this definition.
import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '../../artifacts/manifest.js';

/** A Keras-published no-top weights file (keras.applications' URL and its get_file md5 hash). */
export interface PublishedWeights {
  fileName: string;
  url: string;
  /** keras.applications' file_hash; absent where Keras publishes none (MobileNetV2): the download is then unverified, as in Keras. */
  md5?: string;
  /** Size in bytes when known (progress, sanity). */
  bytes?: number;
}

export interface BackboneOptions {
  imageSize: number;
  /** Seed of the (Keras-default) initialisation used by --weights none. */
  seed?: number;
  /** Width multiplier where the architecture has one (MobileNetV2's alpha). */
  alpha?: number;
}

export interface BackboneDef {
  /** The --backbone value and the manifest's architecture.backbone, e.g. "vgg16". */
  id: string;
  /** One line for --help: what it is and what it costs. */
  summary: string;
  /** Keras preprocess_input mode its ImageNet weights expect; recorded in the manifest, applied by serve/evaluate. */
  preprocessing: PreprocessingSpec['mode'];
  /** Name of the input layer (Keras's), also the TF.js model's input name. */
  inputName: string;
  /** Throws a usage error naming what is allowed when the image size (or alpha) does not fit the architecture. */
  checkOptions(opts: BackboneOptions): void;
  /** Output shape [h, w, c] of the no-top base for these options. */
  featureShape(opts: BackboneOptions): [number, number, number];
  /** The no-top base as a functional TF.js model with Keras's layer names (random init, seeded). */
  build(opts: BackboneOptions): tf.LayersModel;
  /** Keras's no-top ImageNet weights for these options; throws a usage error when Keras publishes none. */
  imagenetWeights(opts: BackboneOptions): PublishedWeights;
  /** Fine-tuning units from first to last, each the names of its layers with weights (VGG16: 5 conv blocks). */
  blocks(opts: BackboneOptions): string[][];
  /** Names of those units as Keras prefixes its layers (block5, conv5_block3, block_16, block7a), for manifests and logs. */
  blockNames(opts: BackboneOptions): string[];
  /** Part of the cache identity beyond id/size/weights (e.g. "alpha1.0"); empty when none. */
  variant(opts: BackboneOptions): string;
}

// The backbones `train --backbone` offers, by id. Each is a BackboneDef (./types.ts); VGG16 is the default.
import { MlctlError } from '../../errors.js';
import type { BackboneDef } from './types.js';
import { efficientnetB0 } from './efficientnet.js';
import { mobilenetV2 } from './mobilenet_v2.js';
import { resnet50 } from './resnet.js';
import { vgg16 } from './vgg16.js';

export const BACKBONES: Readonly<Record<string, BackboneDef>> = {
  vgg16,
  mobilenet_v2: mobilenetV2,
  resnet50,
  efficientnet_b0: efficientnetB0,
};
export const DEFAULT_BACKBONE = 'vgg16';

export function backboneById(id: string): BackboneDef {
  const def = BACKBONES[id];
  if (!def) throw new MlctlError('OPTION_INVALID', [`unknown backbone "${id}": choose one of ${Object.keys(BACKBONES).join(', ')}`]);
  return def;
}

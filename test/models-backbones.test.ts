// The backbone registry: each definition builds Keras's graph (parameter counts of keras.applications' no-top
// models, layer names, output shapes at odd and even sizes), splits its weighted layers into fine-tuning blocks,
// names Keras's published weights file, and rejects options that do not fit with a usage error.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKBONE_CHOICES } from '../src/cli/commands/train.js';
import { MlctlError } from '../src/errors.js';
import { BACKBONES, backboneById, DEFAULT_BACKBONE } from '../src/models/backbones/index.js';
import { selectBackend } from '../src/runtime/backend.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

/** keras.applications no-top parameter counts (model.count_params()); EfficientNet less Normalization's 7 statistics. */
const KERAS_PARAMS: Array<[string, number | undefined, number]> = [
  ['vgg16', undefined, 14_714_688],
  ['mobilenet_v2', 1.0, 2_257_984],
  ['mobilenet_v2', 0.35, 410_208],
  ['mobilenet_v2', 1.4, 4_363_712],
  ['resnet50', undefined, 23_587_712],
  ['efficientnet_b0', undefined, 4_049_564],
];

describe('backbone definitions', () => {
  it('lists the four backbones, VGG16 the default, and train --backbone offers exactly them', () => {
    expect(Object.keys(BACKBONES)).toEqual(['vgg16', 'mobilenet_v2', 'resnet50', 'efficientnet_b0']);
    expect([...BACKBONE_CHOICES]).toEqual(Object.keys(BACKBONES));
    expect(DEFAULT_BACKBONE).toBe('vgg16');
    expect(() => backboneById('resnet18')).toThrow(/unknown backbone "resnet18": choose one of vgg16, mobilenet_v2, resnet50, efficientnet_b0/);
  });

  it.each(KERAS_PARAMS)('%s (alpha %s) has Keras\'s no-top parameter count', (id, alpha, params) => {
    const m = BACKBONES[id]!.build({ imageSize: 64, alpha, seed: 1 });
    try {
      expect(m.countParams()).toBe(params);
    } finally {
      m.dispose();
    }
  });

  it.each([['mobilenet_v2', 'out_relu', 154], ['resnet50', 'conv5_block3_out', 175], ['efficientnet_b0', 'top_activation', 238]] as const)(
    '%s: Keras layer names end at %s, feature shapes match featureShape at odd and even sizes, blocks cover every weighted layer',
    (id, last, count) => {
      const def = BACKBONES[id]!;
      for (const size of [33, 64]) {
        const opts = { imageSize: size, alpha: id === 'mobilenet_v2' ? 0.35 : undefined, seed: 2 };
        const m = def.build(opts);
        try {
          expect(m.layers.length).toBe(count);
          expect(m.layers[0]!.name).toBe(def.inputName);
          expect(m.layers.at(-1)!.name).toBe(last);
          expect(m.outputs[0]!.shape.slice(1)).toEqual(def.featureShape(opts));
          const x = tf.randomUniform([1, size, size, 3], 0, 1, 'float32', 1);
          const y = m.predict(x) as tf.Tensor;
          expect(y.shape.slice(1)).toEqual(def.featureShape(opts));
          expect(Number.isFinite(y.sum().dataSync()[0]!)).toBe(true);
          tf.dispose([x, y]);
          const blocks = def.blocks(opts);
          const weighted = m.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
          expect(blocks.flat().sort()).toEqual([...weighted].sort());
        } finally {
          m.dispose();
        }
      }
    },
  );

  it('uses Keras layer structure: ReLU6 + DepthwiseConv2D (MobileNetV2), residual Add (ResNet50), swish + SE Multiply + Rescaling (EfficientNet)', () => {
    const classes = (id: string) => {
      const m = BACKBONES[id]!.build({ imageSize: 32, alpha: id === 'mobilenet_v2' ? 0.35 : undefined });
      const out = new Map<string, number>();
      for (const l of m.layers) out.set(l.getClassName(), (out.get(l.getClassName()) ?? 0) + 1);
      const config = m.getLayer(id === 'efficientnet_b0' ? 'block2a_activation' : m.layers[3]!.name).getConfig();
      m.dispose();
      return { out, config };
    };
    const mn = classes('mobilenet_v2').out;
    expect([mn.get('DepthwiseConv2D'), mn.get('ReLU'), mn.get('Add'), mn.get('ZeroPadding2D'), mn.get('BatchNormalization')]).toEqual([17, 35, 10, 4, 52]);
    const rn = classes('resnet50').out;
    expect([rn.get('Add'), rn.get('BatchNormalization'), rn.get('Conv2D'), rn.get('MaxPooling2D')]).toEqual([16, 53, 53, 1]);
    const en = classes('efficientnet_b0');
    expect([en.out.get('Multiply'), en.out.get('Rescaling'), en.out.get('DepthwiseConv2D'), en.out.get('Add'), en.out.get('Dropout')]).toEqual([16, 3, 16, 9, 9]);
    expect(en.config.activation).toBe('swish');
  });

  it('names Keras\'s published no-top files (URL and file hash as keras.applications has them)', () => {
    expect(backboneById('resnet50').imagenetWeights({ imageSize: 224 })).toEqual({
      fileName: 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
      url: 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
      md5: '4d473c1dd8becc155b73f8504c6f6626',
    });
    expect(backboneById('efficientnet_b0').imagenetWeights({ imageSize: 224 })).toEqual({
      fileName: 'efficientnetb0_notop.h5',
      url: 'https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5',
      md5: '50bc09e76180e00e4465e1a485ddc09d',
    });
    const mn = backboneById('mobilenet_v2');
    expect(mn.imagenetWeights({ imageSize: 160, alpha: 0.35 }).url).toBe('https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_160_no_top.h5');
    // Keras loads the 224 file for other sizes (no-top weights do not depend on the input size); no published hash.
    expect(mn.imagenetWeights({ imageSize: 64 })).toEqual({ fileName: 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5', url: 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5' });
    expect(mn.variant({ imageSize: 64, alpha: 0.5 })).toBe('alpha0.5');
    expect(mn.blockNames({ imageSize: 64 })).toEqual(['Conv1', 'expanded_conv', ...Array.from({ length: 16 }, (_, i) => `block_${i + 1}`), 'Conv_1']);
    expect(backboneById('resnet50').blockNames({ imageSize: 64 }).slice(-2)).toEqual(['conv5_block2', 'conv5_block3']);
    expect(backboneById('efficientnet_b0').blockNames({ imageSize: 64 })).toHaveLength(18);
    expect(backboneById('vgg16').blockNames({ imageSize: 64 })).toEqual(['block1', 'block2', 'block3', 'block4', 'block5']);
    expect(backboneById('resnet50').variant({ imageSize: 64 })).toBe('');
  });

  it('records each backbone\'s own preprocessing', () => {
    expect(Object.fromEntries(Object.values(BACKBONES).map((d) => [d.id, d.preprocessing]))).toEqual({ vgg16: 'caffe', mobilenet_v2: 'tf', resnet50: 'caffe', efficientnet_b0: 'raw' });
  });

  it('rejects sizes below 32, alphas Keras publishes no weights for, and --alpha on backbones without one', () => {
    const usage = (f: () => unknown, re: RegExp) => {
      expect(f).toThrow(MlctlError);
      expect(f).toThrow(re);
    };
    usage(() => backboneById('mobilenet_v2').checkOptions({ imageSize: 24 }), /at least 32/);
    usage(() => backboneById('mobilenet_v2').checkOptions({ imageSize: 64, alpha: 0.6 }), /choose one of 0.35, 0.5, 0.75, 1, 1.3, 1.4/);
    usage(() => backboneById('resnet50').checkOptions({ imageSize: 64, alpha: 0.5 }), /--alpha applies to mobilenet_v2 only/);
    usage(() => backboneById('vgg16').checkOptions({ imageSize: 64, alpha: 0.5 }), /--alpha applies to mobilenet_v2 only/);
    usage(() => backboneById('efficientnet_b0').build({ imageSize: 31.5 }), /integer of at least 32/);
    expect(() => backboneById('efficientnet_b0').checkOptions({ imageSize: 33 })).not.toThrow();
  });
});

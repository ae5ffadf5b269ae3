// `mlctl train`: the option table of transfer learning on a backbone (--model nn, --backbone) and of the classic models
// (--model linear|logistic|svm). Light: the runner (cli/run/train.ts) is imported only when train runs.
import type { ClassicKind } from '../../classic/model.js';
import type { KernelType } from '../../classic/kernel.js';
import type { Multiclass } from '../../classic/svm.js';
import type { Augmentation } from '../../train/augment.js';
import type { DetectionAugmentation } from '../../train/detection/augment.js';
import type { DetectionFormat } from '../../data/detection/types.js';
import { LR_SCHEDULES } from '../../train/schedule.js';
import { ALPHA, BACKBONE, BATCH_SIZE, CSV_ENCODING, DATA, ENGINE, HEAD, IMAGE_SIZE, MAX_MEMORY, NAME, SEED, TEST_SPLIT, VALIDATION_SPLIT, WEIGHTS, SESSION_OPTIONS } from '../options.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

export const CLASSIC_MODELS = choicesOf<ClassicKind>()(['linear', 'logistic', 'svm']);
const AUGMENTATIONS = choicesOf<Augmentation>()(['flip', 'rotate', 'zoom', 'shift', 'brightness']);
const DETECTION_AUGMENTATIONS = choicesOf<DetectionAugmentation>()(['flip', 'scale', 'brightness']);
const DETECTION_FORMATS = choicesOf<DetectionFormat>()(['coco', 'yolo', 'voc']);
export const TRAIN_TASKS = ['image-classification', 'detection'] as const;
/** --image-size when not given: classification 224, detection 320. */
export const DEFAULT_IMAGE_SIZE = { 'image-classification': 224, detection: 320 } as const;
const KERNELS = choicesOf<KernelType>()(['linear', 'rbf', 'poly']);
const MULTICLASS = choicesOf<Multiclass>()(['ovr', 'ovo']);
export { BACKBONE_CHOICES } from '../options.js';

/** The classic models' flags (linear/logistic/svm on a CSV file or an image folder). */
export const CLASSIC_TRAIN_OPTIONS = [
  { flags: '--target <column>', description: 'linear/logistic/svm on a CSV file: the column to predict (linear: numeric; logistic/svm: class labels)' },
  { flags: '--features <kind>', description: 'linear/logistic/svm on an image folder: flattened pixels, or VGG16 base features (global average pooled, 512 per image; uses --image-size, --weights, --engine and the feature cache)', choices: ['pixels', 'vgg16'], default: 'pixels' },
  { flags: '--pixel-size <n>', description: '--features pixels: images are resized to n x n RGB before flattening (n*n*3 features)', type: 'int', default: 32, min: 4, max: 256 },
  { flags: '--kernel <name>', description: 'svm kernel', choices: KERNELS, default: 'rbf' },
  { flags: '--C <c>', description: 'svm: penalty for margin violations (larger fits the training data harder)', type: 'float', default: 1, min: 1e-9 },
  { flags: '--gamma <g>', description: 'svm rbf/poly kernel coefficient (default 1 / number of features, on standardised features)', type: 'float', min: 0 },
  { flags: '--degree <d>', description: 'svm poly kernel degree', type: 'int', default: 3, min: 1, max: 10 },
  { flags: '--coef0 <c>', description: 'svm poly kernel constant term (default 1)', type: 'float' },
  { flags: '--svm-type <type>', description: 'svm: classification (c-svc) or regression on a numeric --target (epsilon-svr)', choices: ['c-svc', 'epsilon-svr'], default: 'c-svc' },
  { flags: '--epsilon <e>', description: 'epsilon-svr: half-width of the no-penalty tube around the target, in target standard deviations', type: 'float', default: 0.1, min: 0 },
  { flags: '--l2 <lambda>', description: 'linear/logistic: L2 penalty λ in mean loss + λ/2·‖w‖² (default 0 for linear, 1e-4 for logistic; scikit-learn\'s C is 1/(λ·rows))', type: 'float', min: 0 },
  { flags: '--solver <name>', description: 'linear: closed-form (Cholesky on the normal equations) | gd (gradient descent, large inputs); svm: smo (kernels) | dcd (linear kernel, large data); default: picked by size', choices: ['closed-form', 'gd', 'smo', 'dcd', 'lbfgs'] },
  { flags: '--multiclass <strategy>', description: 'svm with more than 2 classes: one-vs-rest or one-vs-one', choices: MULTICLASS, default: 'ovr' },
  { flags: '--probability', description: 'svm: fit Platt scaling (5-fold cross-validated) so the model outputs class probabilities instead of decision scores', type: 'boolean' },
  { flags: '--categorical <columns>', description: 'CSV: treat these comma-separated columns as categories (one-hot) even if they look numeric', type: 'list' },
  { flags: '--drop-columns <columns>', description: 'CSV: comma-separated columns to leave out (ids, free text)', type: 'list' },
  { flags: '--missing <policy>', description: 'CSV: a missing value is an error (listed by line and column) or drops its row', choices: ['error', 'drop'], default: 'error' },
  CSV_ENCODING,
  MAX_MEMORY,
  { flags: '--tol <t>', description: 'solver stopping tolerance (default: smo 1e-3, dcd 0.1, gd/lbfgs 1e-6)', type: 'float', min: 0 },
  { flags: '--kernel-cache <mb>', description: 'svm (smo): kernel cache per binary problem in MB, as libsvm -m / scikit-learn cache_size (rows are kept for the solver\'s active variables only)', type: 'int', default: 256, min: 1 },
] as const;

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'train an image classifier (transfer learning on VGG16, MobileNetV2, ResNet50 or EfficientNetB0) into a model package',
  description:
    'Keras-style transfer learning: a frozen base (--backbone, with ImageNet weights, an HDF5 file or random init) with a Flatten|GAP → Dense(1024, relu) → [Dropout] → Dense(n, softmax) head, Adam, categorical cross-entropy. ' +
    'Choosing a backbone: vgg16 (15.5 GMAC per 224 image, 14.7M parameters) is the classic default and the slowest to serve; mobilenet_v2 (0.3 GMAC, 2.3M, --alpha trades accuracy for speed) is the pick for CPUs and cameras; ' +
    'efficientnet_b0 (0.4 GMAC, 4.0M) is usually the most accurate per image-second; resnet50 (4.1 GMAC, 23.6M) sits between. Each records the preprocessing its weights expect (caffe, tf, or raw pixels for EfficientNet) so evaluate and serve apply it. ' +
    'Base features are cached on disk (per image content) so epochs and reruns skip the base; --fine-tune K then unfreezes the backbone\'s last K blocks (VGG16: conv blocks; ResNet50: residual blocks; MobileNetV2/EfficientNet: inverted residual blocks, stem and top conv counted as blocks too) for a second phase with its own epochs, rate and schedule (fastai fine_tune); --find-lr picks each phase\'s rate with an LR range test. ' +
    'The head trains on ONNX Runtime (fc1 split across the cores, its gradient and Adam step in a WebAssembly SIMD kernel; --engine tfjs keeps it on TF.js, the same results to 1e-4). ' +
    'A checkpoint is written after every epoch (artifacts/.runs/NAME/; in the background while the next epoch trains, replaced atomically); Ctrl-C saves one and exits 130, --resume continues. ' +
    'With --model linear|logistic|svm the classic models train instead (on a CSV file with --target, or on an image folder). ' +
    '--task detection trains an object detector instead: a CenterNet head ("Objects as Points", Zhou et al. 2019: per-class centre heatmap, box size and offset, focal + L1 loss, 3x3 peak decoding) on the frozen backbone\'s feature maps (computed once, stored), from a COCO, YOLO or Pascal VOC dataset; early stopping on val mAP; --fine-tune K then trains the last K blocks with the head as for classifiers (the frozen part\'s outputs stored once); --find-lr and --extract-only --shard i/n work as for classifiers.',
  options: [
    { ...DATA, description: 'image folder: one subfolder per class (or train/ val/ test/ subfolders); a CSV file for --model linear|logistic|svm; a COCO, YOLO or Pascal VOC dataset for --task detection', required: true },
    { flags: '--task <task>', description: 'image-classification: one label per picture; detection: boxes around every object (COCO/YOLO/VOC data, CenterNet head)', choices: TRAIN_TASKS, default: 'image-classification' },
    { ...NAME, description: 'model name: the package goes to artifacts/NAME/VERSION (default: the data folder name; MODEL-model for classic models)' },
    { flags: '--model <kind>', description: 'nn: a neural network by transfer learning on --backbone; or a classic model (vgg16 is a deprecated alias of nn: pick VGG16 with --backbone vgg16)', choices: ['nn', ...CLASSIC_MODELS, 'vgg16'], default: 'nn' },
    { ...BACKBONE, description: 'the pretrained base: vgg16 (default), mobilenet_v2 (CPUs, cameras), resnet50, efficientnet_b0 (see above for how to choose)' },
    ALPHA,
    { flags: '--epochs <n>', description: 'epochs of the head phase (frozen backbone); fine-tuning has its own --fine-tune-epochs', type: 'int', default: 10, min: 1, max: 100000 },
    { ...BATCH_SIZE, description: 'examples per gradient step', max: 65536 },
    { flags: IMAGE_SIZE.flags, description: 'input height and width: at least 32 (VGG16 and --task detection: a multiple of 32); default 224, 320 for --task detection', type: 'int', min: IMAGE_SIZE.min, max: IMAGE_SIZE.max },
    { flags: '--lr <rate>', description: 'Adam learning rate of the head phase, the peak of its schedule (default 0.001; with --find-lr, the range test\'s suggestion)', type: 'float', min: 1e-12, max: 10 },
    { flags: '--lr-schedule <kind>', description: 'learning-rate schedule of each phase over its own steps: constant; cosine (Keras CosineDecay to 0); one-cycle (fastai fit_one_cycle: lr/25 up to lr, then down to lr/1e5) (default: constant for the head phase, cosine for fine-tuning)', choices: LR_SCHEDULES },
    { flags: '--warmup-epochs <n>', description: 'linear warm-up from 0 at the start of each phase, in epochs (fractions allowed); one-cycle: its rise (default: head 0; fine-tune min(1, fine-tune epochs / 5); one-cycle 25% of the phase)', type: 'float', min: 0, max: 100000 },
    { flags: '--find-lr', description: 'LR range test (fastai lr_find: 100 steps, rate 1e-7 → 10 growing exponentially, smoothed loss, stop on divergence) before each phase: the head on stored features, and with --fine-tune the unfrozen blocks from the trained head; each phase trains at the suggestion (valley) unless --lr/--fine-tune-lr is given; printed, in --json, plotted in history.html', type: 'boolean' },
    HEAD,
    { flags: '--dropout <rate>', description: 'dropout between Dense(1024) and the output (0 = none)', type: 'float', default: 0, min: 0, max: 0.95 },
    { flags: '--fine-tune <k>', description: 'after the head phase, unfreeze the backbone\'s last K blocks (vgg16 5, mobilenet_v2 19, resnet50 17, efficientnet_b0 18) and train them with the head for --fine-tune-epochs at --fine-tune-lr; BatchNormalization stays in inference mode. The frozen part runs in --engine (stored once, like the features, unless --augment); only the unfrozen blocks + head run backward', type: 'int', default: 0, min: 0, max: 19 },
    { flags: '--fine-tune-epochs <n>', description: 'epochs of the fine-tune phase (default 5)', type: 'int', min: 1, max: 100000 },
    { flags: '--fine-tune-lr <rate>', description: 'peak learning rate of the fine-tune phase (default: --lr / 10; with --find-lr, its range test\'s suggestion)', type: 'float', min: 1e-12, max: 10 },
    WEIGHTS,
    { flags: '--augment <list>', description: `comma-separated augmentations (${AUGMENTATIONS.join(', ')}; --task detection: ${DETECTION_AUGMENTATIONS.join(', ')}, boxes moved with the picture, scale = random scale 0.6-1.4 and crop); turns the feature cache off for the train split`, type: 'list', default: [] },
    { flags: '--patience <n>', description: 'early stopping: stop after N epochs without val_loss improvement (--task detection: val mAP) and restore the best weights', type: 'int', min: 1 },
    { ...SEED, description: 'seed for the split, initialisation, shuffling and dropout (same seed + data → same metrics; default 42)' },
    { flags: '--resume', description: 'continue the interrupted run of --name from its last checkpoint', type: 'boolean' },
    VALIDATION_SPLIT,
    TEST_SPLIT,
    { flags: '--class-weights <mode>', description: 'auto weighs classes by inverse frequency (imbalanced folders); none turns it off', choices: ['auto', 'none'], default: 'auto' },
    { ...ENGINE, description: 'feature extraction engine, and the head\'s trainer: auto prefers onnxruntime-node, else tfjs' },
    ...SESSION_OPTIONS,
    { flags: '--no-feature-cache', description: 'recompute base features instead of reading/writing the on-disk cache' },
    { flags: '--extract-only', description: 'only fill the shared feature store (MLCTL_CACHE) with the base features of the dataset (or of --shard; --task detection: feature maps), then stop', type: 'boolean' },
    { flags: '--shard <i/n>', description: 'with --extract-only: the images whose uint32be(sha256(path relative to --data)[0..4]) mod n is i, e.g. $(JOB_COMPLETION_INDEX)/8 in an Indexed Job' },
    { flags: '--format <format>', description: '--task detection: the annotation format of --data (default: recognised from its files: COCO annotations.json, YOLO data.yaml or images/+labels/, VOC Annotations/)', choices: DETECTION_FORMATS },
    { flags: '--skip-invalid', description: '--task detection: leave invalid annotations out (boxes outside the picture, without area, of an unknown class; each is logged) instead of refusing the dataset', type: 'boolean' },
    { flags: '--head-channels <n>', description: '--task detection: channels of the CenterNet neck, upsampling and head convolutions', type: 'int', default: 64, min: 8, max: 1024 },
    { flags: '--upsample <steps>', description: '--task detection: x2 upsampling steps on the backbone\'s stride-32 map: 0, 1 or 2 (output stride 32, 16 or 8; finer finds smaller objects, costs more)', type: 'int', default: 2, min: 0, max: 2 },
    { flags: '--max-detections <k>', description: '--task detection: most boxes per picture (the top K heatmap peaks; recorded in the package for serve and evaluate)', type: 'int', default: 100, min: 1, max: 10000 },
    { flags: '--tensorboard <dir>', description: 'write TensorBoard event files as epochs finish (DIR/train, DIR/validation: epoch_loss, epoch_accuracy, epoch_learning_rate; DIR: hyperparameters for the HParams dashboard); view with tensorboard --logdir DIR' },
    ...CLASSIC_TRAIN_OPTIONS,
  ],
  examples: [
    'mlctl train --data artifacts/sample-data --name sample --weights none --image-size 64 --epochs 5',
    'mlctl train --data ./flowers --name flowers --epochs 10 --batch-size 32 --patience 3',
    'mlctl train --data ./flowers --name flowers --fine-tune 1 --dropout 0.5 --augment flip,rotate',
    'mlctl train --data ./flowers --name flowers-mobile --backbone mobilenet_v2 --image-size 96 --epochs 5 --fine-tune 3 --fine-tune-epochs 4 --find-lr',
    'mlctl train --data ./flowers --name flowers-mobile --backbone mobilenet_v2 --alpha 0.5 --head gap',
    'mlctl train --data ./flowers --name flowers --weights ./vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    'mlctl train --data ./flowers --name flowers --resume',
    'mlctl train --data /data/train --name flowers --extract-only --shard 3/8   # one pod of 8 filling the feature store',
    'mlctl train --data ./flowers --name flowers --fine-tune 1 --tensorboard runs/flowers-ft1   # then: tensorboard --logdir runs',
    'mlctl train --data table.csv --model logistic --target label',
    'mlctl train --task detection --data artifacts/objects --name objects --backbone mobilenet_v2 --epochs 30 --patience 5',
  ],
});

export type TrainContext = ContextOf<typeof trainCommand>;

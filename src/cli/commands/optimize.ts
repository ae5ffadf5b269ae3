// `mlctl quantize|prune|tune|optimize`: the option tables of model optimization. Light: the runners
// (cli/run/optimize.ts) are imported only when one of these commands runs.
import type { SearchParam } from '../../optimize/tune.js';
import { ALPHA, BACKBONE, BATCH_SIZE, DATA, ENGINE, HEAD, IMAGE_SIZE, LATENCY_RUNS, NAME, SEED, SPLIT_OPTIONS, TEST_SPLIT, VALIDATION_SPLIT, WEIGHTS, WEIGHT_DTYPE_CHOICES } from '../options.js';
import { defineCommand, type ContextOf } from '../spec.js';

const QUANTIZE_DTYPES = [...WEIGHT_DTYPE_CHOICES, 'int8'] as const;
const SEARCH_DEFAULT = ['lr', 'units', 'dropout', 'batch-size'] as const satisfies readonly SearchParam[];

/**
 * The accuracy gate of every optimization step: evaluate before and after on the validation split the model was
 * trained with (the split options default to the model's own; the split is checked before any work starts).
 */
const GATE_OPTIONS = [
  { ...DATA, description: 'image folder: its validation split (the model\'s own, as training held it out) is evaluated before and after' },
  { flags: '--max-accuracy-drop <x>', description: 'largest allowed validation accuracy drop (absolute; 0.01 = one point); more → exit 3 (GATE_FAILED) and the package is marked rejected', type: 'float', default: 0.01, min: 0, max: 1 },
  ...SPLIT_OPTIONS,
] as const;

const OUTPUT_OPTIONS = [
  { ...NAME, description: 'package name for the result (default: same name, next version)' },
  { ...ENGINE, description: 'inference engine for the latency column' },
  LATENCY_RUNS,
] as const;

/** Pruning's fine-tuning knobs (prune, and optimize --prune). */
const PRUNE_TUNING_OPTIONS = [
  { flags: '--schedule <kind>', description: 'polynomial: decay from 0 to --sparsity over the first 70% of steps (tfmot PolynomialDecay, power 3); constant: --sparsity from the start', choices: ['polynomial', 'constant'], default: 'polynomial' },
  { flags: '--epochs <n>', description: 'fine-tuning epochs (0: one-shot pruning, no data needed)', type: 'int', default: 2, min: 0 },
  { flags: '--layers <names>', description: 'comma-separated layers to prune (default: the trainable head — every Dense layer before the output layer, e.g. fc1); backbone Conv2D layers only when named here: pruned one-shot, then the head is fine-tuned on the pruned base\'s features', type: 'list' },
  { flags: '--lr <rate>', description: 'fine-tuning learning rate (Adam)', type: 'float', default: 1e-4, min: 0 },
  { ...BATCH_SIZE, description: 'fine-tuning batch size' },
] as const;

const FORCE_REQUANTIZE = { flags: '--force', description: 're-quantize a package whose weights are already quantized (the roundings stack; by default this is refused)', type: 'boolean' } as const;

const CALIBRATION = { flags: '--calibration <n>', description: 'int8 only: training images used to calibrate activation ranges', type: 'int', default: 100, min: 1 } as const;

export const quantizeCommand = defineCommand({
  name: 'quantize',
  summary: 'quantize a model into a new package version: TF.js float16/uint8/uint16 weights, or int8 (an ONNX Runtime QDQ model)',
  description:
    'Re-encodes every float32 weight as the TF.js converter does (weightsManifest quantization: affine uint8/uint16 with 0.0 exact, or IEEE float16); ' +
    'stock tf.loadLayersModel decodes it. With --data, validation accuracy is compared and a drop beyond --max-accuracy-drop exits 3 with the package marked rejected. ' +
    'Detection packages are gated on COCO mAP@[.50:.95] of the validation pictures of a COCO/YOLO/VOC --data instead, by --max-map-drop (points). ' +
    'MODEL is a package (name, name@version or path; a name means its latest version, which the command names before it starts). ' +
    'A package that is already quantized is refused (ALREADY_QUANTIZED, exit 2) unless --force; the lineage records the chain.',
  args: ['<model>'],
  options: [
    { flags: '--dtype <dtype>', description: 'weight encoding (int8: ONNX Runtime QDQ model)', choices: QUANTIZE_DTYPES, default: 'uint8' },
    CALIBRATION,
    FORCE_REQUANTIZE,
    ...GATE_OPTIONS,
    { flags: '--max-map-drop <points>', description: 'detection packages: largest allowed drop in validation COCO mAP@[.50:.95], in points (1 = 0.01 mAP; default 1); more → exit 3 (GATE_FAILED) and the package is marked rejected', type: 'float', min: 0, max: 100 },
    ...OUTPUT_OPTIONS,
  ],
  examples: ['mlctl quantize sample --dtype uint8 --data artifacts/sample-data', 'mlctl quantize shapes-det --dtype float16 --data shapes-coco --max-map-drop 0.5   # a detection package, gated on mAP', 'mlctl quantize artifacts/sample/3 --dtype float16 --max-accuracy-drop 0.005 --data artifacts/sample-data --json'],
});

export const pruneCommand = defineCommand({
  name: 'prune',
  summary: 'magnitude-prune a model (TF-MOT style) with fine-tuning into a new package version',
  description:
    'Zeroes the smallest-magnitude kernel weights of the chosen layers — by default the trainable head (fc1), fine-tuned on the backbone features of the --data training split ' +
    'while masks are re-selected on the schedule (polynomial decay from 0 to --sparsity, or constant). Those features come from the training run\'s feature store when the backbone is as training left it, so nothing is computed twice. ' +
    'The frozen backbone is pruned only when its layers are named in --layers (one-shot; the head is then fine-tuned on the pruned base). Prints a one-line summary (--verbose: every layer). Pruned weights are exactly zero, so the gzip size shows the gain.',
  args: ['<model>'],
  options: [
    { flags: '--sparsity <s>', description: 'fraction of each pruned kernel set to zero', type: 'float', default: 0.5, min: 0.01, max: 0.99 },
    ...PRUNE_TUNING_OPTIONS,
    ...GATE_OPTIONS,
    ...OUTPUT_OPTIONS,
  ],
  examples: [
    'mlctl prune sample --sparsity 0.5 --data artifacts/sample-data',
    'mlctl prune sample --sparsity 0.8 --schedule constant --layers fc1 --epochs 4 --data artifacts/sample-data --json',
    'mlctl prune sample --sparsity 0.3 --layers block5_conv3,fc1 --data artifacts/sample-data --verbose   # the backbone too, every layer listed',
  ],
});

export const tuneCommand = defineCommand({
  name: 'tune',
  summary: 'search head hyperparameters on cached features and save the best trial as a package',
  description:
    'Extracts (or reads cached) VGG16 features of the --data train/validation split once, then trains one head per trial with early stopping ' +
    '(random or grid search over learning rate, Dense units, dropout, batch size). Prints the trials sorted by validation accuracy and saves the best one.',
  options: [
    { ...DATA, description: 'image folder, one subfolder per class', required: true },
    { flags: '--trials <n>', description: 'number of trials', type: 'int', default: 10, min: 1 },
    { flags: '--search <params>', description: 'comma-separated parameters to search: lr, units, dropout, batch-size (others keep train defaults)', type: 'list', default: SEARCH_DEFAULT },
    { flags: '--strategy <s>', description: 'random draws or a (seeded-order) grid', choices: ['random', 'grid'], default: 'random' },
    { ...NAME, description: 'package name for the best trial', default: 'tuned' },
    BACKBONE,
    ALPHA,
    IMAGE_SIZE,
    WEIGHTS,
    HEAD,
    { flags: '--epochs <n>', description: 'maximum epochs per trial', type: 'int', default: 10, min: 1 },
    { flags: '--patience <n>', description: 'early stopping: epochs without val_loss improvement', type: 'int', default: 3, min: 1 },
    { ...SEED, description: 'seed for the split, the trials and training (default 42)' },
    VALIDATION_SPLIT,
    TEST_SPLIT,
    { ...ENGINE, description: 'engine for feature extraction, and the trials\' head trainer: auto prefers onnxruntime-node, else tfjs' },
  ],
  examples: ['mlctl tune --data artifacts/sample-data --trials 8', 'mlctl tune --data artifacts/sample-data --trials 12 --strategy grid --search lr,units --weights none --image-size 64 --json'],
});

export const optimizeCommand = defineCommand({
  name: 'optimize',
  summary: 'run prune → quantize in one go, one new package version per step',
  description:
    'Each step writes a new version whose lineage points at the previous one, and the table shows every version side by side. ' +
    '--max-accuracy-drop bounds the validation accuracy drop over the whole pipeline; a rejected step is kept, marked rejected, and ends the run with exit 3. ' +
    'Pass --prune SPARSITY, --quantize DTYPE or both.',
  args: ['<model>'],
  options: [
    { flags: '--prune <sparsity>', description: 'magnitude-prune to this sparsity first (see mlctl prune)', type: 'float', min: 0.01, max: 0.99 },
    ...PRUNE_TUNING_OPTIONS,
    { flags: '--quantize <dtype>', description: 'then quantize weights (int8: ONNX Runtime QDQ)', choices: QUANTIZE_DTYPES },
    CALIBRATION,
    FORCE_REQUANTIZE,
    ...GATE_OPTIONS,
    ...OUTPUT_OPTIONS,
  ],
  examples: ['mlctl optimize sample --prune 0.5 --quantize uint8 --data artifacts/sample-data', 'mlctl optimize sample --quantize float16 --data artifacts/sample-data --json'],
});

export type QuantizeContext = ContextOf<typeof quantizeCommand>;
export type PruneContext = ContextOf<typeof pruneCommand>;
export type TuneContext = ContextOf<typeof tuneCommand>;
export type OptimizeContext = ContextOf<typeof optimizeCommand>;

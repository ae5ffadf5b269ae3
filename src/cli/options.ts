// Options several commands share, declared once: flags, kind, bounds and default live here; a command that needs a
// different wording or default spreads the entry and overrides that field ({ ...SEED, description: '…' }).
// Light on purpose (type-only imports): --help and --version load this module and nothing heavy.
import type { BackendChoice } from '../runtime/backend.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { GraphOptimization } from '../runtime/device.js';
import type { WeightDtype } from '../artifacts/weight-quant.js';
import { choicesOf, type CommonOpts, type OptionSpec, type OptsOf } from './spec.js';

export const BACKEND_CHOICES = choicesOf<BackendChoice>()(['auto', 'tensorflow', 'wasm', 'cpu']);
export const ENGINE_CHOICES = choicesOf<EngineChoice>()(['auto', 'onnx', 'tfjs']);
export const GRAPH_OPTIMIZATION_CHOICES = choicesOf<GraphOptimization>()(['disabled', 'basic', 'extended', 'all']);
/** TF.js weight quantization dtypes (quantize --dtype, export --quantize). */
export const WEIGHT_DTYPE_CHOICES = choicesOf<WeightDtype>()(['float16', 'uint8', 'uint16']);

/** Options every command accepts (appended to each leaf command's table). */
export const COMMON_OPTIONS = [
  { flags: '--backend <name>', description: 'TF.js backend: auto picks tensorflow (tfjs-node), then wasm, then cpu', choices: BACKEND_CHOICES, default: 'auto', env: 'MLCTL_BACKEND' },
  { flags: '--json', description: 'print one machine-readable JSON result on stdout, on success and on failure (logs stay on stderr)', type: 'boolean' },
  { flags: '-q, --quiet', description: 'only warnings and errors on stderr', type: 'boolean' },
  { flags: '-v, --verbose', description: 'debug output on stderr', type: 'boolean' },
] as const satisfies readonly OptionSpec[];

// spec.ts types runners' common options without importing this module; this proves the two agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const commonOptsAgree: Same<OptsOf<typeof COMMON_OPTIONS>, CommonOpts> = true;
void commonOptsAgree;

export const DATA = {
  flags: '-d, --data <dir>',
  description: 'image folder: one subfolder per class (or train/ val/ test/ subfolders)',
} as const satisfies OptionSpec;

// The split options, one definition for every command that takes --data (train, tune, evaluate, quantize, prune,
// optimize, datasets inspect): data/splits.ts resolves them — the value given, else the model's own (commands that
// take a model hold out exactly the images its training held out), else 42 / 0.2 / 0. No table default, so a
// runner can tell a given value from a default one.
export const SEED = {
  flags: '--seed <n>',
  description: 'seed of the stratified train/validation/test split (default 42; with a model: the seed it was trained with)',
  type: 'int',
} as const satisfies OptionSpec;

export const VALIDATION_SPLIT = {
  flags: '--validation-split <f>',
  description: 'fraction of each class held out for validation when the data has no val/ folder — carved from train/ when it has one (default 0.2; with a model: the fraction it was trained with)',
  type: 'float',
  min: 0,
  max: 0.9,
} as const satisfies OptionSpec;

export const TEST_SPLIT = {
  flags: '--test-split <f>',
  description: 'fraction of each class held out for a final test score when the data has no test/ folder (default 0; with a model: the fraction it was trained with)',
  type: 'float',
  min: 0,
  max: 0.9,
} as const satisfies OptionSpec;

/** The three split options, in the order every command lists them. */
export const SPLIT_OPTIONS = [SEED, VALIDATION_SPLIT, TEST_SPLIT] as const;

export const ENGINE = {
  flags: '--engine <name>',
  description: 'inference engine: auto prefers ONNX Runtime (onnxruntime-node) where the model allows it, else TF.js',
  choices: ENGINE_CHOICES,
  default: 'auto',
} as const satisfies OptionSpec;

export const BATCH_SIZE = {
  flags: '--batch-size <n>',
  description: 'examples per batch',
  type: 'int',
  default: 32,
  min: 1,
} as const satisfies OptionSpec;

export const NAME = {
  flags: '-n, --name <name>',
  description: 'model name: the package goes to artifacts/NAME/VERSION',
} as const satisfies OptionSpec;

export const IMAGE_SIZE = {
  flags: '--image-size <px>',
  description: 'input height and width: at least 32 (VGG16: also a multiple of 32)',
  type: 'int',
  default: 224,
  min: 32,
  max: 4096,
} as const satisfies OptionSpec;

export const WEIGHTS = {
  flags: '--weights <source>',
  description: 'backbone weights: imagenet (Keras\'s published no-top file for the backbone, downloaded once into $MLCTL_CACHE and checked), none (random init) or the PATH of a Keras .h5 file',
  default: 'imagenet',
} as const satisfies OptionSpec;

/** The ids of models/backbones/ BACKBONES (kept literal so option tables load no TF.js; a test checks they agree). */
export const BACKBONE_CHOICES = ['vgg16', 'mobilenet_v2', 'resnet50', 'efficientnet_b0'] as const;

export const BACKBONE = {
  flags: '--backbone <name>',
  description: 'the pretrained base: vgg16 (default), mobilenet_v2 (CPUs, cameras), resnet50, efficientnet_b0 (train --help says how to choose)',
  choices: BACKBONE_CHOICES,
  default: 'vgg16',
} as const satisfies OptionSpec;

export const ALPHA = {
  flags: '--alpha <a>',
  description: 'mobilenet_v2 width multiplier, one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4 (Keras publishes weights for these; default 1.0)',
  type: 'float',
  min: 0.35,
  max: 1.4,
} as const satisfies OptionSpec;

export const HEAD = {
  flags: '--head <kind>',
  description: 'how the base output reaches Dense(1024): flatten (Keras example) or gap (global average pooling)',
  choices: ['flatten', 'gap'],
  default: 'flatten',
} as const satisfies OptionSpec;

export const LATENCY_RUNS = {
  flags: '--latency-runs <n>',
  description: 'timed batch-1 runs for the latency figure (0 skips it)',
  type: 'int',
  default: 20,
  min: 0,
  max: 100000,
} as const satisfies OptionSpec;

/** Long-running commands' log lines on stderr (mlctl's own and the HTTP server's alike): one format, never a mix. */
export const LOG_FORMAT = {
  flags: '--log-format <format>',
  description: 'json: every line on stderr is one JSON object in pino\'s shape (level, time, pid, hostname, msg, …) for log collectors — mlctl\'s own lines and the request logs alike, and the final line too; text: plain lines for people',
  choices: ['json', 'text'],
  default: 'json',
  env: 'MLCTL_LOG_FORMAT',
} as const satisfies OptionSpec;

/** How a CSV file is read (train --model linear|logistic|svm, evaluate on tabular packages). */
export const CSV_ENCODING = {
  flags: '--encoding <name>',
  description: 'CSV: text encoding of the file — utf8 (invalid bytes are an error naming line and byte offset), latin1, windows-1252, utf-16le or another WHATWG label',
  default: 'utf8',
} as const satisfies OptionSpec;

export const MAX_MEMORY = {
  flags: '--max-memory <size>',
  description: 'CSV: refuse a file whose estimated memory to load and train exceeds this (e.g. 512mb, 8gb); checked before anything large is allocated',
  default: '1gb',
  env: 'MLCTL_MAX_MEMORY',
} as const satisfies OptionSpec;

/** Where ONNX Runtime runs (runtime/device.ts parses it, runtime/ort.ts maps it to execution providers). */
export const DEVICE = {
  flags: '--device <name>',
  description: 'where ONNX Runtime runs: cpu, cuda[:N], tensorrt[:N], openvino, coreml, dml[:N], or auto (the first GPU this onnxruntime-node build can load, else cpu, and says which). A device this build cannot run fails (DEVICE_UNAVAILABLE) naming the providers it has and what to install; never a quiet cpu run. TF.js engines run on cpu only',
  default: 'cpu',
  env: 'MLCTL_DEVICE',
} as const satisfies OptionSpec;

/** ONNX Runtime's thread pools and graph optimisation, beside --device on every command that runs a model. */
export const SESSION_OPTIONS = [
  DEVICE,
  { flags: '--intra-op-threads <n>', description: 'ONNX Runtime threads one operator may use (default: every core)', type: 'int', min: 1, max: 1024 },
  { flags: '--inter-op-threads <n>', description: 'ONNX Runtime threads running independent operators at once (default 1: sequential execution)', type: 'int', min: 1, max: 1024 },
  { flags: '--graph-optimization <level>', description: 'ONNX Runtime graph optimisation level', choices: GRAPH_OPTIMIZATION_CHOICES, default: 'all' },
] as const satisfies readonly OptionSpec[];

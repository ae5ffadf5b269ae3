// `mlctl evaluate MODEL... --data DIR`: the option table of evaluation (metrics, calibration, latency, size, deltas,
// report folder, CI gates). Light: the runner (cli/run/evaluate.ts) is imported only when evaluate runs.
import type { EvalSplit } from '../../data/evaluation.js';
import type { DEFAULT_LATENCY } from '../../runtime/latency.js';
import { BATCH_SIZE, CSV_ENCODING, DATA, ENGINE, LATENCY_RUNS, MAX_MEMORY, SPLIT_OPTIONS, SESSION_OPTIONS } from '../options.js';
import { PACKAGE_ACCESS_OPTIONS } from '../package-access.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

const EVAL_SPLITS = choicesOf<EvalSplit>()(['auto', 'test', 'val', 'train', 'all']);
const LATENCY_RUNS_DEFAULT: (typeof DEFAULT_LATENCY)['runs'] = 20;

export const evaluateCommand = defineCommand({
  name: 'evaluate',
  summary: 'accuracy, per-class metrics, calibration, latency and size of one or more models; CI gates',
  description:
    'Evaluate model packages on an image folder, or tabular (classic) packages on a CSV file. Uses the same deterministic split as train (same --seed, --validation-split and ' +
    '--test-split; when not given, the values the first model recorded at training, else 42 / 0.2 / 0). With several models, each is ' +
    'evaluated on the same images and a delta table vs the first is printed. Any failed --min-*/--max-* gate exits with code 3 (error code GATE_FAILED), after printing the results. ' +
    'Ties: the predicted class is the first (lowest-index) of equal top scores, and top-k ranks equal scores by lower index. ' +
    'Log loss clips probabilities to [1e-7, 1-1e-7]; ECE uses 15 equal-width confidence bins; macro averages cover the classes present ' +
    'in the data or the predictions. CSV data is encoded with each package\'s recorded encoding and split like `train --model ...` did ' +
    '(no test split: auto = val); wrong rows are listed by CSV line. Regression packages report R², MAE and RMSE; their gate is --min-r2 ' +
    '(--min-accuracy/--min-f1 are for classifiers) and --report is for classifiers. Detection packages are evaluated on a COCO, YOLO or Pascal VOC dataset ' +
    'with COCO metrics (pycocotools semantics: mAP@[.50:.05:.95], AP50, AP75, AP and AR by size, AR@1/10/100) overall and per class; their gates are --min-map and --min-ap50, ' +
    'and --report adds precision-recall curves and the pictures with the most mistakes, boxes drawn (docs/detection-evaluate.md).',
  args: ['<models...>'],
  options: [
    { ...DATA, description: 'image folder (one subfolder per class, or train/ val/ test/ subfolders), a CSV file for tabular packages, or a COCO/YOLO/VOC dataset for detection packages', required: true },
    { flags: '--split <name>', description: 'which images: auto = test if the data has a test split, else val', choices: EVAL_SPLITS, default: 'auto' },
    CSV_ENCODING,
    MAX_MEMORY,
    { flags: '--top-k <k>', description: 'k for top-k accuracy (capped at the number of classes)', type: 'int', default: 5, min: 1 },
    { ...ENGINE, description: 'inference engine: auto prefers ONNX Runtime when the package allows it, else TF.js' },
    ...SESSION_OPTIONS,
    { ...BATCH_SIZE, description: 'images per inference batch', default: 16, max: 4096 },
    { flags: '--report <dir>', description: 'write index.html (a self-contained page: metrics, confusion heat map, reliability, latency, worst images as thumbnails), report.json, report.md and PNG figures into this folder' },
    { flags: '--min-accuracy <x>', description: 'gate: fail (exit 3) when accuracy is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-f1 <x>', description: 'gate: fail (exit 3) when macro F1 is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-map <x>', description: 'gate (detection packages): fail (exit 3) when COCO mAP@[.50:.95] is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-ap50 <x>', description: 'gate (detection packages): fail (exit 3) when COCO AP50 is below x (0..1)', type: 'float', min: 0, max: 1 },
    { flags: '--min-r2 <x>', description: 'gate (regression packages): fail (exit 3) when R² is below x', type: 'float', max: 1 },
    { flags: '--max-latency-ms <ms>', description: 'gate: fail (exit 3) when batch-1 latency (--latency-percentile) is above ms', type: 'float', min: 0 },
    { flags: '--latency-percentile <p>', description: 'which batch-1 latency percentile --max-latency-ms checks', choices: ['p50', 'p95', 'p99'], default: 'p95' },
    { ...LATENCY_RUNS, description: 'timed batch-1 runs for latency percentiles (0 skips latency and throughput)', default: LATENCY_RUNS_DEFAULT },
    { flags: '--worst <n>', description: 'list the n most confidently wrong images (detection: the n pictures with the most mistakes)', type: 'int', default: 10, min: 0, max: 10000 },
    ...SPLIT_OPTIONS,
    ...PACKAGE_ACCESS_OPTIONS,
  ],
  examples: [
    'mlctl evaluate sample --data artifacts/sample-data',
    'mlctl evaluate sample --data artifacts/sample-data --split all --report reports/sample',
    'mlctl evaluate sample@1 sample@2 --data artifacts/sample-data   # side-by-side deltas vs sample@1',
    'mlctl evaluate sample --data artifacts/sample-data --min-accuracy 0.9 --max-latency-ms 50 --json > eval.json',
    'mlctl evaluate prices --data houses.csv --min-r2 0.8   # a tabular regression package (train --model linear)',
    'mlctl evaluate shapes-det --data shapes-coco --min-map 0.3 --report reports/det   # a detection package on a COCO dataset',
  ],
});

export type EvaluateContext = ContextOf<typeof evaluateCommand>;

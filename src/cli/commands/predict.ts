// `mlctl predict MODEL INPUT…`: the option table of batch prediction to CSV / JSON Lines, and of `--merge` (joining
// shard outputs). Light: the runner (cli/run/predict.ts) is imported only when predict runs.
import type { OutputFormat } from '../../predict/rows.js';
import { BATCH_SIZE, ENGINE, SESSION_OPTIONS } from '../options.js';
import { ALLOW_REJECTED, PACKAGE_ACCESS_OPTIONS } from '../package-access.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

const FORMATS = choicesOf<OutputFormat | 'coco'>()(['csv', 'jsonl', 'coco']);

export const predictCommand = defineCommand({
  name: 'predict',
  summary: 'batch prediction over image files, folders, lists or URLs (or CSV rows) to CSV / JSON Lines',
  description: [
    'Predict every input and write one row per input: index (position in the listing), input (as listed), the top-k labels and scores (or the value, for regression), and an error column for inputs that could not be read or decoded (counted, never fatal).',
    '',
    'Detection models write one row per box instead (label, score, x, y, width, height in the image\'s own pixels; an image without boxes gets one row with empty cells), or with --format coco a COCO results file ([{image_id, category_id, bbox, score}]) made from its rows kept in <out>.rows.jsonl (resumable and shardable like any output); image ids from --coco-images, else listing position + 1.',
    '',
    'Inputs: image files; folders (walked recursively, names sorted); .txt/.lst lists (one path or http(s) URL per line, # comments; relative paths are relative to the list) and .csv/.tsv lists (a column named input/path/file/image/url, else the first); - for paths on stdin. Tabular packages take CSV files of feature rows instead (one output row per CSV row, input "<file>:<line>").',
    '',
    "Rows stream in input order with constant memory; each chunk is appended in one write and fsync'd, so a killed run never leaves half a line. --resume continues such a file, skipping inputs already in it (an input listed twice is done once). A finished run writes <out>.summary.json beside the output.",
    '',
    '--shard i/n predicts the inputs whose uint32be(sha256(input)[0..4]) mod n is i (the first 4 bytes of the digest as a big-endian number; 0-based): n pods (a Kubernetes Indexed Job, see export --format bundle) list the same inputs and each does its share; --merge joins their outputs into the rows one unsharded run writes (checking the set is complete and from one run).',
  ].join('\n'),
  args: ['[model]', '[inputs...]'],
  options: [
    { flags: '-o, --out <file>', description: 'output file (default: stdout); .jsonl/.ndjson imply --format jsonl' },
    { flags: '-f, --format <format>', description: 'output format (default: from --out, else csv)', choices: FORMATS },
    { flags: '--top-k <k>', description: 'labels per row (capped at the number of labels)', type: 'int', default: 5, min: 1 },
    { flags: '--min-score <x>', description: 'detection models: drop boxes scoring below x (0..1; default: the model\'s, else 0.3)', type: 'float', min: 0, max: 1 },
    { flags: '--max-detections <n>', description: 'detection models: most boxes per image (default: the model\'s)', type: 'int', min: 1 },
    { flags: '--coco-images <file>', description: '--format coco: a COCO annotations file whose image ids the results use, matched on file_name (default: listing position + 1)' },
    { ...BATCH_SIZE, description: 'inputs per engine batch (and per durable append)', default: 16, max: 4096 },
    { ...ENGINE, description: 'inference engine: auto prefers ONNX Runtime, then TF.js' },
    ...SESSION_OPTIONS,
    { flags: '--concurrency <n>', description: 'decodes and downloads in flight (default: 2 x cores)', type: 'int', min: 1, max: 256 },
    { flags: '--shard <i/n>', description: 'predict only shard i of n (0-based), e.g. $(JOB_COMPLETION_INDEX)/8 in an Indexed Job' },
    { flags: '--resume', description: 'continue --out: skip inputs already in it (same --format and --top-k)', type: 'boolean' },
    { flags: '--force', description: 'replace an existing --out', type: 'boolean' },
    { flags: '--merge', description: 'join shard outputs (the arguments: files or folders) into --out', type: 'boolean' },
    { flags: '--max-pixels <n>', description: 'largest image decoded, in pixels counted at 8-bit RGBA (decoded bytes, bit depth x channels, at most n x 4; decompression-bomb guard)', type: 'int', default: 64 * 1024 * 1024, min: 1 },
    { flags: '--timeout <duration>', description: 'per-URL download time limit', default: '30s' },
    { flags: '--max-download <size>', description: 'largest URL download accepted', default: '50mb' },
    ...PACKAGE_ACCESS_OPTIONS,
    ALLOW_REJECTED,
  ],
  examples: [
    'mlctl predict sample photos/ --out predictions.csv',
    'mlctl predict sample:production urls.txt --format jsonl --top-k 3 > predictions.jsonl',
    'find /data -name "*.jpg" | mlctl predict sample - --out predictions.csv --resume',
    'mlctl predict sample /data --shard 2/8 --out out/predictions-2-of-8.csv --resume',
    'mlctl predict --merge out/ --out predictions.csv',
    'mlctl predict prices houses.csv --out prices.csv   # a tabular package: one row per CSV row',
    'mlctl predict shapes-detector val/images --format coco --coco-images val/annotations.json --min-score 0 --out results.json',
  ],
});

export type PredictContext = ContextOf<typeof predictCommand>;

// `mlctl datasets synth|inspect`: the option tables of the sample-dataset generators (classification folders,
// detection sets) and the dataset inspector. Light: the runners (cli/run/datasets.ts) are imported only when one runs.
import type { DetectionFormat } from '../../data/detection/types.js';
import type { SYNTH_CLASSES } from '../../data/synth.js';
import { SEED, SPLIT_OPTIONS } from '../options.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

const SYNTH_CLASS_NAMES = choicesOf<(typeof SYNTH_CLASSES)[number]>()(['circle', 'square', 'triangle', 'stripes', 'checker', 'ring', 'cross', 'dots']);
const DETECTION_FORMATS = choicesOf<DetectionFormat>()(['coco', 'yolo', 'voc']);
const DATASET_TASKS = ['image-classification', 'detection'] as const;

export const synthCommand = defineCommand({
  name: 'synth',
  summary: 'generate a deterministic synthetic dataset: one folder per class, or pictures with several boxed objects (--task detection)',
  options: [
    { flags: '-o, --out <dir>', description: 'output folder', default: 'artifacts/sample-data' },
    { flags: '--task <task>', description: 'image-classification: one folder per class; detection: pictures with 0 to --max-objects shapes each and their boxes, written in --layout', choices: DATASET_TASKS, default: 'image-classification' },
    { flags: '--classes <n>', description: `number of classes (classification 2-${SYNTH_CLASS_NAMES.length}: ${SYNTH_CLASS_NAMES.join(', ')}; detection 1-5: circle, square, triangle, ring, cross; default 5 and 3)`, type: 'int', min: 1, max: SYNTH_CLASS_NAMES.length },
    { flags: '--per-class <n>', description: 'images per class (classification)', type: 'int', default: 40, min: 1 },
    { flags: '--images <n>', description: 'pictures (detection)', type: 'int', default: 200, min: 1 },
    { flags: '--max-objects <n>', description: 'most objects in one picture (detection; one picture in ten has none)', type: 'int', default: 3, min: 1, max: 20 },
    { flags: '--layout <format>', description: 'detection annotations: coco (annotations.json + images/), yolo (images/, labels/, classes.txt) or voc (Annotations/, JPEGImages/)', choices: DETECTION_FORMATS, default: 'coco' },
    { flags: '--size <px>', description: 'image width and height (default 64; 128 for detection)', type: 'int', min: 8, max: 4096 },
    { flags: '--format <fmt>', description: 'file format (classification; detection pictures are JPEG)', choices: ['jpg', 'png', 'mixed'], default: 'mixed' },
    { ...SEED, description: 'random seed', default: 42 },
  ],
  examples: ['mlctl datasets synth --out artifacts/sample-data', 'mlctl datasets synth --out /tmp/big --per-class 1000 --size 224', 'mlctl datasets synth --task detection --out artifacts/objects --images 500'],
});

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'show what mlctl reads from a dataset: classes and splits of an image folder; boxes per class, sizes and invalid annotations of a detection set',
  args: ['<dir>'],
  options: [
    ...SPLIT_OPTIONS,
    { flags: '--format <format>', description: 'read a detection dataset in this format (default: recognised from its files: COCO annotations.json, YOLO data.yaml or images/+labels/, VOC Annotations/)', choices: DETECTION_FORMATS },
  ],
  examples: ['mlctl datasets inspect artifacts/sample-data', 'mlctl datasets inspect artifacts/objects --json'],
});

export const datasetsCommand = defineCommand({
  name: 'datasets',
  summary: 'generate and inspect image datasets',
  options: [],
  examples: ['mlctl datasets synth --out artifacts/sample-data --per-class 40', 'mlctl datasets inspect artifacts/sample-data'],
});

export type SynthContext = ContextOf<typeof synthCommand>;
export type InspectContext = ContextOf<typeof inspectCommand>;

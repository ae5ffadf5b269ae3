// `mlctl datasets synth|inspect`: the option tables of the sample-dataset generator and the image-folder
// inspector. Light: the runners (cli/run/datasets.ts) are imported only when one runs.
import type { SYNTH_CLASSES } from '../../data/synth.js';
import { SEED, SPLIT_OPTIONS } from '../options.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

const SYNTH_CLASS_NAMES = choicesOf<(typeof SYNTH_CLASSES)[number]>()(['circle', 'square', 'triangle', 'stripes', 'checker', 'ring', 'cross', 'dots']);

export const synthCommand = defineCommand({
  name: 'synth',
  summary: 'generate a deterministic synthetic image dataset (one folder per class)',
  options: [
    { flags: '-o, --out <dir>', description: 'output folder', default: 'artifacts/sample-data' },
    { flags: '--classes <n>', description: `number of classes (2-${SYNTH_CLASS_NAMES.length}: ${SYNTH_CLASS_NAMES.join(', ')})`, type: 'int', default: 5, min: 2, max: SYNTH_CLASS_NAMES.length },
    { flags: '--per-class <n>', description: 'images per class', type: 'int', default: 40, min: 1 },
    { flags: '--size <px>', description: 'image width and height', type: 'int', default: 64, min: 8, max: 4096 },
    { flags: '--format <fmt>', description: 'file format', choices: ['jpg', 'png', 'mixed'], default: 'mixed' },
    { ...SEED, description: 'random seed', default: 42 },
  ],
  examples: ['mlctl datasets synth --out artifacts/sample-data', 'mlctl datasets synth --out /tmp/big --per-class 1000 --size 224'],
});

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'list the classes and split sizes mlctl reads from an image folder',
  args: ['<dir>'],
  options: [...SPLIT_OPTIONS],
  examples: ['mlctl datasets inspect artifacts/sample-data'],
});

export const datasetsCommand = defineCommand({
  name: 'datasets',
  summary: 'generate and inspect image datasets',
  options: [],
  examples: ['mlctl datasets synth --out artifacts/sample-data --per-class 40', 'mlctl datasets inspect artifacts/sample-data'],
});

export type SynthContext = ContextOf<typeof synthCommand>;
export type InspectContext = ContextOf<typeof inspectCommand>;

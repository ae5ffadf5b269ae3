// `mlctl datasets synth|inspect`: generate the sample dataset, and show what mlctl sees in an image folder.
import path from 'node:path';
import { datasetSplits, scanImageFolder } from '../../data/imagefolder.js';
import { generateSynthDataset, SYNTH_CLASSES } from '../../data/synth.js';
import type { CommandSpec } from '../spec.js';

const synth: CommandSpec = {
  name: 'synth',
  summary: 'generate a deterministic synthetic image dataset (one folder per class)',
  options: [
    { flags: '-o, --out <dir>', description: 'output folder', default: 'artifacts/sample-data' },
    { flags: '--classes <n>', description: `number of classes (2-${SYNTH_CLASSES.length}: ${SYNTH_CLASSES.join(', ')})`, type: 'int', default: 5, min: 2, max: SYNTH_CLASSES.length },
    { flags: '--per-class <n>', description: 'images per class', type: 'int', default: 40, min: 1 },
    { flags: '--size <px>', description: 'image width and height', type: 'int', default: 64, min: 8, max: 4096 },
    { flags: '--format <fmt>', description: 'file format', choices: ['jpg', 'png', 'mixed'], default: 'mixed' },
    { flags: '--seed <n>', description: 'random seed', type: 'int', default: 42 },
  ],
  examples: ['mlctl datasets synth --out artifacts/sample-data', 'mlctl datasets synth --out /tmp/big --per-class 1000 --size 224'],
  async run({ opts, logger }) {
    const res = await generateSynthDataset({
      out: path.resolve(opts.out as string),
      classes: opts.classes as number,
      perClass: opts.perClass as number,
      size: opts.size as number,
      format: opts.format as 'jpg' | 'png' | 'mixed',
      seed: opts.seed as number,
    });
    logger.info(`wrote ${res.files} images in ${res.classes.length} classes to ${res.out}`);
    return { result: { ...res }, text: res.out };
  },
};

const inspect: CommandSpec = {
  name: 'inspect',
  summary: 'list the classes and split sizes mlctl reads from an image folder',
  args: ['<dir>'],
  options: [
    { flags: '--validation-split <f>', description: 'fraction held out for validation', type: 'float', default: 0.2, min: 0, max: 0.9 },
    { flags: '--test-split <f>', description: 'fraction held out for test', type: 'float', default: 0, min: 0, max: 0.9 },
    { flags: '--seed <n>', description: 'split seed', type: 'int', default: 42 },
  ],
  examples: ['mlctl datasets inspect artifacts/sample-data'],
  async run({ args, opts }) {
    const folder = await scanImageFolder(args[0] as string);
    const splits = datasetSplits(folder, { validationSplit: opts.validationSplit as number, testSplit: opts.testSplit as number, seed: opts.seed as number });
    const perClass = folder.classes.map((c, i) => ({
      class: c,
      train: splits.train.filter((s) => s.label === i).length,
      val: splits.val.filter((s) => s.label === i).length,
      test: splits.test.filter((s) => s.label === i).length,
    }));
    const text = [`${folder.root} (${folder.layout} layout, ${folder.classes.length} classes)`, ...perClass.map((p) => `  ${p.class.padEnd(20)} train ${p.train}  val ${p.val}  test ${p.test}`)].join('\n');
    return { result: { root: folder.root, layout: folder.layout, classes: folder.classes, perClass }, text };
  },
};

export const datasetsCommand: CommandSpec = {
  name: 'datasets',
  summary: 'generate and inspect image datasets',
  options: [],
  examples: ['mlctl datasets synth --out artifacts/sample-data --per-class 40', 'mlctl datasets inspect artifacts/sample-data'],
  subcommands: [synth, inspect],
};

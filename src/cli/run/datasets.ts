// Runs `mlctl datasets synth|inspect` (loaded on demand): generate the sample dataset, and show what mlctl sees in
// an image folder.
import path from 'node:path';
import { datasetSplits, scanImageFolder } from '../../data/imagefolder.js';
import { generateSynthDataset } from '../../data/synth.js';
import type { InspectContext, SynthContext } from '../commands/datasets.js';
import type { CommandResult } from '../spec.js';

export async function synth({ opts, logger }: SynthContext): Promise<CommandResult> {
  const res = await generateSynthDataset({
    out: path.resolve(opts.out),
    classes: opts.classes,
    perClass: opts.perClass,
    size: opts.size,
    format: opts.format,
    seed: opts.seed,
  });
  logger.info(`wrote ${res.files} images in ${res.classes.length} classes to ${res.out}`);
  return { result: { ...res }, text: res.out };
}

export async function inspect({ args, opts }: InspectContext): Promise<CommandResult> {
  const folder = await scanImageFolder(args[0]);
  const splits = datasetSplits(folder, { validationSplit: opts.validationSplit, testSplit: opts.testSplit, seed: opts.seed });
  const perClass = folder.classes.map((c, i) => ({
    class: c,
    train: splits.train.filter((s) => s.label === i).length,
    val: splits.val.filter((s) => s.label === i).length,
    test: splits.test.filter((s) => s.label === i).length,
  }));
  const text = [`${folder.root} (${folder.layout} layout, ${folder.classes.length} classes)`, ...perClass.map((p) => `  ${p.class.padEnd(20)} train ${p.train}  val ${p.val}  test ${p.test}`)].join('\n');
  return { result: { root: folder.root, layout: folder.layout, classes: folder.classes, perClass }, text };
}

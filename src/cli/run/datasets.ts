// Runs `mlctl datasets synth|inspect` (loaded on demand): generate the sample dataset, and show what mlctl sees in
// an image folder.
import path from 'node:path';
import { scanImageFolder } from '../../data/imagefolder.js';
import { describeSplits, planSplits, resolveSplitParams, unusedSplitOptions } from '../../data/splits.js';
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

export async function inspect({ args, opts, logger }: InspectContext): Promise<CommandResult> {
  const folder = await scanImageFolder(args[0]);
  const resolved = resolveSplitParams(opts);
  const plan = planSplits(folder, resolved.params);
  for (const w of unusedSplitOptions(plan, resolved.from)) logger.warn(w);
  const { splits } = plan;
  const perClass = folder.classes.map((c, i) => ({
    class: c,
    train: splits.train.filter((s) => s.label === i).length,
    val: splits.val.filter((s) => s.label === i).length,
    test: splits.test.filter((s) => s.label === i).length,
  }));
  const text = [`${folder.root} (${folder.classes.length} classes): ${describeSplits(plan)}`, ...perClass.map((p) => `  ${p.class.padEnd(20)} train ${p.train}  val ${p.val}  test ${p.test}`)].join('\n');
  return { result: { root: folder.root, layout: folder.layout, classes: folder.classes, split: { ...plan.params, source: plan.source }, perClass }, text };
}

// Runs `mlctl datasets synth|inspect` (loaded on demand): generate the sample datasets, and show what mlctl sees in
// an image folder or a detection dataset.
import path from 'node:path';
import { scanImageFolder } from '../../data/imagefolder.js';
import { describeSplits, planSplits, resolveSplitParams, unusedSplitOptions } from '../../data/splits.js';
import { detectFormat, detectionSplits, detectionStats, issuePlace, readDetectionDataset, type DetectionSplitName } from '../../data/detection/index.js';
import { generateDetectionDataset } from '../../data/detection/synth.js';
import { generateSynthDataset } from '../../data/synth.js';
import type { InspectContext, SynthContext } from '../commands/datasets.js';
import type { CommandResult } from '../spec.js';

export async function synth({ opts, logger }: SynthContext): Promise<CommandResult> {
  if (opts.task === 'detection') {
    const res = await generateDetectionDataset({ out: opts.out, classes: opts.classes ?? 3, images: opts.images, size: opts.size ?? 128, maxObjects: opts.maxObjects, layout: opts.layout, seed: opts.seed });
    logger.info(`wrote ${res.images} pictures with ${res.boxes} boxes of ${res.classes.length} classes (${res.layout}) to ${res.out}`);
    return { result: { task: 'detection', ...res }, text: res.out };
  }
  const res = await generateSynthDataset({
    out: path.resolve(opts.out),
    classes: opts.classes ?? 5,
    perClass: opts.perClass,
    size: opts.size ?? 64,
    format: opts.format,
    seed: opts.seed,
  });
  logger.info(`wrote ${res.files} images in ${res.classes.length} classes to ${res.out}`);
  return { result: { task: 'image-classification', ...res }, text: res.out };
}

export async function inspect(ctx: InspectContext): Promise<CommandResult> {
  const { args, opts, logger } = ctx;
  const format = opts.format ?? (await detectFormat(path.resolve(args[0])));
  if (format) return inspectDetection(ctx, format);
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
  return { result: { task: 'image-classification', root: folder.root, layout: folder.layout, classes: folder.classes, split: { ...plan.params, source: plan.source }, perClass }, text };
}

const ISSUES_LISTED = 50;

async function inspectDetection({ args, opts, logger }: InspectContext, format: NonNullable<InspectContext['opts']['format']>): Promise<CommandResult> {
  const ds = await readDetectionDataset(args[0], format);
  // Inspect reports invalid annotations instead of refusing the dataset: that is what it is for.
  const splits = detectionSplits(ds, { ...resolveSplitParams(opts).params, skipInvalid: true });
  const all = [...splits.train, ...splits.val, ...splits.test];
  const stats = detectionStats(all, ds.labels);
  const declared = (Object.keys(ds.splits) as DetectionSplitName[]).filter((s) => ds.splits[s]!.length > 0);
  const splitText = (['train', 'val', 'test'] as const).map((s) => `${s} ${splits[s].length}${declared.includes(s) ? '' : splits[s].length ? ' (carved from train)' : ''}`).join(', ');
  const w = Math.max(8, ...ds.labels.map((l) => l.length));
  const row = (name: string, c: { boxes: number; small: number; medium: number; large: number }, images?: number) =>
    `  ${name.padEnd(w)}  ${String(c.boxes).padStart(7)}  ${String(images ?? '').padStart(6)}  ${String(c.small).padStart(6)}  ${String(c.medium).padStart(6)}  ${String(c.large).padStart(6)}`;
  const lines = [
    `${ds.root} (${ds.format.toUpperCase()}, ${ds.labels.length} classes, ${stats.images} images: ${splitText})`,
    `  ${'class'.padEnd(w)}  ${'boxes'.padStart(7)}  ${'images'.padStart(6)}  ${'small'.padStart(6)}  ${'medium'.padStart(6)}  ${'large'.padStart(6)}`,
    ...stats.perClass.map((c) => row(c.label, c, c.images)),
    row('(all)', { boxes: stats.boxes, ...stats.sizes }, stats.images - stats.emptyImages),
    `  images without boxes: ${stats.emptyImages}  (sizes: COCO small < 32², medium < 96², large)`,
  ];
  if (ds.issues.length) {
    lines.push(`  invalid annotations: ${ds.issues.length} (left out above; train and evaluate refuse the dataset unless --skip-invalid)`);
    for (const i of ds.issues.slice(0, ISSUES_LISTED)) lines.push(`    ${issuePlace(i)}  ${i.kind}: ${i.message}`);
    if (ds.issues.length > ISSUES_LISTED) lines.push(`    … and ${ds.issues.length - ISSUES_LISTED} more (--json lists all)`);
    logger.warn(`${ds.issues.length} invalid annotation(s) in ${ds.root}`);
  }
  return {
    result: {
      task: 'detection',
      root: ds.root,
      format: ds.format,
      labels: ds.labels,
      categoryIds: ds.categoryIds,
      splits: { train: splits.train.length, val: splits.val.length, test: splits.test.length },
      declaredSplits: declared,
      ...stats,
      issues: ds.issues,
    },
    text: lines.join('\n'),
  };
}

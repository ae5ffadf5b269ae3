// Runs `mlctl import` (loaded on demand): option values → import/import.ts importModel, and what it made, in words.
import { importModel, readLabels } from '../../import/import.js';
import { parseInputShapes } from '../../import/onnx.js';
import { MlctlError } from '../../errors.js';
import { describeSpec } from '../../runtime/tensor.js';
import type { ImportContext } from '../commands/import.js';
import type { CommandResult } from '../spec.js';

/** "224" or "320x256" → [height, width]. */
function imageSize(v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  const [h, w] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [0, 0];
  if (!(h >= 1 && w >= 1)) throw new MlctlError('OPTION_INVALID', [`--image-size ${JSON.stringify(v)}: expected N or HxW with positive integers, e.g. 224 or 320x320`]);
  return [h, w];
}

function numbers(v: string[] | undefined, flag: string): number[] | undefined {
  if (!v) return undefined;
  const out = v.map(Number);
  if (out.some((x) => !Number.isFinite(x))) throw new MlctlError('OPTION_INVALID', [`${flag} ${v.join(',')}: expected numbers, e.g. 0.485,0.456,0.406`]);
  return out;
}

export async function run({ args, opts, logger }: ImportContext): Promise<CommandResult> {
  const r = await importModel({
    file: args[0],
    name: opts.name,
    version: opts.version,
    task: opts.task,
    labels: opts.labels !== undefined ? await readLabels(opts.labels) : undefined,
    preprocessing: opts.preprocessing,
    imageSize: imageSize(opts.imageSize),
    channelOrder: opts.channelOrder,
    mean: numbers(opts.mean, '--mean'),
    std: numbers(opts.std, '--std'),
    resize: opts.resize,
    layout: opts.layout,
    inputShapes: parseInputShapes(opts.inputShape),
    maxDetections: opts.maxDetections,
    iouThreshold: opts.iouThreshold,
    scoreThreshold: opts.scoreThreshold,
    logger,
  });
  const m = r.pkg.manifest;
  const what = m.task ? `${m.task} (${m.labels.length} labels${m.detection ? `, ${m.detection.head} head` : ''})` : 'generic tensor model';
  const text = [
    `imported ${r.source.file} (${r.source.format}${r.source.opset ? `, opset ${r.source.opset}` : ''}${r.source.producer ? `, from ${r.source.producer}` : ''}) as ${m.name} v${m.version}: ${what}`,
    `  inputs:  ${r.inputs.map(describeSpec).join(', ')}`,
    `  outputs: ${r.outputs.map(describeSpec).join(', ')}`,
    ...(r.source.externalData.length ? [`  external data inlined from ${r.source.externalData.join(', ')}`] : []),
    `  ${r.pkg.dir}`,
  ].join('\n');
  return {
    result: {
      package: { name: m.name, version: m.version, dir: r.pkg.dir, manifestSha256: r.pkg.manifestSha256 },
      task: m.task ?? null,
      source: r.source,
      inputs: r.inputs,
      outputs: r.outputs,
      ...(m.input.kind === 'image' ? { input: m.input } : {}),
      ...(m.detection ? { detection: m.detection } : {}),
    },
    text,
  };
}

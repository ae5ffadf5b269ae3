// The before/after figures every optimize step reports — size by artifacts/size.ts's one definition (what serving loads,
// raw and gzip, and the package's total on disk), validation accuracy on the split the model was trained with (the
// classification task's evaluation), batch-1 latency — and their table.
import Table from 'cli-table3';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ModelJson } from '../artifacts/tfjs-io.js';
import { MlctlError } from '../errors.js';
import type { DetectionSection, ImageInputSpec } from '../artifacts/manifest.js';
import { loadDetectionEvaluationData, mapDetectionLabels } from '../data/detection/evaluation.js';
import type { DetectionSample } from '../data/detection/types.js';
import { evaluateDetectionEngine } from '../tasks/detection/evaluate.js';
import type { LoadedPackage } from '../artifacts/package.js';
import type { Sample } from '../data/imagefolder.js';
import { loadEvaluationData, mapToModelLabels } from '../data/evaluation.js';
import { resolveSplitParams, unusedSplitOptions, type SplitParams } from '../data/splits.js';
import { measureLatency } from '../runtime/latency.js';
import { modelSize as evaluateModelSize, totalBytes } from '../artifacts/size.js';
import { formatSize } from '../util/units.js';
import type { InferenceEngine } from '../runtime/engine.js';
import { evaluateEngine } from '../tasks/classification/evaluate.js';
import type { Logger } from '../util/log.js';

export interface SizeOnDisk {
  /** The served model's bytes (what serving loads), and gzip -9 of them. */
  raw: number;
  gzip: number;
  /** Which format those are (onnx, tfjs, …). */
  format?: string;
  /** Every file of the package; absent for a model that is no package (int8's fp32 conversion). */
  total?: number;
}

/** Size of the package by the one definition (models ls/show agree): its served model raw and gzip -9, and its total on disk. */
export async function modelSize(pkg: LoadedPackage, format?: string): Promise<SizeOnDisk> {
  const s = await evaluateModelSize(pkg, format);
  return { raw: s.rawBytes, gzip: s.gzipBytes, format: s.format, total: totalBytes(pkg.manifest) };
}

/** Absolute paths of the package's TF.js model files: model.json and the shards it lists. */
export async function tfjsModelFiles(pkg: LoadedPackage): Promise<string[]> {
  const rel = pkg.manifest.formats.tfjs;
  if (!rel) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has no TF.js model (formats.tfjs)']);
  const jsonPath = path.join(pkg.dir, rel);
  const json = JSON.parse(await fs.readFile(jsonPath, 'utf8')) as ModelJson;
  return [jsonPath, ...json.weightsManifest.flatMap((g) => g.paths.map((p) => path.join(path.dirname(jsonPath), p)))];
}

export interface ValidationSet {
  data: string;
  /** Labels index into the model's labels. */
  samples: Sample[];
  /** The split parameters used (the model's own unless given); the training split of the same parameters is the rest. */
  params: SplitParams;
  /** Where the images come from, in words ("0.2 of each class of train/ (seed 42)", "val/"). */
  origin: string;
  /** Detection models: the annotated pictures (boxes in model label order); `samples` are their paths. */
  detection?: DetectionSample[];
}

/** What the gate needs to find its images: --data and the split options as given (undefined: the model's own). */
export interface GateSplitOptions {
  data?: string;
  seed?: number;
  validationSplit?: number;
  testSplit?: number;
  /** Already loaded (optimize loads it once for every step). */
  validation?: ValidationSet;
}

/**
 * The validation images an optimize step is judged on: the split options given, else the ones the source model was
 * trained with (so the gate never scores images the model learnt from), else the defaults. Called before any work
 * starts, so a folder that cannot give validation images fails in seconds, not after the quantization.
 */
export async function gateValidationSet(source: LoadedPackage, opts: GateSplitOptions, logger: Logger): Promise<ValidationSet | undefined> {
  if (opts.validation) return opts.validation;
  if (!opts.data) return undefined;
  const r = resolveSplitParams({ seed: opts.seed, validationSplit: opts.validationSplit, testSplit: opts.testSplit }, source.manifest.training);
  if (source.manifest.detection) {
    const d = await loadDetectionEvaluationData(opts.data, 'val', r.params).catch((err: unknown) => {
      if (!(err instanceof MlctlError) || err.code !== 'DATA_EMPTY_SPLIT') throw err;
      throw new MlctlError('DATA_EMPTY_SPLIT', ['val', `the mAP gate scores validation pictures, and ${opts.data} gives none (split ${describeGiven(r.params)}): pass a --validation-split > 0, give the dataset a val split, or drop --data to skip the gate`]);
    });
    const detection = mapDetectionLabels(d, source.manifest.labels);
    logger.info(`mAP gate: ${detection.length} validation pictures of ${d.root} (${d.layout}, ${d.origin})`);
    return { data: d.root, samples: detection.map((s) => ({ path: s.path, label: 0 })), params: r.params, origin: d.origin, detection };
  }
  const d = await loadEvaluationData(opts.data, 'val', r.params).catch((err: unknown) => {
    if (!(err instanceof MlctlError) || err.code !== 'DATA_EMPTY_SPLIT') throw err;
    throw new MlctlError('DATA_EMPTY_SPLIT', ['val', `the accuracy gate scores validation images, and ${opts.data} gives none (split ${describeGiven(r.params)}): pass a --validation-split > 0${r.from.validationSplit === 'model' ? ` (the model was trained with ${r.params.validationSplit})` : ''}, add a val/ folder, or drop --data to skip the gate`]);
  });
  for (const w of unusedSplitOptions(d.plan, r.from)) logger.warn(w);
  const own = Object.values(r.from).includes('model');
  logger.info(`accuracy gate: ${d.samples.length} validation images of ${d.root} (${d.origin}${own ? `: the split ${source.manifest.name} v${source.manifest.version} was trained with` : ''})`);
  return { data: d.root, samples: mapToModelLabels(d, source.manifest.labels), params: r.params, origin: d.origin };
}

const describeGiven = (p: SplitParams) => `seed ${p.seed}, validation ${p.validationSplit}, test ${p.testSplit}`;

/** The training images of the gate's split (the rest of the folder), in model label order: prune fine-tunes on them, int8 calibrates. */
export async function gateTrainingSet(set: ValidationSet, labels: string[]): Promise<Sample[]> {
  if (set.detection) return (await loadDetectionEvaluationData(set.data, 'train', set.params)).samples.map((s) => ({ path: s.path, label: 0 }));
  return mapToModelLabels(await loadEvaluationData(set.data, 'train', set.params), labels);
}

/**
 * Top-1 accuracy of each engine on the set (the classification task's streamed evaluation, as evaluate runs it); for a
 * detection set, COCO mAP@[.50:.95] (evaluate's detection evaluation).
 */
export async function accuracies(engines: InferenceEngine[], set: ValidationSet, spec: ImageInputSpec, labels: string[], logger: Logger, detection?: DetectionSection): Promise<number[]> {
  const out: number[] = [];
  if (set.detection) {
    if (!detection) throw new MlctlError('PACKAGE_INVALID', ['optimize', 'a detection validation set needs the model\'s detection section']);
    for (const engine of engines) out.push(Math.max(0, (await evaluateDetectionEngine(engine, spec, detection, set.detection, labels, { logger, label: 'validation', worst: 0 })).metrics.coco.AP));
    return out;
  }
  for (const engine of engines) out.push((await evaluateEngine(engine, spec, set.samples, labels, { logger, label: 'validation' })).metrics.accuracy);
  return out;
}

/** Median batch-1 latency (ms) of each engine, measured with evaluate's latency runner. */
export async function latenciesMs(engines: InferenceEngine[], runs = 20): Promise<number[]> {
  const out: number[] = [];
  for (const engine of engines) out.push((await measureLatency(engine, { runs, batchSizes: [1], throughputRuns: 1 })).p50Ms);
  return out;
}

export interface Figures {
  label: string;
  size: SizeOnDisk;
  accuracy?: number;
  latencyMs?: number;
  engine?: string;
  /** Extra column, e.g. sparsity or status. */
  note?: string;
}

/** Sizes print as `models ls` prints them (util/units formatSize). */
export const formatBytes = formatSize;

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`);

/** The before/after table: each row after the first shows its ratio to the first. `metric` names the score column. */
export function figuresTable(rows: Figures[], metric = 'val accuracy'): string {
  const base = rows[0];
  const table = new Table({ head: ['model', 'size (served)', 'gzip', 'on disk', metric, 'latency b=1', 'engine', 'note'], style: { head: [], border: [] } });
  for (const r of rows) {
    const ratio = (a: number, b: number | undefined) => (base && r !== base && b ? ` (${((a / b) * 100).toFixed(1)}%)` : '');
    table.push([
      r.label,
      `${formatBytes(r.size.raw)}${r.size.format ? ` ${r.size.format}` : ''}${ratio(r.size.raw, base?.size.raw)}`,
      formatBytes(r.size.gzip) + ratio(r.size.gzip, base?.size.gzip),
      r.size.total === undefined ? '—' : formatBytes(r.size.total),
      pct(r.accuracy) + (base && r !== base && r.accuracy !== undefined && base.accuracy !== undefined ? ` (${r.accuracy >= base.accuracy ? '+' : ''}${((r.accuracy - base.accuracy) * 100).toFixed(2)})` : ''),
      r.latencyMs === undefined ? '—' : `${r.latencyMs.toFixed(2)} ms`,
      r.engine ?? '—',
      r.note ?? '',
    ]);
  }
  return table.toString();
}

// The before/after figures every optimize step reports — model size on disk (raw and gzip), validation accuracy on the
// same deterministic split train uses (the classification task's evaluation), batch-1 latency — and their table.
import Table from 'cli-table3';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ModelJson } from '../artifacts/tfjs-io.js';
import { MlctlError } from '../errors.js';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { LoadedPackage } from '../artifacts/package.js';
import type { Sample } from '../data/imagefolder.js';
import { loadEvaluationData, mapToModelLabels } from '../data/evaluation.js';
import { measureLatency } from '../runtime/latency.js';
import { modelSize as evaluateModelSize } from '../artifacts/size.js';
import type { InferenceEngine } from '../runtime/engine.js';
import { evaluateEngine } from '../tasks/classification/evaluate.js';
import type { Logger } from '../util/log.js';

export interface SizeOnDisk {
  raw: number;
  gzip: number;
}

/** Size of the package's model in one format (TF.js: model.json + shards), raw and gzip -9: evaluate's figures, so the two agree. */
export async function modelSize(pkg: LoadedPackage, format = 'tfjs'): Promise<SizeOnDisk> {
  const s = await evaluateModelSize(pkg, format);
  return { raw: s.rawBytes, gzip: s.gzipBytes };
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
  validationSplit: number;
  seed: number;
}

/** The validation split train holds out (same scan, same seed, same fraction → same files), in model label order. */
export async function validationSet(data: string, labels: string[], opts: { validationSplit?: number; seed?: number } = {}): Promise<ValidationSet> {
  const validationSplit = opts.validationSplit ?? 0.2;
  const seed = opts.seed ?? 42;
  const d = await loadEvaluationData(data, 'val', { seed, validationSplit, testSplit: 0 });
  return { data: d.root, samples: mapToModelLabels(d, labels), validationSplit, seed };
}

/** Top-1 accuracy of each engine on the set (the classification task's streamed evaluation, as evaluate runs it). */
export async function accuracies(engines: InferenceEngine[], set: ValidationSet, spec: ImageInputSpec, labels: string[], logger: Logger): Promise<number[]> {
  const out: number[] = [];
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

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`);

/** The before/after table: each row after the first shows its ratio to the first. */
export function figuresTable(rows: Figures[]): string {
  const base = rows[0];
  const table = new Table({ head: ['model', 'size', 'gzip', 'val accuracy', 'latency b=1', 'engine', 'note'], style: { head: [], border: [] } });
  for (const r of rows) {
    const ratio = (a: number, b: number | undefined) => (base && r !== base && b ? ` (${((a / b) * 100).toFixed(1)}%)` : '');
    table.push([
      r.label,
      formatBytes(r.size.raw) + ratio(r.size.raw, base?.size.raw),
      formatBytes(r.size.gzip) + ratio(r.size.gzip, base?.size.gzip),
      pct(r.accuracy) + (base && r !== base && r.accuracy !== undefined && base.accuracy !== undefined ? ` (${r.accuracy >= base.accuracy ? '+' : ''}${((r.accuracy - base.accuracy) * 100).toFixed(2)})` : ''),
      r.latencyMs === undefined ? '—' : `${r.latencyMs.toFixed(2)} ms`,
      r.engine ?? '—',
      r.note ?? '',
    ]);
  }
  return table.toString();
}

// The before/after figures every optimize step reports: model size on disk (raw and gzip), validation accuracy on
// the same deterministic split train uses, and batch-1 latency — plus the table that prints them side by side.
import Table from 'cli-table3';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ImageInputSpec } from '../artifacts/manifest.js';
import type { LoadedPackage } from '../artifacts/package.js';
import type { ModelJson } from '../artifacts/tfjs-io.js';
import { imageBatches } from '../data/batches.js';
import { datasetSplits, scanImageFolder, type Sample } from '../data/imagefolder.js';
import { MlctlError } from '../errors.js';
import type { InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';

export interface SizeOnDisk {
  raw: number;
  gzip: number;
}

/** Files of the package's TF.js model: model.json plus every weight shard it lists. */
export async function tfjsModelFiles(pkg: LoadedPackage): Promise<string[]> {
  const rel = pkg.manifest.formats.tfjs;
  if (!rel) throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'it has no TF.js model (formats.tfjs)']);
  const jsonPath = path.join(pkg.dir, rel);
  const json = JSON.parse(await fs.readFile(jsonPath, 'utf8')) as ModelJson;
  const dir = path.dirname(jsonPath);
  return [jsonPath, ...json.weightsManifest.flatMap((g) => g.paths.map((p) => path.join(dir, p)))];
}

/** Raw bytes and gzip -9 bytes (what a CDN or registry transfer costs) summed over the given files. */
export async function sizeOnDisk(files: string[]): Promise<SizeOnDisk> {
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const data = await fs.readFile(f);
    raw += data.byteLength;
    gzip += gzipSync(data, { level: 9 }).byteLength;
  }
  return { raw, gzip };
}

export async function modelSize(pkg: LoadedPackage): Promise<SizeOnDisk> {
  return sizeOnDisk(await tfjsModelFiles(pkg));
}

export interface ValidationSet {
  data: string;
  samples: Sample[];
  classes: string[];
  validationSplit: number;
  seed: number;
}

/** The validation split train holds out (same scan, same seed, same fraction → same files). */
export async function validationSet(data: string, labels: string[], opts: { validationSplit?: number; seed?: number } = {}): Promise<ValidationSet> {
  const validationSplit = opts.validationSplit ?? 0.2;
  const seed = opts.seed ?? 42;
  const folder = await scanImageFolder(data);
  const unknown = folder.classes.filter((c) => !labels.includes(c));
  if (unknown.length > 0) throw new MlctlError('DATA_UNKNOWN_LABELS', [unknown.join(', '), labels.join(', ')]);
  const split = datasetSplits(folder, { validationSplit, seed });
  if (split.val.length === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['validation', `${data} gives no validation images with --validation-split ${validationSplit}; add images or raise the split`]);
  // Class indices follow the model's label order, not the folder's.
  const samples = split.val.map((s) => ({ path: s.path, label: labels.indexOf(folder.classes[s.label]!) }));
  return { data: folder.root, samples, classes: folder.classes, validationSplit, seed };
}

/** Top-1 accuracy of several engines over one pass of decoding (every engine sees identical inputs). */
export async function accuracies(engines: InferenceEngine[], set: ValidationSet, spec: ImageInputSpec, logger: Logger, batchSize = 16): Promise<number[]> {
  const correct = engines.map(() => 0);
  let seen = 0;
  const progress = createProgress({ label: 'validation', total: set.samples.length, unit: 'img', logger });
  for await (const batch of imageBatches(set.samples, { spec, batchSize, onSkip: (s) => logger.warn(`skipped ${s.path}: ${s.reason}`) })) {
    for (let e = 0; e < engines.length; e++) {
      const engine = engines[e]!;
      const out = await engine.run(batch.x, batch.count);
      const k = engine.outputSize;
      for (let i = 0; i < batch.count; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (out[i * k + j]! > out[i * k + best]!) best = j;
        if (best === batch.labels[i]) correct[e]!++;
      }
    }
    seen += batch.count;
    progress.tick(batch.count);
  }
  progress.done();
  if (seen === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['validation', `no image of ${set.data} could be decoded`]);
  return correct.map((c) => c / seen);
}

/**
 * Median batch-1 latency in ms per engine after warm-up. Runs are interleaved across engines so JIT warm-up,
 * other load on the machine and thermal drift affect every model alike (input content does not change cost).
 */
export async function latenciesMs(engines: InferenceEngine[], runs = 20, warmup = 3): Promise<number[]> {
  const inputs = engines.map((engine) => {
    const x = new Float32Array(engine.inputShape.reduce((a, d) => a * d, 1));
    for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 255) - 127;
    return x;
  });
  for (let i = 0; i < warmup; i++) for (let e = 0; e < engines.length; e++) await engines[e]!.run(inputs[e]!, 1);
  const times = engines.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (let e = 0; e < engines.length; e++) {
      const t0 = performance.now();
      await engines[e]!.run(inputs[e]!, 1);
      times[e]!.push(performance.now() - t0);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!);
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

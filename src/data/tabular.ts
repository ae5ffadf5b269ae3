// Tabular rows for the models that take them: a CSV file encoded with a package's recorded encoding (evaluate, batch
// predict), and the deterministic stratified train/validation split of row indices (classic training, evaluate).
import type { Manifest } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { readCsv, tabularFromCsv, type CsvReadOptions, type TabularEncoding } from './csv.js';

/** Stratified (classification) or plain (regression) deterministic split of row indices. */
export function splitRows(n: number, labels: Int32Array | undefined, validationSplit: number, seed: number): { train: number[]; val: number[] } {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = labels ? labels[i]! : 0;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(i);
  }
  const train: number[] = [], val: number[] = [];
  for (const [g, rows] of [...groups.entries()].sort((a, b) => a[0] - b[0])) {
    shuffleInPlace(rows, createRng(deriveSeed(seed, `classic-${g}`)));
    const nv = validationSplit > 0 && rows.length >= 2 ? Math.max(1, Math.round(rows.length * validationSplit)) : 0;
    val.push(...rows.slice(0, nv));
    train.push(...rows.slice(nv));
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

/**
 * Rows of a CSV file encoded for an existing tabular package (evaluate, batch predict): the manifest's encoding is
 * applied, not re-inferred, and the target column (when present) becomes label indices or numeric targets.
 */
export async function tabularRowsForPackage(manifest: Manifest, file: string, csv: CsvReadOptions = {}): Promise<{ x: Float32Array; rows: number; lines: number[]; labels?: Int32Array; targets?: Float64Array }> {
  if (manifest.input.kind !== 'tabular') throw new MlctlError('OPTION_CONFLICT', [`model ${manifest.name} takes images, not CSV rows`]);
  const transform = (manifest.input.transform ?? {}) as { encoding?: TabularEncoding };
  const target = (manifest.training?.target as string | undefined) ?? manifest.labels[0]!;
  if (!transform.encoding) throw new MlctlError('PACKAGE_INVALID', [manifest.name, 'its tabular input has no recorded encoding']);
  const table = await readCsv(file, csv);
  const regression = manifest.task === 'tabular-regression';
  const hasTarget = table.header.includes(target);
  // Without the target column there is nothing to score against, but the rows can still be encoded.
  const tab = tabularFromCsv(hasTarget ? table : { ...table, header: [...table.header, target], rows: table.rows.map((r) => [...r, regression ? '0' : manifest.labels[0]!]) }, { target, encoding: transform.encoding, numericTarget: regression, maxMemory: csv.maxMemory });
  const x = Float32Array.from(tab.x);
  // Missing cells are an error here (never dropped), so rows and file lines stay one-to-one.
  const lines = table.lines;
  if (!hasTarget) return { x, rows: tab.rows, lines };
  if (regression) return { x, rows: tab.rows, lines, targets: Float64Array.from(tab.targetValues, Number) };
  const index = new Map(manifest.labels.map((l, i) => [l, i]));
  const unknown = [...new Set(tab.targetValues.filter((v) => !index.has(v)))];
  if (unknown.length) throw new MlctlError('DATA_UNKNOWN_LABELS', [unknown.slice(0, 10).join(', '), manifest.labels.join(', ')]);
  return { x, rows: tab.rows, lines, labels: Int32Array.from(tab.targetValues, (v) => index.get(v)!) };
}

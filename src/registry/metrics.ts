// What a package's recorded metrics are, each named with the split it was measured on: train's keys (valAccuracy,
// testLoss, accuracy = the training split …), optimize's re-measured validation accuracy, the classic trainer's
// nested train/validation blocks. `models ls|show|diff` print a metric only beside its split.
import type { Manifest } from '../artifacts/manifest.js';

export type MetricSplit = 'test' | 'validation' | 'train';

export interface NamedMetric {
  /** Where it is in the manifest's metrics ("valAccuracy", "validation.r2"). */
  key: string;
  /** accuracy, loss, r2, … */
  metric: string;
  /** The split it was measured on; undefined for figures of the model itself (sparsity, epochs). */
  split?: MetricSplit;
  value: number;
}

/** train's and optimize's flat keys. */
const KEYS: Record<string, { metric: string; split: MetricSplit }> = {
  testAccuracy: { metric: 'accuracy', split: 'test' },
  testLoss: { metric: 'loss', split: 'test' },
  valAccuracy: { metric: 'accuracy', split: 'validation' },
  valLoss: { metric: 'loss', split: 'validation' },
  accuracy: { metric: 'accuracy', split: 'train' },
  loss: { metric: 'loss', split: 'train' },
};

const SPLIT_BLOCKS: Record<string, MetricSplit> = { train: 'train', validation: 'validation', val: 'validation', test: 'test' };
const SPLIT_ORDER: MetricSplit[] = ['test', 'validation', 'train'];
/** The classic trainer's top-level copies of its headline split's figures. */
const CLASSIC_HEADLINES = new Set(['accuracy', 'r2', 'mae', 'rmse']);

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Every numeric metric of a package with its split. A derived package's `source` block (its parent's figures) is left out. */
export function namedMetrics(m: Pick<Manifest, 'metrics'>): NamedMetric[] {
  const mt = (m.metrics ?? {}) as Record<string, unknown>;
  const out: NamedMetric[] = [];
  // Classic packages: per-split blocks, plus headline copies of one of them at the top (named by `split`).
  const classicSplit = typeof mt.split === 'string' ? SPLIT_BLOCKS[mt.split] : undefined;
  for (const [key, v] of Object.entries(mt)) {
    if (key === 'source') continue;
    const block = SPLIT_BLOCKS[key];
    if (block && v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (num(x)) out.push({ key: `${key}.${k}`, metric: k, split: block, value: x });
      continue;
    }
    if (!num(v)) continue;
    if (classicSplit && CLASSIC_HEADLINES.has(key)) {
      // The headline repeats a block's figure: keep one copy.
      const blockKey = Object.keys(SPLIT_BLOCKS).find((b) => SPLIT_BLOCKS[b] === classicSplit && mt[b] && typeof mt[b] === 'object');
      if (!blockKey || !num((mt[blockKey] as Record<string, unknown>)[key])) out.push({ key, metric: key, split: classicSplit, value: v });
      continue;
    }
    const known = KEYS[key];
    out.push(known ? { key, ...known, value: v } : { key, metric: key, value: v });
  }
  return out;
}

/** The accuracy a listing shows (test, else validation, else training), or R² for regression packages — with its split. */
export function headlineMetric(m: Pick<Manifest, 'metrics'>): NamedMetric | undefined {
  const all = namedMetrics(m);
  for (const metric of ['accuracy', 'r2']) {
    for (const split of SPLIT_ORDER) {
      const hit = all.find((x) => x.metric === metric && x.split === split);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** The same metric on the same split in both packages, for a delta that compares like with like (test, else validation, else train). */
export function comparableMetric(a: Pick<Manifest, 'metrics'>, b: Pick<Manifest, 'metrics'>, metric = 'accuracy'): { split: MetricSplit; a: number; b: number } | undefined {
  const ma = namedMetrics(a), mb = namedMetrics(b);
  for (const split of SPLIT_ORDER) {
    const x = ma.find((v) => v.metric === metric && v.split === split);
    const y = mb.find((v) => v.metric === metric && v.split === split);
    if (x && y) return { split, a: x.value, b: y.value };
  }
  return undefined;
}

export const SPLIT_LABEL: Record<MetricSplit, string> = { test: 'test', validation: 'val', train: 'train' };

/** "accuracy (val)", "sparsity". */
export function metricLabel(x: Pick<NamedMetric, 'metric' | 'split'>): string {
  return x.split ? `${x.metric} (${SPLIT_LABEL[x.split]})` : x.metric;
}

/** A metric's value as people read it: accuracy-like fractions in percent, the rest as numbers. */
export function formatMetric(x: Pick<NamedMetric, 'metric' | 'value'>): string {
  return isFraction(x.metric) ? `${(x.value * 100).toFixed(2)}%` : String(Number(x.value.toPrecision(5)));
}

/** b − a in the metric's unit: points for accuracy-like fractions. */
export function formatDelta(metric: string, delta: number): string {
  const sign = delta >= 0 ? '+' : '−';
  return isFraction(metric) ? `${sign}${Math.abs(delta * 100).toFixed(2)} pts` : `${sign}${Number(Math.abs(delta).toPrecision(4))}`;
}

const isFraction = (metric: string) => /accuracy|precision|recall|f1|sparsity/i.test(metric);

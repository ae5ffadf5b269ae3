// `mlctl evaluate` on tabular (classic) packages through main(argv): a CSV with a categorical column, metrics checked
// against the engine's own predictions on independently encoded rows, the trainer's split and R², gates and refusals.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabularInputSpec } from '../src/artifacts/manifest.js';
import { loadPackage } from '../src/artifacts/package.js';
import { encodeObjects, type TabularEncoding } from '../src/data/csv.js';
import { openEngine } from '../src/runtime/engine.js';
import { createRng, gaussian } from '../src/util/random.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome } from './helpers/fixtures.js';
import { runFloat } from '../src/runtime/float.js';

let dir: string;
let cleanup: () => Promise<void>;
/** Raw CSV rows (as objects) of the classification file, in file order; line = index + 2. */
const shapes: Array<{ x1: number; x2: number; color: string; kind: string }> = [];

const mlctl = (...args: string[]) => runCli(args);

beforeAll(async () => {
  ({ dir, cleanup } = await mlctlHome('mlctl-eval-tab-'));
  // Three overlapping classes: the colour carries most of the signal, x1 some, and the noise keeps accuracy below 1.
  const rng = createRng(11);
  const colors = ['red', 'green', 'blue'];
  const lines = ['x1,color,x2,kind'];
  for (let i = 0; i < 180; i++) {
    const k = i % 3;
    const color = rng() < 0.75 ? colors[k]! : colors[(k + 1) % 3]!;
    const row = { x1: Number((k + 1.2 * gaussian(rng)).toFixed(3)), x2: Number(gaussian(rng).toFixed(3)), color, kind: ['a', 'b', 'c'][k]! };
    shapes.push(row);
    lines.push(`${row.x1},${row.color},${row.x2},${row.kind}`);
  }
  await writeFile(path.join(dir, 'shapes.csv'), lines.join('\n') + '\n');
  // y = 2·x1 − x2 + colour offset + noise.
  const offset: Record<string, number> = { red: 1.5, green: -1, blue: 0 };
  const reg = ['x1,x2,color,y'];
  for (let i = 0; i < 150; i++) {
    const x1 = gaussian(rng), x2 = gaussian(rng), color = colors[i % 3]!;
    reg.push(`${x1.toFixed(4)},${x2.toFixed(4)},${color},${(2 * x1 - x2 + offset[color]! + 0.3 * gaussian(rng)).toFixed(4)}`);
  }
  await writeFile(path.join(dir, 'prices.csv'), reg.join('\n') + '\n');
  const svm = await mlctl('train', '--model', 'svm', '--kernel', 'linear', '--data', path.join(dir, 'shapes.csv'), '--target', 'kind', '--name', 'shapes', '--seed', '5', '--json');
  expect(svm.code, svm.stderr).toBe(0);
  const lin = await mlctl('train', '--model', 'linear', '--data', path.join(dir, 'prices.csv'), '--target', 'y', '--name', 'prices', '--json');
  expect(lin.code, lin.stderr).toBe(0);
}, 60_000);

afterAll(() => cleanup?.());

describe('mlctl evaluate on a tabular classifier', () => {
  it('reports accuracy, confusion, F1 and wrong CSV lines that match the engine on independently encoded rows', async () => {
    const res = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--split', 'all', '--latency-runs', '0', '--worst', '5', '--json');
    expect(res.code, res.stderr).toBe(0);
    const r = res.json!.results[0];
    expect(res.json!.data.split).toBe('all');
    expect(r.images.evaluated).toBe(shapes.length);

    const pkg = await loadPackage('shapes');
    const enc = ((pkg.manifest.input as TabularInputSpec).transform as { encoding: TabularEncoding }).encoding;
    const engine = await openEngine(pkg);
    const out = await runFloat(engine, encodeObjects(shapes, enc), shapes.length);
    await engine.dispose();
    const labels = pkg.manifest.labels;
    const k = labels.length;
    const pred = shapes.map((_, i) => {
      const s = Array.from(out.subarray(i * k, (i + 1) * k));
      return s.indexOf(Math.max(...s));
    });
    const truth = shapes.map((s) => labels.indexOf(s.kind));
    const correct = pred.filter((p, i) => p === truth[i]).length;
    expect(correct).toBeLessThan(shapes.length); // the data is noisy on purpose: some rows are wrong
    expect(r.metrics.accuracy).toBeCloseTo(correct / shapes.length, 10);
    const confusion = labels.map(() => labels.map(() => 0));
    pred.forEach((p, i) => confusion[truth[i]!]![p]!++);
    expect(r.metrics.confusion).toEqual(confusion);
    const f1 = labels.map((_, c) => {
      const tp = confusion[c]![c]!, fp = confusion.reduce((a, row) => a + row[c]!, 0) - tp, fn = confusion[c]!.reduce((a, b) => a + b, 0) - tp;
      return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
    });
    expect(r.metrics.macro.f1).toBeCloseTo(f1.reduce((a, b) => a + b, 0) / k, 10);
    // Wrong rows are named by their CSV line (header = line 1) and really are wrong there.
    expect(r.metrics.mostConfidentWrong.length).toBe(5);
    for (const w of r.metrics.mostConfidentWrong) {
      const line = Number(/^line (\d+)$/.exec(w.ref)![1]);
      expect(pred[line - 2]).not.toBe(truth[line - 2]);
      expect(w.trueLabel).toBe(shapes[line - 2]!.kind);
      expect(w.predictedLabel).toBe(labels[pred[line - 2]!]);
    }
  });

  it('defaults to the trainer\'s validation rows, prints tables, and gates on accuracy', async () => {
    const pkg = await loadPackage('shapes');
    const training = pkg.manifest.training as { rows: { validation: number }; seed: number };
    const trained = pkg.manifest.metrics as { accuracy: number };
    const res = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--latency-runs', '5', '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(res.json!.data).toMatchObject({ split: 'val', layout: 'csv', seed: 5, images: training.rows.validation });
    expect(res.json!.results[0].metrics.accuracy).toBeCloseTo(trained.accuracy, 10);
    expect(res.json!.results[0].latency.runs).toBe(5);

    const text = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--latency-runs', '0', '--min-accuracy', '0.999');
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/val split, \d+ rows/);
    expect(text.stdout).toMatch(/line \d+/);
    expect(text.stdout).toMatch(/FAIL .*accuracy/);

    const report = path.join(dir, 'report');
    const withReport = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--latency-runs', '0', '--report', report);
    expect(withReport.code, withReport.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(report, 'report.json'), 'utf8')).results[0].metrics.accuracy).toBeCloseTo(trained.accuracy, 10);

    const r2 = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--min-r2', '0.5');
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/--min-r2 is for regression/);
    const test = await mlctl('evaluate', 'shapes', '--data', path.join(dir, 'shapes.csv'), '--split', 'test');
    expect(test.code).toBe(1);
    expect(test.stderr).toMatch(/no test rows/);
  });
});

describe('mlctl evaluate on a tabular regression package', () => {
  it('reports the trainer\'s R², MAE and RMSE on its validation rows, gates on --min-r2 and refuses accuracy gates', async () => {
    const pkg = await loadPackage('prices');
    expect(pkg.manifest.task).toBe('tabular-regression');
    const trained = pkg.manifest.metrics as { r2: number; mae: number; rmse: number };
    const res = await mlctl('evaluate', 'prices', '--data', path.join(dir, 'prices.csv'), '--latency-runs', '0', '--json');
    expect(res.code, res.stderr).toBe(0);
    const m = res.json!.results[0].metrics;
    expect(res.json!.data.split).toBe('val');
    expect(m.r2).toBeGreaterThan(0.9);
    expect(m.r2).toBeCloseTo(trained.r2, 5);
    expect(m.mae).toBeCloseTo(trained.mae, 5);
    expect(m.rmse).toBeCloseTo(trained.rmse, 5);

    const text = await mlctl('evaluate', 'prices', '--data', path.join(dir, 'prices.csv'), '--latency-runs', '0', '--min-r2', '0.5');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/R²/);
    expect(text.stdout).toMatch(/pass .*R²/);
    const gate = await mlctl('evaluate', 'prices', '--data', path.join(dir, 'prices.csv'), '--latency-runs', '0', '--min-r2', '0.9999', '--json');
    expect(gate.code).toBe(3);
    expect(gate.json!.gates[0]).toMatchObject({ gate: 'min-r2', passed: false });
    const acc = await mlctl('evaluate', 'prices', '--data', path.join(dir, 'prices.csv'), '--min-accuracy', '0.5');
    expect(acc.code).toBe(2);
    expect(acc.stderr).toMatch(/--min-accuracy and --min-f1 are for classifiers/);
  });
});

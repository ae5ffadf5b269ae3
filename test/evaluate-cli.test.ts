// `mlctl evaluate` end to end, in-process through main(argv): a real tiny package on a generated image folder —
// metrics checked against an independent prediction loop, report files and PNGs, gates (exit 3), bad inputs.
import * as tf from '@tensorflow/tfjs';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage, loadTfjsModel, savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { imageToInput } from '../src/data/preprocess.js';
import { heatmapLayout, RELIABILITY_SIZE } from '../src/tasks/classification/figures.js';
import { runCli } from './helpers/cli.js';
import { synthDataset, tempDir, tinyModel, tinyPackage } from './helpers/fixtures.js';

/** `mlctl evaluate ARGS` on TF.js unless a test picks the engine: auto would pick ONNX Runtime, tested separately below. */
const run = (...args: string[]) => runCli(['evaluate', ...args, ...(args.includes('--engine') ? [] : ['--engine', 'tfjs']), '--backend', 'cpu']);

let tmp: { dir: string; cleanup: () => Promise<void> };
let data: string;
let pkgA: LoadedPackage;
let pkgB: LoadedPackage;
// Model label order deliberately differs from the (alphabetical) folder order: mapping is by name.
const LABELS_A = ['triangle', 'circle', 'square'];

beforeAll(async () => {
  tmp = await tempDir('mlctl-eval-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache'); // gzip sizes and ONNX conversions stay out of ~/.cache
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 12, size: 32 });
  pkgA = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'a', labels: LABELS_A, seed: 3 });
  pkgB = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'b', labels: ['circle', 'square', 'triangle'], seed: 11 });
});

afterAll(async () => {
  delete process.env.MLCTL_CACHE;
  await tmp?.cleanup();
});

/** Accuracy computed without any evaluate code: predict every image and compare label names. */
async function independentAccuracy(pkg: LoadedPackage): Promise<number> {
  const model = await loadTfjsModel(pkg);
  const spec = pkg.manifest.input as Parameters<typeof imageToInput>[1];
  let correct = 0;
  let total = 0;
  for (const cls of await readdir(data)) {
    for (const f of await readdir(path.join(data, cls))) {
      const x = await imageToInput(path.join(data, cls, f), spec);
      const y = tf.tidy(() => (model.predict(tf.tensor(x, [1, spec.height, spec.width, 3])) as tf.Tensor).argMax(-1));
      const pred = (await y.data())[0]!;
      y.dispose();
      if (pkg.manifest.labels[pred] === cls) correct++;
      total++;
    }
  }
  model.dispose();
  return correct / total;
}

describe('mlctl evaluate', () => {
  it('evaluates a package, maps labels by name and writes a report with decodable PNGs', async () => {
    const report = path.join(tmp.dir, 'report');
    const r = await run(pkgA.dir, '--data', data, '--split', 'all', '--json', '--report', report, '--latency-runs', '3', '--top-k', '2');
    expect(r.code).toBe(0);
    const res = r.json.results[0];
    expect(r.json.ok).toBe(true);
    expect(r.json.data.split).toBe('all');
    expect(r.json.backend).toBe('cpu');
    expect(res.images).toMatchObject({ evaluated: 36, skipped: 0 });
    expect(res.metrics.labels).toEqual(LABELS_A);
    expect(res.metrics.perClass.map((c: any) => c.support)).toEqual([12, 12, 12]);
    expect(res.metrics.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(36);
    expect(res.metrics.accuracy).toBeCloseTo(await independentAccuracy(pkgA), 10);
    expect(res.metrics.topK.k).toBe(2);
    expect(res.metrics.topK.accuracy).toBeGreaterThanOrEqual(res.metrics.accuracy);
    expect(res.engine.name).toBe('tfjs');
    expect(res.latency.runs).toBe(3);
    expect(res.latency.p50Ms).toBeGreaterThan(0);
    expect(res.latency.p95Ms).toBeGreaterThanOrEqual(res.latency.p50Ms);
    expect(res.latency.throughput.best.imagesPerSecond).toBeGreaterThan(0);
    const shard = Object.keys(pkgA.manifest.files).filter((f) => f !== 'model.json');
    expect(res.size.rawBytes).toBe(Object.values(pkgA.manifest.files).reduce((a, f) => a + f.bytes, 0));
    expect(res.size.byFormat.tfjs.files.sort()).toEqual(['model.json', ...shard].sort());
    let gz = 0;
    for (const f of res.size.byFormat.tfjs.files) gz += gzipSync(await readFile(path.join(pkgA.dir, f)), { level: 9 }).byteLength;
    expect(res.size.gzipBytes).toBe(gz);
    const cached = await readdir(path.join(tmp.dir, 'cache', 'gzip-size'));
    expect(cached.sort()).toEqual(res.size.byFormat.tfjs.files.map((f: string) => pkgA.manifest.files[f]!.sha256).sort());

    expect((await readdir(report)).sort()).toEqual(['confusion-matrix.png', 'index.html', 'reliability.png', 'report.json', 'report.md']);
    const cm = await sharp(path.join(report, 'confusion-matrix.png')).metadata();
    const layout = heatmapLayout(LABELS_A);
    expect([cm.format, cm.width, cm.height]).toEqual(['png', layout.width, layout.height]);
    expect(layout.cell).toBe(64); // 3 classes: the largest cells
    const rel = await sharp(path.join(report, 'reliability.png')).metadata();
    expect([rel.format, rel.width, rel.height]).toEqual(['png', RELIABILITY_SIZE.width, RELIABILITY_SIZE.height]);
    const md = await readFile(path.join(report, 'report.md'), 'utf8');
    expect(md).toContain('![confusion matrix](confusion-matrix.png)');
    expect(md).toContain('| triangle |');
    const saved = JSON.parse(await readFile(path.join(report, 'report.json'), 'utf8'));
    expect(saved.results[0].metrics.accuracy).toBe(res.metrics.accuracy);

    // Re-running into an earlier report folder replaces it; an unrelated non-empty folder is refused.
    expect((await run(pkgA.dir, '--data', data, '--split', 'all', '--report', report, '--latency-runs', '0')).code).toBe(0);
    const bad = await run(pkgA.dir, '--data', data, '--report', path.join(data, 'circle'), '--latency-runs', '0', '--json');
    expect(bad.code).toBe(1);
    expect(bad.json.error.message).toMatch(/not an mlctl report folder/);
  });

  it('exposes the same evaluation as a function (what optimize calls)', async () => {
    const { loadEvaluationData, mapToModelLabels } = await import('../src/data/evaluation.js');
    const { evaluatePackage } = await import('../src/evaluate/run.js');
    const { evaluateEngine } = await import('../src/tasks/classification/evaluate.js');
    const { openEngine } = await import('../src/runtime/engine.js');
    const ev = await loadEvaluationData(data, 'val', { seed: 42, validationSplit: 0.2, testSplit: 0 });
    const samples = mapToModelLabels(ev, pkgA.manifest.labels);
    const viaPackage = await evaluatePackage(pkgA, samples, { engine: 'tfjs', latency: { runs: 2, batchSizes: [1, 2] } });
    expect(viaPackage.latency!.throughput.tried.map((t) => t.batchSize)).toEqual([1, 2]);
    const cli = await run(pkgA.dir, '--data', data, '--split', 'val', '--json', '--latency-runs', '0');
    expect(viaPackage.metrics).toEqual(cli.json.results[0].metrics);
    // An in-memory model (e.g. before it is saved) through evaluateEngine gives the same metrics.
    const model = await loadTfjsModel(pkgA);
    const engine = await openEngine({ kind: 'model', model, owned: true }, { engine: 'tfjs' });
    const direct = await evaluateEngine(engine, pkgA.manifest.input as any, samples, pkgA.manifest.labels);
    await engine.dispose();
    expect(direct.metrics).toEqual(viaPackage.metrics);
  });

  it('draws the heatmap colour from row fractions (dark diagonal for a perfect matrix)', async () => {
    const { confusionMatrixSvg, svgToPng } = await import('../src/tasks/classification/figures.js');
    const labels = ['x', 'y'];
    const png = await svgToPng(confusionMatrixSvg([[5, 0], [0, 5]], labels));
    const L = heatmapLayout(labels);
    const { data: px, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    // Sample near a cell corner (away from the count text).
    const at = (row: number, col: number) => {
      const x = L.gridX + col * L.cell + 4;
      const y = L.gridY + row * L.cell + 4;
      const o = (y * info.width + x) * info.channels;
      return [px[o]!, px[o + 1]!, px[o + 2]!];
    };
    expect(at(0, 0)[0]).toBeLessThan(40); // dark blue
    expect(at(1, 1)[2]).toBeLessThan(140);
    expect(at(0, 1)[0]).toBeGreaterThan(230); // near white
    expect(at(1, 0)[0]).toBeGreaterThan(230);
  });

  it('draws large class counts as a raster grid that still fits (200 classes)', async () => {
    const { confusionMatrixPng } = await import('../src/tasks/classification/figures.js');
    const k = 200;
    const labels = Array.from({ length: k }, (_, i) => `c${i}`);
    const eye = labels.map((_, i) => labels.map((_, j) => (i === j ? 3 : 0)));
    const L = heatmapLayout(labels);
    expect(L.cell).toBe(4); // floor(960 / 200)
    const png = await confusionMatrixPng(eye, labels);
    const { data: px, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([L.width, L.height]);
    const red = (row: number, col: number) => px[((L.gridY + row * L.cell + 2) * info.width + L.gridX + col * L.cell + 2) * info.channels]!;
    for (const i of [0, 57, 199]) {
      expect(red(i, i)).toBeLessThan(40);
      expect(red(i, (i + 1) % k)).toBeGreaterThan(230);
    }
  });

  it('prints tables and a delta table when comparing two packages on the same data', async () => {
    const r = await run(pkgA.dir, pkgB.dir, '--data', data, '--latency-runs', '2', '--json');
    expect(r.code).toBe(0);
    const [a, b] = r.json.results;
    expect(a.images.evaluated).toBe(b.images.evaluated);
    expect(r.json.data.split).toBe('val'); // no test split: auto → val
    expect(a.images.evaluated).toBe(3 * Math.round(12 * 0.2));
    expect(r.json.comparison).toHaveLength(2);
    expect(r.json.comparison[1].delta.accuracy).toBeCloseTo(b.metrics.accuracy - a.metrics.accuracy, 12);
    expect(r.json.comparison[1].delta.p50Ms).toBeCloseTo(b.latency.p50Ms - a.latency.p50Ms, 9);

    // A wide terminal gets a column per figure ...
    const args = [pkgA.dir, pkgB.dir, '--data', data, '--latency-runs', '2', '--engine', 'tfjs', '--backend', 'cpu'];
    const wide = await runCli(['evaluate', ...args], { env: { COLUMNS: '300' } });
    expect(wide.stdout).toMatch(/│ b v1 +│ tfjs cpu │/);
    // ... an 80-column one (or captured output without $COLUMNS: 100) a column per model, and no line is wider.
    const text = await runCli(['evaluate', ...args], { env: { COLUMNS: '80' } });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Comparison vs a v1/);
    const comparison = text.stdout.slice(text.stdout.indexOf('Comparison vs a v1'));
    expect(Math.max(...comparison.split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(comparison).toMatch(/│\s+│\s+a v1 │\s+b v1 │/);
    expect(comparison).toMatch(/│ accuracy \(Δ\)\s+│\s+\d\.\d{4} \(baseline\) │\s+\d\.\d{4} \([+-]\d\.\d{4}\) │/);
    expect(text.stdout).toMatch(/macro avg/);
    expect(text.stdout).toMatch(/true \\ predicted/);
    expect(text.stderr).toMatch(/backend: cpu|cpu/);
  });

  it('exits 3 with one line per failed gate, and still prints the full JSON', async () => {
    const r = await run(pkgA.dir, '--data', data, '--split', 'all', '--min-accuracy', '1', '--min-f1', '0', '--max-latency-ms', '0', '--latency-runs', '2', '--json');
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.exitCode).toBe(3);
    expect(r.json.results[0].metrics.count).toBe(36);
    const failed = r.json.gates.filter((g: any) => !g.passed);
    expect(failed.map((g: any) => g.gate).sort()).toEqual(['max-latency-ms', 'min-accuracy']);
    expect(r.json.gates.find((g: any) => g.gate === 'min-f1').passed).toBe(true);
    const acc = failed.find((g: any) => g.gate === 'min-accuracy');
    expect(acc.shortBy).toBeCloseTo(1 - r.json.results[0].metrics.accuracy, 12);
    const lines = r.stderr.split('\n').filter((l) => l.includes('gate failed'));
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).toMatch(/below --min-accuracy 1 by/);
    expect(lines.join('\n')).toMatch(/above --max-latency-ms 0 by/);
    expect((await run(pkgA.dir, '--data', data, '--split', 'all', '--min-accuracy', '0', '--latency-runs', '0')).code).toBe(0);
  });

  it('uses the test split when asked, and says what to do when there is none', async () => {
    const none = await run(pkgA.dir, '--data', data, '--split', 'test', '--json', '--latency-runs', '0');
    expect(none.code).toBe(1);
    expect(none.json.error.code).toBe('DATA_EMPTY_SPLIT');
    expect(none.json.error.message).toMatch(/--split val or --split all/);
    const t = await run(pkgA.dir, '--data', data, '--split', 'test', '--test-split', '0.25', '--json', '--latency-runs', '0');
    expect(t.code).toBe(0);
    expect(t.json.results[0].images.evaluated).toBe(9);
    const empty = await run(pkgA.dir, '--data', data, '--split', 'val', '--validation-split', '0', '--json', '--latency-runs', '0');
    expect(empty.json.error.code).toBe('DATA_EMPTY_SPLIT');
  });

  it('gives the same metrics on the ONNX Runtime engine as on TF.js', async () => {
    const tfjs = await run(pkgA.dir, '--data', data, '--split', 'all', '--json', '--latency-runs', '2');
    const onnx = await run(pkgA.dir, '--data', data, '--split', 'all', '--json', '--latency-runs', '2', '--engine', 'onnx');
    expect(onnx.code).toBe(0);
    const [t, o] = [tfjs.json.results[0], onnx.json.results[0]];
    expect(o.engine.name).toBe('onnx');
    expect(o.latency.engine).toBe('onnx');
    expect(o.metrics.confusion).toEqual(t.metrics.confusion);
    expect(o.metrics.logLoss).toBeCloseTo(t.metrics.logLoss, 3);
  });

  it('holds out the split the model recorded at training unless flags say otherwise', async () => {
    const model = tinyModel(32, 3, 2);
    const pkg = await savePackage({
      root: path.join(tmp.dir, 'artifacts'),
      name: 'recorded',
      draft: { ...pkgA.manifest, training: { seed: 42, validationSplit: 0.25, testSplit: 0 } },
      write: (dir) => writeTfjsModel(dir, model),
    });
    model.dispose();
    const r = await run(pkg.dir, '--data', data, '--split', 'val', '--json', '--latency-runs', '0');
    expect(r.json.data.validationSplit).toBe(0.25);
    expect(r.json.results[0].images.evaluated).toBe(3 * Math.round(12 * 0.25));
    const flag = await run(pkg.dir, '--data', data, '--split', 'val', '--validation-split', '0.5', '--json', '--latency-runs', '0');
    expect(flag.json.results[0].images.evaluated).toBe(3 * 6);
  });

  it('rejects data classes the model does not know', async () => {
    const pkg = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'other', labels: ['circle', 'square', 'dots'] });
    const r = await run(pkg.dir, '--data', data, '--json', '--latency-runs', '0');
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('DATA_UNKNOWN_LABELS');
    expect(r.json.error.message).toMatch(/triangle/);
  });

  it('refuses a tampered package', async () => {
    const copy = path.join(tmp.dir, 'tampered', 'x', '1');
    await cp(pkgA.dir, copy, { recursive: true });
    const shard = Object.keys(pkgA.manifest.files).find((f) => f.endsWith('.bin'))!;
    const bytes = await readFile(path.join(copy, shard));
    bytes[10] = bytes[10]! ^ 0xff;
    await writeFile(path.join(copy, shard), bytes);
    const r = await run(copy, '--data', data, '--json', '--latency-runs', '0');
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('PACKAGE_HASH_MISMATCH');
    await expect(loadPackage(pkgA.dir)).resolves.toBeTruthy();
  });

  it('skips and counts unreadable images', async () => {
    const broken = path.join(tmp.dir, 'broken');
    await cp(data, broken, { recursive: true });
    await writeFile(path.join(broken, 'circle', 'zz_corrupt.jpg'), Buffer.from('not a jpeg at all'));
    const r = await run(pkgA.dir, '--data', broken, '--split', 'all', '--json', '--latency-runs', '0');
    expect(r.code).toBe(0);
    expect(r.json.results[0].images).toMatchObject({ evaluated: 36, skipped: 1 });
    expect(r.json.results[0].images.skippedFiles[0].path).toMatch(/zz_corrupt\.jpg$/);
    expect(r.stderr).toMatch(/skipped .*zz_corrupt\.jpg/);
  });

  it('needs --data and at least one model', async () => {
    expect((await run(pkgA.dir)).code).toBe(2);
    expect((await run('--data', data)).code).toBe(2);
  });
});

// `mlctl evaluate` on detection packages: COCO metrics with known answers (datasets whose boxes are what the tiny
// CenterNet predicts, some deliberately shrunk), the --min-map/--min-ap50 gates, --json, and the HTML report's PR
// curves and drawn boxes (hits, false positives, missed objects).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedBox } from '../src/models/detection/decode.js';
import { DET_LABELS, noisePictures, oracleBoxes, tinyDetectionPackage, writeCocoDataset } from './helpers/detection-fixtures.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';

const SIZE = { width: 96, height: 80 };
/** Class-1 truth boxes keep their centre and height but 0.62 of their width: IoU 0.62 with the detection. */
const SHRINK = 0.62;

let home: MlctlHome;
let pkgDir: string;
let otherDir: string;
let exact: string;
let shrunk: string;
let broken: string;
let oracle: DecodedBox[][];

beforeAll(async () => {
  home = await mlctlHome('mlctl-evaldet-');
  const { pkg, model, section } = await tinyDetectionPackage(home.artifacts);
  pkgDir = pkg.dir;
  const other = await tinyDetectionPackage(home.artifacts, { seed: 4 });
  other.model.dispose();
  otherDir = other.pkg.dir;
  exact = path.join(home.dir, 'exact');
  shrunk = path.join(home.dir, 'shrunk');
  broken = path.join(home.dir, 'broken');
  const files = { exact: await noisePictures(exact, 10, SIZE.width, SIZE.height), shrunk: await noisePictures(shrunk, 10, SIZE.width, SIZE.height), broken: await noisePictures(broken, 10, SIZE.width, SIZE.height) };
  oracle = await oracleBoxes(model, section, files.exact, SIZE);
  model.dispose();
  await writeCocoDataset(exact, files.exact, SIZE, oracle);
  await writeCocoDataset(shrunk, files.shrunk, SIZE, oracle.map((bs) => bs.map((b) => (b.label === 1 ? { ...b, x: b.x + (b.width * (1 - SHRINK)) / 2, width: b.width * SHRINK } : b))));
  // First picture: its first detection has no truth (a false positive) and an object is where nothing is detected.
  await writeCocoDataset(broken, files.broken, SIZE, oracle.map((bs, i) => (i === 0 ? [...bs.slice(1), { label: 0, x: 1, y: 1, width: 6, height: 6 }] : bs)));
}, 60_000);

afterAll(() => home?.cleanup());

describe('evaluate a detection package', () => {
  it('scores a dataset of exactly the predicted boxes at AP 1 everywhere, per class too', async () => {
    expect(oracle.flat().map((b) => b.label)).toEqual(expect.arrayContaining([0, 1]));
    const r = await runCli(['evaluate', pkgDir, '--data', exact, '--split', 'all', '--latency-runs', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [res] = r.json.results;
    expect(res.model.task).toBe('detection');
    expect(r.json.data).toMatchObject({ layout: 'coco', split: 'all', images: 10, classes: DET_LABELS });
    const m = res.metrics;
    expect(m.count).toBe(10);
    expect(m.truthBoxes).toBe(oracle.flat().length);
    expect(m.detections).toBe(oracle.flat().length);
    // AR@1 is below 1: each picture has three objects. The rest are exactly 1.
    expect(m.coco.AR1).toBeLessThan(0.7);
    for (const k of ['AP', 'AP50', 'AP75', 'APsmall', 'AR10', 'AR100'] as const) expect(m.coco[k], k).toBeCloseTo(1, 6);
    for (const c of m.perClass) expect(c.AP, c.label).toBeCloseTo(1, 6);
    expect(m.perClass.map((c: { categoryId: number }) => c.categoryId)).toEqual([7, 9]);
    expect(m.pr.map((p: { iou: number }) => p.iou)).toEqual([0.5, 0.75]);
    expect(m.pr[0].mean).toHaveLength(101);
    expect(m.threshold.f1).toBeCloseTo(1, 6);
    expect(r.json.gates).toEqual([]);
  });

  it('matches boxes in the original picture: a class drawn 0.62 as wide is found at IoU .5–.6 only', async () => {
    const r = await runCli(['evaluate', pkgDir, '--data', shrunk, '--split', 'all', '--latency-runs', '0', '--min-map', '0.7', '--min-ap50', '0.99', '--json']);
    const m = r.json.results[0].metrics;
    const [c0, c1] = m.perClass;
    expect(c0.AP).toBeCloseTo(1, 6);
    expect(c1.AP50).toBeCloseTo(1, 6);
    expect(c1.AP75).toBeCloseTo(0, 6);
    // IoU 0.62 passes the thresholds .50, .55, .60 of the ten.
    expect(c1.AP).toBeCloseTo(0.3, 6);
    expect(m.coco.AP).toBeCloseTo(0.65, 6);
    expect(m.coco.AP50).toBeCloseTo(1, 6);
    // The mAP gate fails (exit 3, GATE_FAILED, one line saying by how much); the AP50 gate passes.
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('GATE_FAILED');
    expect(r.json.gatesPassed).toBe(false);
    const gates = Object.fromEntries(r.json.gates.map((g: { gate: string }) => [g.gate, g]));
    expect(gates['min-map']).toMatchObject({ passed: false, threshold: 0.7 });
    expect(gates['min-map'].shortBy).toBeCloseTo(0.05, 6);
    expect(gates['min-ap50']).toMatchObject({ passed: true });
    expect(r.stderr).toMatch(/gate failed: det v1: mAP@\[\.50:\.95\] 0\.65 is below --min-map 0\.7 by 0\.05/);
  });

  it('refuses classifier gates on a detection package and detection gates on a classifier', async () => {
    const r = await runCli(['evaluate', pkgDir, '--data', exact, '--min-accuracy', '0.5', '--json']);
    expect(r.code).not.toBe(0);
    expect(r.json.error.code).toBe('OPTION_CONFLICT');
    expect(r.json.error.message).toMatch(/--min-accuracy is not for detection models; gate them with --min-map or --min-ap50/);
  });

  it('writes a report: per-class table, PR curves at IoU .5 and .75, pictures with hits, false positives and missed boxes', async () => {
    const out = path.join(home.dir, 'report');
    const r = await runCli(['evaluate', pkgDir, '--data', broken, '--split', 'all', '--latency-runs', '3', '--report', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.reportFiles).toEqual(expect.arrayContaining(['pr-iou50.png', 'pr-iou75.png', 'index.html', 'report.md', 'report.json']));
    const m = r.json.results[0].metrics;
    expect(r.json.results[0].latency.runs).toBe(3);
    expect(m.coco.AP).toBeLessThan(1);
    const worst = m.examples[0];
    expect(worst.ref).toBe(path.join(broken, 'pic_0.png'));
    expect(worst.detections.filter((d: { hit: boolean }) => !d.hit)).toHaveLength(1);
    expect(worst.truth.filter((t: { found: boolean }) => !t.found)).toEqual([{ label: 0, box: { x: 1, y: 1, width: 6, height: 6 }, found: false }]);
    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('Precision–recall at IoU 0.5');
    expect(html).toContain('Precision–recall at IoU 0.75');
    expect(html).toMatch(/<g class="fp"><rect [^>]*stroke="#d62728"/);
    expect(html).toMatch(/<g class="tp"><rect [^>]*stroke="#2ca02c"/);
    expect(html).toMatch(/<g class="missed"><rect x="1\.0" y="1\.0" width="6\.0" height="6\.0" [^>]*stroke-dasharray/);
    expect(html).toMatch(/<image href="data:image\/jpeg;base64,/);
    const md = await readFile(path.join(out, 'report.md'), 'utf8');
    expect(md).toContain('![precision-recall at IoU 0.5](pr-iou50.png)');
    expect(md).toMatch(/\| pic\\_0\.png \| 3 \| 2 \| 1 \| 1 \|/);
    // Only pictures with mistakes are listed.
    expect(m.examples).toHaveLength(1);
    const png = await readFile(path.join(out, 'pr-iou50.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('compares several detection models on the same pictures: COCO figures and deltas vs the first', async () => {
    const r = await runCli(['evaluate', pkgDir, otherDir, '--data', exact, '--split', 'all', '--latency-runs', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = r.json.results.map((x: { metrics: { coco: { AP: number } } }) => x.metrics.coco.AP);
    expect(a).toBeCloseTo(1, 6);
    expect(b).toBeLessThan(1);
    expect(r.json.comparison.map((c: { model: string }) => c.model)).toEqual(['det v1', 'det v2']);
    expect(r.json.comparison[0].delta).toBeUndefined();
    expect(r.json.comparison[1].delta.mAP).toBeCloseTo(b - a, 9);
    const text = await runCli(['evaluate', pkgDir, otherDir, '--data', exact, '--split', 'all', '--latency-runs', '0']);
    expect(text.stdout).toMatch(/Comparison vs det v1 \(same all split\)/);
  });
});

// `mlctl train --task detection` as a user meets it: a synthetic COCO set from `mlctl datasets synth --task detection`,
// a CenterNet head on a tiny random-init MobileNetV2 at 64 px. Val mAP in the history, a package whose manifest has a
// valid detection section and whose model (through ONNX Runtime and through TF.js) decodes to boxes, --resume going
// on from the checkpoint, and options that cannot apply refused before any work.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateManifest } from '../src/artifacts/manifest.js';
import { loadPackage } from '../src/artifacts/package.js';
import { imageToInput } from '../src/data/preprocess.js';
import { decodeCenterNet } from '../src/models/detection/decode.js';
import { selectBackend } from '../src/runtime/backend.js';
import { openEngine } from '../src/runtime/engine.js';
import { runFloat } from '../src/runtime/float.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import '../src/engines/index.js';

let tmp: MlctlHome;
let data: string;
// The first run, shared by the checks on its package.
let first: Awaited<ReturnType<typeof runCli>>;

const BASE = ['--task', 'detection', '--backbone', 'mobilenet_v2', '--alpha', '0.35', '--weights', 'none', '--image-size', '64', '--batch-size', '8', '--upsample', '1', '--head-channels', '16', '--seed', '5', '--backend', 'wasm'];
const train = (...args: string[]) => runCli(['train', '--data', data, ...BASE, ...args, '--json']);

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-det-');
  data = path.join(tmp.dir, 'objects');
  const synth = await runCli(['datasets', 'synth', '--task', 'detection', '--out', data, '--images', '40', '--size', '64', '--classes', '2', '--seed', '3', '--json']);
  expect(synth.code, synth.stderr).toBe(0);
  await selectBackend('wasm');
  first = await train('--name', 'det', '--epochs', '2', '--lr', '0.003');
}, 120_000);
afterAll(async () => {
  await tmp.cleanup();
});

describe('mlctl train --task detection', () => {
  it('trains the CenterNet head on stored feature maps and records val mAP each epoch', async () => {
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    expect(first.json.task).toBe('detection');
    const v = first.json.metrics.validation;
    expect(v.images).toBeGreaterThan(0);
    expect(v.mAP).toBeGreaterThanOrEqual(0);
    expect(v.mAP).toBeLessThanOrEqual(1);
    // The train split's maps were computed once (nothing in the store yet) and the run said where they went.
    expect(first.json.features.train.computed).toBeGreaterThan(0);
    expect(first.stderr).toMatch(/CenterNet head: 2x2x\d+ feature maps → 4x4 grid \(stride 16\), 2 classes/);
    const history = JSON.parse(await fs.readFile(path.join(first.json.package, 'history.json'), 'utf8')).history;
    expect(history).toHaveLength(2);
    for (const h of history) {
      expect(h.phase).toBe('head');
      expect(typeof h.valMAP).toBe('number');
      expect(typeof h.valAP50).toBe('number');
      expect(h.heatmapLoss).toBeGreaterThan(0);
    }
    // The head learns: the second epoch's train loss is below the first's.
    expect(history[1].loss).toBeLessThan(history[0].loss);
    const csv = (await fs.readFile(path.join(first.json.package, 'history.csv'), 'utf8')).split('\n')[0];
    expect(csv).toBe('epoch,phase,loss,heatmap_loss,size_loss,offset_loss,val_loss,val_heatmap_loss,val_size_loss,val_offset_loss,val_mAP,val_AP50,val_AP75,lr,seconds');
    const html = await fs.readFile(path.join(first.json.package, 'history.html'), 'utf8');
    expect(html).toContain('Validation COCO AP');
  });

  it('saves a package with a valid detection manifest', async () => {
    const pkg = await loadPackage(first.json.package);
    const m = pkg.manifest;
    expect(() => validateManifest(JSON.parse(JSON.stringify(m)), first.json.package)).not.toThrow();
    expect(m.task).toBe('detection');
    expect(m.output).toMatchObject({ kind: 'detection', size: 4 * 4 * (2 + 4) });
    expect(m.detection).toEqual({ head: 'centernet', classes: 2, grid: [4, 4], stride: 16, maxDetections: 100, categoryIds: [1, 2], resize: 'fill' });
    expect(m.labels).toHaveLength(2);
    const t = m.training as Record<string, any>;
    expect(t.lrSchedule).toEqual({ kind: 'constant', warmupEpochs: 0, lrFrom: 'option' });
    expect(t.optimizer.lr).toBe(0.003);
    expect(t.splitSources).toEqual({ train: 'folder', val: 'carved', test: 'none' });
  });

  it('its model decodes to boxes through ONNX Runtime and through TF.js, the same boxes', async () => {
    const pkg = await loadPackage(first.json.package);
    const m = pkg.manifest;
    const input = m.input;
    if (input.kind !== 'image' || m.detection?.head !== 'centernet') throw new Error('not an image CenterNet detection package');
    const ann = JSON.parse(await fs.readFile(path.join(data, 'annotations.json'), 'utf8'));
    const file = path.join(data, ann.images[0].file_name);
    const x = await imageToInput(file, input);
    const grid = m.detection.grid;
    const decode = (out: Float32Array) => decodeCenterNet(out, grid, m.labels.length, [input.height, input.width], { maxDetections: m.detection!.maxDetections });
    const outs: Float32Array[] = [];
    for (const engine of ['onnx', 'tfjs'] as const) {
      const e = await openEngine(pkg, { engine });
      try {
        const out = await runFloat(e, x, 1);
        expect(out.length).toBe(m.output.size);
        outs.push(out);
      } finally {
        await e.dispose();
      }
    }
    const [onnx, tfjs] = outs.map(decode);
    expect(onnx!.length).toBeGreaterThan(0);
    for (const b of onnx!) {
      expect(b.label).toBeGreaterThanOrEqual(0);
      expect(b.label).toBeLessThan(2);
      expect(b.score).toBeGreaterThan(0);
      expect(b.score).toBeLessThanOrEqual(1);
      expect(b.width).toBeGreaterThanOrEqual(0);
    }
    // The converted model computes what the TF.js one does: the same top boxes.
    expect(onnx!.slice(0, 5).map((b) => b.label)).toEqual(tfjs!.slice(0, 5).map((b) => b.label));
    for (let i = 0; i < 5 && i < onnx!.length; i++) expect(onnx![i]!.score).toBeCloseTo(tfjs![i]!.score, 3);
  });

  it('--resume continues an interrupted run from its checkpoint, reading the stored feature maps', async () => {
    // A run of 1 epoch leaves its checkpoint; asking for more epochs with --resume goes on from epoch 2.
    const a = await train('--name', 'det-resume', '--epochs', '1', '--lr', '0.003');
    expect(a.code, a.stderr.slice(-2000)).toBe(0);
    // Same options (the fingerprint) but more epochs: the checkpoint is used, the first epoch is not trained again.
    const b = await train('--name', 'det-resume', '--epochs', '3', '--lr', '0.003', '--resume');
    expect(b.code, b.stderr.slice(-2000)).toBe(0);
    expect(b.stderr).toMatch(/resuming "det-resume" .*from the head checkpoint after epoch 1 /);
    expect(b.stderr).not.toMatch(/epoch 1\/3 /);
    expect(b.json.features.train.cached).toBeGreaterThan(0);
    expect(b.json.features.train.computed).toBe(0);
    const h = JSON.parse(await fs.readFile(path.join(b.json.package, 'history.json'), 'utf8')).history;
    expect(h).toHaveLength(3);
    const h1 = JSON.parse(await fs.readFile(path.join(a.json.package, 'history.json'), 'utf8')).history;
    expect(h[0].loss).toBe(h1[0].loss);
    // A checkpoint made with other settings is not continued: the option that differs is named.
    const c = await train('--name', 'det-resume', '--epochs', '4', '--lr', '0.01', '--resume');
    expect(c.code).not.toBe(0);
    expect(c.json.error.code).toBe('RESUME_MISMATCH');
    expect(c.json.error.message).toMatch(/different settings \(lr\)/);
  });

  it('--fine-tune K trains the last K blocks on the stored outputs of the frozen part, on its own epochs and schedule', async () => {
    const r = await train('--name', 'det-ft', '--epochs', '1', '--lr', '0.003', '--fine-tune', '2', '--fine-tune-epochs', '2', '--engine', 'onnx');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/fine-tune: the frozen part \(up to block_15_add\) runs in onnxruntime-node.*, computed once and stored; \d+ layers from block_16_expand on train forward and backward in TF\.js \(wasm\)/);
    expect(r.stderr).toMatch(/fine-tuning \d+ backbone layers \(2 block\(s\)\) \+ the detection head, [\d,]+ trainable parameters, 2 epoch\(s\), lr cosine decay from 0\.0003 to 0/);
    const pkg = await loadPackage(r.json.package);
    const t = pkg.manifest.training as Record<string, any>;
    expect(t.fineTune).toMatchObject({ blocks: 2, epochs: 2, epochsRun: 2, lrSchedule: { kind: 'cosine', lrFrom: 'default' } });
    expect(t.fineTune.lr).toBeCloseTo(0.0003, 12);
    expect((pkg.manifest.architecture as Record<string, any>).trainableBlocks).toHaveLength(2);
    const h = JSON.parse(await fs.readFile(path.join(pkg.dir, 'history.json'), 'utf8')).history;
    expect(h.map((e: { phase: string }) => e.phase)).toEqual(['head', 'fine-tune', 'fine-tune']);
    // The cosine schedule decays over the phase; every epoch is scored on validation.
    expect(h[1].lr).toBeGreaterThan(h[2].lr);
    for (const e of h) expect(typeof e.valMAP).toBe('number');
    expect(r.json.metrics.validation.mAP).toBeGreaterThanOrEqual(0);
  });

  it('--augment flip,scale computes the train maps from each epoch\'s augmented pictures; --tensorboard logs the epochs', async () => {
    const board = path.join(tmp.dir, 'board');
    const r = await train('--name', 'det-aug', '--epochs', '2', '--lr', '0.003', '--augment', 'flip,scale', '--tensorboard', board);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/augmentation flip, scale: train feature maps are computed from each epoch's augmented pictures/);
    // Only validation went through the store; the train split's maps were never stored.
    expect(r.json.features.train).toBeUndefined();
    expect(r.json.features.val.images).toBeGreaterThan(0);
    const t = (await loadPackage(r.json.package)).manifest.training as Record<string, any>;
    expect(t.augment).toEqual(['flip', 'scale']);
    for (const run of ['train', 'validation']) {
      const files = await fs.readdir(path.join(board, run));
      expect(files.some((f) => f.startsWith('events.out.tfevents.')), run).toBe(true);
    }
  });

  it('refuses options that cannot apply, with a usage error naming what to use instead', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--head', 'gap'], /--head and --dropout shape the classifier's Dense head.*--head-channels/],
      [['--model', 'svm'], /--model svm is a classic classifier: drop --model/],
      [['--image-size', '72'], /--image-size 72 does not fit detection: it must be a multiple of 32.*e\.g\. 64 or 96/],
      [['--fine-tune-epochs', '2'], /--fine-tune-epochs sets the fine-tune phase, which only runs with --fine-tune K/],
      [['--augment', 'rotate'], /rotate/],
    ];
    for (const [args, message] of cases) {
      const r = await train('--name', 'bad', '--epochs', '1', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error.message, args.join(' ')).toMatch(message);
    }
    // A detection flag on a classification run says to add --task detection.
    const c = await runCli(['train', '--data', data, '--skip-invalid', '--json']);
    expect(c.code).toBe(2);
    expect(c.json.error.message).toMatch(/--skip-invalid reads a detection dataset: add --task detection/);
    // Nothing was written for the refused runs.
    await expect(fs.stat(path.join(tmp.artifacts, 'bad'))).rejects.toThrow();
  });
});

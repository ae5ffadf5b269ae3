// `mlctl train --fine-tune` as a user meets it (tiny synthetic data, --weights none, 32 px): the fine-tune phase on
// its own epochs, rate and schedule (--epochs no longer sets it), a log that says where the frozen part runs and the
// whole run's ETA, `--find-lr` (range tests printed, in --json, used, plotted in history.html), and options that
// cannot apply refused before any work.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-ft-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 10, size: 32, seed: 6 });
  await selectBackend('wasm');
});
afterAll(async () => {
  await tmp.cleanup();
});

const MOBILE = ['--backbone', 'mobilenet_v2', '--alpha', '0.35', '--weights', 'none', '--image-size', '32', '--batch-size', '8', '--seed', '3', '--backend', 'wasm'];
const cli = (...args: string[]) => runCli(['train', '--data', data, ...MOBILE, ...args, '--json']);

const csvRows = async (dir: string) =>
  (await fs.readFile(path.join(dir, 'history.csv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));

describe('mlctl train --fine-tune', () => {
  it('runs the fine-tune phase on its own epochs with a cosine schedule, logs where the frozen part runs and the run ETA', async () => {
    const r = await cli('--name', 'ft', '--epochs', '3', '--fine-tune', '2', '--fine-tune-epochs', '2', '--engine', 'onnx');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.json.metrics.epochsRun).toBe(5);
    const pkg = await loadPackage(r.json.package);
    const t = pkg.manifest.training as Record<string, any>;
    expect(t.epochs).toBe(3);
    expect(t.lrSchedule).toEqual({ kind: 'constant', warmupEpochs: 0, lrFrom: 'default' });
    // Defaults: a tenth of --lr, cosine with a warm-up of a fifth of the phase (at most one epoch).
    expect(t.fineTune).toEqual({ blocks: 2, lr: 0.0001, epochs: 2, epochsRun: 2, lrSchedule: { kind: 'cosine', warmupEpochs: 0.4, lrFrom: 'default' } });
    const rows = await csvRows(pkg.dir);
    expect(rows.map((c) => c[1])).toEqual(['head', 'head', 'head', 'fine-tune', 'fine-tune']);
    // The lr column: the head's constant rate, then the cosine's rate at the end of each fine-tune epoch, decaying.
    const lr = rows.map((c) => Number(c[6]));
    expect(lr.slice(0, 3)).toEqual([0.001, 0.001, 0.001]);
    expect(lr[3]).toBeGreaterThan(lr[4]!);
    expect(lr[3]).toBeLessThan(0.0001);
    // What runs where, in words a user can act on (no pointer to files they do not have).
    expect(r.stderr).toMatch(/fine-tune: the frozen part \(up to block_15_add\) runs in onnxruntime-node .+?, computed once and stored; \d+ layers from block_16_expand on train forward and backward in TF\.js \(wasm\)/);
    expect(r.stderr).toMatch(/fine-tune phase: 2 epoch\(s\) of \d+ images, about \d+ img\/s \(one step timed\)/);
    expect(r.stderr).toMatch(/fine-tuning \d+ backbone layers \(2 block\(s\)\) \+ head, [\d,]+ trainable parameters, 2 epoch\(s\), lr cosine decay from 0\.0001 to 0, 0\.4 warm-up epochs/);
    expect(r.stderr).not.toMatch(/REFERENCE/);
    // The whole run's ETA is on the head phase's epoch lines (fine-tune still ahead) and the fine-tune progress.
    expect(r.stderr).toMatch(/epoch 1\/3 loss .* · run ETA \d/);
    expect(r.stderr).toMatch(/fine-tune epoch 1\/2 .* · run ETA \d/);
    // A rerun finds the frozen part's outputs in the store.
    const again = await cli('--name', 'ft', '--epochs', '3', '--fine-tune', '2', '--fine-tune-epochs', '2', '--engine', 'onnx');
    expect(again.code).toBe(0);
    expect(r.stderr).toMatch(/fine-tune inputs \(the frozen part's outputs, up to block_15_add\): 0 from the store, 30 computed/);
    expect(again.stderr).toMatch(/fine-tune inputs \(the frozen part's outputs, up to block_15_add\): 30 from the store, 0 computed/);
    expect(again.json.metrics).toEqual(r.json.metrics);
  }, 300_000);

  it('--find-lr runs the range test before each phase, trains at its suggestions, and reports and plots them', async () => {
    const r = await cli('--name', 'findlr', '--epochs', '2', '--fine-tune', '1', '--fine-tune-epochs', '1', '--find-lr', '--lr-schedule', 'one-cycle', '--engine', 'onnx');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const tests = r.json.lrFind as Array<Record<string, any>>;
    expect(tests.map((x) => x.phase)).toEqual(['head', 'fine-tune']);
    for (const x of tests) {
      expect(x.lrs.length).toBe(x.losses.length);
      expect(x.lrs[0]).toBe(1e-7);
      expect(x.chosen.rule).toBe('valley');
      expect(x.chosen.lr).toBe(x.suggestions.valley.lr);
      expect(x.chosen.lr).toBeGreaterThan(1e-7);
    }
    const pkg = await loadPackage(r.json.package);
    const t = pkg.manifest.training as Record<string, any>;
    expect(t.optimizer.lr).toBe(tests[0]!.chosen.lr);
    expect(t.lrSchedule).toEqual({ kind: 'one-cycle', warmupEpochs: 0, lrFrom: 'lr-find' });
    expect(t.fineTune).toMatchObject({ lr: tests[1]!.chosen.lr, lrSchedule: { kind: 'one-cycle', lrFrom: 'lr-find' } });
    expect(t.lrFind.map((x: { phase: string }) => x.phase)).toEqual(['head', 'fine-tune']);
    const html = await fs.readFile(path.join(pkg.dir, 'history.html'), 'utf8');
    expect(html).toContain('LR range test (head)');
    expect(html).toContain('LR range test (fine-tune)');
    expect(html).toMatch(/valley \S+ \(suggested\)/);
    const json = JSON.parse(await fs.readFile(path.join(pkg.dir, 'history.json'), 'utf8'));
    expect(json.lrFind).toHaveLength(2);
    expect(r.stderr).toMatch(/LR range test \(head\): \d+ steps from 1e-7.*suggested lr \S+ \(valley/);
    expect(r.stderr).toMatch(/head phase: 2 epoch\(s\), lr one-cycle to \S+ .*\(from the LR range test\)/);
  }, 300_000);

  it('--find-lr with --lr given: the test is reported, the given rate is used', async () => {
    const r = await cli('--name', 'findlr-given', '--epochs', '1', '--find-lr', '--lr', '0.002', '--engine', 'onnx');
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.json.lrFind).toHaveLength(1);
    const pkg = await loadPackage(r.json.package);
    expect((pkg.manifest.training as Record<string, any>).optimizer.lr).toBe(0.002);
    expect(r.stderr).toMatch(/head phase: training at --lr 0\.002 as given \(the range test suggests \S+\)/);
  }, 300_000);

  it('refuses options that cannot apply before doing any work', async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['--fine-tune-epochs', '3'], 'OPTION_CONFLICT', /--fine-tune-epochs sets the fine-tune phase, which only runs with --fine-tune K/],
      [['--fine-tune-lr', '1e-4'], 'OPTION_CONFLICT', /--fine-tune-lr sets the fine-tune phase/],
      [['--epochs', '2', '--warmup-epochs', '2'], 'OPTION_CONFLICT', /--warmup-epochs 2 leaves nothing of the 2-epoch head phase/],
      [['--find-lr', '--extract-only'], 'OPTION_CONFLICT', /--extract-only trains nothing/],
      [['--lr-schedule', 'linear'], 'OPTION_INVALID', /constant, cosine, one-cycle/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli('--name', 'refused', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error.code, args.join(' ')).toBe(code);
      expect(r.json.error.message).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/features/); // refused before extraction
    }
    await expect(fs.stat(path.join(tmp.artifacts, 'refused'))).rejects.toThrow();
  }, 300_000);
});

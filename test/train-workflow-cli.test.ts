// Issue 29's workflow as a user meets it, through main(argv): a dataset with train/ and test/ but no val/, trained,
// evaluated, quantized and pruned. The validation split is carved from train/ and said in the header; every --data
// command shares the split options and defaults to the model's split, checked before any work; prune prunes the head
// from the training run's feature store with a one-line summary; sizes and metrics read the same everywhere.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/commands/index.js';
import type { AnyCommand, OptionSpec } from '../src/cli/spec.js';
import { loadPackage } from '../src/artifacts/package.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;

const run = (...args: string[]) => runCli([...args, '--backend', 'wasm']);
const TRAIN = ['--weights', 'none', '--backbone', 'mobilenet_v2', '--alpha', '0.35', '--image-size', '32', '--epochs', '2', '--batch-size', '8'];

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-workflow-');
  data = path.join(tmp.dir, 'shapes');
  // Fashion-MNIST's layout: train/ and test/, no val/.
  await synthDataset(path.join(data, 'train'), { classes: 3, perClass: 10, size: 32, seed: 3 });
  await synthDataset(path.join(data, 'test'), { classes: 3, perClass: 4, size: 32, seed: 4 });
});
afterAll(() => tmp?.cleanup());

/** Every leaf command with its option table. */
function leaves(cmds: readonly AnyCommand[], prefix = ''): Array<[string, readonly OptionSpec[]]> {
  return cmds.flatMap((c) => (c.subcommands?.length ? leaves(c.subcommands, `${prefix}${c.name} `) : [[`${prefix}${c.name}`, c.options] as [string, readonly OptionSpec[]]]));
}

describe('train/ + test/ without val/', () => {
  let trained: Record<string, any>;

  it('train carves a seeded, stratified validation split from train/ and says so in the header', async () => {
    const r = await run('train', '--data', data, '--name', 'shapes', ...TRAIN, '--json');
    expect(r.code, r.stderr).toBe(0);
    trained = r.json;
    // 10 per class in train/: 2 of each class held out, test/ used as it is.
    expect(r.stderr).toContain('dataset ' + data + ': 3 classes, 24 train / 6 val / 12 test images (train/ + test/; val: 0.2 of each class of train/, seed 42)');
    expect(r.stderr).not.toMatch(/seed 42, validation 0\.2, test 0/);
    expect(trained.metrics.valAccuracy).toEqual(expect.any(Number));
    expect(trained.metrics.testAccuracy).toEqual(expect.any(Number));
    const m = (await loadPackage('shapes@1')).manifest;
    expect(m.training).toMatchObject({ layout: 'explicit', samples: { train: 24, val: 6, test: 12 }, splitSources: { train: 'folder', val: 'carved', test: 'folder' }, validationSplit: 0.2, seed: 42 });
  });

  it('every command that takes --data has the same split options, with no default but the model\'s or 42 / 0.2 / 0', () => {
    const withData = leaves(COMMANDS).filter(([, opts]) => opts.some((o) => /--data\b/.test(o.flags)) || false);
    expect(withData.map(([n]) => n).sort()).toEqual(['evaluate', 'optimize', 'prune', 'quantize', 'train', 'tune']);
    const shape = (o: OptionSpec | undefined) => o && { flags: o.flags, type: o.type, min: o.min, max: o.max, default: o.default };
    const ref = leaves(COMMANDS).find(([n]) => n === 'evaluate')![1];
    for (const [name, opts] of [...withData, ...leaves(COMMANDS).filter(([n]) => n === 'datasets inspect')]) {
      for (const flag of ['--seed <n>', '--validation-split <f>', '--test-split <f>']) {
        expect(shape(opts.find((o) => o.flags === flag)), `${name} ${flag}`).toEqual(shape(ref.find((o) => o.flags === flag)));
      }
    }
  });

  it('evaluate names where its images come from: test/ by default, the carved validation split on request', async () => {
    const t = await run('evaluate', 'shapes', '--data', data, '--latency-runs', '0', '--json');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toContain(`data: ${data} — test split: test/, 12 images in 3 classes`);
    expect(t.json.data).toMatchObject({ split: 'test', origin: 'test/', images: 12 });
    const v = await run('evaluate', 'shapes', '--data', data, '--split', 'val', '--latency-runs', '0', '--json');
    expect(v.stderr).toContain('val split: 0.2 of each class of train/ (seed 42), 6 images');
    // The model's own validation accuracy, on the same 6 images training held out.
    expect(v.json.results[0].metrics.accuracy).toBeCloseTo(trained.metrics.valAccuracy, 6);
  });

  it('quantize checks the split before quantizing: a split with no validation images fails in seconds, nothing written', async () => {
    const r = await run('quantize', 'shapes', '--dtype', 'uint8', '--data', data, '--validation-split', '0', '--latency-runs', '0', '--json');
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('DATA_EMPTY_SPLIT');
    expect(r.json.error.message).toMatch(/the accuracy gate scores validation images, and .* gives none \(split seed 42, validation 0, test 0\): pass a --validation-split > 0/);
    expect(r.stderr).not.toMatch(/quantized \d+ weight tensor/);
    expect(existsSync(path.join(tmp.artifacts, 'shapes', '2'))).toBe(false);
  });

  it('quantize gates on the split the model was trained with (no --split or --validation-split needed)', async () => {
    const r = await run('quantize', 'shapes', '--dtype', 'float16', '--data', data, '--latency-runs', '0', '--max-accuracy-drop', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`accuracy gate: 6 validation images of ${data} (0.2 of each class of train/ (seed 42): the split shapes v1 was trained with)`);
    expect(r.json.before.accuracy).toBeCloseTo(trained.metrics.valAccuracy, 6);
  });
});

describe('prune defaults', () => {
  it('prunes the trainable head, reads the training run\'s feature store (nothing recomputed) and prints a one-line summary', async () => {
    const r = await run('prune', 'shapes@1', '--sparsity', '0.8', '--epochs', '1', '--data', data, '--latency-runs', '0', '--max-accuracy-drop', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/features: 30 from the training run's store, 0 computed/);
    expect(r.stdout).toMatch(/^pruned fc1 \(Dense, [\d,]+ weights: 80\.00% zeros, scheduled\); \d+ other Dense\/Conv2D layer\(s\) stay dense \(--verbose lists every layer\)$/m);
    // No per-layer table without --verbose: the backbone's convolutions are not listed.
    expect(r.stdout).not.toMatch(/block_16_project|Conv1\b/);
    const v = await loadPackage('shapes@3');
    expect(v.manifest.lineage.at(-1)).toMatchObject({ op: 'prune', params: { layers: ['fc1'], backbone: 'unchanged' } });
  });

  it('--verbose lists every prunable layer; a second head prune of the pruned package still reads the store', async () => {
    const r = await run('prune', 'shapes@3', '--sparsity', '0.9', '--epochs', '1', '--data', data, '--latency-runs', '0', '--max-accuracy-drop', '1', '--verbose', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.features).toMatchObject({ store: 'training', computed: 0, cached: 30 });
    expect(r.json.layers.filter((l: { pruned: boolean }) => l.pruned).map((l: { layer: string }) => l.layer)).toEqual(['fc1']);
    const text = await run('prune', 'shapes@3', '--sparsity', '0.9', '--epochs', '1', '--data', data, '--latency-runs', '0', '--max-accuracy-drop', '1', '--verbose');
    expect(text.stdout).toMatch(/│ Conv1\s*│ Conv2D/);
    expect(text.stdout).toMatch(/│ fc1\s*│ Dense\s*│ \d+\s*│ \d+\s*│ 90\.00%\s*│ scheduled/);
  });
});

describe('sizes and metrics agree', () => {
  it('int8: quantize\'s figure is what models ls and show call its size (served), beside the total on disk', async () => {
    const q = await run('quantize', 'shapes@1', '--dtype', 'int8', '--calibration', '4', '--data', data, '--latency-runs', '0', '--max-accuracy-drop', '1', '--json');
    expect(q.code, q.stderr).toBe(0);
    const v = q.json.package.version as number;
    const ls = await run('models', 'ls', 'shapes', '--json');
    const entry = (ls.json.packages as Array<Record<string, any>>).find((p) => p.version === v)!;
    expect(entry).toMatchObject({ servedFormat: 'onnx', servedBytes: q.json.after.size.raw, accuracySplit: 'validation' });
    expect(entry.bytes).toBeGreaterThan(entry.servedBytes); // the float TF.js model is kept beside model.onnx
    expect(q.json.after.size.total).toBe(entry.bytes);
    const first = (ls.json.packages as Array<Record<string, any>>).find((p) => p.version === 1)!;
    expect(first).toMatchObject({ servedFormat: 'tfjs', accuracySplit: 'test' });
    const text = await run('models', 'ls', 'shapes');
    // The accuracy column names its split on every row.
    for (const line of text.stdout.split('\n').filter((l) => /│ shapes /.test(l))) expect(line).toMatch(/\d+\.\d% (test|val|train) /);
    const show = await run('models', 'show', `shapes@${v}`);
    expect(show.stdout).toMatch(new RegExp(`size {6}\\d+(\\.\\d+)? (KiB|MiB) onnx served, \\d+(\\.\\d+)? (KiB|MiB) on disk; accuracy \\d+\\.\\d% val`));
    // The lineage's size change is the served size's, not the package's total (int8 is smaller, not bigger).
    const steps = (await run('models', 'show', `shapes@${v}`, '--json')).json.lineage as Array<Record<string, any>>;
    expect(steps.at(-1)!.delta.bytes).toBeLessThan(0);
    expect(steps.at(-1)!.delta.accuracySplit).toBe('validation');
  });

  it('models diff names each metric with its split and fills the delta when both measured it', async () => {
    const d = await run('models', 'diff', 'shapes@1', 'shapes@2', '--json');
    expect(d.code, d.stderr).toBe(0);
    const val = (d.json.metrics as Array<Record<string, any>>).find((c) => c.metric === 'accuracy' && c.split === 'validation')!;
    expect(val).toMatchObject({ key: 'metrics.valAccuracy', label: 'accuracy (val)', delta: expect.any(Number) });
    expect((d.json.metrics as Array<Record<string, any>>).some((c) => c.key.startsWith('metrics.source'))).toBe(false);
    const text = await run('models', 'diff', 'shapes@1', 'shapes@2');
    expect(text.stdout).toMatch(/│ accuracy \(val\)\s*│ \d+\.\d\d%\s*│ \d+\.\d\d%\s*│ [+−]\d+\.\d\d pts\s*│/);
    expect(text.stdout).toMatch(/│ accuracy \(test\)\s*│ \d+\.\d\d%\s*│ not measured\s*│ —\s*│/);
    expect(text.stdout).toMatch(/size .* served \([+-].*\); .* on disk/);
  });
});

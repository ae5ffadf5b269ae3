// `mlctl quantize|prune|tune|optimize`: parse options, call src/optimize/, print the before/after table.
import Table from 'cli-table3';
import { loadPackage } from '../../artifacts/package.js';
import { MlctlError } from '../../errors.js';
import { figuresTable } from '../../optimize/measure.js';
import { optimizePipeline } from '../../optimize/pipeline.js';
import { prunePackage } from '../../optimize/prune.js';
import { quantizePackage } from '../../optimize/quantize.js';
import { quantizeInt8Package } from '../../optimize/quantize-int8.js';
import type { StepOptions, StepReport } from '../../optimize/step.js';
import { parseSearch } from '../../optimize/tune.js';
import { tunePipeline } from '../../optimize/tune-run.js';
import { ENGINES, type EngineChoice } from '../../runtime/engine.js';
import { startBackend } from '../context.js';
import type { CommandResult, CommandSpec, OptionSpec, RunContext } from '../spec.js';

const GATE_OPTIONS: OptionSpec[] = [
  { flags: '--data <dir>', description: 'image folder: its validation split (same split as train) is evaluated before and after' },
  { flags: '--max-accuracy-drop <x>', description: 'largest allowed validation accuracy drop (absolute; 0.01 = one point); more → exit 3 and the package is marked rejected', type: 'float', default: 0.01, min: 0, max: 1 },
  { flags: '--validation-split <f>', description: 'fraction held out for validation (must match training)', type: 'float', default: 0.2, min: 0.01, max: 0.9 },
  { flags: '--seed <n>', description: 'split seed (must match training)', type: 'int', default: 42 },
];

const OUTPUT_OPTIONS: OptionSpec[] = [
  { flags: '--name <name>', description: 'package name for the result (default: same name, next version)' },
  { flags: '--engine <engine>', description: 'inference engine for the latency column', choices: ENGINES, default: 'auto' },
  { flags: '--latency-runs <n>', description: 'batch-1 runs for the latency figure (0 skips it)', type: 'int', default: 20, min: 0 },
];

function stepOptions(ctx: RunContext): StepOptions {
  const o = ctx.opts;
  return {
    logger: ctx.logger,
    data: o.data as string | undefined,
    maxAccuracyDrop: o.maxAccuracyDrop as number,
    validationSplit: o.validationSplit as number,
    seed: o.seed as number,
    name: o.name as string | undefined,
    engine: o.engine as EngineChoice,
    latencyRuns: o.latencyRuns as number,
  };
}

function stepResult(r: StepReport): Record<string, unknown> {
  return {
    package: { name: r.package.manifest.name, version: r.package.manifest.version, dir: r.package.dir },
    status: r.status,
    ...(r.statusReason ? { statusReason: r.statusReason } : {}),
    before: r.before,
    after: r.after,
  };
}

function stepText(r: StepReport): string {
  const lines = [figuresTable([r.before, r.after]), `saved ${r.package.dir}`];
  if (r.status === 'rejected') lines.push(`REJECTED: ${r.statusReason}`);
  return lines.join('\n');
}

const quantize: CommandSpec = {
  name: 'quantize',
  summary: 'quantize a model\'s weights (TF.js float16/uint8/uint16) into a new package version',
  description:
    'Re-encodes every float32 weight as the TF.js converter does (weightsManifest quantization: affine uint8/uint16 with 0.0 exact, or IEEE float16); ' +
    'stock tf.loadLayersModel decodes it. With --data, validation accuracy is compared and a drop beyond --max-accuracy-drop exits 3 with the package marked rejected.',
  args: ['<model>'],
  options: [
    { flags: '--dtype <dtype>', description: 'weight encoding (int8: ONNX Runtime QDQ model)', choices: ['float16', 'uint8', 'uint16', 'int8'], default: 'uint8' },
    { flags: '--calibration <n>', description: 'int8 only: training images used to calibrate activation ranges', type: 'int', default: 100, min: 1 },
    ...GATE_OPTIONS,
    ...OUTPUT_OPTIONS,
  ],
  examples: ['mlctl quantize sample --dtype uint8 --data artifacts/sample-data', 'mlctl quantize artifacts/sample/3 --dtype float16 --max-accuracy-drop 0.005 --data artifacts/sample-data --json'],
  async run(ctx): Promise<CommandResult> {
    const dtype = ctx.opts.dtype as string;
    await startBackend(ctx);
    const source = await loadPackage(ctx.args[0] as string);
    if (dtype === 'int8') {
      const r = await quantizeInt8Package(source, { ...stepOptions(ctx), calibration: ctx.opts.calibration as number });
      return {
        exitCode: r.exitCode,
        result: { ...stepResult(r), dtype: r.dtype, quantizedNodes: r.quantizedNodes, calibrationImages: r.calibrationImages, fp32OnnxBytes: r.fp32OnnxBytes, int8OnnxBytes: r.int8OnnxBytes },
        text: stepText(r),
      };
    }
    const r = await quantizePackage(source, dtype as 'float16' | 'uint8' | 'uint16', stepOptions(ctx));
    return {
      exitCode: r.exitCode,
      result: { ...stepResult(r), dtype: r.dtype, quantizedWeights: r.quantizedWeights, weightBytesBefore: r.weightBytesBefore, weightBytesAfter: r.weightBytesAfter },
      text: stepText(r),
    };
  },
};

const prune: CommandSpec = {
  name: 'prune',
  summary: 'magnitude-prune a model (TF-MOT style) with fine-tuning into a new package version',
  description:
    'Zeroes the smallest-magnitude kernel weights of the chosen layers. Layers in the Dense tail are fine-tuned on cached backbone features of the --data training split ' +
    'while masks are re-selected on the schedule (polynomial decay from 0 to --sparsity, or constant); layers before it (convs) are pruned one-shot. ' +
    'The first conv and the output layer stay dense unless named in --layers. Pruned weights are exactly zero, so the gzip size shows the gain.',
  args: ['<model>'],
  options: [
    { flags: '--sparsity <s>', description: 'fraction of each pruned kernel set to zero', type: 'float', default: 0.5, min: 0.01, max: 0.99 },
    { flags: '--schedule <kind>', description: 'polynomial: decay from 0 to --sparsity over the first 70% of steps (tfmot PolynomialDecay, power 3); constant: --sparsity from the start', choices: ['polynomial', 'constant'], default: 'polynomial' },
    { flags: '--epochs <n>', description: 'fine-tuning epochs (0: one-shot pruning, no data needed)', type: 'int', default: 2, min: 0 },
    { flags: '--layers <names>', description: 'comma-separated layers to prune (default: every Dense/Conv2D but the first conv and the output layer)', type: 'list' },
    { flags: '--lr <rate>', description: 'fine-tuning learning rate (Adam)', type: 'float', default: 1e-4, min: 0 },
    { flags: '--batch-size <n>', description: 'fine-tuning batch size', type: 'int', default: 32, min: 1 },
    ...GATE_OPTIONS,
    ...OUTPUT_OPTIONS,
  ],
  examples: ['mlctl prune sample --sparsity 0.5 --data artifacts/sample-data', 'mlctl prune sample --sparsity 0.8 --schedule constant --layers fc1 --epochs 4 --data artifacts/sample-data --json'],
  async run(ctx): Promise<CommandResult> {
    await startBackend(ctx);
    const source = await loadPackage(ctx.args[0] as string);
    const o = ctx.opts;
    const r = await prunePackage(source, {
      ...stepOptions(ctx),
      sparsity: o.sparsity as number,
      schedule: o.schedule as 'polynomial' | 'constant',
      epochs: o.epochs as number,
      layers: o.layers as string[] | undefined,
      lr: o.lr as number,
      batchSize: o.batchSize as number,
    });
    const layers = new Table({ head: ['layer', 'kind', 'params', 'zeros', 'sparsity', 'method'], style: { head: [], border: [] } });
    for (const l of r.layers) layers.push([l.layer, l.kind, l.params, l.zeros, `${(l.sparsity * 100).toFixed(2)}%`, l.method]);
    return {
      exitCode: r.exitCode,
      result: { ...stepResult(r), sparsity: r.sparsity, layers: r.layers, history: r.history, schedule: r.schedule },
      text: [layers.toString(), stepText(r)].join('\n'),
    };
  },
};

const tune: CommandSpec = {
  name: 'tune',
  summary: 'search head hyperparameters on cached features and save the best trial as a package',
  description:
    'Extracts (or reads cached) VGG16 features of the --data train/validation split once, then trains one head per trial with early stopping ' +
    '(random or grid search over learning rate, Dense units, dropout, batch size). Prints the trials sorted by validation accuracy and saves the best one.',
  options: [
    { flags: '--data <dir>', description: 'image folder, one subfolder per class' },
    { flags: '--trials <n>', description: 'number of trials', type: 'int', default: 10, min: 1 },
    { flags: '--search <params>', description: 'comma-separated parameters to search: lr, units, dropout, batch-size (others keep train defaults)', type: 'list', default: ['lr', 'units', 'dropout', 'batch-size'] },
    { flags: '--strategy <s>', description: 'random draws or a (seeded-order) grid', choices: ['random', 'grid'], default: 'random' },
    { flags: '--name <name>', description: 'package name for the best trial', default: 'tuned' },
    { flags: '--image-size <px>', description: 'input size (multiple of 32, ≥ 32)', type: 'int', default: 224, min: 32 },
    { flags: '--weights <w>', description: 'backbone weights: imagenet, none (random) or a Keras .h5 path', default: 'imagenet' },
    { flags: '--head <kind>', description: 'head pooling', choices: ['flatten', 'gap'], default: 'flatten' },
    { flags: '--epochs <n>', description: 'maximum epochs per trial', type: 'int', default: 10, min: 1 },
    { flags: '--patience <n>', description: 'early stopping: epochs without val_loss improvement', type: 'int', default: 3, min: 1 },
    { flags: '--validation-split <f>', description: 'fraction held out for validation', type: 'float', default: 0.2, min: 0.01, max: 0.9 },
    { flags: '--seed <n>', description: 'seed for the split, the trials and training', type: 'int', default: 42 },
    { flags: '--engine <engine>', description: 'engine for feature extraction', choices: ENGINES, default: 'auto' },
  ],
  examples: ['mlctl tune --data artifacts/sample-data --trials 8', 'mlctl tune --data artifacts/sample-data --trials 12 --strategy grid --search lr,units --weights none --image-size 64 --json'],
  async run(ctx): Promise<CommandResult> {
    const o = ctx.opts;
    if (!o.data) throw new MlctlError('USAGE', ['mlctl tune needs --data DIR (an image folder with one subfolder per class)']);
    await startBackend(ctx);
    const r = await tunePipeline({
      data: o.data as string,
      name: o.name as string,
      trials: o.trials as number,
      strategy: o.strategy as 'random' | 'grid',
      search: parseSearch(o.search as string[]),
      imageSize: o.imageSize as number,
      weights: o.weights as string,
      pooling: o.head as 'flatten' | 'gap',
      epochs: o.epochs as number,
      patience: o.patience as number,
      seed: o.seed as number,
      validationSplit: o.validationSplit as number,
      engine: o.engine as EngineChoice,
      logger: ctx.logger,
    });
    const table = new Table({ head: ['rank', 'trial', 'lr', 'units', 'dropout', 'batch', 'val acc', 'val loss', 'epochs', 'time'], style: { head: [], border: [] } });
    r.results.forEach((t, i) =>
      table.push([i + 1, t.trial, t.params.lr, t.params.units, t.params.dropout, t.params.batchSize, `${(t.valAccuracy * 100).toFixed(2)}%`, t.valLoss.toFixed(4), `${t.epochs}${t.stoppedEarly ? ' (early stop)' : ''}`, `${t.seconds.toFixed(1)}s`]),
    );
    const pkg = { name: r.package.manifest.name, version: r.package.manifest.version, dir: r.package.dir };
    return {
      result: { package: pkg, best: r.results[0], trials: r.results, features: r.features, ...(r.gridSize !== undefined ? { gridSize: r.gridSize } : {}) },
      text: [table.toString(), `best: trial ${r.results[0]!.trial} (val accuracy ${(r.results[0]!.valAccuracy * 100).toFixed(2)}%) saved as ${r.package.dir}`].join('\n'),
    };
  },
};

const optimize: CommandSpec = {
  name: 'optimize',
  summary: 'run prune → quantize in one go, one new package version per step',
  description:
    'Each step writes a new version whose lineage points at the previous one, and the table shows every version side by side. ' +
    '--max-accuracy-drop bounds the validation accuracy drop over the whole pipeline; a rejected step is kept, marked rejected, and ends the run with exit 3.',
  args: ['<model>'],
  options: [
    { flags: '--prune <sparsity>', description: 'magnitude-prune to this sparsity first (see mlctl prune)', type: 'float', min: 0.01, max: 0.99 },
    { flags: '--schedule <kind>', description: 'pruning schedule', choices: ['polynomial', 'constant'], default: 'polynomial' },
    { flags: '--epochs <n>', description: 'pruning fine-tuning epochs (0: one-shot)', type: 'int', default: 2, min: 0 },
    { flags: '--layers <names>', description: 'layers to prune (default: all but the first conv and the output layer)', type: 'list' },
    { flags: '--lr <rate>', description: 'pruning fine-tuning learning rate', type: 'float', default: 1e-4, min: 0 },
    { flags: '--batch-size <n>', description: 'pruning fine-tuning batch size', type: 'int', default: 32, min: 1 },
    { flags: '--quantize <dtype>', description: 'then quantize weights (int8: ONNX Runtime QDQ)', choices: ['float16', 'uint8', 'uint16', 'int8'] },
    { flags: '--calibration <n>', description: 'int8 only: calibration images', type: 'int', default: 100, min: 1 },
    ...GATE_OPTIONS,
    ...OUTPUT_OPTIONS,
  ],
  examples: ['mlctl optimize sample --prune 0.5 --quantize uint8 --data artifacts/sample-data', 'mlctl optimize sample --quantize float16 --data artifacts/sample-data --json'],
  async run(ctx): Promise<CommandResult> {
    const o = ctx.opts;
    if (o.prune === undefined && o.quantize === undefined) throw new MlctlError('USAGE', ['nothing to do: pass --prune SPARSITY and/or --quantize DTYPE']);
    await startBackend(ctx);
    const source = await loadPackage(ctx.args[0] as string);
    const r = await optimizePipeline(source, {
      ...stepOptions(ctx),
      ...(o.prune !== undefined
        ? { prune: { sparsity: o.prune as number, schedule: o.schedule as 'polynomial' | 'constant', epochs: o.epochs as number, layers: o.layers as string[] | undefined, lr: o.lr as number, batchSize: o.batchSize as number } }
        : {}),
      ...(o.quantize !== undefined ? { quantize: o.quantize as 'float16' | 'uint8' | 'uint16' | 'int8', calibration: o.calibration as number } : {}),
    });
    const rejected = r.steps.find((s) => s.report.status === 'rejected');
    const final = { name: r.final.manifest.name, version: r.final.manifest.version, dir: r.final.dir };
    return {
      exitCode: r.exitCode,
      result: { package: final, status: rejected ? 'rejected' : 'ok', rows: r.rows, steps: r.steps.map((s) => ({ op: s.op, ...stepResult(s.report) })) },
      text: [figuresTable(r.rows), `final: ${r.final.dir}`, ...(rejected ? [`REJECTED: ${rejected.report.statusReason}`] : [])].join('\n'),
    };
  },
};

export const optimizeCommands: CommandSpec[] = [optimize, prune, quantize, tune];

// `mlctl train`: VGG16 transfer learning from an image folder into a model package (--model vgg16), or the classic
// models (--model linear|logistic|svm, delegated to src/classic). Parses options, runs src/train, prints the result.
import path from 'node:path';
import { CLASSIC_MODELS, classicTrainOptions, runClassicTrain } from '../../classic/cli.js';
import { MlctlError } from '../../errors.js';
import { ENGINES, type EngineChoice } from '../../runtime/engine.js';
import { AUGMENTATIONS } from '../../train/augment.js';
import { runTrain, type TrainResult } from '../../train/run.js';
import { startBackend } from '../context.js';
import type { CommandSpec, RunContext } from '../spec.js';

function defaultName(data: string): string {
  const base = path.basename(path.resolve(data)).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return base || 'model';
}

/** SIGINT/SIGTERM request a stop at the next batch boundary; training saves a checkpoint and we exit 130. */
function interruptFlag(ctx: RunContext): { stop: () => boolean; signal: () => string | undefined; release: () => void } {
  let received: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      ctx.logger.warn(`second ${sig}: exiting immediately`);
      process.exit(130);
    }
    received = sig;
    ctx.logger.warn(`${sig} received: finishing the current batch and saving a checkpoint (press Ctrl-C again to abort)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stop: () => received !== undefined,
    signal: () => received,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function summary(r: TrainResult): string {
  const m = r.metrics;
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : 'n/a');
  return [
    `${r.package!.dir}`,
    `  version ${r.package!.version}, ${m.epochsRun} epochs (best ${m.bestEpoch}${m.stoppedEarly ? ', stopped early' : ''})`,
    `  val accuracy ${f(m.valAccuracy)}  val loss ${f(m.valLoss)}${m.testAccuracy !== undefined ? `  test accuracy ${f(m.testAccuracy)}` : ''}`,
    `  backend ${r.backend}, features via ${r.engine}${r.features.train ? ` (${r.features.train.cached} cached, ${r.features.train.computed} computed)` : ''}, ${r.timings.totalSeconds}s`,
  ].join('\n');
}

export const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'train an image classifier (VGG16 transfer learning) into a model package',
  description:
    'Keras-style transfer learning: a frozen VGG16 base (ImageNet weights, an HDF5 file or random init) with a Flatten|GAP → Dense(1024, relu) → [Dropout] → Dense(n, softmax) head, Adam, categorical cross-entropy. ' +
    'Base features are cached on disk (per image content) so epochs and reruns skip the base; --fine-tune K then unfreezes the last K conv blocks. ' +
    'A checkpoint is written after every epoch (artifacts/.runs/NAME/); Ctrl-C saves one and exits 130, --resume continues. ' +
    'With --model linear|logistic|svm the classic models train instead.',
  options: [
    { flags: '-d, --data <dir>', description: 'image folder: one subfolder per class (or train/ val/ test/ subfolders)' },
    { flags: '-n, --name <name>', description: 'model name: the package goes to artifacts/NAME/VERSION (default: the data folder name)' },
    { flags: '--model <kind>', description: 'vgg16 transfer learning, or a classic model', choices: ['vgg16', ...CLASSIC_MODELS], default: 'vgg16' },
    { flags: '--epochs <n>', description: 'training epochs (the head; fine-tuning runs as many again)', type: 'int', default: 10, min: 1, max: 100000 },
    { flags: '--batch-size <n>', description: 'examples per gradient step', type: 'int', default: 32, min: 1, max: 65536 },
    { flags: '--image-size <px>', description: 'input height and width: at least 32 and a multiple of 32', type: 'int', default: 224, min: 1, max: 4096 },
    { flags: '--lr <rate>', description: 'Adam learning rate', type: 'float', default: 0.001, min: 1e-12, max: 10 },
    { flags: '--head <kind>', description: 'how the base output reaches Dense(1024): flatten (Keras example) or gap (global average pooling)', choices: ['flatten', 'gap'], default: 'flatten' },
    { flags: '--dropout <rate>', description: 'dropout between Dense(1024) and the output (0 = none)', type: 'float', default: 0, min: 0, max: 0.95 },
    { flags: '--fine-tune <k>', description: 'after the head converges, unfreeze the last K conv blocks (1-5) and continue at --fine-tune-lr', type: 'int', default: 0, min: 0, max: 5 },
    { flags: '--fine-tune-lr <rate>', description: 'learning rate of the fine-tuning phase (default: --lr / 10)', type: 'float', min: 1e-12, max: 10 },
    { flags: '--weights <source>', description: 'VGG16 base weights: imagenet (Keras file, downloaded once into $MLCTL_CACHE), none (random init) or the PATH of a Keras .h5 file', default: 'imagenet' },
    { flags: '--augment <list>', description: `comma-separated augmentations (${AUGMENTATIONS.join(', ')}); turns the feature cache off`, type: 'list', default: [] },
    { flags: '--patience <n>', description: 'early stopping: stop after N epochs without val_loss improvement and restore the best weights', type: 'int', min: 1 },
    { flags: '--seed <n>', description: 'seed for the split, initialisation, shuffling and dropout (same seed + data → same metrics)', type: 'int', default: 42 },
    { flags: '--resume', description: 'continue the interrupted run of --name from its last checkpoint', type: 'boolean' },
    { flags: '--validation-split <f>', description: 'fraction of each class held out for validation', type: 'float', default: 0.2, min: 0, max: 0.9 },
    { flags: '--test-split <f>', description: 'fraction of each class held out for a final test score', type: 'float', default: 0, min: 0, max: 0.9 },
    { flags: '--class-weights <mode>', description: 'auto weighs classes by inverse frequency (imbalanced folders); none turns it off', choices: ['auto', 'none'], default: 'auto' },
    { flags: '--engine <name>', description: 'feature extraction engine: auto prefers onnxruntime-node, else tfjs', choices: ENGINES, default: 'auto' },
    { flags: '--no-feature-cache', description: 'recompute base features instead of reading/writing the on-disk cache' },
    ...classicTrainOptions,
  ],
  examples: [
    'mlctl train --data artifacts/sample-data --name sample --weights none --image-size 64 --epochs 5',
    'mlctl train --data ./flowers --name flowers --epochs 10 --batch-size 32 --patience 3',
    'mlctl train --data ./flowers --name flowers --fine-tune 1 --dropout 0.5 --augment flip,rotate',
    'mlctl train --data ./flowers --name flowers --weights ./vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    'mlctl train --data ./flowers --name flowers --resume',
    'mlctl train --data table.csv --model logistic --target label',
  ],
  async run(ctx) {
    const { opts, logger } = ctx;
    if (opts.model && opts.model !== 'vgg16') return runClassicTrain(ctx);
    if (!opts.data) throw new MlctlError('USAGE', ['--data DIR is required: a folder with one subfolder of images per class']);
    const backend = await startBackend(ctx);
    const flag = interruptFlag(ctx);
    try {
      const result = await runTrain({
        data: opts.data as string,
        name: (opts.name as string | undefined) ?? defaultName(opts.data as string),
        epochs: opts.epochs as number,
        batchSize: opts.batchSize as number,
        imageSize: opts.imageSize as number,
        lr: opts.lr as number,
        head: opts.head as 'flatten' | 'gap',
        dropout: opts.dropout as number,
        fineTune: opts.fineTune as number,
        fineTuneLr: opts.fineTuneLr as number | undefined,
        weights: opts.weights as string,
        augment: (opts.augment as string[]) ?? [],
        patience: opts.patience as number | undefined,
        seed: opts.seed as number,
        resume: Boolean(opts.resume),
        validationSplit: opts.validationSplit as number,
        testSplit: opts.testSplit as number,
        engine: opts.engine as EngineChoice,
        classWeights: opts.classWeights as 'auto' | 'none',
        featureCache: opts.featureCache !== false,
        logger,
        shouldStop: flag.stop,
      });
      if (result.interrupted) {
        throw new MlctlError('INTERRUPTED', [`${flag.signal() ?? 'stop requested'}; checkpoint kept in ${result.runDir} (continue with the same options and --resume)`]);
      }
      return {
        result: {
          package: result.package!.dir,
          name: result.package!.name,
          version: result.package!.version,
          manifestSha256: result.package!.manifestSha256,
          metrics: result.metrics,
          backend: backend.name,
          engine: result.engine,
          features: result.features,
          timings: result.timings,
          runDir: result.runDir,
        },
        text: summary(result),
      };
    } finally {
      flag.release();
    }
  },
};

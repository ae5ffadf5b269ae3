// `mlctl train --model linear|logistic|svm`: the classic models' extra flags and their train entry point.
// The train command (src/cli/commands/train.ts) includes classicTrainOptions in its table and delegates here.
import type { CommandResult, OptionSpec, RunContext } from '../cli/spec.js';
import { startBackend } from '../cli/context.js';
import { MlctlError } from '../errors.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { KernelType } from './kernel.js';
import type { ClassicKind } from './model.js';
import type { Multiclass } from './svm.js';
import { trainClassic } from './train.js';

export const CLASSIC_MODELS = ['linear', 'logistic', 'svm'] as const;
export type ClassicModelName = (typeof CLASSIC_MODELS)[number];

export function isClassicModel(model: unknown): model is ClassicModelName {
  return (CLASSIC_MODELS as readonly unknown[]).includes(model);
}

export const classicTrainOptions: OptionSpec[] = [
  { flags: '--target <column>', description: 'linear/logistic/svm on a CSV file: the column to predict (linear: numeric; logistic/svm: class labels)' },
  { flags: '--features <kind>', description: 'linear/logistic/svm on an image folder: flattened pixels, or VGG16 base features (global average pooled, 512 per image; uses --image-size, --weights, --engine and the feature cache)', choices: ['pixels', 'vgg16'], default: 'pixels' },
  { flags: '--pixel-size <n>', description: '--features pixels: images are resized to n x n RGB before flattening (n*n*3 features)', type: 'int', default: 32, min: 4, max: 256 },
  { flags: '--kernel <name>', description: 'svm kernel', choices: ['linear', 'rbf', 'poly'], default: 'rbf' },
  { flags: '--C <c>', description: 'svm: penalty for margin violations (larger fits the training data harder)', type: 'float', default: 1, min: 1e-9 },
  { flags: '--gamma <g>', description: 'svm rbf/poly kernel coefficient (default 1 / number of features, on standardised features)', type: 'float', min: 0 },
  { flags: '--degree <d>', description: 'svm poly kernel degree', type: 'int', default: 3, min: 1, max: 10 },
  { flags: '--coef0 <c>', description: 'svm poly kernel constant term (default 1)', type: 'float' },
  { flags: '--svm-type <type>', description: 'svm: classification (c-svc) or regression on a numeric --target (epsilon-svr)', choices: ['c-svc', 'epsilon-svr'], default: 'c-svc' },
  { flags: '--epsilon <e>', description: 'epsilon-svr: half-width of the no-penalty tube around the target, in target standard deviations', type: 'float', default: 0.1, min: 0 },
  { flags: '--l2 <lambda>', description: 'linear/logistic: L2 penalty λ in mean loss + λ/2·‖w‖² (default 0 for linear, 1e-4 for logistic)', type: 'float', min: 0 },
  { flags: '--solver <name>', description: 'linear: closed-form (Cholesky on the normal equations) | gd (gradient descent, large inputs); svm: smo (kernels) | dcd (linear kernel, large data); default: picked by size', choices: ['closed-form', 'gd', 'smo', 'dcd', 'lbfgs'] },
  { flags: '--multiclass <strategy>', description: 'svm with more than 2 classes: one-vs-rest or one-vs-one', choices: ['ovr', 'ovo'], default: 'ovr' },
  { flags: '--probability', description: 'svm: fit Platt scaling (5-fold cross-validated) so the model outputs class probabilities instead of decision scores', type: 'boolean' },
  { flags: '--categorical <columns>', description: 'CSV: treat these comma-separated columns as categories (one-hot) even if they look numeric', type: 'list' },
  { flags: '--drop-columns <columns>', description: 'CSV: comma-separated columns to leave out (ids, free text)', type: 'list' },
  { flags: '--missing <policy>', description: 'CSV: a missing value is an error (listed by line and column) or drops its row', choices: ['error', 'drop'], default: 'error' },
  { flags: '--tol <t>', description: 'solver stopping tolerance (default: smo 1e-3, dcd 0.1, gd/lbfgs 1e-6)', type: 'float', min: 0 },
  { flags: '--kernel-cache <mb>', description: 'svm (smo): kernel row cache size in MB', type: 'int', default: 256, min: 1 },
];

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str<T extends string>(v: unknown): T | undefined {
  return typeof v === 'string' && v ? (v as T) : undefined;
}

export async function runClassicTrain(ctx: RunContext): Promise<CommandResult> {
  const o = ctx.opts;
  const model = o.model;
  if (!isClassicModel(model)) throw new MlctlError('USAGE', [`--model ${String(model)} is not a classic model (${CLASSIC_MODELS.join(', ')})`]);
  const data = str(o.data) ?? (typeof ctx.args[0] === 'string' ? ctx.args[0] : undefined);
  if (!data) throw new MlctlError('USAGE', ['--data is required: a CSV file (with --target COLUMN) or an image folder with one subfolder per class']);
  const name = str(o.name) ?? `${model}-model`;
  // VGG16 features run the CNN base on TF.js (or onnxruntime-node): select and announce the backend first.
  if (o.features === 'vgg16') await startBackend(ctx);
  const res = await trainClassic({
    model: model as ClassicKind,
    name,
    data,
    target: str(o.target),
    features: str<'pixels' | 'vgg16'>(o.features),
    pixelSize: num(o.pixelSize),
    imageSize: num(o.imageSize),
    weights: str(o.weights),
    engine: str<EngineChoice>(o.engine),
    featureCache: o.featureCache !== false,
    kernel: str<KernelType>(o.kernel),
    C: num(o.C),
    gamma: num(o.gamma),
    degree: num(o.degree),
    coef0: num(o.coef0),
    svmType: str<'c-svc' | 'epsilon-svr'>(o.svmType),
    epsilon: num(o.epsilon),
    l2: num(o.l2),
    solver: str(o.solver),
    multiclass: str<Multiclass>(o.multiclass),
    probability: Boolean(o.probability),
    validationSplit: num(o.validationSplit),
    seed: num(o.seed),
    categorical: Array.isArray(o.categorical) ? (o.categorical as string[]) : undefined,
    ignore: Array.isArray(o.dropColumns) ? (o.dropColumns as string[]) : undefined,
    missing: str<'error' | 'drop'>(o.missing),
    tol: num(o.tol),
    cacheMb: num(o.kernelCache),
    logger: ctx.logger,
  });
  const m = res.pkg.manifest;
  const headline = m.task === 'tabular-regression'
    ? `R² ${fmt(res.metrics.r2)}  MAE ${fmt(res.metrics.mae)}  RMSE ${fmt(res.metrics.rmse)}`
    : `accuracy ${fmt(res.metrics.accuracy)}`;
  const text = [
    `trained ${model} → ${m.name} v${m.version} (${res.pkg.dir})`,
    `  ${headline} on ${String(res.metrics.split)} (${res.data.train} train / ${res.data.validation} validation rows, ${res.data.features} features) in ${res.seconds.toFixed(1)}s`,
    ...(m.architecture.supportVectors !== undefined ? [`  ${String(m.architecture.supportVectors)} support vectors`] : []),
    `  formats: ${Object.keys(m.formats).join(', ')}`,
  ].join('\n');
  return {
    text,
    result: {
      package: { name: m.name, version: m.version, dir: res.pkg.dir, task: m.task, formats: m.formats },
      model,
      metrics: res.metrics,
      data: res.data,
      seconds: res.seconds,
      ...(res.onnx ? { onnx: res.onnx } : {}),
    },
  };
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? v.toFixed(4) : String(v);
}

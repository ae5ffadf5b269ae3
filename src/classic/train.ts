// Train a classic model (linear / logistic / SVM) end to end: data → standardise → fit → metrics → package.
// The package holds classic-model.json (and model.onnx when the export succeeds) under the usual manifest.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { InputSpec, ManifestDraft, OutputSpec } from '../artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import type { EngineChoice } from '../runtime/engine.js';
import { MlctlError } from '../errors.js';
import { classificationMetrics } from '../tasks/classification/metrics.js';
import type { Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { loadClassicData, type ClassicDataset } from './data.js';
import type { KernelSpec, KernelType } from './kernel.js';
import { fitStandardization, standardize, takeRows, type Matrix } from './linalg.js';
import { fitLinear, type LinearSolver } from './linear.js';
import { regressionMetrics } from '../tasks/regression/metrics.js';
import { fitLogistic } from './logistic.js';
import { CLASSIC_FILE, CLASSIC_FORMAT, CLASSIC_FORMAT_VERSION, parameterCount, predict, type ClassicKind, type ClassicModel } from './model.js';
import { encodeModel, buildModelProto } from '../onnx/index.js';
import { appendToBackbone, buildClassicOnnx, classicOnnxModel } from './onnx.js';
import { trainSvc, trainSvr, type Multiclass, type SvmSolver } from './svm.js';
import { BACKBONE_DIR, BACKBONE_FILE, loadVgg16Features, type Vgg16Features } from './vgg16-features.js';

export interface ClassicTrainOptions {
  model: ClassicKind;
  name: string;
  data: string;
  target?: string;
  features?: 'pixels' | 'vgg16';
  /** --features pixels: side length images are resized to before flattening. */
  pixelSize?: number;
  /** --features vgg16: the CNN input size, weights (imagenet | none | PATH), extraction engine and feature cache. */
  imageSize?: number;
  weights?: string;
  engine?: EngineChoice;
  featureCache?: boolean;
  kernel?: KernelType;
  C?: number;
  gamma?: number;
  degree?: number;
  coef0?: number;
  epsilon?: number;
  svmType?: 'c-svc' | 'epsilon-svr';
  l2?: number;
  solver?: string;
  multiclass?: Multiclass;
  probability?: boolean;
  validationSplit?: number;
  seed?: number;
  categorical?: string[];
  ignore?: string[];
  missing?: 'error' | 'drop';
  /** CSV: text encoding (default utf8) and the memory guard's limit in bytes. */
  encoding?: string;
  maxMemory?: number;
  /** Tolerance override for the iterative solvers. */
  tol?: number;
  cacheMb?: number;
  onnx?: boolean;
  root?: string;
  logger: Logger;
}

export interface ClassicTrainResult {
  pkg: LoadedPackage;
  model: ClassicModel;
  metrics: Record<string, unknown>;
  seconds: number;
  data: { rows: number; train: number; validation: number; features: number; dropped: number; skipped: number };
  onnx?: { file: string } | { error: string };
}

const SOLVERS: Record<ClassicKind, string[]> = { linear: ['closed-form', 'gd'], logistic: ['lbfgs'], svm: ['smo', 'dcd'] };

/** Training-set metrics are computed on an evenly spaced subset of at most this many rows. */
export const TRAIN_METRIC_ROWS = 2000;

/** Where the rows are too many for SMO's O(n²) kernel work, linear SVMs switch to dual coordinate descent. */
export const SMO_LINEAR_MAX_ROWS = 5000;

function taskOf(opts: ClassicTrainOptions): 'classification' | 'regression' {
  if (opts.model === 'linear') return 'regression';
  if (opts.model === 'svm' && opts.svmType === 'epsilon-svr') return 'regression';
  return 'classification';
}

function summarizeClassification(probs: Float32Array, labels: Int32Array, k: number, names: string[], kind: OutputSpec['kind']): Record<string, unknown> {
  const m = classificationMetrics(probs, labels, k, { labelNames: names, topK: 1 });
  return {
    count: m.count,
    accuracy: m.accuracy,
    macroF1: m.macro.f1,
    ...(kind === 'probabilities' ? { logLoss: m.logLoss } : {}),
    confusion: m.confusion,
  };
}

export async function trainClassic(opts: ClassicTrainOptions): Promise<ClassicTrainResult> {
  const start = performance.now();
  const { logger } = opts;
  const task = taskOf(opts);
  if (opts.solver && !SOLVERS[opts.model].includes(opts.solver)) {
    throw new MlctlError('OPTION_CONFLICT', [`--solver ${opts.solver} does not apply to --model ${opts.model} (choose ${SOLVERS[opts.model].join(' or ')})`]);
  }
  let vgg: Vgg16Features | undefined;
  const imageFolder = !(await fs.stat(opts.data).then((st) => st.isFile(), () => false));
  if (opts.features === 'vgg16' && imageFolder) {
    if (task === 'regression') throw new MlctlError('OPTION_CONFLICT', ['--features vgg16 is for classification of image folders']);
    vgg = await loadVgg16Features({
      data: opts.data,
      imageSize: opts.imageSize ?? 224,
      weights: opts.weights ?? 'imagenet',
      seed: opts.seed ?? 42,
      validationSplit: opts.validationSplit ?? 0.2,
      engine: opts.engine ?? 'auto',
      featureCache: opts.featureCache !== false,
      logger,
    });
  }
  if (opts.features === 'vgg16' && !imageFolder) logger.warn(`--features vgg16 applies to image folders; ${opts.data} is read as a CSV table`);
  try {
    return await trainOn(opts, task, start, vgg);
  } finally {
    vgg?.backbone.dispose();
  }
}

async function trainOn(opts: ClassicTrainOptions, task: 'classification' | 'regression', start: number, vgg: Vgg16Features | undefined): Promise<ClassicTrainResult> {
  const { logger } = opts;
  const ds = vgg?.ds ?? await loadClassicData({
    data: opts.data,
    target: opts.target,
    task,
    validationSplit: opts.validationSplit ?? 0.2,
    seed: opts.seed ?? 42,
    categorical: opts.categorical,
    ignore: opts.ignore,
    missing: opts.missing,
    encoding: opts.encoding,
    maxMemory: opts.maxMemory,
    imageSize: opts.pixelSize ?? 32,
    logger,
  });
  logger.info(`${ds.source === 'csv' ? 'CSV' : 'images'}: ${ds.train.rows} training rows, ${ds.val?.rows ?? 0} validation rows, ${ds.train.cols} features${task === 'classification' ? `, ${ds.labels.length} classes` : ''}`);
  const std = fitStandardization(ds.train);
  const z = standardize(ds.train, std);
  const d = z.cols;
  const fitStart = performance.now();
  const { model, training } = fitModel(opts, ds, z, std, task);
  const fitSeconds = (performance.now() - fitStart) / 1000;

  // Metrics through the same predict() every consumer uses, on raw (unstandardised) rows.
  const evalOn = (x: Matrix, labels?: Int32Array, targets?: Float64Array): Record<string, unknown> => {
    const out = predict(model, x.data, x.rows);
    if (task === 'regression') return { ...regressionMetrics(targets!, out) };
    return summarizeClassification(out, labels!, ds.labels.length, ds.labels, model.output.kind);
  };
  // Training-set metrics on at most TRAIN_METRIC_ROWS evenly spaced rows: kernel prediction costs rows x SVs x d.
  const stride = Math.max(1, Math.ceil(ds.train.rows / TRAIN_METRIC_ROWS));
  const pick = Array.from({ length: Math.ceil(ds.train.rows / stride) }, (_, i) => i * stride);
  const metrics: Record<string, unknown> = {
    train: stride === 1 ? evalOn(ds.train, ds.trainLabels, ds.trainTargets) : evalOn(takeRows(ds.train, pick), ds.trainLabels && Int32Array.from(pick, (i) => ds.trainLabels![i]!), ds.trainTargets && Float64Array.from(pick, (i) => ds.trainTargets![i]!)),
  };
  if (ds.val) metrics.validation = evalOn(ds.val, ds.valLabels, ds.valTargets);
  const headline = (metrics.validation ?? metrics.train) as Record<string, number>;
  if (task === 'classification') metrics.accuracy = headline.accuracy;
  else Object.assign(metrics, { r2: headline.r2, mae: headline.mae, rmse: headline.rmse });
  metrics.split = ds.val ? 'validation' : 'train';

  const labels = task === 'classification' ? ds.labels : [ds.target ?? 'value'];
  const output: OutputSpec = { name: task === 'regression' ? 'value' : model.output.kind === 'probabilities' ? 'probabilities' : 'scores', kind: model.output.kind, size: model.output.size };
  const transform = { standardization: std, ...(ds.encoding ? { encoding: ds.encoding } : {}) };
  const input: InputSpec = ds.imageSpec ? ds.imageSpec : { kind: 'tabular', name: 'features', features: ds.features, dtype: 'float32', transform };

  let onnxBytes: Uint8Array | undefined;
  let onnxInfo: ClassicTrainResult['onnx'];
  if (opts.onnx !== false) {
    try {
      onnxBytes = vgg
        ? encodeModel(appendToBackbone(buildModelProto(vgg.backbone, { inputName: input.name, outputName: 'backbone_features' }), buildClassicOnnx(model, { inputShape: [d], name: opts.name, outputName: output.name })))
        : classicOnnxModel(model, { inputShape: ds.imageSpec ? [ds.imageSpec.height, ds.imageSpec.width, 3] : [d], name: opts.name, inputName: input.name, outputName: output.name });
      onnxInfo = { file: 'model.onnx' };
    } catch (err) {
      onnxInfo = { error: (err as Error).message };
      logger.warn(`ONNX export of the ${opts.model} model failed (${(err as Error).message}); the package has the classic model only`);
    }
  }
  const draft: ManifestDraft = {
    // Pixel / VGG16-feature packages take images like any image classifier; CSV packages take feature rows.
    task: task === 'regression' ? 'tabular-regression' : ds.imageSpec ? 'image-classification' : 'tabular-classification',
    labels,
    input,
    output,
    architecture: {
      family: 'classic',
      model: opts.model,
      ...(model.svm ? { kernel: model.svm.kernel, multiclass: model.svm.multiclass, supportVectors: model.svm.supportVectors.length, machines: model.svm.machines.length, svmType: model.svm.kind === 'svr' ? 'epsilon-svr' : 'c-svc' } : {}),
      features: vgg
        ? { kind: 'vgg16', pooling: 'gap', dim: d, backbone: BACKBONE_FILE, imageSize: vgg.spec.height, weights: { source: vgg.source.source, kind: vgg.source.kind, sha256: vgg.source.sha256 } }
        : ds.imageSpec
          ? { kind: 'pixels', flatten: 'NHWC row-major', height: ds.imageSpec.height, width: ds.imageSpec.width, channels: 3 }
          : { kind: 'tabular', count: d },
      standardized: true,
      parameters: parameterCount(model),
    },
    formats: { classic: CLASSIC_FILE, ...(vgg ? { backbone: BACKBONE_FILE } : {}), ...(onnxBytes ? { onnx: 'model.onnx' } : {}) },
    training: { ...training, features: vgg ? 'vgg16' : ds.imageSpec ? 'pixels' : 'tabular', ...(vgg ? { featureEngine: vgg.engine } : {}), data: path.resolve(opts.data), ...(ds.target ? { target: ds.target } : {}), validationSplit: opts.validationSplit ?? 0.2, seed: opts.seed ?? 42, rows: { train: ds.train.rows, validation: ds.val?.rows ?? 0, dropped: ds.dropped, skipped: ds.skipped }, seconds: fitSeconds },
    metrics,
    lineage: [{ op: 'train', at: new Date().toISOString(), tool: 'mlctl', params: { model: opts.model, ...training } }],
  };
  const pkg = await savePackage({
    name: opts.name,
    root: opts.root,
    draft,
    write: async (dir) => {
      await fs.writeFile(path.join(dir, CLASSIC_FILE), JSON.stringify(model) + '\n');
      if (onnxBytes) await fs.writeFile(path.join(dir, 'model.onnx'), onnxBytes);
      if (vgg) {
        await fs.mkdir(path.join(dir, BACKBONE_DIR));
        await writeTfjsModel(path.join(dir, BACKBONE_DIR), vgg.backbone);
      }
    },
  });
  return {
    pkg,
    model,
    metrics,
    seconds: (performance.now() - start) / 1000,
    data: { rows: ds.rows, train: ds.train.rows, validation: ds.val?.rows ?? 0, features: d, dropped: ds.dropped, skipped: ds.skipped },
    ...(onnxInfo ? { onnx: onnxInfo } : {}),
  };
}

function fitModel(opts: ClassicTrainOptions, ds: ClassicDataset, z: Matrix, std: ClassicModel['standardization'], task: 'classification' | 'regression'): { model: ClassicModel; training: Record<string, unknown> } {
  const { logger } = opts;
  const d = z.cols;
  const base = { format: CLASSIC_FORMAT, formatVersion: CLASSIC_FORMAT_VERSION, task, inputSize: d, standardization: std } as const;
  const k = ds.labels.length;
  if (opts.model === 'linear') {
    const l2 = opts.l2 ?? 0;
    const progress = createProgress({ label: 'least squares (gradient descent)', unit: 'iter', logger });
    const fit = fitLinear(z, ds.trainTargets!, { l2, solver: opts.solver as LinearSolver | undefined, tol: opts.tol, onIteration: (i, g) => i % 50 === 0 && progress.tick(50, `‖∇‖ ${g.toExponential(2)}`) });
    if (fit.solver === 'gd') progress.done(`${fit.iterations} iterations`);
    if (fit.ridgeAdded) {
      // A full one-hot block is always collinear with the intercept; anything else deserves a warning.
      const oneHot = ds.encoding?.columns.some((c) => c.kind === 'categorical');
      const msg = `features are collinear${oneHot ? ' (one-hot columns sum to 1)' : ''}: added a ridge of ${fit.ridgeAdded.toExponential(2)} to solve the normal equations (pass --l2 to choose one)`;
      if (oneHot) logger.info(msg);
      else logger.warn(msg);
    }
    return {
      model: { ...base, model: 'linear', output: { kind: 'regression', size: 1 }, linear: { weights: [Array.from(fit.w)], bias: [fit.b], activation: 'identity' } },
      training: { solver: fit.solver, l2, ...(fit.iterations !== undefined ? { iterations: fit.iterations } : {}), ...(fit.ridgeAdded ? { ridgeAdded: fit.ridgeAdded } : {}) },
    };
  }
  if (opts.model === 'logistic') {
    const l2 = opts.l2 ?? 1e-4;
    const progress = createProgress({ label: 'logistic regression (L-BFGS)', unit: 'iter', logger });
    const fit = fitLogistic(z, ds.trainLabels!, k, { l2, tol: opts.tol, onIteration: (_i, loss) => progress.tick(1, `loss ${loss.toFixed(4)}`) });
    progress.done(`${fit.iterations} iterations, loss ${fit.loss.toFixed(4)}${fit.converged ? '' : ' (not converged: raise --l2 or check the data)'}`);
    const weights = Array.from({ length: k }, (_, c) => Array.from(fit.w.subarray(c * d, (c + 1) * d)));
    return {
      model: { ...base, model: 'logistic', output: { kind: 'probabilities', size: k }, linear: { weights, bias: Array.from(fit.b), activation: 'softmax' } },
      training: { solver: 'lbfgs', l2, iterations: fit.iterations, loss: fit.loss, converged: fit.converged },
    };
  }
  const type = opts.kernel ?? 'rbf';
  const kernel: KernelSpec = { type, gamma: opts.gamma ?? 1 / d, coef0: opts.coef0 ?? (type === 'poly' ? 1 : 0), degree: opts.degree ?? 3 };
  const C = opts.C ?? 1;
  let solver = opts.solver as SvmSolver | undefined;
  if (solver === 'dcd' && type !== 'linear') throw new MlctlError('OPTION_CONFLICT', ['--solver dcd trains linear SVMs only; use --kernel linear, or --solver smo for rbf/poly kernels']);
  if (task === 'regression' && solver === 'dcd') throw new MlctlError('OPTION_CONFLICT', ['epsilon-SVR is trained with --solver smo']);
  solver ??= type === 'linear' && task === 'classification' && z.rows > SMO_LINEAR_MAX_ROWS ? 'dcd' : 'smo';
  if (solver === 'smo' && z.rows > 20000) logger.warn(`SMO on ${z.rows} rows needs O(n²) kernel evaluations; this can take a long time (the linear kernel with --solver dcd scales linearly)`);
  const machines = task === 'regression' || k <= 2 ? 1 : (opts.multiclass ?? 'ovr') === 'ovr' ? k : (k * (k - 1)) / 2;
  const progress = createProgress({ label: `SVM (${type} kernel, ${solver})`, total: machines, unit: 'machines', logger });
  let finished = 0;
  const onProgress = (done: number, _total: number, detail: string) => {
    if (done > finished) {
      progress.tick(done - finished, detail);
      finished = done;
    } else progress.status(detail);
  };
  const cacheBytes = (opts.cacheMb ?? 256) * 1024 * 1024;
  if (task === 'regression') {
    const epsilon = opts.epsilon ?? 0.1;
    // Trained on the standardised target so C and ε mean the same whatever the target's units; the coefficients
    // are scaled back afterwards (f_y = mean + sd·f), so the stored model predicts in target units.
    const t = ds.trainTargets!;
    const tMean = t.reduce((a, v) => a + v, 0) / t.length;
    const tSd = Math.sqrt(t.reduce((a, v) => a + (v - tMean) ** 2, 0) / t.length) || 1;
    const svm = trainSvr(z, Float64Array.from(t, (v) => (v - tMean) / tSd), { kernel, C, epsilon, eps: opts.tol, cacheBytes, onProgress });
    const mc = svm.machines[0]!;
    mc.coef = mc.coef.map((c) => c * tSd);
    mc.bias = mc.bias * tSd + tMean;
    if (mc.w) mc.w = mc.w.map((v) => v * tSd);
    progress.done(`${svm.supportVectors.length} support vectors`);
    return { model: { ...base, model: 'svm', output: { kind: 'regression', size: 1 }, svm }, training: { svmType: 'epsilon-svr', kernel, C, epsilon, targetStandardization: { mean: tMean, sd: tSd }, solver, supportVectors: svm.supportVectors.length, iterations: svm.machines[0]!.iterations, converged: svm.machines[0]!.converged } };
  }
  const svm = trainSvc(z, ds.trainLabels!, k, { kernel, C, solver, multiclass: opts.multiclass, probability: opts.probability, eps: opts.tol, cacheBytes, seed: opts.seed, onProgress });
  progress.done(`${svm.machines.length} machine(s), ${solver === 'smo' ? `${svm.supportVectors.length} support vectors` : 'linear weights'}`);
  const unconverged = svm.machines.filter((m) => !m.converged).length;
  if (unconverged) logger.warn(`${unconverged} SVM machine(s) stopped at the iteration limit before meeting the tolerance`);
  const output = svm.probability ? { kind: 'probabilities' as const, size: k } : { kind: 'scores' as const, size: k };
  return {
    model: { ...base, model: 'svm', output, svm },
    training: { svmType: 'c-svc', kernel, C, solver, multiclass: svm.multiclass, probability: svm.probability, supportVectors: svm.supportVectors.length, iterations: svm.machines.map((m) => m.iterations) },
  };
}

// `mlctl train --model linear|logistic|svm` (loaded with the train runner): the classic models on a CSV file or an
// image folder, trained by src/classic into a package with an ONNX file.
import { resolveSplitParams } from '../../data/splits.js';
import type { ClassicKind } from '../../classic/model.js';
import { trainClassic } from '../../classic/train.js';
import { parseSize } from '../../util/units.js';
import { startBackend, startDevice } from '../context.js';
import type { CommandResult } from '../spec.js';
import type { TrainContext } from '../commands/train.js';

function fmt(v: unknown): string {
  return typeof v === 'number' ? v.toFixed(4) : String(v);
}

export async function runClassicTrain(ctx: TrainContext, model: ClassicKind): Promise<CommandResult> {
  const o = ctx.opts;
  // VGG16 features run the CNN base on TF.js (or onnxruntime-node): select and announce the backend first.
  if (o.features === 'vgg16') {
    await startBackend(ctx);
    await startDevice(ctx);
  }
  const res = await trainClassic({
    model,
    name: o.name ?? `${model}-model`,
    data: o.data,
    target: o.target,
    features: o.features,
    pixelSize: o.pixelSize,
    imageSize: o.imageSize,
    weights: o.weights,
    engine: o.engine,
    featureCache: o.featureCache,
    kernel: o.kernel,
    C: o.C,
    gamma: o.gamma,
    degree: o.degree,
    coef0: o.coef0,
    svmType: o.svmType,
    epsilon: o.epsilon,
    l2: o.l2,
    solver: o.solver,
    multiclass: o.multiclass,
    probability: o.probability,
    // The split options' one resolution (data/splits.ts): the given value, else 0.2 / 42.
    validationSplit: resolveSplitParams(o).params.validationSplit,
    seed: resolveSplitParams(o).params.seed,
    categorical: o.categorical,
    ignore: o.dropColumns,
    missing: o.missing,
    encoding: o.encoding,
    maxMemory: parseSize(o.maxMemory, '--max-memory'),
    tol: o.tol,
    cacheMb: o.kernelCache,
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

// `mlctl prune`: TF-MOT-style magnitude pruning. Layers in the model's Dense tail are fine-tuned on cached backbone
// features with masks re-selected on a schedule; layers before it (convs) are pruned one-shot. Pruned weights are
// exactly zero in the saved model; the first conv and the output layer stay dense unless named in --layers.
import * as tf from '@tensorflow/tfjs';
import { sha256 } from '../artifacts/hash.js';
import { loadTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import { loadEvaluationData, mapToModelLabels } from '../data/evaluation.js';
import { MlctlError } from '../errors.js';
import type { FeatureRows } from '../features/rows.js';
import { openFeatureSession, type FeatureSession } from '../features/session.js';
import { denseTailStart, disposeStack, masked, evaluateStack, fineTuneStack, stackFromLayers, updateMasks, type FineTuneEpoch } from './dense-stack.js';
import { defaultSchedule, magnitudeMask, zeroFraction, type PruningSchedule } from './schedule.js';
import { finishStep, imageSpecOf, modelArtifacts, type StepOptions, type StepReport } from './step.js';

const PRUNABLE = ['Dense', 'Conv2D'];

export interface PruneOptions extends StepOptions {
  sparsity: number;
  schedule?: 'constant' | 'polynomial';
  /** Fine-tuning epochs on the training split (0 = one-shot magnitude pruning, no data needed). */
  epochs?: number;
  /** Layer names to prune (default: every Dense/Conv2D but the first conv and the output layer). */
  layers?: string[];
  lr?: number;
  batchSize?: number;
  /** Feature cache root (default: $MLCTL_CACHE). */
  cacheDir?: string;
}

export interface LayerSparsity {
  layer: string;
  kind: string;
  params: number;
  zeros: number;
  sparsity: number;
  pruned: boolean;
  method: 'scheduled' | 'one-shot' | 'dense';
}

export interface PruneReport extends StepReport {
  layers: LayerSparsity[];
  /** Zero fraction over all pruned kernels. */
  sparsity: number;
  history: FineTuneEpoch[];
  schedule?: PruningSchedule;
}

/** Which layers get pruned: the named ones, or by default every prunable layer except the first and the last. */
export function pruneTargets(model: tf.LayersModel, names?: string[]): string[] {
  const prunable = model.layers.filter((l) => PRUNABLE.includes(l.getClassName()) && l.getWeights().length > 0);
  if (names && names.length > 0) {
    for (const n of names) {
      const layer = model.layers.find((l) => l.name === n);
      if (!layer) throw new MlctlError('OPTION_INVALID', [`--layers: the model has no layer "${n}" (prunable layers: ${prunable.map((l) => l.name).join(', ')})`]);
      if (!prunable.includes(layer)) throw new MlctlError('OPTION_INVALID', [`--layers: layer "${n}" is a ${layer.getClassName()}; only ${PRUNABLE.join('/')} layers can be pruned`]);
    }
    return [...names];
  }
  return prunable.slice(1, -1).map((l) => l.name);
}

function layerReport(model: tf.LayersModel, targets: Set<string>, tail: Set<string>): LayerSparsity[] {
  return model.layers
    .filter((l) => PRUNABLE.includes(l.getClassName()) && l.getWeights().length > 0)
    .map((l) => {
      const kernel = l.getWeights()[0]!.dataSync();
      const zeros = Math.round(zeroFraction(kernel) * kernel.length);
      const pruned = targets.has(l.name);
      return { layer: l.name, kind: l.getClassName(), params: kernel.length, zeros, sparsity: zeros / kernel.length, pruned, method: pruned ? (tail.has(l.name) ? 'scheduled' : 'one-shot') : 'dense' };
    });
}

export async function prunePackage(source: LoadedPackage, opts: PruneOptions): Promise<PruneReport> {
  const { logger } = opts;
  if (!(opts.sparsity > 0 && opts.sparsity < 1)) throw new MlctlError('OPTION_INVALID', [`--sparsity must be between 0 and 1 (exclusive), got ${opts.sparsity}`]);
  const epochs = opts.epochs ?? 2;
  const kind = opts.schedule ?? 'polynomial';
  if (epochs > 0 && !opts.data) throw new MlctlError('OPTION_REQUIRED', ['pruning fine-tunes on --data DIR (its training split); pass --data, or --epochs 0 for one-shot pruning without fine-tuning']);
  const spec = imageSpecOf(source);
  const model = await loadTfjsModel(source);
  // Feature sessions stay open until the end: their rows are read by the fine-tuning epochs.
  const sessions: FeatureSession[] = [];
  try {
    const targets = pruneTargets(model, opts.layers);
    if (targets.length === 0) throw new MlctlError('OPTION_CONFLICT', ['no layer to prune: the model has no Dense/Conv2D layer between its first conv and its output layer; name layers with --layers']);
    const tailStart = denseTailStart(model.layers);
    const tailLayers = model.layers.slice(tailStart);
    const tailNames = new Set(tailLayers.map((l) => l.name));
    const scheduled = epochs > 0 ? targets.filter((t) => tailNames.has(t)) : [];
    const oneShot = targets.filter((t) => !scheduled.includes(t));
    // Layers before the Dense tail cannot be fine-tuned on cached features: prune them once, up front.
    for (const name of oneShot) {
      const layer = model.getLayer(name);
      const [kernel, ...rest] = layer.getWeights();
      const mask = magnitudeMask(kernel!.dataSync(), opts.sparsity);
      const m = tf.tensor(mask, kernel!.shape);
      const w = masked(kernel!, m);
      layer.setWeights([w, ...rest]);
      tf.dispose([m, w]);
    }
    if (oneShot.length > 0) logger.info(`pruned ${oneShot.join(', ')} one-shot to ${opts.sparsity}${epochs > 0 ? ' (outside the Dense tail: not fine-tuned)' : ''}`);

    let history: FineTuneEpoch[] = [];
    let schedule: PruningSchedule | undefined;
    let accuracyBefore: number | undefined;
    let accuracyAfter: number | undefined;
    if (scheduled.length > 0) {
      const cut = model.layers[tailStart - 1];
      if (!cut) throw new MlctlError('UNSUPPORTED_LAYER', [model.layers[0]!.name, model.layers[0]!.getClassName(), 'the Dense tail starts at the input; nothing to extract features from']);
      const base = tf.model({ inputs: model.inputs, outputs: cut.output as tf.SymbolicTensor });
      const featureShape = (cut.outputShape as number[]).slice(1);
      if (featureShape.length !== 1) throw new MlctlError('UNSUPPORTED_LAYER', [tailLayers[0]!.name, 'Dense', `its input has shape [${featureShape.join(', ')}]; fine-tuning on features needs a Flatten or pooling layer before the Dense tail (or use --epochs 0)`]);
      const splitParams = { validationSplit: opts.validationSplit ?? 0.2, seed: opts.seed ?? 42, testSplit: 0 };
      const labels = source.manifest.labels;
      const trainSamples = mapToModelLabels(await loadEvaluationData(opts.data!, 'train', splitParams), labels);
      const valSamples = mapToModelLabels(await loadEvaluationData(opts.data!, 'val', splitParams), labels);
      // The base's identity: the source package plus any one-shot masks applied to it.
      const baseId = sha256(JSON.stringify({ pkg: source.manifestSha256, cut: cut.name, oneShot, sparsity: oneShot.length ? opts.sparsity : 0 })).slice(0, 24);
      const session = await openFeatureSession({ base: { model: base, identity: `pkg-${source.manifest.name}-${cut.name}-${baseId}`, spec }, engine: opts.engine ?? 'auto', cacheRoot: opts.cacheDir, logger });
      let trainSet: FeatureRows;
      let valSet: FeatureRows;
      try {
        const onSkip = (s: { path: string; reason: string }) => logger.warn(`skipped ${s.path}: ${s.reason}`);
        trainSet = (await session.extract(trainSamples, { label: 'features (train)', onSkip })).rows;
        valSet = (await session.extract(valSamples, { label: 'features (validation)', onSkip })).rows;
      } catch (err) {
        await session.dispose();
        throw err;
      }
      sessions.push(session);
      if (trainSet.count === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['training', `no image of ${opts.data} could be decoded`]);
      const stack = stackFromLayers(tailLayers, new Set(scheduled));
      try {
        if (oneShot.length === 0 && valSet.count > 0) accuracyBefore = (await evaluateStack(stack, valSet)).accuracy;
        const batchSize = opts.batchSize ?? 32;
        const totalSteps = epochs * Math.ceil(trainSet.count / batchSize);
        schedule = defaultSchedule(kind, opts.sparsity, totalSteps);
        history = await fineTuneStack(stack, trainSet, valSet, { schedule, epochs, batchSize, lr: opts.lr ?? 1e-4, seed: opts.seed ?? 42, logger });
        if (history.length === 0) updateMasks(stack, opts.sparsity);
        if (valSet.count > 0) accuracyAfter = (await evaluateStack(stack, valSet)).accuracy;
        for (const l of stack) if (l.kind === 'dense') model.getLayer(l.name).setWeights(l.bias ? [l.kernel, l.bias] : [l.kernel]);
      } finally {
        disposeStack(stack);
      }
    }

    const layers = layerReport(model, new Set(targets), new Set(scheduled));
    const prunedLayers = layers.filter((l) => l.pruned);
    const sparsity = prunedLayers.reduce((a, l) => a + l.zeros, 0) / Math.max(1, prunedLayers.reduce((a, l) => a + l.params, 0));
    const artifacts = await modelArtifacts(model);
    const params = { sparsity: opts.sparsity, schedule: kind, epochs, layers: targets, ...(schedule ? { frequency: schedule.frequency, endStep: schedule.endStep, power: schedule.power } : {}) };
    const report = await finishStep(
      {
        source,
        op: 'prune',
        params,
        artifacts,
        architecture: { pruning: { method: 'magnitude', targetSparsity: opts.sparsity, sparsity, layers: Object.fromEntries(prunedLayers.map((l) => [l.layer, l.sparsity])) } },
        metrics: { sparsity },
        accuracyBefore,
        accuracyAfter,
      },
      opts,
    );
    report.after.note = [report.after.note, `sparsity ${(sparsity * 100).toFixed(1)}%`].filter(Boolean).join(' ');
    return { ...report, layers, sparsity, history, schedule };
  } finally {
    for (const s of sessions) await s.dispose();
    model.dispose();
  }
}

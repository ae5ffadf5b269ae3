// `mlctl prune`: TF-MOT-style magnitude pruning. By default the trainable head (the Dense tail but its output layer)
// is pruned, fine-tuned on the backbone features the training run stored, with masks re-selected on a schedule.
// Backbone layers are pruned only when named (one-shot; the head is then fine-tuned on the pruned base's features).
// Pruned weights are exactly zero in the saved model.
import * as tf from '@tensorflow/tfjs';
import { sha256 } from '../artifacts/hash.js';
import { loadTfjsModel, type LoadedPackage } from '../artifacts/package.js';
import type { Manifest } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';
import { pooledRows, type FeatureRows } from '../features/rows.js';
import { openFeatureSession, type FeatureSession } from '../features/session.js';
import { denseTailStart, disposeStack, masked, evaluateStack, fineTuneStack, stackFromLayers, updateMasks, type FineTuneEpoch } from './dense-stack.js';
import { defaultSchedule, magnitudeMask, zeroFraction, type PruningSchedule } from './schedule.js';
import { gateTrainingSet, gateValidationSet } from './measure.js';
import { finishStep, imageSpecOf, modelArtifacts, type StepOptions, type StepReport } from './step.js';

const PRUNABLE = ['Dense', 'Conv2D'];

export interface PruneOptions extends StepOptions {
  sparsity: number;
  schedule?: 'constant' | 'polynomial';
  /** Fine-tuning epochs on the training split (0 = one-shot magnitude pruning, no data needed). */
  epochs?: number;
  /** Layer names to prune (default: the trainable head — the Dense tail's layers but the output layer). */
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
  /** Where the fine-tuning features came from: the training run's store or the package's own, and how many were computed. */
  features?: { store: 'training' | 'package'; identity: string; cached: number; computed: number };
}

/**
 * Which layers get pruned: the named ones, or by default the trainable head — the Dense layers of the model's Dense
 * tail except the output layer. The frozen backbone is pruned only when its layers are named: cutting pretrained
 * convolutions costs far more accuracy than a head fine-tuned with its masks.
 */
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
  const tail = model.layers.slice(denseTailStart(model.layers)).filter((l) => prunable.includes(l));
  return tail.slice(0, -1).map((l) => l.name);
}

/** Lineage steps after which the backbone still holds the weights its training run extracted features with. */
const BACKBONE_KEEPING_OPS = new Set(['encrypt', 'decrypt', 'sign']);

/**
 * The training run's feature store, when this package's backbone is still the one it stored features of: training
 * recorded the store, did not fine-tune the backbone, and every later step left the backbone alone (head-only prunes).
 * Reading it, `prune --layers fc1` computes no feature the training run already has.
 */
export function trainingFeatureStore(m: Manifest): string | undefined {
  const t = (m.training ?? {}) as Record<string, unknown>;
  const a = m.architecture as Record<string, unknown>;
  if (typeof t.featureStore !== 'string' || !t.featureStore) return undefined;
  if (t.fineTune || (Array.isArray(a.trainableBlocks) && a.trainableBlocks.length > 0)) return undefined;
  const made = m.lineage.findIndex((e) => e.op === 'train' || e.op === 'tune');
  const later = made >= 0 ? m.lineage.slice(made + 1) : m.lineage;
  const keeps = (e: Manifest['lineage'][number]) => BACKBONE_KEEPING_OPS.has(e.op) || e.op.startsWith('export') || (e.op === 'prune' && e.params?.backbone === 'unchanged');
  return later.every(keeps) ? t.featureStore : undefined;
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
    if (targets.length === 0) throw new MlctlError('OPTION_CONFLICT', ['no layer to prune: the model\'s trainable head has no Dense layer before its output layer; name the layers to prune with --layers']);
    // The split is resolved and its images found before any weight changes (a folder without validation fails now).
    const validation = await gateValidationSet(source, opts, logger);
    const tailStart = denseTailStart(model.layers);
    const tailLayers = model.layers.slice(tailStart);
    const tailNames = new Set(tailLayers.map((l) => l.name));
    const scheduled = epochs > 0 ? targets.filter((t) => tailNames.has(t)) : [];
    const oneShot = targets.filter((t) => !scheduled.includes(t));
    const backboneTargets = targets.filter((t) => !tailNames.has(t));
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
    if (oneShot.length > 0) logger.info(`pruned ${oneShot.join(', ')} one-shot to ${opts.sparsity}${backboneTargets.length && epochs > 0 ? ' (backbone layers: the head is fine-tuned on the pruned base\'s features to recover)' : ''}`);

    let history: FineTuneEpoch[] = [];
    let schedule: PruningSchedule | undefined;
    let accuracyBefore: number | undefined;
    let accuracyAfter: number | undefined;
    let features: PruneReport['features'];
    // The head is fine-tuned when it is pruned, and after backbone layers were cut (so it adapts to the pruned base).
    if (epochs > 0 && (scheduled.length > 0 || backboneTargets.length > 0)) {
      const cut = model.layers[tailStart - 1];
      if (!cut) throw new MlctlError('UNSUPPORTED_LAYER', [model.layers[0]!.name, model.layers[0]!.getClassName(), 'the Dense tail starts at the input; nothing to extract features from']);
      const featureShape = (cut.outputShape as number[]).slice(1);
      if (featureShape.length !== 1) throw new MlctlError('UNSUPPORTED_LAYER', [tailLayers[0]!.name, 'Dense', `its input has shape [${featureShape.join(', ')}]; fine-tuning on features needs a Flatten or pooling layer before the Dense tail (or use --epochs 0)`]);
      const trainSamples = await gateTrainingSet(validation!, source.manifest.labels);
      const valSamples = validation!.samples;
      const base = featureBase(model, cut, source, oneShot, opts.sparsity);
      logger.debug(`features: store ${base.identity}${base.store ? " (the training run's: only images it has not seen are computed)" : ''}`);
      const session = await openFeatureSession({ base: { model: base.model, identity: base.identity, spec }, engine: opts.engine ?? 'auto', cacheRoot: opts.cacheDir, logger });
      let trainSet: FeatureRows;
      let valSet: FeatureRows;
      try {
        const onSkip = (s: { path: string; reason: string }) => logger.warn(`skipped ${s.path}: ${s.reason}`);
        const t = await session.extract(trainSamples, { label: 'features (train)', onSkip });
        const v = await session.extract(valSamples, { label: 'features (validation)', onSkip });
        features = { store: base.store ? 'training' : 'package', identity: base.identity, cached: t.stats.cached + v.stats.cached, computed: t.stats.computed + v.stats.computed };
        logger.info(`features: ${features.cached} from the ${base.store ? "training run's " : ''}store, ${features.computed} computed`);
        trainSet = base.pool(t.rows);
        valSet = base.pool(v.rows);
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
        history = await fineTuneStack(stack, trainSet, valSet, { schedule, epochs, batchSize, lr: opts.lr ?? 1e-4, seed: validation!.params.seed, logger });
        if (history.length === 0 && scheduled.length > 0) updateMasks(stack, opts.sparsity);
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
    const params = {
      sparsity: opts.sparsity,
      schedule: kind,
      epochs,
      layers: targets,
      // Whether the backbone kept its weights: later prunes read the training run's feature store only then.
      backbone: backboneTargets.length ? 'pruned' : 'unchanged',
      ...(schedule ? { frequency: schedule.frequency, endStep: schedule.endStep, power: schedule.power } : {}),
    };
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
      { ...opts, ...(validation ? { validation } : {}) },
    );
    report.after.note = [report.after.note, `sparsity ${(sparsity * 100).toFixed(1)}%`].filter(Boolean).join(' ');
    return { ...report, layers, sparsity, history, schedule, ...(features ? { features } : {}) };
  } finally {
    for (const s of sessions) await s.dispose();
    model.dispose();
  }
}

interface FeatureBase {
  model: tf.LayersModel;
  identity: string;
  /** True when the identity is the training run's store. */
  store: boolean;
  /** What turns a stored row into the Dense tail's input (the head's Flatten / global average pooling). */
  pool: (rows: FeatureRows) => FeatureRows;
}

/**
 * The frozen part whose features the Dense tail is fine-tuned on. With the backbone as training left it, that is the
 * backbone itself under the training run's store identity (its rows pooled as the head pools them); otherwise the
 * package's own cut, under an identity naming the package and the masks applied to it.
 */
function featureBase(model: tf.LayersModel, cut: tf.layers.Layer, source: LoadedPackage, oneShot: string[], sparsity: number): FeatureBase {
  const store = oneShot.length === 0 ? trainingFeatureStore(source.manifest) : undefined;
  const pooling = cut.getClassName();
  const backboneOut = cut.input as tf.SymbolicTensor;
  const stored = (source.manifest.architecture as { featureShape?: number[] }).featureShape;
  const shape = Array.isArray(backboneOut?.shape) ? (backboneOut.shape.slice(1) as number[]) : [];
  if (store && (pooling === 'Flatten' || pooling === 'GlobalAveragePooling2D') && shape.length === 3 && JSON.stringify(shape) === JSON.stringify(stored)) {
    return {
      model: tf.model({ inputs: model.inputs, outputs: backboneOut }),
      identity: store,
      store: true,
      pool: (rows) => (pooling === 'GlobalAveragePooling2D' ? pooledRows(rows, shape) : rows),
    };
  }
  const baseId = sha256(JSON.stringify({ pkg: source.manifestSha256, cut: cut.name, oneShot, sparsity: oneShot.length ? sparsity : 0 })).slice(0, 24);
  return { model: tf.model({ inputs: model.inputs, outputs: cut.output as tf.SymbolicTensor }), identity: `pkg-${source.manifest.name}-${cut.name}-${baseId}`, store: false, pool: (rows) => rows };
}

// Train step 7: the package manifest — architecture (backbone, weights, head, trainable blocks, parameter counts),
// the training parameters and the metrics; the backbone's own preprocessing is the package's input spec.
import type * as tf from '@tensorflow/tfjs';
import type { ManifestDraft } from '../../artifacts/manifest.js';
import type { FeatureSession } from '../../features/session.js';
import { headInputSize, headParamCount, type HeadSpec } from '../../models/head.js';
import type { FineTuneResult } from '../finetune.js';
import { lrFindRecord, type LrFindResult } from '../lr-find.js';
import type { PhasePlan } from '../types.js';
import type { EpochMetrics } from '../../heads/head.js';
import { countBy } from '../../data/imagefolder.js';
import type { PreparedRun } from './prepare.js';

export function trainManifest(
  run: PreparedRun,
  o: { session: FeatureSession; headSpec: HeadSpec; ft?: FineTuneResult; history: EpochMetrics[]; metrics: Record<string, unknown>; classWeights?: number[]; backend: string; lrFind?: readonly LrFindResult[] },
): ManifestDraft {
  const { opts, backbone, classes, splits, folder } = run;
  const { head, fineTune } = run.phases;
  const schedule = (p: PhasePlan) => ({ kind: p.schedule, warmupEpochs: p.warmupEpochs, lrFrom: p.lrFrom });
  const { session, headSpec, ft } = o;
  const source = session.weights!;
  const base: tf.LayersModel = session.base;
  const headParams = headParamCount(headSpec, headInputSize(session.featureShape, opts.head));
  const baseParams = base.countParams();
  const trainableBlocks = opts.fineTune > 0 ? backbone.blockNames(run.backboneOptions).slice(-opts.fineTune) : [];
  const variant = backbone.variant(run.backboneOptions);
  return {
    task: 'image-classification',
    labels: classes,
    input: session.spec,
    output: { name: 'predictions', kind: 'probabilities', size: classes.length },
    architecture: {
      type: `${backbone.id}-transfer`,
      backbone: backbone.id,
      ...(variant ? { variant } : {}),
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      includeTop: false,
      featureShape: session.featureShape,
      weights: { source: source.source, kind: source.kind, sha256: source.kind === 'none' ? null : source.sha256, ...(source.md5 ? { md5: source.md5 } : {}), ...(source.kind === 'none' ? { init: 'keras-default', seed: opts.seed } : {}) },
      head: { pooling: opts.head, dense: [headSpec.units, classes.length], activation: 'relu', dropout: opts.dropout, output: 'softmax' },
      trainableBlocks,
      params: { total: baseParams + headParams, backbone: baseParams, head: headParams, trainable: headParams + (ft?.trainableParams ?? 0) },
    },
    formats: { tfjs: 'model.json' },
    training: {
      data: folder.root,
      layout: folder.layout,
      samples: { train: splits.train.length, val: splits.val.length, test: splits.test.length },
      // Where each split came from: its own folder, carved from the class folders or train/ (validationSplit, testSplit, seed), or none.
      splitSources: run.plan.source,
      classCounts: Object.fromEntries(classes.map((c, i) => [c, countBy(splits.train, classes.length)[i]])),
      epochs: head.epochs,
      batchSize: opts.batchSize,
      optimizer: { name: 'adam', lr: head.lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
      lrSchedule: schedule(head),
      loss: 'categorical_crossentropy',
      seed: opts.seed,
      validationSplit: opts.validationSplit,
      testSplit: opts.testSplit,
      patience: opts.patience ?? null,
      classWeights: o.classWeights ?? null,
      augment: run.augment,
      fineTune: fineTune ? { blocks: opts.fineTune, lr: fineTune.lr, epochs: fineTune.epochs, epochsRun: ft?.history.length ?? 0, lrSchedule: schedule(fineTune) } : null,
      ...(o.lrFind?.length ? { lrFind: lrFindRecord(o.lrFind) } : {}),
      backend: o.backend,
      engine: session.engine.name,
      featureStore: session.storeDir ? session.identity : null,
    },
    metrics: o.metrics,
    lineage: [{ op: 'train', at: new Date().toISOString(), tool: 'mlctl', params: { data: folder.root, backbone: backbone.id, weights: source.source, epochs: o.history.length, seed: opts.seed } }],
  };
}

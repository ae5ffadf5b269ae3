// Detection step: the package manifest — task "detection", the labels, the backbone's input spec, the output map and
// the `detection` section that says how it becomes boxes (artifacts/manifest.ts DetectionSection, docs/tasks.md),
// the architecture, training parameters, the metrics with the split they were measured on, and lineage.
import type { CenterNetSection, ManifestDraft } from '../../artifacts/manifest.js';
import { detectionStats } from '../../data/detection/index.js';
import type { FeatureSession } from '../../features/session.js';
import { CENTERNET_LAYERS, HEATMAP_PRIOR_BIAS, outputChannels, outputGrid, outputStride } from '../../models/detection/centernet.js';
import { LOSS_WEIGHTS } from '../../models/detection/loss.js';
import { DETECTION_AUGMENT_RANGES } from './augment.js';
import { lrFindRecord, type LrFindResult } from '../lr-find.js';
import type { PhasePlan } from '../types.js';
import type { DetectionFineTuneResult } from './finetune.js';
import type { DetectionRun } from './prepare.js';
import type { DetectorScore } from './score.js';
import type { DetectionEpochMetrics } from './types.js';

/** The detection section of a run's package. */
export function detectionSection(run: DetectionRun, session: FeatureSession): CenterNetSection {
  return {
    head: 'centernet',
    classes: run.labels.length,
    grid: outputGrid(session.featureShape, run.head),
    stride: outputStride(run.head),
    maxDetections: run.opts.maxDetections,
    categoryIds: run.dataset.categoryIds,
    resize: session.spec.preprocessing.resize,
  };
}

/** COCO's -1 ("no ground truth of that kind in the split") is written as null. */
const coco = (v: number) => (v < 0 ? null : v);

/** A split's figures as the manifest records them. */
export function splitMetrics(s: DetectorScore): Record<string, unknown> {
  const stats = Object.fromEntries(Object.entries(s.coco).map(([k, v]) => [k === 'AP' ? 'mAP' : k, coco(v)]));
  return {
    images: s.images,
    ...stats,
    loss: s.loss,
    heatmapLoss: s.heatmapLoss,
    sizeLoss: s.sizeLoss,
    offsetLoss: s.offsetLoss,
    perClass: Object.fromEntries(s.perClass.map((c) => [c.label, { categoryId: c.categoryId, AP: coco(c.AP), AP50: coco(c.AP50), AP75: coco(c.AP75) }])),
  };
}

export function detectionManifest(
  run: DetectionRun,
  o: {
    session: FeatureSession;
    headParams: number;
    ft?: DetectionFineTuneResult;
    history: DetectionEpochMetrics[];
    metrics: Record<string, unknown>;
    backend: string;
    lrFind?: readonly LrFindResult[];
  },
): ManifestDraft {
  const { opts, backbone, labels, splits, dataset } = run;
  const { session, ft } = o;
  const { head, fineTune } = run.phases;
  const schedule = (p: PhasePlan) => ({ kind: p.schedule, warmupEpochs: p.warmupEpochs, lrFrom: p.lrFrom });
  const source = session.weights!;
  const section = detectionSection(run, session);
  const [gh, gw] = section.grid;
  const baseParams = session.base.countParams();
  const trainableBlocks = opts.fineTune > 0 ? backbone.blockNames(run.backboneOptions).slice(-opts.fineTune) : [];
  const variant = backbone.variant(run.backboneOptions);
  const boxes = (s: typeof splits.train) => detectionStats(s, labels).boxes;
  return {
    task: 'detection',
    labels,
    input: session.spec,
    output: { name: CENTERNET_LAYERS.output, kind: 'detection', size: gh * gw * outputChannels(run.head) },
    detection: section,
    architecture: {
      type: `${backbone.id}-centernet`,
      backbone: backbone.id,
      ...(variant ? { variant } : {}),
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      includeTop: false,
      featureShape: session.featureShape,
      weights: { source: source.source, kind: source.kind, sha256: source.kind === 'none' ? null : source.sha256, ...(source.md5 ? { md5: source.md5 } : {}), ...(source.kind === 'none' ? { init: 'keras-default', seed: opts.seed } : {}) },
      head: {
        type: 'centernet',
        reference: 'Zhou, Wang, Krähenbühl 2019, Objects as Points (arXiv:1904.07850)',
        channels: run.head.channels,
        upsample: run.head.upsample,
        stride: section.stride,
        outputs: { heatmap: [0, labels.length], size: [labels.length, labels.length + 2], offset: [labels.length + 2, labels.length + 4] },
        heatmapPriorBias: HEATMAP_PRIOR_BIAS,
        decoding: '3x3 max-pool peaks, top K (no NMS)',
      },
      trainableBlocks,
      params: { total: baseParams + o.headParams, backbone: baseParams, head: o.headParams, trainable: ft ? ft.trainableParams : o.headParams },
    },
    formats: { tfjs: 'model.json' },
    training: {
      data: dataset.root,
      format: dataset.format,
      samples: { train: splits.train.length, val: splits.val.length, test: splits.test.length },
      // Where each split came from: the dataset's own split, carved from its train pictures (validationSplit, testSplit, seed), or none.
      splitSources: run.splitSources,
      boxes: { train: boxes(splits.train), val: boxes(splits.val), test: boxes(splits.test) },
      invalidAnnotationsSkipped: opts.skipInvalid ? dataset.issues.length : 0,
      epochs: head.epochs,
      batchSize: opts.batchSize,
      optimizer: { name: 'adam', lr: head.lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
      lrSchedule: schedule(head),
      loss: { name: 'centernet', heatmap: 'penalty-reduced focal (alpha 2, beta 4)', size: 'L1', offset: 'L1', weights: LOSS_WEIGHTS },
      seed: opts.seed,
      validationSplit: opts.validationSplit,
      testSplit: opts.testSplit,
      patience: opts.patience ?? null,
      monitor: 'val mAP (ties: val loss)',
      augment: run.augment,
      ...(run.augment.length ? { augmentRanges: DETECTION_AUGMENT_RANGES } : {}),
      fineTune: fineTune ? { blocks: opts.fineTune, lr: fineTune.lr, epochs: fineTune.epochs, epochsRun: ft?.history.length ?? 0, lrSchedule: schedule(fineTune) } : null,
      ...(o.lrFind?.length ? { lrFind: lrFindRecord(o.lrFind) } : {}),
      backend: o.backend,
      engine: session.engine.name,
      featureStore: session.storeDir ? session.identity : null,
    },
    metrics: o.metrics,
    lineage: [{ op: 'train', at: new Date().toISOString(), tool: 'mlctl', params: { task: 'detection', data: dataset.root, backbone: backbone.id, weights: source.source, epochs: o.history.length, seed: opts.seed } }],
  };
}

// How a detection run's epochs show: history files (train/history.ts with this layout: the loss and its heatmap,
// size and offset parts; validation mAP and AP50, the monitored one), TensorBoard scalars and the epoch line.
import type { HParamValue } from '../../tensorboard/writer.js';
import type { HistoryLayout } from '../history.js';
import type { BoardView } from '../tensorboard.js';
import type { DetectionRun } from './prepare.js';
import type { DetectionEpochMetrics, DetectionTrainOptions } from './types.js';

const num = (v: unknown, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

export const DETECTION_HISTORY: HistoryLayout<DetectionEpochMetrics> = {
  columns: [
    { key: 'loss', csv: 'loss' },
    { key: 'heatmapLoss', csv: 'heatmap_loss' },
    { key: 'sizeLoss', csv: 'size_loss' },
    { key: 'offsetLoss', csv: 'offset_loss' },
    { key: 'valLoss', csv: 'val_loss' },
    { key: 'valHeatmapLoss', csv: 'val_heatmap_loss' },
    { key: 'valSizeLoss', csv: 'val_size_loss' },
    { key: 'valOffsetLoss', csv: 'val_offset_loss' },
    { key: 'valMAP', csv: 'val_mAP' },
    { key: 'valAP50', csv: 'val_AP50' },
    { key: 'valAP75', csv: 'val_AP75' },
    { key: 'lr', csv: 'lr', format: 'lr' },
    { key: 'seconds', csv: 'seconds', format: 'seconds' },
  ],
  charts: [
    {
      title: 'Loss (CenterNet: heatmap focal + 0.1 size L1 + offset L1)',
      yLabel: 'loss',
      series: [
        { name: 'loss (train)', value: (h) => h.loss },
        { name: 'val_loss', value: (h) => h.valLoss },
        { name: 'heatmap (train)', value: (h) => h.heatmapLoss },
        { name: 'val heatmap', value: (h) => h.valHeatmapLoss },
      ],
    },
    { title: 'Validation COCO AP', yLabel: 'AP', yRange: [0, 1], series: [{ name: 'val mAP@[.5:.95]', value: (h) => h.valMAP }, { name: 'val AP50', value: (h) => h.valAP50 }] },
    { title: 'Box regression (L1, grid cells)', yLabel: 'L1', series: [{ name: 'size (train)', value: (h) => h.sizeLoss }, { name: 'val size', value: (h) => h.valSizeLoss }, { name: 'offset (train)', value: (h) => h.offsetLoss }, { name: 'val offset', value: (h) => h.valOffsetLoss }] },
  ],
  // As the trainer chooses (head.ts betterEpoch): highest val mAP, ties to the lower val loss (a far smaller term than
  // any mAP step); without validation, the lowest train loss.
  monitor: { value: (h) => (h.valMAP !== undefined ? h.valMAP - (h.valLoss ?? 0) * 1e-9 : -h.loss), mode: 'max' },
  headline: (m) => {
    const v = (m.validation ?? {}) as Record<string, unknown>;
    return ['val mAP', num(v.mAP), `AP50 ${num(v.AP50)} · AP75 ${num(v.AP75)}`];
  },
  test: (m) => {
    const t = m.test as Record<string, unknown> | undefined;
    return t ? ['test mAP', num(t.mAP), `AP50 ${num(t.AP50)}`] : undefined;
  },
};

export function detectionHparams(o: DetectionTrainOptions, phases: DetectionRun['phases']): Record<string, HParamValue> {
  const hp: Record<string, HParamValue> = {
    task: 'detection',
    backbone: o.backbone ?? 'vgg16',
    epochs: o.epochs,
    batch_size: o.batchSize,
    image_size: o.imageSize,
    lr: phases.head.lr,
    head_channels: o.headChannels,
    upsample: o.upsample,
    max_detections: o.maxDetections,
    fine_tune: o.fineTune,
    augment: o.augment.join(',') || 'none',
    patience: o.patience ?? 0,
    seed: o.seed,
    validation_split: o.validationSplit,
    test_split: o.testSplit,
    weights: o.weights,
  };
  if (phases.fineTune) {
    hp.fine_tune_lr = phases.fineTune.lr;
    hp.fine_tune_epochs = phases.fineTune.epochs;
  }
  if (o.lrSchedule) hp.lr_schedule = o.lrSchedule;
  if (o.warmupEpochs !== undefined) hp.warmup_epochs = o.warmupEpochs;
  if (o.alpha !== undefined) hp.alpha = o.alpha;
  return hp;
}

/** TensorBoard: epoch_loss and its parts on both runs, epoch_mAP/epoch_AP50 on validation. */
export function detectionBoardView(run: Pick<DetectionRun, 'opts' | 'phases'>): BoardView<DetectionEpochMetrics> {
  return {
    hparams: detectionHparams(run.opts, run.phases),
    train: (m) => ({ epoch_loss: m.loss, epoch_heatmap_loss: m.heatmapLoss, epoch_size_loss: m.sizeLoss, epoch_offset_loss: m.offsetLoss, epoch_learning_rate: m.lr }),
    validation: (m) =>
      m.valLoss === undefined ? undefined : { epoch_loss: m.valLoss, epoch_heatmap_loss: m.valHeatmapLoss, epoch_size_loss: m.valSizeLoss, epoch_offset_loss: m.valOffsetLoss, epoch_mAP: m.valMAP, epoch_AP50: m.valAP50 },
  };
}

/** One line per epoch (the log in CI, the progress bar's last word on a TTY). */
export function detectionEpochLine(m: DetectionEpochMetrics): string {
  const parts = `(heatmap ${m.heatmapLoss.toFixed(3)} size ${m.sizeLoss.toFixed(3)} offset ${m.offsetLoss.toFixed(3)})`;
  const val = m.valLoss !== undefined ? ` val_loss ${m.valLoss.toFixed(4)} val_mAP ${num(m.valMAP)} AP50 ${num(m.valAP50)}` : '';
  return `loss ${m.loss.toFixed(4)} ${parts}${val} (${m.seconds.toFixed(1)}s)`;
}

// `train --tensorboard DIR`: the run as TensorBoard sees a Keras fit() with the TensorBoard and HParams callbacks —
// DIR/train and DIR/validation hold epoch_loss and epoch_accuracy (so one chart overlays both), train also
// epoch_learning_rate; DIR itself holds the HParams session (start and end) and the hyperparameters as Markdown.
// Steps are history.csv's epoch numbers, continuing through the fine-tune phase; each epoch is flushed as it ends.
// A BoardView says which scalars an epoch has (classification: loss and accuracy; detection: loss parts and mAP).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { EventFileWriter, type HParamValue } from '../tensorboard/writer.js';
import type { EpochMetrics } from '../heads/head.js';
import { DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_LR } from './steps/prepare.js';
import type { TrainOptions } from './types.js';

export interface TrainBoard<H = EpochMetrics> {
  /** An epoch finished (`step`: its 1-based position over both phases). */
  epoch(m: H, step: number): Promise<void>;
  /** Write the session end (SUCCESS/FAILURE) and close the files; undefined status (interrupted) leaves it open-ended. */
  close(status?: 'SUCCESS' | 'FAILURE', modelUri?: string): Promise<void>;
  dir: string;
}

/** The hyperparameters a run is compared by (HParams dashboard columns). */
export function trainHparams(o: TrainOptions): Record<string, HParamValue> {
  const hp: Record<string, HParamValue> = {
    backbone: o.backbone ?? 'vgg16',
    epochs: o.epochs,
    batch_size: o.batchSize,
    image_size: o.imageSize,
    lr: o.lr ?? (o.findLr ? 'lr-find' : DEFAULT_LR),
    head: o.head,
    dropout: o.dropout,
    fine_tune: o.fineTune,
    augment: o.augment.join(',') || 'none',
    patience: o.patience ?? 0,
    seed: o.seed,
    validation_split: o.validationSplit,
    test_split: o.testSplit,
    class_weights: o.classWeights,
    weights: o.weights,
  };
  if (o.fineTune > 0) {
    hp.fine_tune_lr = o.fineTuneLr ?? (o.findLr ? 'lr-find' : (o.lr ?? DEFAULT_LR) / 10);
    hp.fine_tune_epochs = o.fineTuneEpochs ?? DEFAULT_FINE_TUNE_EPOCHS;
  }
  if (o.lrSchedule) hp.lr_schedule = o.lrSchedule;
  if (o.warmupEpochs !== undefined) hp.warmup_epochs = o.warmupEpochs;
  if (o.alpha !== undefined) hp.alpha = o.alpha;
  return hp;
}

/** As the HParams plugin's Python API derives it: sha256 of the hyperparameters as compact, key-sorted JSON. */
export function sessionGroupName(hp: Record<string, HParamValue>): string {
  const sorted = Object.fromEntries(Object.keys(hp).sort().map((k) => [k, hp[k]]));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

function markdownTable(hp: Record<string, HParamValue>): string {
  return ['| hyperparameter | value |', '| --- | --- |', ...Object.entries(hp).map(([k, v]) => `| ${k} | ${String(v).replace(/\|/g, '\\|')} |`)].join('\n');
}

/** What a task's epochs show on the board: its hyperparameters and the scalars of the train and validation runs. */
export interface BoardView<H extends { phase: 'head' | 'fine-tune'; lr: number }> {
  hparams: Record<string, HParamValue>;
  train(m: H): Record<string, number | undefined>;
  /** undefined: no validation figures this epoch. */
  validation(m: H): Record<string, number | undefined> | undefined;
}

/** The classifier's board: epoch_loss and epoch_accuracy on both runs (as Keras's TensorBoard callback names them). */
export function classificationView(opts: TrainOptions): BoardView<EpochMetrics> {
  return {
    hparams: trainHparams(opts),
    train: (m) => ({ epoch_loss: m.loss, epoch_accuracy: m.accuracy, epoch_learning_rate: m.lr }),
    validation: (m) => (m.valLoss !== undefined || m.valAccuracy !== undefined ? { epoch_loss: m.valLoss, epoch_accuracy: m.valAccuracy } : undefined),
  };
}

export async function openTrainBoard(dir: string, opts: TrainOptions): Promise<TrainBoard>;
export async function openTrainBoard<H extends { phase: 'head' | 'fine-tune'; lr: number }>(dir: string, opts: Pick<TrainOptions, 'name' | 'data'>, view: BoardView<H>): Promise<TrainBoard<H>>;
export async function openTrainBoard<H extends { phase: 'head' | 'fine-tune'; lr: number }>(dir: string, opts: Pick<TrainOptions, 'name' | 'data'>, given?: BoardView<H>): Promise<TrainBoard<H>> {
  const view = given ?? (classificationView(opts as TrainOptions) as unknown as BoardView<H>);
  const root = await EventFileWriter.open(dir);
  const train = await EventFileWriter.open(path.join(dir, 'train'));
  let validation: EventFileWriter | undefined;
  const hp = view.hparams;
  root.sessionStart(hp, { groupName: sessionGroupName(hp) });
  root.text('hyperparameters', `${opts.name} — data \`${opts.data}\`\n\n${markdownTable(hp)}`, 0);
  await root.flush();
  let phase: H['phase'] | undefined;
  return {
    dir,
    async epoch(m, step) {
      if (m.phase !== phase) {
        if (phase !== undefined || m.phase === 'fine-tune') root.text('phase', `${m.phase} phase starts at epoch ${step} (lr ${m.lr})`, step);
        phase = m.phase;
        await root.flush();
      }
      train.scalars(step, view.train(m));
      await train.flush();
      const v = view.validation(m);
      if (v) {
        validation ??= await EventFileWriter.open(path.join(dir, 'validation'));
        validation.scalars(step, v);
        await validation.flush();
      }
    },
    async close(status, modelUri) {
      if (status) root.sessionEnd(status);
      if (modelUri) root.text('package', `saved \`${modelUri}\``, 0);
      await Promise.all([root.close(), train.close(), validation?.close()]);
    },
  };
}

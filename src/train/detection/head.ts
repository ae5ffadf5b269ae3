// Training of the CenterNet head on the frozen backbone's feature maps: TF.js computes the loss (models/detection/
// loss.ts, targets from encodeTargets) and its gradients — on wasm through mlctl's conv filter-gradient kernels
// (train/wasm-grads.ts) — and the parameters take Keras's Adam step in plain arrays (heads/trainer.ts), so a
// checkpoint holds exactly what the next epoch needs. Each epoch ends with the validation split's loss and COCO AP;
// the best epoch (highest val mAP, ties to the lower val loss; without a validation split the lowest train loss) is
// kept, and --patience stops after that many epochs without a better one (Keras's restore_best_weights).
import * as tf from '@tensorflow/tfjs';
import { adamUpdate, newAdamState, type AdamState, type HeadTrainState } from '../../heads/head.js';
import { buildCenterNetHead, outputGrid, type CenterNetSpec } from '../../models/detection/centernet.js';
import { batchTargets, centerNetLoss } from '../../models/detection/loss.js';
import type { TargetBox } from '../../models/detection/targets.js';
import type { Logger } from '../../util/log.js';
import { rangeTestWithProgress, type LrFindResult } from '../lr-find.js';
import type { NamedParams } from '../checkpoint.js';
import { ensureWasmGradients } from '../wasm-grads.js';
import { endlessBatches, type BoxBatch, type DetectionSet } from './inputs.js';
import { scoreDetector, type DetectorScore, type LossParts, type ScoreContext } from './score.js';
import type { DetectionEpochMetrics } from './types.js';

export type DetectionHeadState = HeadTrainState<NamedParams, DetectionEpochMetrics>;

export interface DetectionHeadOptions {
  featureShape: readonly number[];
  spec: CenterNetSpec;
  score: ScoreContext;
  epochs: number;
  batchSize: number;
  lr: number;
  /** The rate of each optimizer step (0-based over the phase, resumed runs included); default: `lr` throughout. */
  lrAt?: (step: number) => number;
  seed: number;
  patience?: number;
  logger?: Logger;
  resume?: DetectionHeadState;
  /** Checked between batches; true stops (the epoch in progress is discarded, the state is the last epoch's). */
  shouldStop?: () => boolean;
  onBatch?: (batch: number, parts: LossParts, seen: number) => void;
  /** After each epoch, with a snapshot of the state the callee may keep (written in the background). */
  onEpochEnd?: (state: DetectionHeadState, m: DetectionEpochMetrics) => Promise<void> | void;
}

export interface DetectionHeadResult {
  /** The head holding the best epoch's weights (the caller disposes it). */
  head: tf.LayersModel;
  history: DetectionEpochMetrics[];
  bestEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  epochsRun: number;
}

/** An epoch is better than the best so far: higher val mAP, ties to the lower val loss; without validation, lower loss. */
export function betterEpoch(m: DetectionEpochMetrics, best: DetectionEpochMetrics | undefined): boolean {
  if (!best) return true;
  if (m.valMAP !== undefined && best.valMAP !== undefined) return m.valMAP > best.valMAP || (m.valMAP === best.valMAP && (m.valLoss ?? Infinity) < (best.valLoss ?? Infinity));
  return m.loss < best.loss;
}

/** The value the checkpoint records as the best epoch's monitor: lower is better. */
export const monitorOf = (m: DetectionEpochMetrics) => (m.valMAP !== undefined ? -m.valMAP : m.loss);

/** The trainable weights of a model, layer by layer, as the variables TF.js trains and their checkpoint names. */
export function trainableWeights(model: tf.LayersModel): Array<{ name: string; variable: tf.Variable }> {
  return model.layers.flatMap((layer) => layer.trainableWeights.map((w, i) => ({ name: `${layer.name}.${i}`, variable: (w as unknown as { read(): tf.Variable }).read() })));
}

/** Copies of the variables' values as named arrays. */
export function namedValues(weights: ReadonlyArray<{ name: string; variable: tf.Variable }>): NamedParams {
  return { tensors: weights.map((w) => ({ name: w.name, shape: [...w.variable.shape], data: Float32Array.from(w.variable.dataSync() as Float32Array) })) };
}

/** Set the variables from named arrays (a checkpoint's, or the best epoch's). */
export function assignNamed(weights: ReadonlyArray<{ name: string; variable: tf.Variable }>, p: NamedParams): void {
  const byName = new Map(p.tensors.map((t) => [t.name, t]));
  for (const w of weights) {
    const t = byName.get(w.name);
    if (!t || t.data.length !== w.variable.size) throw new Error(`the saved detection head has no ${w.name} of ${w.variable.size} values`);
    const v = tf.tensor(t.data, w.variable.shape);
    w.variable.assign(v);
    v.dispose();
  }
}

const copyParams = (p: NamedParams): NamedParams => ({ tensors: p.tensors.map((t) => ({ ...t, data: t.data.slice() })) });

export function epochFromScore(m: DetectionEpochMetrics, s: DetectorScore): void {
  m.valLoss = s.loss;
  m.valHeatmapLoss = s.heatmapLoss;
  m.valSizeLoss = s.sizeLoss;
  m.valOffsetLoss = s.offsetLoss;
  m.valMAP = s.coco.AP;
  m.valAP50 = s.coco.AP50;
  m.valAP75 = s.coco.AP75;
}

/** The head on a split's stored feature maps (the full score: loss parts, COCO figures, per class). */
export function scoreHead(head: tf.LayersModel, set: DetectionSet, featureShape: readonly number[], ctx: ScoreContext, batchSize: number): Promise<DetectorScore> {
  return scoreDetector(set.batches(0, batchSize, false), (b) => tf.tidy(() => head.predict(tf.tensor4d(b.x, [b.n, ...featureShape] as [number, number, number, number])) as tf.Tensor4D), ctx);
}

/** What the CenterNet targets of a batch need: the model input's and output grid's sizes, and the classes. */
export interface CenterNetShape {
  inputSize: [number, number];
  grid: [number, number];
  classes: number;
}

/**
 * One CenterNet training step of any detection trainer (the head, the fine-tune tail, their LR range tests): the loss
 * of `net` on a batch against its boxes, whose gradients on `vars` `apply` uses (an optimizer step) before every
 * tensor made here is released (`x` stays the caller's). Returns the batch's loss and its parts.
 */
export function centerNetStep(net: tf.LayersModel, x: tf.Tensor4D, boxes: TargetBox[][], shape: CenterNetShape, vars: tf.Variable[], apply: (grads: tf.NamedTensorMap) => void): LossParts {
  const t = batchTargets(boxes, shape.inputSize, shape.grid, shape.classes);
  let partsT: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const l = centerNetLoss(net.apply(x, { training: true }) as tf.Tensor4D, t, shape.classes);
    partsT = tf.keep(tf.stack([l.total, l.heatmap, l.size, l.offset]));
    return l.total;
  }, vars);
  try {
    apply(grads);
    const [loss, heatmapLoss, sizeLoss, offsetLoss] = Array.from(partsT!.dataSync());
    return { loss: loss!, heatmapLoss: heatmapLoss!, sizeLoss: sizeLoss!, offsetLoss: offsetLoss! };
  } finally {
    tf.dispose([t.heatmap, t.regression, t.mask, value, partsT!, ...Object.values(grads)]);
  }
}

/** Keras's Adam step (step: 1-based) on the head's plain-array parameters, then into its variables. */
function adamAssign(weights: ReadonlyArray<{ variable: tf.Variable }>, params: NamedParams, optimizer: AdamState, grads: tf.NamedTensorMap, rate: number, step: number): void {
  weights.forEach((w, i) => {
    const data = params.tensors[i]!.data;
    adamUpdate(data, grads[w.variable.name]!.dataSync() as Float32Array, optimizer.m[i]!, optimizer.v[i]!, rate, step);
    const next = tf.tensor(data, w.variable.shape);
    w.variable.assign(next);
    next.dispose();
  });
}

/**
 * The LR range test of the head phase: Adam steps from the seeded initial head (the one the phase then trains from,
 * built again) over the train split's feature maps, the rate growing each step; the test's head is released.
 */
export async function detectionHeadRangeTest(train: DetectionSet, o: Pick<DetectionHeadOptions, 'featureShape' | 'spec' | 'score' | 'batchSize' | 'seed' | 'logger' | 'shouldStop'> & { logger: Logger }): Promise<LrFindResult> {
  o.logger.debug(ensureWasmGradients());
  const head = buildCenterNetHead(o.featureShape, o.spec, o.seed);
  const weights = trainableWeights(head);
  const vars = weights.map((w) => w.variable);
  const params = namedValues(weights);
  const optimizer = newAdamState(params.tensors.map((t) => t.data.length));
  const shape: CenterNetShape = { inputSize: o.score.inputSize, grid: outputGrid(o.featureShape, o.spec), classes: o.spec.classes };
  let step = 0;
  try {
    return await centerNetRangeTest('head', head, train, {
      batchSize: o.batchSize,
      shape,
      vars,
      input: (b) => tf.tensor4d(b.x.subarray(0, b.n * train.dim), [b.n, ...o.featureShape] as [number, number, number, number]),
      update: (grads, lr) => adamAssign(weights, params, optimizer, grads, lr, ++step),
      logger: o.logger,
      shouldStop: o.shouldStop,
    });
  } finally {
    head.dispose();
  }
}

/**
 * The LR range test of any CenterNet trainer: `net` steps over `set`'s batches (endlessly reshuffled), `input` making
 * a batch's input tensor and `update` the optimizer step at the test's rate, which grows each step.
 */
export function centerNetRangeTest(
  phase: LrFindResult['phase'],
  net: tf.LayersModel,
  set: DetectionSet,
  o: { batchSize: number; shape: CenterNetShape; vars: tf.Variable[]; input: (b: BoxBatch) => tf.Tensor4D; update: (grads: tf.NamedTensorMap, lr: number) => void; logger: Logger; shouldStop?: () => boolean },
): Promise<LrFindResult> {
  const next = endlessBatches(set, o.batchSize);
  return rangeTestWithProgress(
    phase,
    async (lr) => {
      const b = await next();
      if (!b) return NaN;
      const x = o.input(b);
      try {
        return centerNetStep(net, x, b.boxes, o.shape, o.vars, (grads) => o.update(grads, lr)).loss;
      } finally {
        x.dispose();
      }
    },
    { logger: o.logger, shouldStop: o.shouldStop },
  );
}

export async function trainDetectionHead(train: DetectionSet, val: DetectionSet | undefined, opts: DetectionHeadOptions): Promise<DetectionHeadResult> {
  const { featureShape, spec, batchSize, lr } = opts;
  const gradients = ensureWasmGradients();
  opts.logger?.debug(gradients);
  const head = buildCenterNetHead(featureShape, spec, opts.seed);
  const weights = trainableWeights(head);
  const vars = weights.map((w) => w.variable);
  const resume = opts.resume;
  if (resume) assignNamed(weights, resume.weights);
  const params = resume ? copyParams(resume.weights) : namedValues(weights);
  const optimizer = resume?.optimizer.m.length ? { step: resume.optimizer.step, m: resume.optimizer.m.map((a) => a.slice()), v: resume.optimizer.v.map((a) => a.slice()) } : newAdamState(params.tensors.map((t) => t.data.length));
  const grid = outputGrid(featureShape, spec);
  const inputSize = opts.score.inputSize;
  const classes = spec.classes;
  const shape = [0, ...featureShape] as [number, number, number, number];
  let step = optimizer.step;
  const history = [...(resume?.history ?? [])];
  let best: DetectionHeadState['best'] = resume ? { ...resume.best } : { weights: params, epoch: 0, monitor: Infinity };
  let wait = resume?.wait ?? 0;
  let epoch = resume?.epoch ?? 0;
  let stoppedEarly = false;
  let interrupted = false;
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const sums = { loss: 0, heatmapLoss: 0, sizeLoss: 0, offsetLoss: 0 };
      let seen = 0;
      let b = 0;
      let rate = opts.lrAt ? opts.lrAt(step) : lr;
      for await (const batch of train.batches(e, batchSize, true)) {
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        shape[0] = batch.n;
        const x = tf.tensor4d(batch.x.subarray(0, batch.n * train.dim), shape);
        const parts = centerNetStep(head, x, batch.boxes, { inputSize, grid, classes }, vars, (grads) => {
          rate = opts.lrAt ? opts.lrAt(step) : lr;
          adamAssign(weights, params, optimizer, grads, rate, ++step);
        });
        x.dispose();
        const { loss, heatmapLoss: hm, sizeLoss: size, offsetLoss: off } = parts;
        sums.loss += loss * batch.n;
        sums.heatmapLoss += hm * batch.n;
        sums.sizeLoss += size * batch.n;
        sums.offsetLoss += off * batch.n;
        seen += batch.n;
        opts.onBatch?.(++b, { loss: sums.loss / seen, heatmapLoss: sums.heatmapLoss / seen, sizeLoss: sums.sizeLoss / seen, offsetLoss: sums.offsetLoss / seen }, seen);
        // Let signal handlers and progress output run between steps.
        await new Promise((r) => setImmediate(r));
      }
      if (interrupted) break;
      const n = Math.max(seen, 1);
      const m: DetectionEpochMetrics = { epoch: e, phase: 'head', loss: sums.loss / n, heatmapLoss: sums.heatmapLoss / n, sizeLoss: sums.sizeLoss / n, offsetLoss: sums.offsetLoss / n, lr: rate, seconds: 0 };
      if (val && val.count > 0) epochFromScore(m, await scoreHead(head, val, featureShape, opts.score, batchSize));
      m.seconds = (performance.now() - t0) / 1000;
      history.push(m);
      epoch = e;
      const snapshot = copyParams(params);
      if (betterEpoch(m, best.epoch > 0 ? history[best.epoch - 1] : undefined)) {
        best = { weights: snapshot, epoch: e, monitor: monitorOf(m) };
        wait = 0;
      } else {
        wait++;
      }
      await opts.onEpochEnd?.({ epoch: e, weights: snapshot, best, wait, history: [...history], optimizer: { step, m: optimizer.m.map((a) => a.slice()), v: optimizer.v.map((a) => a.slice()) } }, m);
      if (opts.patience !== undefined && opts.patience > 0 && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    if (best.epoch > 0) assignNamed(weights, best.weights);
    return { head, history, bestEpoch: best.epoch, stoppedEarly, interrupted, epochsRun: epoch };
  } catch (err) {
    head.dispose();
    throw err;
  }
}

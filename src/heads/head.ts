// Training of the Dense head on cached features, Keras semantics: Dense(relu) → [Dropout] → Dense(softmax), Adam
// (Keras defaults), categorical cross-entropy with optional class weights, accuracy, early stopping that restores the
// best weights. The epoch loop (shuffle, dropout masks, batches, callbacks, resume) is written once here; the
// arithmetic of a step runs in a HeadTrainer chosen by --engine: ONNX Runtime (onnx.ts) or TF.js (tfjs.ts).
import * as tf from '@tensorflow/tfjs';
import { MlctlError } from '../errors.js';
import type { HeadSpec, HeadWeights } from '../models/head.js';
import type { FeatureRows } from '../features/rows.js';
import type { EngineChoice } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { alea, createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { evaluateLogits, newAdamState, type AdamState, type HeadBatch, type HeadParams, type HeadTrainer, type HeadTrainerInit } from './trainer.js';

export { adamStepSize, adamUpdate, evaluateLogits, KERAS_ADAM, newAdamState, transposeMatrix } from './trainer.js';
export type { AdamState, HeadBatch, HeadParams, HeadTrainer, HeadTrainerInit } from './trainer.js';

export interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
  lr: number;
  phase: 'head' | 'fine-tune';
}

/**
 * Everything needed to continue training exactly where an epoch ended (checkpoints, --resume). `P` is how the weights
 * are held (the Dense head's HeadParams; a detection head's named arrays), `H` what an epoch records.
 */
export interface HeadTrainState<P = HeadParams, H = EpochMetrics> {
  epoch: number;
  weights: P;
  /** monitor: lower is better (val_loss; a detection head records −val mAP). */
  best: { weights: P; epoch: number; monitor: number };
  /** Epochs since the monitored metric last improved. */
  wait: number;
  history: H[];
  optimizer: AdamState;
}

export interface TrainHeadOptions {
  spec: HeadSpec;
  epochs: number;
  batchSize: number;
  lr: number;
  /** The rate of each step (0-based over the phase, resumed runs included); default: `lr` throughout. */
  lrAt?: (step: number) => number;
  seed: number;
  /** Which engine does the arithmetic (--engine): auto = ONNX Runtime when it loads, else TF.js. */
  engine?: EngineChoice;
  /** Worker threads for the ONNX trainer's fc1 shards (default: one per core for large heads, none for small). */
  threads?: number;
  logger?: Logger;
  /** Stop after this many epochs without improvement of the monitored metric (val_loss, else loss). */
  patience?: number;
  /** Per-class loss weights (index = label). */
  classWeights?: number[];
  /** Continue from a checkpoint. */
  resume?: HeadTrainState;
  /** Called after each epoch with a snapshot of the state (the callee may keep it, e.g. to write it in the background). */
  onEpochEnd?: (state: HeadTrainState, metrics: EpochMetrics) => Promise<void> | void;
  /** Called after each batch (progress). */
  onBatch?: (batch: number, batches: number, loss: number, accuracy: number) => void;
  /** Checked between batches; true stops training (the current epoch is discarded, state is the last epoch's). */
  shouldStop?: () => boolean;
  /** Fresh training rows for each epoch (augmentation, computed as they are read); `train` then only gives the width. */
  epochRows?: (epoch: number) => FeatureRows;
  /**
   * Write later snapshots into the fc1-sized arrays of earlier ones instead of fresh memory. The arrays of a state
   * given to onEpochEnd then stay unchanged only until the next onEpochEnd call has returned (a background writer
   * that finishes the previous write before returning, as train/checkpoint.ts's does, is within that); the best
   * weights are kept while they are the best.
   */
  reuseSnapshots?: boolean;
}

export interface TrainHeadResult {
  /** Best weights (restored as Keras's restore_best_weights does). Caller disposes. */
  weights: HeadWeights;
  history: EpochMetrics[];
  bestEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  epochsRun: number;
  /** The trainer that ran, e.g. "onnxruntime-node 1.30 (2 worker threads)". */
  engine?: string;
}

/** Keras's default Dense initialisation: glorot-uniform kernel, zero bias. Seeded for --seed reproducibility. */
export function initHeadWeights(spec: HeadSpec, inputSize: number, seed: number): HeadWeights {
  return tf.tidy(() => ({
    w1: tf.initializers.glorotUniform({ seed: deriveSeed(seed, 'fc1') }).apply([inputSize, spec.units]) as tf.Tensor2D,
    b1: tf.zeros([spec.units]) as tf.Tensor1D,
    w2: tf.initializers.glorotUniform({ seed: deriveSeed(seed, 'predictions') }).apply([spec.units, spec.classes]) as tf.Tensor2D,
    b2: tf.zeros([spec.classes]) as tf.Tensor1D,
  }));
}

export function disposeHead(w: HeadWeights | undefined): void {
  if (w) tf.dispose([w.w1, w.b1, w.w2, w.b2]);
}

/** Copies of tensor weights as HeadParams. */
export function headParams(w: HeadWeights): HeadParams {
  const [inputSize, units] = w.w1.shape;
  const copy = (t: tf.Tensor) => Float32Array.from(t.dataSync() as Float32Array);
  return { inputSize, units, classes: w.b2.shape[0], w1: copy(w.w1), b1: copy(w.b1), w2: copy(w.w2), b2: copy(w.b2) };
}

/** Tensors of HeadParams (caller disposes). */
export function headWeights(p: HeadParams): HeadWeights {
  return { w1: tf.tensor2d(p.w1, [p.inputSize, p.units]), b1: tf.tensor1d(p.b1), w2: tf.tensor2d(p.w2, [p.units, p.classes]), b2: tf.tensor1d(p.b2) };
}

/**
 * Keras's glorot_uniform for a [fanIn, fanOut] kernel: exactly what tf.initializers.glorotUniform({ seed }) gives
 * (TF.js's randomUniform over its alea stream), made in place. A Flatten head's 25M-weight kernel otherwise goes
 * through a tensor and two copies out of it, which take longer than drawing the numbers.
 */
export function glorotUniformKernel(fanIn: number, fanOut: number, seed: number): Float32Array {
  const limit = Math.sqrt(3 * (1 / Math.max(1, (fanIn + fanOut) / 2)));
  const [min, range] = [-limit, limit - -limit];
  const next = alea(String(seed));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = min + range * next();
  return out;
}

/** The seeded initial parameters (same values as initHeadWeights). */
export function initHeadParams(spec: HeadSpec, inputSize: number, seed: number): HeadParams {
  return {
    inputSize,
    units: spec.units,
    classes: spec.classes,
    w1: glorotUniformKernel(inputSize, spec.units, deriveSeed(seed, 'fc1')),
    b1: new Float32Array(spec.units),
    w2: glorotUniformKernel(spec.units, spec.classes, deriveSeed(seed, 'predictions')),
    b2: new Float32Array(spec.classes),
  };
}

/** Class weights "balanced" as scikit-learn/Keras users compute them: n / (k * count_c). */
export function balancedClassWeights(labels: Int32Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of labels) counts[l]!++;
  return counts.map((c) => (c > 0 ? labels.length / (classes * c) : 0));
}

/** Loss and accuracy of head weights over feature rows. */
export function evaluateHead(w: HeadWeights, set: FeatureRows, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  return evaluateLogits(set, (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2), batchSize);
}

interface HeadTrainerKind {
  name: string;
  choices: readonly EngineChoice[];
  open(init: HeadTrainerInit): Promise<HeadTrainer>;
}

/** The trainers --engine can pick, in the order `auto` tries them (as the inference engines: ONNX Runtime first). */
const HEAD_TRAINERS: readonly HeadTrainerKind[] = [
  { name: 'onnx', choices: ['auto', 'onnx'], open: async (init) => (await import('./onnx.js')).openOnnxHeadTrainer(init) },
  { name: 'tfjs', choices: ['auto', 'tfjs'], open: async (init) => (await import('./tfjs.js')).openTfjsHeadTrainer(init) },
];

/** The trainer for --engine: a named engine that cannot start is an error; `auto` says what it skipped and goes on. */
export async function openHeadTrainer(choice: EngineChoice, init: HeadTrainerInit, logger?: Logger): Promise<HeadTrainer> {
  const skipped: string[] = [];
  for (const kind of HEAD_TRAINERS.filter((k) => k.choices.includes(choice))) {
    try {
      return await kind.open(init);
    } catch (err) {
      const why = ((err as Error)?.message ?? String(err)).split('\n')[0]!;
      if (choice !== 'auto') throw new MlctlError('ENGINE_UNAVAILABLE', [choice, 'the head trainer', why], { cause: err });
      skipped.push(`${kind.name}: ${why}`);
      logger?.warn(`head training: ${kind.name} unavailable (${why}); trying the next engine`);
    }
  }
  throw new MlctlError('ENGINE_UNAVAILABLE', [choice, 'the head trainer', skipped.join('; ') || `no head trainer offers --engine ${choice}`]);
}

/** Dropout mask of batch (epoch e, batch b): the same for every engine, from (--seed, e, b). */
export function dropoutMask(seed: number, epoch: number, batch: number, n: number, units: number, rate: number, out = new Float32Array(n * units)): Float32Array {
  const rng = createRng(deriveSeed(seed, `dropout-${epoch}-${batch}`));
  const keep = 1 / (1 - rate);
  const mask = out.subarray(0, n * units);
  for (let i = 0; i < mask.length; i++) mask[i] = rng() >= rate ? keep : 0;
  return mask;
}

/** Two alternating batch buffers, so the next batch is read while the trainer works on this one. */
function batchReader(rows: FeatureRows, order: number[], opts: TrainHeadOptions, epoch: number, classWeights: Float32Array | undefined) {
  const { batchSize, spec } = opts;
  const bufs = [0, 1].map(() => ({ x: new Float32Array(batchSize * rows.dim), labels: new Int32Array(batchSize), y: new Float32Array(batchSize * spec.classes), sw: new Float32Array(batchSize), mask: spec.dropout > 0 ? new Float32Array(batchSize * spec.units) : undefined }));
  return async (b: number): Promise<HeadBatch> => {
    const buf = bufs[b % 2]!;
    const from = b * batchSize;
    const to = Math.min(rows.count, from + batchSize);
    const n = to - from;
    const x = await rows.read(order, from, to, buf.x);
    const labels = buf.labels.subarray(0, n);
    const y = buf.y.subarray(0, n * spec.classes);
    y.fill(0);
    const sw = buf.sw.subarray(0, n);
    for (let i = 0; i < n; i++) {
      const l = rows.labels[order[from + i]!]!;
      labels[i] = l;
      y[i * spec.classes + l] = 1;
      sw[i] = (classWeights ? classWeights[l]! : 1) / n;
    }
    const mask = buf.mask ? dropoutMask(opts.seed, epoch, b, n, spec.units, spec.dropout, buf.mask) : undefined;
    return { n, x, labels, y, sw, mask };
  };
}

/**
 * Train the head on features (Flatten rows, or GAP rows for a GAP head). One Adam step per batch; each epoch reshuffles
 * with a seed derived from (--seed, epoch), dropout masks from (--seed, epoch, batch): same seed → same weights.
 */
export async function trainHead(trainSet: FeatureRows, val: FeatureRows | undefined, opts: TrainHeadOptions): Promise<TrainHeadResult> {
  const { spec, batchSize } = opts;
  const dim = trainSet.dim;
  const resume = opts.resume;
  // The seeded initial weights are made when the trainer asks (while its worker threads start), once.
  let made: HeadParams | undefined;
  const params = resume?.weights ?? (() => (made ??= initHeadParams(spec, dim, opts.seed)));
  const sizes = [dim * spec.units, spec.units, spec.units * spec.classes, spec.classes];
  const optimizer = resume?.optimizer?.m.length ? { step: resume.optimizer.step, m: resume.optimizer.m.map((a) => a.slice()), v: resume.optimizer.v.map((a) => a.slice()) } : newAdamState(sizes);
  const trainer = await openHeadTrainer(opts.engine ?? 'auto', { spec, inputSize: dim, params, optimizer, batchSize, threads: opts.threads }, opts.logger);
  opts.logger?.debug(`head training: ${trainer.description}`);
  let step = optimizer.step;
  const history = [...(resume?.history ?? [])];
  let best: HeadTrainState['best'] = resume ? { ...resume.best } : { weights: typeof params === 'function' ? params() : params, epoch: 0, monitor: Infinity };
  // With reuseSnapshots: the fc1-sized arrays handed out at the last epoch end, given back once nothing reads them.
  let held: Float32Array[] = [];
  const handBack = (current: Float32Array[]) => {
    const live = new Set([...current, best.weights.w1]);
    trainer.recycle?.(held.filter((a) => !live.has(a)));
    held = [...live];
  };
  let wait = resume?.wait ?? 0;
  const classWeights = opts.classWeights ? Float32Array.from(opts.classWeights) : undefined;
  let stoppedEarly = false;
  let interrupted = false;
  let epoch = resume?.epoch ?? 0;
  try {
    while (epoch < opts.epochs) {
      const e = epoch + 1;
      const t0 = performance.now();
      const train = opts.epochRows ? opts.epochRows(e) : trainSet;
      const batches = Math.ceil(train.count / batchSize);
      const order = shuffleInPlace(Array.from({ length: train.count }, (_, i) => i), createRng(deriveSeed(opts.seed, `epoch-${e}`)));
      const read = batchReader(train, order, opts, e, classWeights);
      let lossSum = 0;
      let correct = 0;
      let lr = opts.lrAt ? opts.lrAt(step) : opts.lr;
      let next = batches > 0 ? read(0) : undefined;
      for (let b = 0; b < batches; b++) {
        const batch = await next!;
        if (opts.shouldStop?.()) {
          interrupted = true;
          break;
        }
        next = b + 1 < batches ? read(b + 1) : undefined;
        // A read that fails while this step runs is reported when awaited, not as an unhandled rejection.
        next?.catch(() => undefined);
        lr = opts.lrAt ? opts.lrAt(step) : opts.lr;
        const r = await trainer.step(batch, lr, ++step);
        lossSum += r.loss * batch.n;
        correct += r.correct;
        const seen = Math.min(train.count, (b + 1) * batchSize);
        opts.onBatch?.(b + 1, batches, lossSum / seen, correct / seen);
        // Let signal handlers and progress output run between steps.
        await new Promise((res) => setImmediate(res));
      }
      if (interrupted) {
        await next?.catch(() => undefined);
        break;
      }
      const m: EpochMetrics = { epoch: e, loss: lossSum / train.count, accuracy: correct / train.count, seconds: (performance.now() - t0) / 1000, lr, phase: 'head' };
      if (val && val.count > 0) {
        const v = await trainer.evaluate(val);
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
      history.push(m);
      epoch = e;
      const monitor = m.valLoss ?? m.loss;
      const improved = monitor < best.monitor;
      const snap = improved || opts.onEpochEnd ? await trainer.snapshot(Boolean(opts.onEpochEnd)) : undefined;
      if (improved) {
        best = { weights: snap!.params, epoch: e, monitor };
        wait = 0;
      } else {
        wait++;
      }
      if (opts.onEpochEnd) await opts.onEpochEnd({ epoch: e, weights: snap!.params, best, wait, history: [...history], optimizer: { ...snap!.optimizer!, step } }, m);
      if (opts.reuseSnapshots && snap) handBack([snap.params.w1, ...(snap.optimizer ? [snap.optimizer.m[0]!, snap.optimizer.v[0]!] : [])]);
      if (opts.patience !== undefined && opts.patience > 0 && wait >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
    const final = best.epoch > 0 ? best.weights : (await trainer.snapshot(false)).params;
    return { weights: headWeights(final), history, bestEpoch: best.epoch, stoppedEarly, interrupted, epochsRun: epoch, engine: trainer.description };
  } finally {
    await trainer.dispose();
  }
}

/**
 * Steps of the head from its seeded initial weights, one batch each, through shuffled passes over `trainSet` (as many
 * as asked): the LR range test's view of the head phase. Nothing is kept: dispose() drops the trainer.
 */
export async function headSteps(trainSet: FeatureRows, opts: Pick<TrainHeadOptions, 'spec' | 'batchSize' | 'seed' | 'engine' | 'threads' | 'logger' | 'classWeights' | 'epochRows'>): Promise<{ step(lr: number): Promise<number>; dispose(): Promise<void> }> {
  const params = initHeadParams(opts.spec, trainSet.dim, opts.seed);
  const optimizer = newAdamState([params.w1.length, params.b1.length, params.w2.length, params.b2.length]);
  const trainer = await openHeadTrainer(opts.engine ?? 'auto', { spec: opts.spec, inputSize: trainSet.dim, params, optimizer, batchSize: opts.batchSize, threads: opts.threads }, opts.logger);
  const classWeights = opts.classWeights ? Float32Array.from(opts.classWeights) : undefined;
  const full: TrainHeadOptions = { ...opts, epochs: 0, lr: 0 };
  let pass = 0;
  let b = 0;
  let batches = 0;
  let read: ((b: number) => Promise<HeadBatch>) | undefined;
  let step = 0;
  return {
    async step(lr) {
      if (!read || b >= batches) {
        pass++;
        const rows = opts.epochRows ? opts.epochRows(pass) : trainSet;
        batches = Math.ceil(rows.count / opts.batchSize);
        if (batches === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['train', 'no training rows for the LR range test']);
        const order = shuffleInPlace(Array.from({ length: rows.count }, (_, i) => i), createRng(deriveSeed(opts.seed, `lr-find-head-${pass}`)));
        read = batchReader(rows, order, full, 1_000_000 + pass, classWeights);
        b = 0;
      }
      const r = await trainer.step(await read(b++), lr, ++step);
      return r.loss;
    },
    dispose: () => trainer.dispose(),
  };
}

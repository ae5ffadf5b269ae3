// Train step 6: the final model's figures — the best epoch of the phase whose weights are saved, and the test split
// (the head on stored base features while the base stayed frozen, else the full model on images).
import * as tf from '@tensorflow/tfjs';
import { imageBatches } from '../../data/batches.js';
import type { Sample } from '../../data/imagefolder.js';
import { pooledRows } from '../../features/rows.js';
import type { ExtractStats, FeatureSession } from '../../features/session.js';
import { getHeadWeights } from '../../models/head.js';
import type { FineTuneResult, FineTuneSetup } from '../finetune.js';
import { disposeHead, evaluateHead, type EpochMetrics, type TrainHeadResult } from '../../heads/head.js';
import type { PreparedRun } from './prepare.js';

function bestOf(history: EpochMetrics[]): EpochMetrics | undefined {
  let best: EpochMetrics | undefined;
  for (const h of history) {
    const m = h.valLoss ?? h.loss;
    if (!best || m < (best.valLoss ?? best.loss)) best = h;
  }
  return best;
}

async function testSplitOnImages(model: tf.LayersModel, samples: Sample[], session: FeatureSession): Promise<{ loss: number; accuracy: number }> {
  const spec = session.spec;
  let loss = 0;
  let correct = 0;
  let n = 0;
  for await (const b of imageBatches(samples, { spec, batchSize: 16 })) {
    const [l, c] = tf.tidy(() => {
      const p = model.predict(tf.tensor4d(b.x, [b.count, spec.height, spec.width, 3])) as tf.Tensor2D;
      const labels = tf.tensor1d(b.labels, 'int32');
      const y = tf.oneHot(labels, p.shape[1]);
      return [tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))))).dataSync()[0]!, tf.sum(tf.cast(tf.equal(tf.argMax(p, 1), labels), 'float32')).dataSync()[0]!];
    });
    loss += l!;
    correct += c!;
    n += b.count;
  }
  return { loss: n ? loss / n : NaN, accuracy: n ? correct / n : NaN };
}

async function testSplitOnFeatures(model: tf.LayersModel, samples: Sample[], session: FeatureSession, run: PreparedRun): Promise<{ loss: number; accuracy: number; stats: ExtractStats }> {
  const { rows, stats } = await session.extract(samples, { label: 'test features' });
  const w = getHeadWeights(model);
  try {
    return { ...(await evaluateHead(w, run.opts.head === 'gap' ? pooledRows(rows, session.featureShape) : rows)), stats };
  } finally {
    disposeHead(w);
  }
}

export async function finalMetrics(
  run: PreparedRun,
  model: tf.LayersModel,
  session: FeatureSession,
  head: TrainHeadResult,
  ft: FineTuneResult | undefined,
  ftSetup?: FineTuneSetup,
): Promise<{ metrics: Record<string, unknown>; history: EpochMetrics[]; test?: ExtractStats }> {
  const history = [...head.history, ...(ft?.history ?? [])];
  // The saved weights are the best of the last phase that ran (fine-tuning restores its own best epoch).
  const best = ft && ft.history.length ? bestOf(ft.history) : bestOf(history);
  const metrics: Record<string, unknown> = {
    valAccuracy: best?.valAccuracy ?? null,
    valLoss: best?.valLoss ?? null,
    accuracy: best?.accuracy ?? null,
    loss: best?.loss ?? null,
    bestEpoch: best ? history.indexOf(best) + 1 : null,
    epochsRun: history.length,
    stoppedEarly: head.stoppedEarly || Boolean(ft?.stoppedEarly),
  };
  let test: ExtractStats | undefined;
  if (run.splits.test.length) {
    // Fine-tuned: the frozen part through its session (stored like the train split's), the tail in TF.js.
    const r: { loss: number; accuracy: number; stats?: ExtractStats } = ft ? await (ftSetup ? ftSetup.evaluate(run.splits.test, run.classes.length) : testSplitOnImages(model, run.splits.test, session)) : await testSplitOnFeatures(model, run.splits.test, session, run);
    metrics.testAccuracy = r.accuracy;
    metrics.testLoss = r.loss;
    test = r.stats;
  }
  return { metrics, history, test };
}

// Hyperparameter search over the classification head on cached backbone features: random or grid trials of
// learning rate, Dense units, dropout and batch size, each trained with train's head trainer and early stopping.
import type { HeadPooling, HeadSpec, HeadWeights } from '../models/head.js';
import type { FeatureRows } from '../features/rows.js';
import type { EngineChoice } from '../runtime/engine.js';
import { disposeHead, evaluateHead, trainHead } from '../heads/head.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { createRng, deriveSeed, shuffleInPlace, type Rng } from '../util/random.js';

export const SEARCH_PARAMS = ['lr', 'units', 'dropout', 'batch-size'] as const;
export type SearchParam = (typeof SEARCH_PARAMS)[number];

export interface TrialParams {
  lr: number;
  units: number;
  dropout: number;
  batchSize: number;
}

/** Values a grid tries, and how a random trial draws (lr log-uniform, dropout uniform, the rest from the list). */
export const SEARCH_SPACE = {
  lr: { grid: [1e-4, 3e-4, 1e-3, 3e-3], min: 1e-4, max: 3e-3 },
  units: { grid: [128, 256, 512, 1024] },
  dropout: { grid: [0, 0.25, 0.5], min: 0, max: 0.5 },
  'batch-size': { grid: [16, 32, 64] },
} as const;

/** Defaults for parameters left out of --search (train's defaults). */
export const FIXED_DEFAULTS: TrialParams = { lr: 1e-3, units: 1024, dropout: 0, batchSize: 32 };

export function parseSearch(list: string[] | undefined): SearchParam[] {
  const names = list && list.length > 0 ? list : [...SEARCH_PARAMS];
  for (const n of names) if (!(SEARCH_PARAMS as readonly string[]).includes(n)) throw new MlctlError('OPTION_INVALID', [`--search: unknown parameter "${n}" (choose from ${SEARCH_PARAMS.join(', ')})`]);
  return [...new Set(names)] as SearchParam[];
}

const key = (p: SearchParam): keyof TrialParams => (p === 'batch-size' ? 'batchSize' : p);

function pick<T>(rng: Rng, values: readonly T[]): T {
  return values[Math.floor(rng() * values.length)]!;
}

function draw(rng: Rng, p: SearchParam): number {
  switch (p) {
    case 'lr': {
      const { min, max } = SEARCH_SPACE.lr;
      return Number(Math.exp(Math.log(min) + rng() * (Math.log(max) - Math.log(min))).toPrecision(3));
    }
    case 'dropout':
      return Math.round(rng() * SEARCH_SPACE.dropout.max * 100) / 100;
    case 'units':
      return pick(rng, SEARCH_SPACE.units.grid);
    case 'batch-size':
      return pick(rng, SEARCH_SPACE['batch-size'].grid);
  }
}

/**
 * The trials to run. grid: every combination of the searched parameters' grid values in a seeded order, the first
 * `trials` of them; random: `trials` independent draws (duplicates redrawn a few times).
 */
export function generateTrials(strategy: 'random' | 'grid', trials: number, search: SearchParam[], seed: number, fixed: TrialParams = FIXED_DEFAULTS): { trials: TrialParams[]; gridSize?: number } {
  const rng = createRng(deriveSeed(seed, `tune-${strategy}`));
  if (strategy === 'grid') {
    let combos: TrialParams[] = [{ ...fixed }];
    for (const p of search) combos = combos.flatMap((c) => SEARCH_SPACE[p].grid.map((v) => ({ ...c, [key(p)]: v })));
    shuffleInPlace(combos, rng);
    return { trials: combos.slice(0, trials), gridSize: combos.length };
  }
  const seen = new Set<string>();
  const out: TrialParams[] = [];
  for (let i = 0; i < trials; i++) {
    let t: TrialParams = { ...fixed };
    for (let attempt = 0; attempt < 10; attempt++) {
      t = { ...fixed };
      for (const p of search) t[key(p)] = draw(rng, p);
      if (!seen.has(JSON.stringify(t))) break;
    }
    seen.add(JSON.stringify(t));
    out.push(t);
  }
  return { trials: out };
}

export interface TrialResult {
  trial: number;
  params: TrialParams;
  valAccuracy: number;
  valLoss: number;
  trainAccuracy: number;
  epochs: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  seconds: number;
}

export interface TuneOptions {
  classes: number;
  pooling: HeadPooling;
  epochs: number;
  patience: number;
  seed: number;
  logger: Logger;
  /** Engine that trains each trial's head (--engine): ONNX Runtime or TF.js. */
  engine?: EngineChoice;
}

export interface TuneOutcome {
  /** Sorted by validation accuracy (then lower validation loss, then trial order). */
  results: TrialResult[];
  /** Weights of the best trial (caller disposes). */
  bestWeights: HeadWeights;
  bestSpec: HeadSpec;
}

export function rankTrials(results: TrialResult[]): TrialResult[] {
  return [...results].sort((a, b) => b.valAccuracy - a.valAccuracy || a.valLoss - b.valLoss || a.trial - b.trial);
}

/** Train one head per trial on the same features and split; only the best trial's weights are kept. */
export async function runTrials(train: FeatureRows, val: FeatureRows, trials: TrialParams[], opts: TuneOptions): Promise<TuneOutcome> {
  if (val.count === 0) throw new MlctlError('OPTION_CONFLICT', ['tuning needs a validation split: raise --validation-split or add images']);
  const results: TrialResult[] = [];
  let best: { result: TrialResult; weights: HeadWeights; spec: HeadSpec } | undefined;
  for (let i = 0; i < trials.length; i++) {
    const params = trials[i]!;
    const spec: HeadSpec = { pooling: opts.pooling, units: params.units, dropout: params.dropout, classes: opts.classes };
    const t0 = performance.now();
    const run = await trainHead(train, val, { spec, epochs: opts.epochs, batchSize: params.batchSize, lr: params.lr, seed: opts.seed, patience: opts.patience, engine: opts.engine, logger: opts.logger });
    const v = await evaluateHead(run.weights, val);
    const last = run.history.at(-1);
    const result: TrialResult = {
      trial: i + 1,
      params,
      valAccuracy: v.accuracy,
      valLoss: v.loss,
      trainAccuracy: run.history.find((h) => h.epoch === run.bestEpoch)?.accuracy ?? last?.accuracy ?? NaN,
      epochs: run.epochsRun,
      bestEpoch: run.bestEpoch,
      stoppedEarly: run.stoppedEarly,
      seconds: (performance.now() - t0) / 1000,
    };
    results.push(result);
    opts.logger.info(
      `trial ${i + 1}/${trials.length}: lr ${params.lr} units ${params.units} dropout ${params.dropout} batch ${params.batchSize} → val_acc ${v.accuracy.toFixed(4)} val_loss ${v.loss.toFixed(4)} (${run.epochsRun} epochs${run.stoppedEarly ? ', stopped early' : ''})`,
    );
    if (!best || rankTrials([best.result, result])[0] === result) {
      if (best) disposeHead(best.weights);
      best = { result, weights: run.weights, spec };
    } else {
      disposeHead(run.weights);
    }
  }
  if (!best) throw new MlctlError('OPTION_INVALID', ['--trials must be at least 1']);
  return { results: rankTrials(results), bestWeights: best.weights, bestSpec: best.spec };
}

// What every optimize step shares once it has a candidate model: validate it against the source on the same split,
// apply the accuracy gate, save it as a new package version with lineage, and measure both for the before/after table.
import * as tf from '@tensorflow/tfjs';
import type { ImageInputSpec, Manifest, ManifestDraft } from '../artifacts/manifest.js';
import { lineageFrom, savePackage, type LoadedPackage } from '../artifacts/package.js';
import { writeLayersModel } from '../artifacts/tfjs-io.js';
import { MlctlError } from '../errors.js';
import { openEngine, type EngineChoice, type InferenceEngine } from '../runtime/engine.js';
import type { Logger } from '../util/log.js';
import { imageClassification } from '../tasks/classification/index.js';
import { requireTask } from '../tasks/index.js';
import { accuracies, gateValidationSet, latenciesMs, modelSize, type Figures, type GateSplitOptions } from './measure.js';

export interface GateOptions extends GateSplitOptions {
  /** Largest allowed drop in validation accuracy (absolute, 0.01 = one point). */
  maxAccuracyDrop?: number;
  /** The --max-accuracy-drop given, when maxAccuracyDrop is what a pipeline has left of it (for the message). */
  maxAccuracyDropGiven?: number;
  /** Detection models: largest allowed drop in validation mAP@[.50:.95], in points (1 = 0.01 mAP; default 1). */
  maxMapDrop?: number;
}

/** What a gate compares: classifiers' validation accuracy, detectors' COCO mAP (its flag counts mAP points). */
export interface GateMetric {
  name: string;
  flag: string;
  /** Flag units per unit of the metric: 1 for --max-accuracy-drop (0.01 = one point), 100 for --max-map-drop (points). */
  scale: number;
  /** Manifest metrics key of the result's figure. */
  key: 'valAccuracy' | 'valMap';
}

export const ACCURACY_GATE: GateMetric = { name: 'validation accuracy', flag: '--max-accuracy-drop', scale: 1, key: 'valAccuracy' };
export const MAP_GATE: GateMetric = { name: 'validation mAP@[.50:.95]', flag: '--max-map-drop', scale: 100, key: 'valMap' };

/** The gate a package's optimize steps use, and its allowance as a fraction of the metric. */
export function gateFor(pkg: LoadedPackage, opts: GateOptions): { metric: GateMetric; maxDrop: number | undefined; given: number | undefined } {
  if (pkg.manifest.detection) {
    const pts = opts.maxMapDrop ?? 1;
    return { metric: MAP_GATE, maxDrop: pts / 100, given: pts };
  }
  return { metric: ACCURACY_GATE, maxDrop: opts.maxAccuracyDrop, given: opts.maxAccuracyDropGiven };
}

export interface StepOptions extends GateOptions {
  logger: Logger;
  /** Engine for the latency column (accuracy always compares the TF.js models, the artifacts being changed). */
  engine?: EngineChoice;
  /** Latency runs at batch 1 (0 skips the latency column). */
  latencyRuns?: number;
  /** Package name for the result (default: the source's name, as its next version). */
  name?: string;
  /** Artifacts root (tests). */
  root?: string;
}

export interface StepInput {
  source: LoadedPackage;
  op: string;
  params: Record<string, unknown>;
  /** The candidate model as TF.js artifacts (weightSpecs + weightData, possibly quantized). */
  artifacts: tf.io.ModelArtifacts;
  /** Merged into manifest.architecture (e.g. {weightQuantization: …}, {sparsity: …}). */
  architecture?: Record<string, unknown>;
  /** Merged into manifest.metrics. */
  metrics?: Record<string, unknown>;
  /** Accuracies on the same validation split when already known (e.g. from cached features): saves image passes. */
  accuracyBefore?: number;
  accuracyAfter?: number;
}

export interface StepReport {
  package: LoadedPackage;
  status: 'ok' | 'rejected';
  statusReason?: string;
  before: Figures;
  after: Figures;
  /** 3 when the accuracy gate rejected the result, else 0. */
  exitCode: number;
}

/** Artifacts of an in-memory model, float32 as model.save() produces them. */
export async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  const a = captured!;
  return { ...a, weightData: a.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(a.weightData) };
}

/** Load artifacts through the same decoder tf.loadLayersModel uses from disk (quantized entries included). */
export function modelFromArtifacts(artifacts: tf.io.ModelArtifacts): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

/**
 * The input of a package optimize can work on: an image classifier (its accuracy is what the gates check), or with
 * `detection` (quantize) a detection model (its mAP is).
 */
export function imageSpecOf(pkg: LoadedPackage, opts: { detection?: boolean } = {}): ImageInputSpec {
  if (pkg.manifest.detection && pkg.manifest.input.kind === 'image') {
    if (opts.detection) return pkg.manifest.input;
    throw new MlctlError('PACKAGE_INVALID', [pkg.dir, 'detection packages can be quantized (mlctl quantize); pruning and tuning are for image classifiers']);
  }
  const task = requireTask(pkg.manifest, 'optimize', pkg.dir);
  if (task !== imageClassification || pkg.manifest.input.kind !== 'image') throw new MlctlError('PACKAGE_INVALID', [pkg.dir, `${task.id} packages cannot be optimized by mlctl's image pipeline`]);
  return pkg.manifest.input;
}

/** Accuracy fractions in percentage points, the unit every gate message uses: 0.002 → "0.20 points". */
export const points = (x: number) => `${(x * 100).toFixed(2)} point${Math.abs(x * 100 - 1) < 1e-9 ? '' : 's'}`;

/**
 * The accuracy gate: rejected when the drop exceeds maxDrop (absolute); unchecked (ok, with a warning) without both
 * figures. The message gives the drop and the allowance in one unit (points), with the flag's value as given.
 */
export function applyGate(op: string, before: number | undefined, after: number | undefined, maxDrop = 0.01, logger?: Logger, given = maxDrop * ACCURACY_GATE.scale, metric: GateMetric = ACCURACY_GATE): { status: 'ok' | 'rejected'; statusReason?: string } {
  if (before === undefined || after === undefined) {
    logger?.warn(`${op}: ${metric.name} was not checked (pass --data DIR to apply ${metric.flag})`);
    return { status: 'ok' };
  }
  if (before - after <= maxDrop + 1e-12) return { status: 'ok' };
  const givenFraction = given / metric.scale;
  const allowed = Math.abs(givenFraction - maxDrop) < 1e-12 ? `${metric.flag} ${given} allows ${points(maxDrop)}` : `${points(maxDrop)} are left of ${metric.flag} ${given} (${points(givenFraction)}) after the earlier steps`;
  const value = (x: number) => (metric === ACCURACY_GATE ? `${(x * 100).toFixed(2)}%` : (x * 100).toFixed(2));
  return {
    status: 'rejected',
    statusReason: `${op}: ${metric.name} dropped from ${value(before)} to ${value(after)}, ${points(before - after)}; ${allowed}`,
  };
}

export interface DerivedDraftInput {
  op: string;
  params: Record<string, unknown>;
  architecture?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** Formats of the new package (others the source had were derived from its weights and would be stale). */
  formats: Manifest['formats'];
  accBefore?: number;
  accAfter?: number;
  valExamples?: number;
  /** Which figure accBefore/accAfter are (default validation accuracy). */
  metric?: GateMetric;
  status: 'ok' | 'rejected';
  statusReason?: string;
}

/** Manifest of a package derived from `source` by one optimize step: its fields, plus the step's lineage entry and figures. */
export function derivedDraft(source: LoadedPackage, d: DerivedDraftInput): ManifestDraft {
  const base = draftFrom(source.manifest);
  const key = (d.metric ?? ACCURACY_GATE).key;
  return {
    ...base,
    formats: d.formats,
    architecture: { ...base.architecture, ...d.architecture },
    // Top-level metrics describe this package (train's key names); the source's figures no longer hold, kept nested.
    metrics: { ...d.metrics, ...(d.accAfter !== undefined ? { [key]: d.accAfter, valExamples: d.valExamples } : {}), ...(base.metrics ? { source: base.metrics } : {}) },
    lineage: [...source.manifest.lineage, lineageFrom(source, d.op, { ...d.params, ...(d.accBefore !== undefined ? { [`${key}Before`]: d.accBefore, [`${key}After`]: d.accAfter } : {}) })],
    ...(d.status === 'rejected' ? { status: d.status, statusReason: d.statusReason } : { status: d.status }),
  };
}

function draftFrom(source: Manifest): ManifestDraft {
  const { schemaVersion: _s, name: _n, version: _v, createdAt: _c, files: _f, status: _st, statusReason: _r, ...rest } = source;
  return rest;
}

export async function finishStep(input: StepInput, opts: StepOptions): Promise<StepReport> {
  const { source } = input;
  const { logger } = opts;
  const spec = imageSpecOf(source, { detection: input.op === 'quantize' });
  const g = gateFor(source, opts);
  let accBefore = input.accuracyBefore;
  let accAfter = input.accuracyAfter;
  let valExamples: number | undefined;
  const set = await gateValidationSet(source, opts, logger);
  if (set) {
    valExamples = set.samples.length;
    const engines: InferenceEngine[] = [];
    try {
      if (accBefore === undefined) engines.push(await openEngine(source, { engine: 'tfjs' }));
      if (accAfter === undefined) engines.push(await openEngine({ kind: 'model', model: await modelFromArtifacts(input.artifacts), owned: true }, { engine: 'tfjs' }));
      if (engines.length > 0) {
        const acc = await accuracies(engines, set, spec, source.manifest.labels, logger, source.manifest.detection);
        if (accAfter === undefined) accAfter = acc[acc.length - 1];
        if (accBefore === undefined) accBefore = acc[0];
      }
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  const gate = applyGate(input.op, accBefore, accAfter, g.maxDrop, logger, g.given, g.metric);
  const draft = derivedDraft(source, { op: input.op, params: input.params, architecture: input.architecture, metrics: input.metrics, formats: { tfjs: 'model.json' }, accBefore, accAfter, valExamples, metric: g.metric, ...gate });
  const { status, statusReason } = gate;
  const artifacts = input.artifacts;
  const pkg = await savePackage({
    name: opts.name ?? source.manifest.name,
    root: opts.root,
    draft,
    write: async (dir) => {
      await writeLayersModel(dir, artifacts);
    },
  });
  if (status === 'rejected') logger.warn(`${pkg.manifest.name} v${pkg.manifest.version} is marked rejected: ${statusReason}`);

  const before: Figures = { label: `${source.manifest.name} v${source.manifest.version}`, size: await modelSize(source), accuracy: accBefore };
  const after: Figures = { label: `${pkg.manifest.name} v${pkg.manifest.version} (${input.op})`, size: await modelSize(pkg), accuracy: accAfter };
  await fillLatency([before, after], [source, pkg], opts);
  after.note = status === 'rejected' ? 'REJECTED' : '';
  return { package: pkg, status, statusReason, before, after, exitCode: status === 'rejected' ? 3 : 0 };
}

/** Fill latency and engine columns for packages measured side by side (interleaved runs). */
export async function fillLatency(rows: Figures[], pkgs: LoadedPackage[], opts: Pick<StepOptions, 'engine' | 'latencyRuns' | 'logger'>): Promise<void> {
  const runs = opts.latencyRuns ?? 20;
  if (runs <= 0) return;
  const engines: InferenceEngine[] = [];
  try {
    for (const p of pkgs) engines.push(await openEngine(p, { engine: opts.engine ?? 'auto', logger: opts.logger }));
    const ms = await latenciesMs(engines, runs);
    rows.forEach((r, i) => {
      r.latencyMs = ms[i];
      r.engine = engines[i]!.description;
    });
  } finally {
    for (const e of engines) await e.dispose();
  }
}

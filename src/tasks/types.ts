// The task contract: what is specific to a kind of model (classify an image, classify or regress a table row; next:
// detect objects) lives in one task module, and commands reach it through taskOf(manifest). docs/tasks.md is the guide.
import type { Manifest } from '../artifacts/manifest.js';
import type { Box } from '../data/detection/types.js';
import type { ImageGeometry } from '../data/preprocess.js';
import type { Tensor } from '../runtime/tensor.js';

/**
 * What post-processing and rendering read of a model: its labels and output, and a detector's decoding section
 * (a remote model's metadata can supply them).
 */
export type TaskModel = Pick<Manifest, 'labels' | 'output' | 'detection'> & Partial<Pick<Manifest, 'input'>>;

/** What results() may be told beyond the outputs, by whoever decoded the inputs and whoever asked. */
export interface ResultContext {
  /**
   * Per example: where its picture landed in the model input (data/preprocess.ts imageToInputPlaced), so results in
   * input pixels (boxes) come back in the picture's pixels. Absent (or an absent entry): the input's own pixels.
   */
  images?: ReadonlyArray<ImageGeometry | undefined>;
  /** Detection: drop boxes scoring below this (default: the manifest's). */
  minScore?: number;
  /** Detection: most boxes per example (default: the manifest's). */
  maxDetections?: number;
}

/** A detector's limits as a caller sets them (serve and predict flags, request parameters). */
export type DetectionLimits = Pick<ResultContext, 'minScore' | 'maxDetections'>;

/** How examples reach the model: images through data/preprocess.ts (the manifest's image spec), rows through the recorded tabular encoding. */
export type InputKind = 'image' | 'tabular';

/**
 * A kind of model. `R` is one example's result (classification: its scores and probabilities; regression: its value;
 * detection: its boxes), `M` the metrics evaluate reports for it. Every surface below is generic over both.
 */
export interface Task<R = unknown, M = unknown, T = ArrayLike<number>> {
  /** The manifest's `task` value. */
  readonly id: string;
  /** One line for errors and docs: what such a model does. */
  readonly summary: string;
  readonly input: InputKind;
  /** The manifest sections this task relies on are usable; throws PACKAGE_INVALID saying what is wrong. */
  check(m: Manifest, where: string): void;
  /** Values per example the model outputs (an engine is checked against it when it opens). */
  outputSize(m: TaskModel): number;
  /** One batch of engine outputs → one result per example. */
  results(outputs: readonly Tensor[], m: TaskModel, ctx?: ResultContext): R[];
  readonly serve: ServeRendering<R>;
  /** How `mlctl predict` writes a result: its CSV columns and JSON Lines fields. */
  rows(m: TaskModel, opts: { topK: number }): RowRendering<R>;
  /** The fields an audit line (serve --audit-log) records for one prediction, e.g. {label, score}. */
  audit(r: R, m: TaskModel): Record<string, unknown>;
  /** How watch's rules see a frame's result; absent when watch cannot use the task. */
  readonly watch?: WatchRendering<R>;
  /** A streaming metrics accumulator for evaluate (and optimize's accuracy checks). */
  metrics(m: TaskModel, opts?: MetricsOptions): MetricsAccumulator<R, M, T>;
  /** How evaluate shows the metrics: terminal, report.md, index.html. */
  readonly report: ReportRendering<M>;
}

/** A task whose result and metrics types the caller does not know (what the registry hands out). */
export type AnyTask = Task<any, any, any>;

export interface ServeRendering<R> {
  /** The fields of a POST /predict answer, beside "model" and "version". */
  predict(results: readonly R[], m: TaskModel, opts: { topK: number }): Record<string, unknown>;
  /** TF Serving's Classify or Regress API as the task answers it (one answer per example); absent: :predict only. */
  readonly tfServing?: { method: 'classify' | 'regress'; answer(r: R, m: TaskModel, opts: { topK: number }): unknown };
}

export interface RowRendering<R> {
  /** CSV columns between "index,input" and "error". */
  readonly columns: readonly string[];
  /** Labels per row, recorded in the run summary so --resume and --merge refuse a different layout (0: none). */
  readonly topK: number;
  /**
   * Several rows per example (detection: one per box): the parts cells/fields render one row each. An example with
   * no part still writes one row (empty cells) so --resume knows it is done. Absent: one row per example.
   */
  split?(r: R): R[];
  /** One CSV cell per column: text (escaped against spreadsheet formulas), a number (written as is) or empty. */
  cells(r: R): Array<string | number | undefined>;
  /** The JSON Lines fields after "index" and "input". */
  fields(r: R): Record<string, unknown>;
}

/** One object a detection model found: its label, score and box in the frame's pixels (ResultContext.images placed it). */
export interface DetectedObject {
  label: string;
  score: number;
  box: Box;
}

export interface WatchRendering<R> {
  /** What rules see of a frame: one score per model label, in label order (detection: each label's best box). */
  scores(r: R, m?: TaskModel): Float32Array | Float64Array;
  /** Detection tasks: the objects found, in the frame's pixels (zones, counts, tracking and snapshot boxes read them). */
  objects?(r: R): DetectedObject[];
}

export interface MetricsOptions {
  /** Classification: top-k accuracy's k. */
  topK?: number;
  /** Classification: calibration bins. */
  bins?: number;
  /** How many of the worst examples to keep. */
  worst?: number;
}

/** `T` is a batch's ground truth: classification a label index per example, regression a target, detection boxes. */
export interface MetricsAccumulator<R, M, T = ArrayLike<number>> {
  /** Examples added so far. */
  readonly count: number;
  /** Add a batch: results with their ground truth (one entry per result) and optional example names. */
  add(results: readonly R[], truth: T, refs?: readonly string[]): void;
  finish(): M;
}

export interface ReportContext {
  /** "name vN", for figure titles. */
  name: string;
  /** Added to figure file names when one report holds several models ("" for one). */
  stem: string;
  /** The data folder or file: example paths are shown relative to it. */
  root: string;
}

/** One part of a model's section in report.md and index.html. */
export interface ReportSection {
  /** Anchor suffix: index.html names it model-<i>-<id>. */
  id: string;
  title: string;
  /** Metric sections come before the latency section in index.html; example galleries after it. */
  place: 'metrics' | 'examples';
  /** report.md lines under its "### title" (absent: left out of report.md). */
  markdown?: string[];
  /** The section's body in index.html. */
  html: string;
  /** Figure files report.md links to, written beside it. */
  files?: Array<{ name: string; data: Buffer }>;
}

export interface ReportRendering<M> {
  /** (metric, value) rows heading evaluate's summary table in the terminal and report.md. */
  summary(metrics: M): string[][];
  /** Terminal lines after the summary table. */
  text?(metrics: M, ctx: ReportContext): string[];
  /** index.html's headline cards (HTML). */
  cards?(metrics: M): string[];
  /** report.md / index.html sections; absent: the task has no --report folder. */
  sections?(metrics: M, ctx: ReportContext): Promise<ReportSection[]>;
}

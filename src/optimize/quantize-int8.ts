// `mlctl quantize --dtype int8`: a real integer model for ONNX Runtime. The TF.js model is converted to ONNX, then
// QDQ-quantized (optimize/onnx-qdq.ts) with activation ranges calibrated on --calibration training images; the
// package keeps the float TF.js model and adds model.onnx (int8), which openEngine runs by default.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadTfjsModel, readModelFile, savePackage, type LoadedPackage } from '../artifacts/package.js';
import { totalBytes } from '../artifacts/size.js';
import { imageBatches } from '../data/batches.js';
import { MlctlError } from '../errors.js';
import { convertLayersModel } from '../onnx/index.js';
import { openEngine, type InferenceEngine } from '../runtime/engine.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { accuracies, gateTrainingSet, gateValidationSet, latenciesMs, modelSize, tfjsModelFiles, type Figures } from './measure.js';
import { quantizeOnnxQdq, rangeWords } from './onnx-qdq.js';
import { checkQuantizeSource, isQuantized } from './quantize.js';
import { applyGate, derivedDraft, gateFor, imageSpecOf, type StepOptions, type StepReport } from './step.js';

export const ONNX_FILE = 'model.onnx';

/**
 * How a detector is quantized (classifiers keep onnx-qdq's defaults: every Conv/MatMul int8, min/max ranges). A
 * detector's outputs are its results — heatmap peaks are compared across cells and pictures, sizes and offsets place
 * the boxes — so, as ORT's nodes_to_exclude and TensorRT/OpenVINO mixed precision keep detection heads' last layers
 * in float, its output convs stay float (the sigmoid reads unrounded logits), and so does its first conv (it reads
 * the picture: no uint8 rounding of the input); activation ranges cut the rarest 0.001 % of the calibration values
 * (ORT's Percentile calibration) instead of stretching a uint8 step to one outlier.
 * Measured on bench/detection.ts's VGG16 CenterNet (60 val pictures, 102 boxes: one box moves mAP50 by ~1 point), over
 * 5 seeded samples of 100 calibration pictures — mAP50 drop, every conv int8 with min/max: 1.26 (the default seed),
 * 1.35, 0.85, −0.41, 0.25 points, mean 0.66; with this: −0.81, −1.82, 1.44, −0.47, −0.69, mean −0.47. The error at
 * heatmap peaks (score > 0.1) fell from 8.2e-3 to 7.1e-3 (percentile alone 7.7e-3, float output convs + percentile
 * 7.6e-3, first conv + percentile 7.4e-3). The float convs are under 1 % of that detector's multiply-adds (batch-1
 * latency 24.1 → 24.4 ms; fp32 86.9) and about 4 % of a MobileNetV2 one's at 320 px (11.3, 11.3 → 11.9, 9.5 ms: noise).
 * The percentile pass doubles calibration time (a second run over the pictures). On 600 held-out pictures (1,100
 * boxes; the bench's default since) the mean drop over 3 samples was −0.33 points (fp32 mAP50 0.690).
 */
const DETECTION_QDQ = { floatLayers: { input: true, output: true }, activationRange: { percentile: 99.999 } } as const;

export interface Int8Options extends StepOptions {
  /** Training images used to calibrate activation ranges. */
  calibration?: number;
  accuracyBefore?: number;
  /** Quantize a package whose weights are already quantized (the roundings stack). */
  force?: boolean;
}

export interface Int8Report extends StepReport {
  dtype: 'int8';
  quantizedNodes: number;
  quantizedTensors: number;
  calibrationImages: number;
  fp32OnnxBytes: number;
  int8OnnxBytes: number;
  /** Conv/MatMul nodes left in float, and why (detectors: their first and output layers). */
  floatNodes: Array<{ node: string; reason: string }>;
  /** How activation ranges were calibrated ("min/max", "99.999 percentile"). */
  activationRange: string;
}

export async function quantizeInt8Package(source: LoadedPackage, opts: Int8Options): Promise<Int8Report> {
  const { logger } = opts;
  if (!opts.data) throw new MlctlError('OPTION_REQUIRED', ['int8 quantization calibrates on training images: pass --data DIR']);
  const spec = imageSpecOf(source, { detection: true });
  const g = gateFor(source, opts);
  const m = source.manifest;
  const state = await checkQuantizeSource(source, 'int8', Boolean(opts.force), logger);
  const requantized = isQuantized(state);
  // The split is resolved and read before the conversion: a folder that cannot be split fails now.
  const set = (await gateValidationSet(source, opts, logger))!;
  const train = await gateTrainingSet(set, m.labels);

  // A package without a TF.js model (`mlctl import` of an ONNX file) is quantized from its own model.onnx.
  const onnxOnly = !m.formats.tfjs && m.formats.onnx !== undefined;
  let fp32: Uint8Array;
  if (onnxOnly) {
    if (state.int8) throw new MlctlError('ALREADY_QUANTIZED', [`${m.name} v${m.version} already runs an int8 ONNX model and keeps no float model to quantize again`]);
    fp32 = await readModelFile(source, m.formats.onnx!, { checkSha256: true });
  } else {
    const model = await loadTfjsModel(source);
    try {
      fp32 = convertLayersModel(model, { inputName: m.input.name, outputName: m.output.name });
    } finally {
      model.dispose();
    }
  }

  // Calibration: a seeded sample of the training split (never the validation images the gate is judged on).
  const wanted = Math.min(opts.calibration ?? 100, train.length);
  const picked = shuffleInPlace([...train], createRng(deriveSeed(set.params.seed, 'int8-calibration'))).slice(0, wanted);
  const calibration: Array<{ data: Float32Array; batch: number }> = [];
  for await (const b of imageBatches(picked, { spec, batchSize: 8, onSkip: (s) => logger.warn(`skipped ${s.path}: ${s.reason}`) })) calibration.push({ data: b.x.slice(), batch: b.count });
  const calibrationImages = calibration.reduce((a, c) => a + c.batch, 0);
  if (calibrationImages === 0) throw new MlctlError('DATA_EMPTY_SPLIT', ['training', `no image of ${opts.data} could be decoded for int8 calibration`]);
  logger.info(`calibrating int8 activation ranges on ${calibrationImages} training image(s)`);
  const qdq = m.detection ? DETECTION_QDQ : {};
  const ranges = rangeWords(qdq);
  // The doc_string describes the int8 model this is (its source is in lineage), not the fp32 graph it was made from.
  const q = await quantizeOnnxQdq(fp32, {
    ...qdq,
    calibration,
    docString: `${opts.name ?? m.name}: int8 QDQ model (int8 symmetric per-channel weights, uint8 activations calibrated on ${calibrationImages} training images${m.detection ? `, ${ranges} ranges, first and output layers in float` : ''}), quantized by mlctl from ${m.name} v${m.version} (mlctl.json sha256 ${source.manifestSha256}).`,
  });
  logger.info(`int8: ${q.quantizedNodes} Conv/MatMul node(s) with int8 weights, ${q.quantizedTensors} uint8 activation(s) (${ranges} ranges)`);
  for (const f of q.floatNodes) logger.info(`int8: ${f.node} kept in float (${f.reason})`);

  // Accuracy: fp32 ONNX vs int8 ONNX on the same runtime, so the difference is the quantization alone.
  const onnxEngine = (bytes: Uint8Array, label: string) => openEngine({ kind: 'onnx', model: bytes, label }, { engine: 'onnx', logger });
  let accBefore = opts.accuracyBefore;
  let accAfter: number;
  {
    const engines: InferenceEngine[] = [];
    try {
      if (accBefore === undefined) engines.push(await onnxEngine(fp32, 'the fp32 conversion'));
      engines.push(await onnxEngine(q.bytes, 'the int8 model'));
      const acc = await accuracies(engines, set, spec, m.labels, logger, m.detection);
      accAfter = acc[acc.length - 1]!;
      if (accBefore === undefined) accBefore = acc[0];
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  const gate = applyGate('quantize', accBefore, accAfter, g.maxDrop, logger, g.given, g.metric);
  const files = onnxOnly ? [] : await tfjsModelFiles(source);
  const pkg = await savePackage({
    name: opts.name ?? m.name,
    root: opts.root,
    draft: derivedDraft(source, {
      op: 'quantize',
      params: { dtype: 'int8', calibration: calibrationImages, format: 'onnx-qdq', sourceWeights: state.weights.length ? state.weights.join('+') : 'float32', ...(requantized ? { force: true } : {}) },
      formats: onnxOnly ? { onnx: ONNX_FILE } : { tfjs: 'model.json', onnx: ONNX_FILE },
      architecture: { int8: { format: 'onnx-qdq', weights: 'int8 per-channel symmetric', activations: `uint8 ${ranges} calibrated`, quantizedNodes: q.quantizedNodes, ...(q.floatNodes.length ? { floatNodes: q.floatNodes } : {}), quantizedTensors: q.quantizedTensors, calibrationImages } },
      accBefore,
      accAfter,
      valExamples: set.samples.length,
      metric: g.metric,
      ...gate,
    }),
    write: async (dir) => {
      // The float TF.js model is carried over byte for byte: TF.js consumers keep working, ONNX Runtime gets int8.
      for (const f of files) await fs.copyFile(f, path.join(dir, path.basename(f)));
      await fs.writeFile(path.join(dir, ONNX_FILE), q.bytes);
    },
  });
  if (gate.status === 'rejected') logger.warn(`${pkg.manifest.name} v${pkg.manifest.version} is marked rejected: ${gate.statusReason}`);

  const before: Figures = { label: `${m.name} v${m.version} (fp32 ONNX)`, size: { raw: fp32.byteLength, gzip: gzipSync(fp32, { level: 9 }).byteLength, format: 'onnx', total: totalBytes(m) }, accuracy: accBefore };
  const afterSize = await modelSize(pkg, 'onnx');
  const after: Figures = { label: `${pkg.manifest.name} v${pkg.manifest.version} (int8 ONNX)`, size: afterSize, accuracy: accAfter, note: gate.status === 'rejected' ? 'REJECTED' : '' };
  const runs = opts.latencyRuns ?? 20;
  if (runs > 0) {
    const engines: InferenceEngine[] = [];
    try {
      engines.push(await onnxEngine(fp32, 'the fp32 conversion'));
      engines.push(await openEngine(pkg, { engine: 'onnx', logger }));
      const ms = await latenciesMs(engines, runs);
      [before, after].forEach((r, i) => {
        r.latencyMs = ms[i];
        r.engine = engines[i]!.description;
      });
    } finally {
      for (const e of engines) await e.dispose();
    }
  }
  return {
    package: pkg,
    ...gate,
    before,
    after,
    exitCode: gate.status === 'rejected' ? 3 : 0,
    dtype: 'int8',
    quantizedNodes: q.quantizedNodes,
    quantizedTensors: q.quantizedTensors,
    calibrationImages,
    fp32OnnxBytes: fp32.byteLength,
    int8OnnxBytes: q.bytes.byteLength,
    floatNodes: q.floatNodes,
    activationRange: ranges,
  };
}

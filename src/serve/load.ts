// Loading one model version for serve: read it through its source, open its engine, and decide what it is served
// as — an image or tabular model's one FP32 input and output under its manifest's names, or a generic tensor model's
// every input and output as the model declares them — checking the engine against the manifest.
import os from 'node:os';
import type { LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { weightsVariantOf } from '../artifacts/variant.js';
import { imageTensorShape } from '../data/preprocess.js';
import { detectorEngine, isImportedDetector } from '../tasks/detection/engine.js';
import { manifestTensors } from '../runtime/declared.js';
import { sessionDefaults } from '../runtime/device.js';
import { enginePool } from '../runtime/pool.js';
import type { EngineChoice, EngineOptions, InferenceEngine } from '../runtime/engine.js';
import { floatIO, floatsOf } from '../runtime/float.js';
import { describeSpec, shapeMatches, type Tensor, type TensorSpec } from '../runtime/tensor.js';
import type { Logger } from '../util/log.js';
import type { SourceVersion } from './source.js';
import type { ServedModel } from './types.js';

export interface LoadOptions {
  engine?: EngineChoice;
  logger?: Logger;
  /** Engine opener (runtime/engine.ts openEngine unless a caller supplies its own). */
  openEngine: (pkg: LoadedPackage, opts: EngineOptions) => Promise<InferenceEngine>;
  /** Run the engine in a worker thread so a batch never blocks the event loop. */
  worker: boolean;
  /** Engine instances side by side (runtime/pool.ts; default 1), each running one batch at a time. */
  instances?: number;
}

/** A version ready to warm up: the model as served, its engine, and how served tensors map onto the engine's. */
export interface LoadedVersion {
  model: ServedModel;
  engine: InferenceEngine;
  /** Served input name → the engine's input name (the same name except for packages written before names were aligned). */
  feedName: (served: string) => string;
  /** The engine's outputs for `n` examples as served: named, shaped [n, …] and typed as the served outputs. */
  present: (outputs: Tensor[], n: number) => Tensor[];
}

const mismatch = (why: string) => new MlctlError('PACKAGE_INPUT_MISMATCH', [why]);

/** An image or tabular model: one FP32 tensor in, one out, named and sized as the manifest says. */
function taskServing(pkg: LoadedPackage, engine: InferenceEngine, where: string): Pick<LoadedVersion, 'feedName' | 'present'> & { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const m = pkg.manifest;
  const io = floatIO(engine);
  // Image models take NHWC (or, imported from PyTorch, NCHW) images; tabular models take rows of the engine's (encoded) feature width.
  const want = m.input.kind === 'image' ? imageTensorShape(m.input) : io.inputShape;
  if (io.inputShape.length !== want.length || io.inputShape.some((d, i) => d !== -1 && d !== want[i]) || want.some((d) => d < 1)) {
    throw mismatch(`package ${where}: the model takes input ${JSON.stringify(io.inputShape)} but the manifest says ${JSON.stringify(want)}`);
  }
  const input: TensorSpec = { name: m.input.name!, datatype: 'FP32', shape: [-1, ...want] };
  // A detector's map keeps the shape its engine declares (e.g. [n, grid h, grid w, classes + 4]) when it holds the
  // manifest's size; every other output is [n, size].
  const declared = engine.outputs[0]?.shape.slice(1) ?? [];
  const per = m.output.kind === 'detection' && declared.length > 1 && declared.every((d) => d > 0) && declared.reduce((a, b) => a * b, 1) === m.output.size ? declared : [m.output.size!];
  const output: TensorSpec = { name: m.output.name!, datatype: 'FP32', shape: [-1, ...per] };
  return {
    inputs: [input],
    outputs: [output],
    feedName: () => io.input.name,
    present(outputs, n) {
      const y = floatsOf(outputs[0]!);
      return [{ name: output.name, datatype: 'FP32', shape: per.length > 1 ? [n, ...per] : [n, y.length / Math.max(1, n)], data: y }];
    },
  };
}

/**
 * An imported detector (yolo or torchvision head): the image in, every output the engine answers out, as it answers
 * them (torchvision's boxes, scores and labels are three tensors of the model's own length), for the task to decode.
 * A model without a batch dimension (or with a fixed batch of one) is served as a batch of exactly one: [1, …].
 */
function detectorServing(pkg: LoadedPackage, engine: InferenceEngine): Pick<LoadedVersion, 'feedName' | 'present'> & { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const m = pkg.manifest;
  if (m.input.kind !== 'image') throw mismatch(`package ${pkg.dir}: its task is detection but its input is ${m.input.kind}`);
  const batch = engine.batched ? -1 : 1;
  return {
    inputs: [{ name: m.input.name!, datatype: 'FP32', shape: [batch, ...imageTensorShape(m.input)] }],
    outputs: engine.outputs.map((t) => ({ ...t, shape: [batch, ...t.shape.slice(1)] })),
    feedName: () => engine.inputs[0]!.name,
    present: (outputs) => outputs,
  };
}

/** A generic tensor model: what the engine declares, checked against what the manifest records. */
function tensorServing(pkg: LoadedPackage, engine: InferenceEngine, where: string): Pick<LoadedVersion, 'feedName' | 'present'> & { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const declared = manifestTensors(pkg.manifest, where);
  for (const [side, listed, actual] of [['input', declared.inputs, engine.inputs], ['output', declared.outputs, engine.outputs]] as const) {
    const names = (l: readonly TensorSpec[]) => l.map(describeSpec).join(', ') || 'none';
    const fits = listed.length === actual.length && listed.every((d) => actual.some((a) => a.name === d.name && a.datatype === d.datatype && (shapeMatches(d.shape, a.shape) || shapeMatches(a.shape, d.shape))));
    if (!fits) throw mismatch(`package ${where}: the model's ${side}s are ${names(actual)} but the manifest says ${names(listed)}`);
  }
  return { inputs: [...engine.inputs], outputs: [...engine.outputs], feedName: (name) => name, present: (outputs) => outputs };
}

/**
 * The version's engine: `instances` of it opened side by side (runtime/pool.ts). Each gets an equal share of the
 * cores as its ONNX Runtime intra-op threads, unless --intra-op-threads set them for the process.
 */
async function openInstances(pkg: LoadedPackage, opts: LoadOptions): Promise<InferenceEngine> {
  const n = Math.max(1, opts.instances ?? 1);
  const base: EngineOptions = { engine: opts.engine ?? 'auto', logger: opts.logger, worker: opts.worker };
  if (n === 1) return opts.openEngine(pkg, base);
  const threads = sessionDefaults().intraOpThreads ?? Math.max(1, Math.floor(os.availableParallelism() / n));
  const opened: InferenceEngine[] = [];
  try {
    for (let i = 0; i < n; i++) opened.push(await opts.openEngine(pkg, { ...base, threads }));
  } catch (err) {
    await Promise.all(opened.map((e) => e.dispose().catch(() => {})));
    throw err;
  }
  return enginePool(opened);
}

/** Read, open and describe one version; the engine is disposed again when the package does not fit it. */
export async function loadVersion(version: SourceVersion, opts: LoadOptions): Promise<LoadedVersion> {
  const pkg = await version.load();
  const m = pkg.manifest;
  // How the weights are stored is read now, through the package, so nothing later opens its files.
  const weights = m.input.kind === 'tensors' ? 'as-is' : await weightsVariantOf(pkg);
  const opened = await openInstances(pkg, opts);
  let engine = opened;
  try {
    const imported = isImportedDetector(m);
    if (imported) engine = detectorEngine(opened, m, version.location);
    const served = m.input.kind === 'tensors' ? tensorServing(pkg, engine, version.location) : imported ? detectorServing(pkg, engine) : taskServing(pkg, engine, version.location);
    const model: ServedModel = {
      name: m.name,
      version: m.version,
      manifest: m,
      manifestSha256: pkg.manifestSha256,
      ready: false,
      engine: engine.name,
      platform: engine.platform,
      provenance: engine.provenance,
      package: pkg,
      inputs: served.inputs,
      outputs: served.outputs,
      batched: engine.batched,
      weights,
      source: version,
    };
    return { model, engine, feedName: served.feedName, present: served.present };
  } catch (err) {
    await opened.dispose().catch(() => {});
    throw err;
  }
}

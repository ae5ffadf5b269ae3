// How the detection task runs an engine, whatever head it has: an export without a batch dimension (torchvision's
// detectors take one [3, h, w] image) is seen as taking a batch of one, and a batch of pictures becomes as many runs
// as the engine needs, each answering every output the task's results() decode (boxes, scores and labels; or one map).
import type { ImageInputSpec, Manifest } from '../../artifacts/manifest.js';
import { imageTensorShape } from '../../data/preprocess.js';
import { MlctlError } from '../../errors.js';
import type { InferenceEngine } from '../../runtime/engine.js';
import type { LatencyRunner } from '../../runtime/latency.js';
import type { Tensor } from '../../runtime/tensor.js';

/** A detector whose head mlctl did not train (yolo, torchvision): its outputs are the model's own, every one fetched. */
export const isImportedDetector = (m: Pick<Manifest, 'task' | 'detection'>): boolean => m.task === 'detection' && m.detection !== undefined && m.detection.head !== 'centernet';

/** The engine's image input, checked against the manifest's: [batch, …image] or, unbatched, the image's own shape. */
function imageInput(engine: InferenceEngine, spec: ImageInputSpec, where: string) {
  const want = imageTensorShape(spec);
  const input = engine.inputs.length === 1 ? engine.inputs[0]! : undefined;
  const fits = (s: readonly number[]) => s.length === want.length && s.every((d, i) => d === -1 || d === want[i]);
  if (!input || input.datatype !== 'FP32' || !(fits(input.shape) || fits(input.shape.slice(1)))) {
    throw new MlctlError('PACKAGE_INPUT_MISMATCH', [`package ${where}: the model takes ${engine.inputs.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ') || 'nothing'} but the manifest says one FP32 image [N, ${want.join(', ')}]`]);
  }
  return { input, unbatched: input.shape.length === want.length };
}

/**
 * The engine as the detection task runs it: every input and output with a leading batch dimension. A model exported
 * without one (its input is the image's own shape) takes a batch of one: the leading 1 is dropped from the feeds and
 * put in front of every output. Other engines are returned as they are.
 */
export function detectorEngine(engine: InferenceEngine, m: Pick<Manifest, 'input'>, where: string): InferenceEngine {
  if (m.input.kind !== 'image') return engine;
  const { unbatched } = imageInput(engine, m.input, where);
  if (!unbatched) return engine;
  const one = (t: { shape: readonly number[] }) => [1, ...t.shape];
  return {
    name: engine.name,
    platform: engine.platform,
    description: engine.description,
    provenance: engine.provenance,
    inputs: engine.inputs.map((t) => ({ ...t, shape: one(t) })),
    outputs: engine.outputs.map((t) => ({ ...t, shape: one(t) })),
    batched: false,
    async run(feeds, fetches, opts) {
      for (const f of feeds) if (f.shape[0] !== 1) throw new MlctlError('INPUT_INVALID', [`the model has no batch dimension: it runs one image at a time, not ${f.shape[0]}`]);
      const out = await engine.run(feeds.map((f) => ({ ...f, shape: f.shape.slice(1) }) as Tensor), fetches, opts);
      return out.map((t) => ({ ...t, shape: one(t) }) as Tensor);
    },
    dispose: () => engine.dispose(),
  };
}

/** One run's outputs and how many of the batch's pictures (in order) they answer. */
export interface DetectorRun {
  outputs: Tensor[];
  n: number;
}

/** `n` preprocessed pictures packed in `x` as a detector engine's (detectorEngine's view) one input. */
export function detectorFeed(engine: InferenceEngine, spec: ImageInputSpec, x: Float32Array, n: number): Tensor<'FP32'> {
  return { name: engine.inputs[0]!.name, datatype: 'FP32', shape: [n, ...imageTensorShape(spec)], data: x };
}

/**
 * `n` preprocessed pictures packed in `x` through a detector engine (detectorEngine's view): one run for a batched
 * model, one per picture otherwise; every output fetched.
 */
export async function runDetector(engine: InferenceEngine, spec: ImageInputSpec, x: Float32Array, n: number): Promise<DetectorRun[]> {
  if (engine.batched || n === 1) return [{ outputs: await engine.run([detectorFeed(engine, spec, x, n)]), n }];
  const per = x.length / n;
  const runs: DetectorRun[] = [];
  for (let i = 0; i < n; i++) runs.push(...(await runDetector(engine, spec, x.subarray(i * per, (i + 1) * per), 1)));
  return runs;
}

/** What evaluate times of a detector: runDetector on its engine (every output; one run per picture when unbatched). */
export const detectorLatencyRunner = (engine: InferenceEngine, spec: ImageInputSpec): LatencyRunner => ({
  inputShape: imageTensorShape(spec),
  run: (x, n) => runDetector(engine, spec, x, n),
});

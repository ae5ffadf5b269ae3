// One ONNX Runtime session as an InferenceEngine, in the calling thread: the element types, the declared inputs and
// outputs, and run(). Kept apart from engines/onnx.ts (conversion, cache, packages) so that the engine's worker
// thread (onnx-worker.ts) loads only this: a small heap there keeps its garbage collections short.
import os from 'node:os';
import { MlctlError } from '../errors.js';
import { alignTensors, type DeclaredTensors } from '../runtime/declared.js';
import type { EngineProvenance, InferenceEngine } from '../runtime/engine.js';
import { formatDevice, withSessionDefaults, type SessionConfig } from '../runtime/device.js';
import { createSession, ort, onnxSessionOptions, ORT_VERSION } from '../runtime/ort.js';
import { batchable, checkFeeds, type Datatype, type Tensor, type TensorData, type TensorSpec } from '../runtime/tensor.js';

export interface SessionEngineOptions {
  /** Device, thread pools and graph optimisation; unset fields take the process defaults (runtime/device.ts). */
  session?: SessionConfig;
  provenance?: EngineProvenance;
  /**
   * Run the session in a worker thread. onnxruntime-node's run() computes on the calling thread, so in serve a batch
   * would hold the event loop for its whole duration: no request parsed, no decode started, no response sent.
   */
  worker?: boolean;
  /** What a package declares (runtime/declared.ts): its names and sizes for the graph's tensors. */
  declared?: DeclaredTensors;
}

/** ONNX Runtime's element types as V2 datatypes (the runtime has no bfloat16 tensors in Node). */
const DATATYPE_OF: Partial<Record<ort.Tensor.Type, Datatype>> = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES',
};
const ORT_TYPE_OF = Object.fromEntries(Object.entries(DATATYPE_OF).map(([k, v]) => [v, k])) as Partial<Record<Datatype, ort.Tensor.Type>>;

/** A graph input's or output's declaration: symbolic and unknown dimensions are -1. Undefined for non-tensors. */
function specOfMetadata(m: ort.InferenceSession.ValueMetadata, side: 'input' | 'output'): TensorSpec | undefined {
  if (!m.isTensor) {
    if (side === 'input') throw new MlctlError('ENGINE_IO_UNSUPPORTED', [`onnxruntime-node ${ORT_VERSION}`, `a non-tensor input ${m.name}`, 'its outputs', 'mlctl feeds tensors only']);
    return undefined;
  }
  const datatype = DATATYPE_OF[m.type];
  if (!datatype) {
    if (side === 'input') throw new MlctlError('ENGINE_IO_UNSUPPORTED', [`onnxruntime-node ${ORT_VERSION}`, `input ${m.name} of element type ${m.type}`, 'its outputs', 'mlctl has no datatype for it']);
    return undefined;
  }
  return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)) };
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A feed as ONNX Runtime takes it: numeric data wrapped in place (no copy), BYTES elements as strings. */
function toOrt(t: Tensor): ort.Tensor {
  if (t.datatype === 'BYTES') return new ort.Tensor('string', (t.data as Uint8Array[]).map((b) => fromUtf8.decode(b)), t.shape);
  const type = ORT_TYPE_OF[t.datatype];
  if (!type) throw new MlctlError('INPUT_INVALID', [`tensor ${t.name} is ${t.datatype}, which onnxruntime-node cannot take`]);
  return new ort.Tensor(type, t.data as Exclude<TensorData, Uint8Array[]>, t.shape);
}

function fromOrt(name: string, v: ort.OnnxValue): Tensor {
  const datatype = DATATYPE_OF[v.type];
  if (!datatype) throw new Error(`output ${name} has element type ${v.type}, which mlctl cannot read`);
  const data = datatype === 'BYTES' ? (v.data as string[]).map((x) => utf8.encode(x)) : v.data;
  return { name, datatype, shape: [...v.dims], data } as Tensor;
}

/** The inputs and outputs an ONNX model declares, as ONNX Runtime reads them (for packaging a bare model). */
export async function onnxTensors(bytes: Uint8Array): Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }> {
  const session = await ort.InferenceSession.create(bytes, onnxSessionOptions(1));
  try {
    return {
      inputs: session.inputMetadata.map((m) => specOfMetadata(m, 'input')!),
      outputs: session.outputMetadata.map((m) => specOfMetadata(m, 'output')).filter((t): t is TensorSpec => t !== undefined),
    };
  } finally {
    await session.release();
  }
}

function wrapSession(session: ort.InferenceSession, config: SessionConfig, opts: SessionEngineOptions): InferenceEngine {
  const threads = config.intraOpThreads ?? os.availableParallelism();
  if (!session.inputNames.length) throw new Error('the ONNX model has no input');
  const graphOutputs = session.outputMetadata.map((m) => specOfMetadata(m, 'output')).filter((t): t is TensorSpec => t !== undefined);
  if (!graphOutputs.length) throw new Error('the ONNX model has no tensor output');
  const ins = alignTensors(session.inputMetadata.map((m) => specOfMetadata(m, 'input')!), opts.declared?.inputs);
  const outs = alignTensors(graphOutputs, opts.declared?.outputs);
  const inputs = ins.specs;
  const outputs = outs.specs;
  const graphNameOf = new Map(inputs.map((t, i) => [t.name, ins.own[i]!]));
  const outputNameOf = new Map(outputs.map((t, i) => [t.name, outs.own[i]!]));
  const allOutputs = outputs.map((t) => t.name);
  return {
    name: 'onnx',
    platform: 'onnxruntime_onnx',
    description: `onnxruntime-node ${ORT_VERSION} (${formatDevice(config.device ?? { kind: 'cpu' })}, ${threads} thread${threads === 1 ? '' : 's'})`,
    inputs,
    outputs,
    batched: batchable(inputs) && batchable(outputs),
    provenance: opts.provenance ?? { verified: false, source: 'ONNX bytes' },
    async run(feeds, fetches = allOutputs) {
      checkFeeds('onnx', inputs, feeds);
      const want = fetches.map((f) => {
        const own = outputNameOf.get(f);
        if (!own) throw new RangeError(`the ONNX model has no output ${f} (its outputs: ${allOutputs.join(', ')})`);
        return own;
      });
      const out = await session.run(Object.fromEntries(feeds.map((t) => [graphNameOf.get(t.name)!, toOrt(t)])), want);
      return fetches.map((f, i) => fromOrt(f, out[want[i]!]!));
    },
    async dispose() {
      await session.release();
    },
  };
}

/** A session over `bytes` in this thread (the worker option is the caller's business: engines/onnx.ts). */
export async function onnxSessionEngine(bytes: Uint8Array, opts: SessionEngineOptions = {}): Promise<InferenceEngine> {
  const config = withSessionDefaults(opts.session);
  const session = await createSession(bytes, config);
  try {
    return wrapSession(session, config, opts);
  } catch (err) {
    await session.release();
    throw err;
  }
}

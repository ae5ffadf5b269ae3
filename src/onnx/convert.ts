// TF.js LayersModel → ONNX ModelProto: walks the layer graph from the outputs (Sequential, functional and nested
// models alike), converts each layer once, and exposes NHWC float32 inputs/outputs with a symbolic batch dimension.
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { MlctlError } from '../errors.js';
import { graphBuilder, valueInfo, type GraphBuilder } from './builders.js';
import { foldBatchNorms } from './fold.js';
import { CONVERTERS, NHWC_TO_NCHW_AXIS, SUPPORTED_LAYERS, type Layout, type Value } from './layers.js';
import { DataType, encodeModel, irVersionForOpset, type ModelProto } from './proto.js';
import { CONVERTER_VERSION } from './version.js';

export interface ConvertOptions {
  /** ai.onnx opset, 13..21 (default 17: ONNX Runtime, TensorRT and onnx ≥ 1.12 all accept it). */
  opset?: number;
  /** Graph input name (single-input models; default: the TF.js input layer's name). */
  inputName?: string;
  /** Graph output name (single-output models; default: the TF.js output layer's name). */
  outputName?: string;
  /** Stored as ModelProto.metadata_props (e.g. labels, package name/version). */
  metadata?: Record<string, string>;
  docString?: string;
  /**
   * Fold inference BatchNormalization into the Conv before it (default true). Off keeps every weight as the model
   * stores it — what an export of a quantized package needs to store them at their precision.
   */
  foldBatchNorm?: boolean;
}

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;
/** Symbolic name of the batch dimension on every graph input and output. */
export const BATCH_DIM = 'batch';
/** Bumped whenever converted graphs change, so cached conversions can be told apart (onnx/version.ts). */
export { CONVERTER_VERSION };

const require = createRequire(import.meta.url);
const MLCTL_VERSION = (require('../../package.json') as { version: string }).version;

type SymbolicTensor = tf.SymbolicTensor;
type Container = { name: string; inputs: SymbolicTensor[]; outputs: SymbolicTensor[] };

function tfShape(t: SymbolicTensor): Array<number | null> {
  return (t.shape as Array<number | null>).slice();
}

function isContainer(layer: tf.layers.Layer): boolean {
  return layer instanceof tf.LayersModel || ['Sequential', 'Model', 'Functional'].includes(layer.getClassName());
}

/** Build the ONNX graph for `model`; returns the ModelProto (use convertLayersModel for bytes). */
export function buildModelProto(model: tf.LayersModel, opts: ConvertOptions = {}): ModelProto {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new MlctlError('OPTION_INVALID', [`ONNX opset ${opset} is not supported: choose ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET})`]);
  }
  const inputNames = model.inputs.map((t, i) => (model.inputs.length === 1 && opts.inputName) || model.inputLayers[i]?.name || `input_${i}`);
  const outputNames = model.outputs.map((t, i) => (model.outputs.length === 1 && opts.outputName) || model.outputLayers[i]?.name || `output_${i}`);
  if (new Set([...inputNames, ...outputNames]).size !== inputNames.length + outputNames.length) {
    throw new MlctlError('OPTION_INVALID', [`ONNX input/output names must be distinct, got inputs ${inputNames.join(', ')} and outputs ${outputNames.join(', ')}`]);
  }
  const g = graphBuilder([...inputNames, ...outputNames]);
  const layoutMemo = new Map<string, Value>();
  const toLayout = (v: Value, layout: Layout): Value => {
    if (v.layout === layout || v.shape.length !== 4) return v;
    const key = `${v.name}->${layout}`;
    let out = layoutMemo.get(key);
    if (!out) {
      const perm = layout === 'NCHW' ? NHWC_TO_NCHW_AXIS : [0, 2, 3, 1];
      const name = g.node('Transpose', [v.name], [g.unique(`${v.name}/${layout === 'NCHW' ? 'to_nchw' : 'to_nhwc'}`)], { perm });
      out = { name, layout, shape: v.shape };
      layoutMemo.set(key, out);
    }
    return out;
  };

  const graphInputs = model.inputs.map((t, i) => {
    const dtype = t.dtype ?? 'float32';
    if (dtype !== 'float32') throw new MlctlError('UNSUPPORTED_LAYER', [model.inputLayers[i]?.name ?? `input ${i}`, 'InputLayer', `input dtype ${dtype} is not supported (float32 only)`]);
    return { name: inputNames[i]!, layout: 'TF' as Layout, shape: tfShape(t) };
  });
  const outs = convertContainer(model as unknown as Container, graphInputs, '', g, toLayout);

  const nodes = g.nodes;
  outs.forEach((v, i) => {
    const tfv = toLayout(v, 'TF');
    nodes.push({ name: g.unique(`${outputNames[i]}_identity`), opType: 'Identity', input: [tfv.name], output: [outputNames[i]!] });
  });
  const graphOutputs = model.outputs.map((t, i) => valueInfo(outputNames[i]!, DataType.FLOAT, dims(tfShape(t))));
  const initializers = g.initializers;
  if (opts.foldBatchNorm !== false) foldBatchNorms({ node: nodes, initializer: initializers, output: graphOutputs });
  function dims(shape: Array<number | null>) {
    return shape.map((d, j) => (j === 0 ? BATCH_DIM : d == null ? `dim${j}` : d));
  }
  const metadata = { ...(opts.metadata ?? {}), 'mlctl.converter': `mlctl ${MLCTL_VERSION} tfjs-layers-to-onnx v${CONVERTER_VERSION}` };
  return {
    irVersion: irVersionForOpset(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'mlctl',
    producerVersion: MLCTL_VERSION,
    ...(opts.docString ? { docString: opts.docString } : {}),
    graph: {
      name: model.name || 'model',
      node: nodes,
      initializer: initializers,
      input: graphInputs.map((v) => valueInfo(v.name, DataType.FLOAT, dims(v.shape))),
      output: graphOutputs,
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
}

/** Convert a TF.js layers model to ONNX bytes (a serialised ModelProto). */
export function convertLayersModel(model: tf.LayersModel, opts: ConvertOptions = {}): Uint8Array {
  return encodeModel(buildModelProto(model, opts));
}

/** Convert one (possibly nested) model's graph, given the values feeding its inputs; returns its outputs' values. */
function convertContainer(model: Container, inputs: Value[], prefix: string, g: GraphBuilder, toLayout: (v: Value, l: Layout) => Value): Value[] {
  const bound = new Map<number, Value>();
  model.inputs.forEach((t, i) => bound.set(t.id, inputs[i]!));
  const memo = new Map<string, Value[]>();

  const resolve = (t: SymbolicTensor): Value => {
    const known = bound.get(t.id);
    if (known) return known;
    const layer = t.sourceLayer as tf.layers.Layer;
    const key = `${layer.name}#${t.nodeIndex}`;
    let outs = memo.get(key);
    if (!outs) {
      const node = layer.inboundNodes[t.nodeIndex]!;
      const ins = node.inputTensors.map(resolve);
      const outShapes = node.outputTensors.map(tfShape);
      const base = `${prefix}${layer.name}`;
      if (isContainer(layer)) {
        outs = convertContainer(layer as unknown as Container, ins, `${base}/`, g, toLayout);
      } else {
        const className = layer.getClassName();
        if (className === 'InputLayer') throw new MlctlError('UNSUPPORTED_LAYER', [base, className, 'this input is not connected to the model inputs']);
        const convert = CONVERTERS[className];
        if (!convert) {
          throw new MlctlError('UNSUPPORTED_LAYER', [base, className, `no ONNX conversion for ${className}; supported layers: ${SUPPORTED_LAYERS.join(', ')}`]);
        }
        outs = convert(layer, layer.getConfig() as Record<string, unknown>, ins, outShapes, { g, base, toLayout });
      }
      memo.set(key, outs);
    }
    const v = outs[t.tensorIndex];
    if (!v) throw new MlctlError('UNSUPPORTED_LAYER', [layer.name, layer.getClassName(), `output ${t.tensorIndex} was not converted`]);
    return v;
  };
  return model.outputs.map(resolve);
}

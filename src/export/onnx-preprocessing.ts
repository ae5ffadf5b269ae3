// `--embed-preprocessing`: the manifest's PreprocessingSpec (data/preprocess.ts pixelsToInput, every mode) as ONNX nodes
// in front of the model, so the graph takes UINT8 RGB pixels [batch, H, W, 3] (resized by the caller) and a Triton or
// plain ONNX Runtime client never needs to know Keras's caffe/tf/torch conventions.
import type { PreprocessingSpec } from '../artifacts/manifest.js';
import { floatTensor, int64Tensor, makeNode, valueInfo, DataType, type ModelProto, type NodeProto, type TensorProto } from '../onnx/index.js';

/** What the embedded variant's single input takes. */
export interface PixelInput {
  name: string;
  height: number;
  width: number;
  /** Symbolic name of the batch dimension (the converter's). */
  batchDim: string;
  /** The model's own layout: an NCHW model (imported from PyTorch) gets its planes by a Transpose after the arithmetic. */
  layout?: 'NHWC' | 'NCHW';
}

const same = (a: number[], v: number) => a.every((x) => x === v);

/**
 * Prepend Cast → [Gather BGR] → [Mul scale] → [Sub mean] → [Div std] to `proto` (in place): the float input the model
 * had becomes an internal tensor, and the graph input keeps its name with element type UINT8. The arithmetic is
 * pixelsToInput's, in its order: channel order first, then (pixel · scale − mean) / std per channel.
 */
export function embedPreprocessing(proto: ModelProto, spec: PreprocessingSpec, input: PixelInput): { nodes: string[] } {
  const g = proto.graph;
  const declared = g.input.find((v) => v.name === input.name);
  if (!declared) throw new Error(`the graph has no input "${input.name}"`);
  const x = input.name;
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  let cur = x;
  const step = (op: string, extra: string[], attrs: Record<string, number | number[]> = {}) => {
    const out = `${x}/preprocess/${op.toLowerCase()}`;
    nodes.push(makeNode(op, [cur, ...extra], [out], attrs, `${x}/preprocess/${op}`));
    cur = out;
  };
  // Channel order on the uint8 pixels (a quarter of the bytes a float Gather would move).
  if (spec.channelOrder === 'BGR') {
    inits.push(int64Tensor(`${x}/preprocess/bgr_indices`, [3], [2, 1, 0]));
    step('Gather', [`${x}/preprocess/bgr_indices`], { axis: 3 });
  }
  step('Cast', [], { to: DataType.FLOAT });
  if (spec.scale !== 1) {
    inits.push(floatTensor(`${x}/preprocess/scale`, [], [spec.scale]));
    step('Mul', [`${x}/preprocess/scale`]);
  }
  if (!same(spec.mean, 0)) {
    inits.push(floatTensor(`${x}/preprocess/mean`, [3], spec.mean));
    step('Sub', [`${x}/preprocess/mean`]);
  }
  if (!same(spec.std, 1)) {
    inits.push(floatTensor(`${x}/preprocess/std`, [3], spec.std));
    step('Div', [`${x}/preprocess/std`]);
  }
  // Pixels arrive NHWC whatever the model takes; channels-first models get them transposed.
  if (input.layout === 'NCHW') step('Transpose', [], { perm: [0, 3, 1, 2] });
  // Every consumer of the old float input now reads the preprocessed tensor.
  for (const n of g.node) n.input = n.input.map((i) => (i === x ? cur : i));
  g.node = [...nodes, ...g.node];
  g.initializer = [...g.initializer, ...inits];
  g.input = g.input.map((v) => (v.name === x ? valueInfo(x, DataType.UINT8, [input.batchDim, input.height, input.width, 3]) : v));
  return { nodes: nodes.map((n) => n.opType) };
}

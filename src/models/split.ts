// A functional model cut in two at a tensor every path to the output crosses (a backbone block boundary): the prefix
// (input → cut), which an inference engine can run or whose outputs can be stored, and the tail (cut → output). The
// tail re-applies the model's own layers to a new input, so it shares their weights: training the tail trains the
// model, and the model saves as before (its config lists only its own nodes).
import * as tf from '@tensorflow/tfjs';

export interface ModelSplit {
  /** input → cut; undefined when the cut is the model's input (nothing before it). */
  prefix?: tf.LayersModel;
  /** cut → output, over the model's layers. */
  tail: tf.LayersModel;
  /** Shape of one cut tensor, without the batch axis (e.g. [14, 14, 512]). */
  cutShape: number[];
  /** The layer whose output is the cut (the input layer when there is no prefix). */
  cutLayer: string;
}

/** The slice of tfjs-layers' graph internals walked here (Layer.inboundNodes, Node). */
interface GraphNode {
  inputTensors: tf.SymbolicTensor[];
  outputTensors: tf.SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}
const nodesOf = (layer: tf.layers.Layer) => (layer as unknown as { inboundNodes: GraphNode[] }).inboundNodes;

/**
 * Cut `model` just before layer `firstTailLayer` (at that layer's input). Throws when the graph does not separate there
 * (a path from before the cut reaches the output without passing through it).
 */
export function splitBefore(model: tf.LayersModel, firstTailLayer: string): ModelSplit {
  const first = model.getLayer(firstTailLayer);
  const cut = nodesOf(first)[0]!.inputTensors;
  if (cut.length !== 1) throw new Error(`cannot cut ${model.name} before ${firstTailLayer}: it takes ${cut.length} inputs`);
  const cutTensor = cut[0]!;
  const cutShape = (cutTensor.shape as number[]).slice(1);
  const isInput = model.inputs.some((t) => t.id === cutTensor.id);
  const input = tf.input({ shape: cutShape, name: `${cutTensor.sourceLayer.name}_tail_input` });
  const mapped = new Map<number, tf.SymbolicTensor>([[cutTensor.id, input]]);
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    // The model's own node: the first whose inputs all lie after the cut (later nodes are other models' applications).
    const node = nodesOf(layer).find((n) => n.inputTensors.length > 0 && n.inputTensors.every((t) => mapped.has(t.id)));
    if (!node) continue;
    const args = node.inputTensors.map((t) => mapped.get(t.id)!);
    const out = layer.apply(args.length === 1 ? args[0]! : args, node.callArgs ?? {});
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((t, i) => mapped.set(t.id, outs[i] as tf.SymbolicTensor));
  }
  const output = mapped.get(model.outputs[0]!.id);
  if (!output) throw new Error(`cannot cut ${model.name} before ${firstTailLayer}: a path to the output bypasses that layer's input`);
  const tail = tf.model({ inputs: input, outputs: output, name: `${model.name}_from_${cutTensor.sourceLayer.name}` });
  const prefix = isInput ? undefined : tf.model({ inputs: model.inputs, outputs: cutTensor, name: `${model.name}_to_${cutTensor.sourceLayer.name}` });
  return { prefix, tail, cutShape, cutLayer: cutTensor.sourceLayer.name };
}

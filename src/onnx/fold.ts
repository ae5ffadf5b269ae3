// Graph rewrite after conversion: fold an inference BatchNormalization into the Conv that feeds it (W' = W·a,
// b' = (b − mean)·a + beta with a = gamma / sqrt(var + eps)), as Keras-to-ONNX exporters do, so BN-heavy backbones
// (MobileNetV2, ResNet50, EfficientNet) run one Conv per conv+BN pair and int8 QDQ quantizes the folded weights.
import { floatTensor, tensorFloats } from './builders.js';
import { AttributeType, type GraphProto, type TensorProto } from './proto.js';

/** Fold every foldable Conv→BatchNormalization pair in place; returns how many were folded. */
export function foldBatchNorms(graph: Pick<GraphProto, 'node' | 'initializer' | 'output'>): number {
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
  const uses = new Map<string, number>();
  for (const n of graph.node) for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of graph.output) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const removed = new Set<object>();
  let folded = 0;
  for (const bn of graph.node) {
    if (bn.opType !== 'BatchNormalization' || bn.output.length !== 1) continue;
    const conv = producer.get(bn.input[0]!);
    if (!conv || conv.opType !== 'Conv' || uses.get(conv.output[0]!) !== 1) continue;
    const params = bn.input.slice(1, 5).map((n) => inits.get(n));
    const w = inits.get(conv.input[1]!);
    const bias = conv.input[2] ? inits.get(conv.input[2]) : undefined;
    if (params.some((p) => !p) || !w || uses.get(w.name!) !== 1 || (conv.input[2] && (!bias || uses.get(bias.name!) !== 1))) continue;
    const [gamma, beta, mean, variance] = params.map((p) => tensorFloats(p!)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const eps = bn.attribute?.find((a) => a.name === 'epsilon' && a.type === AttributeType.FLOAT)?.f ?? 1e-5;
    const out = w.dims![0]!;
    if (gamma.length !== out) continue;
    const weights = tensorFloats(w);
    const per = weights.length / out;
    const b = bias ? tensorFloats(bias) : new Float32Array(out);
    const newW = new Float32Array(weights.length);
    const newB = new Float32Array(out);
    for (let c = 0; c < out; c++) {
      const a = gamma[c]! / Math.sqrt(variance[c]! + eps);
      for (let k = 0; k < per; k++) newW[c * per + k] = weights[c * per + k]! * a;
      newB[c] = (b[c]! - mean[c]!) * a + beta[c]!;
    }
    replace(graph.initializer, w, floatTensor(w.name!, w.dims!, newW));
    const biasName = bias?.name ?? `${w.name}/folded_bias`;
    if (bias) replace(graph.initializer, bias, floatTensor(biasName, [out], newB));
    else {
      graph.initializer.push(floatTensor(biasName, [out], newB));
      conv.input[2] = biasName;
    }
    conv.output[0] = bn.output[0]!;
    removed.add(bn);
    for (const p of bn.input.slice(1)) uses.set(p, (uses.get(p) ?? 1) - 1);
    folded++;
  }
  if (!folded) return 0;
  graph.node.splice(0, graph.node.length, ...graph.node.filter((n) => !removed.has(n)));
  const live = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer.splice(0, graph.initializer.length, ...graph.initializer.filter((t) => live.has(t.name!)));
  return folded;
}

function replace(list: TensorProto[], old: TensorProto, next: TensorProto): void {
  list[list.indexOf(old)] = next;
}

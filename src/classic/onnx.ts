// ONNX export of classic models as plain ai.onnx ops (opset 17), so any runtime runs them: standardisation
// (Sub/Div), linear models as MatMul+Add(+Softmax), kernel SVMs with the kernel matrix against the stored support
// vectors built from MatMul (rbf: ‖z‖² + ‖s‖² − 2zsᵀ → Exp), then the same output rules as model.ts.
import { DataType, encodeModel, graphBuilder, irVersionForOpset, valueInfo, type ModelProto } from '../onnx/index.js';
import type { ClassicModel } from './model.js';

export const CLASSIC_ONNX_OPSET = 17;
const BATCH = 'batch';

export interface ClassicOnnxOptions {
  /** Per-example input shape: [features] for tabular data, [h, w, 3] for pixel models. */
  inputShape: number[];
  name?: string;
  /** Graph input/output names (the manifest's input.name and output.name; default input / output). */
  inputName?: string;
  outputName?: string;
}

export function buildClassicOnnx(model: ClassicModel, opts: ClassicOnnxOptions): ModelProto {
  const d = model.inputSize;
  const IN = opts.inputName ?? 'input', OUT = opts.outputName ?? 'output';
  const g = graphBuilder([IN, OUT]);
  const f32 = (base: string, dims: number[], values: ArrayLike<number>) => g.floatConst(base, dims, Float32Array.from(values as ArrayLike<number>));
  let x = IN;
  if (opts.inputShape.length !== 1) x = g.node('Reshape', [x, g.int64Const('flat_shape', [2], [-1, d])], [g.unique('flat')]);
  const centred = g.node('Sub', [x, f32('mean', [d], model.standardization.mean)], [g.unique('centred')]);
  const z = g.node('Div', [centred, f32('scale', [d], model.standardization.scale)], [g.unique('z')]);
  const k = model.output.size;
  const transpose = (rows: number[][], cols: number) => {
    const out = new Float32Array(cols * rows.length);
    rows.forEach((r, i) => r.forEach((v, j) => (out[j * rows.length + i] = v)));
    return out;
  };
  const affine = (input: string, rows: number[][], bias: number[], base: string) => {
    const mm = g.node('MatMul', [input, f32(`${base}_weights`, [d, rows.length], transpose(rows, d))], [g.unique(`${base}_matmul`)]);
    return g.node('Add', [mm, f32(`${base}_bias`, [rows.length], bias)], [g.unique(base)]);
  };
  if (model.linear) {
    const logits = affine(z, model.linear.weights, model.linear.bias, 'logits');
    if (model.linear.activation === 'softmax') g.node('Softmax', [logits], [OUT], { axis: -1 });
    else g.node('Identity', [logits], [OUT]);
  } else {
    const svm = model.svm!;
    const m = svm.machines.length;
    let dec: string;
    if (svm.machines.every((mc) => mc.w)) {
      dec = affine(z, svm.machines.map((mc) => mc.w!), svm.machines.map((mc) => mc.bias), 'decision');
    } else {
      const sv = svm.supportVectors;
      const nsv = sv.length;
      if (nsv === 0) throw new Error('the SVM has no support vectors');
      const svT = new Float32Array(d * nsv);
      sv.forEach((r, i) => r.forEach((v, j) => (svT[j * nsv + i] = v)));
      const zs = g.node('MatMul', [z, f32('support_vectors_t', [d, nsv], svT)], [g.unique('z_dot_sv')]);
      const { type, gamma, coef0, degree } = svm.kernel;
      let kmat: string;
      if (type === 'rbf') {
        const zz = g.node('MatMul', [g.node('Mul', [z, z], [g.unique('z_sq')]), f32('ones_d', [d, 1], new Float32Array(d).fill(1))], [g.unique('z_norm2')]);
        const svNorm = sv.map((r) => r.reduce((a, v) => a + v * v, 0));
        const cross = g.node('Mul', [zs, f32('minus_two', [], [-2])], [g.unique('cross')]);
        const dist = g.node('Add', [g.node('Add', [cross, zz], [g.unique('dist_a')]), f32('sv_norm2', [1, nsv], svNorm)], [g.unique('dist')]);
        const clamped = g.node('Relu', [dist], [g.unique('dist_pos')]);
        kmat = g.node('Exp', [g.node('Mul', [clamped, f32('neg_gamma', [], [-gamma])], [g.unique('scaled_dist')])], [g.unique('kernel')]);
      } else {
        const lin = type === 'poly' ? g.node('Add', [g.node('Mul', [zs, f32('gamma', [], [gamma])], [g.unique('gz')]), f32('coef0', [], [coef0])], [g.unique('poly_base')]) : zs;
        kmat = type === 'poly' ? g.node('Pow', [lin, f32('degree', [], [degree])], [g.unique('kernel')]) : lin;
      }
      const coef = new Float32Array(nsv * m);
      svm.machines.forEach((mc, c) => mc.sv.forEach((s, t) => (coef[s * m + c] += mc.coef[t]!)));
      const mm = g.node('MatMul', [kmat, f32('dual_coef', [nsv, m], coef)], [g.unique('decision_matmul')]);
      dec = g.node('Add', [mm, f32('decision_bias', [m], svm.machines.map((mc) => mc.bias))], [g.unique('decision')]);
    }
    const platt = (input: string, a: number[], b: number[]) => {
      // P = 1 / (1 + exp(a f + b)) = sigmoid(−(a f + b))
      const lin = g.node('Add', [g.node('Mul', [input, f32('platt_a', [a.length], a.map((v) => -v))], [g.unique('platt_af')]), f32('platt_b', [b.length], b.map((v) => -v))], [g.unique('platt_lin')]);
      return g.node('Sigmoid', [lin], [g.unique('platt_p')]);
    };
    if (svm.kind === 'svr') g.node('Identity', [dec], [OUT]);
    else if (svm.multiclass === 'binary') {
      if (svm.probability) {
        const p = platt(dec, [svm.machines[0]!.platt!.a], [svm.machines[0]!.platt!.b]);
        const q = g.node('Sub', [f32('one', [], [1]), p], [g.unique('p_neg')]);
        g.node('Concat', [q, p], [OUT], { axis: 1 });
      } else g.node('Concat', [g.node('Neg', [dec], [g.unique('neg_decision')]), dec], [OUT], { axis: 1 });
    } else if (svm.multiclass === 'ovr') {
      if (svm.probability) {
        const p = platt(dec, svm.machines.map((mc) => mc.platt!.a), svm.machines.map((mc) => mc.platt!.b));
        const sum = g.node('MatMul', [p, f32('ones_m', [m, 1], new Float32Array(m).fill(1))], [g.unique('p_sum')]);
        g.node('Div', [p, sum], [OUT]);
      } else g.node('Identity', [dec], [OUT]);
    } else {
      if (svm.probability) throw new Error('one-vs-one SVMs with probabilities (pairwise coupling) have no ONNX graph here; train with --multiclass ovr for an ONNX file');
      // Votes: each machine adds 1 to its positive class when f > 0, else to its negative class.
      const pos = g.node('Cast', [g.node('Greater', [dec, f32('zero', [], [0])], [g.unique('wins')])], [g.unique('wins_f')], { to: DataType.FLOAT });
      const neg = g.node('Sub', [f32('one', [], [1]), pos], [g.unique('losses_f')]);
      const pm = new Float32Array(m * k), nm = new Float32Array(m * k);
      svm.machines.forEach((mc, c) => {
        pm[c * k + mc.positive] = 1;
        nm[c * k + mc.negative] = 1;
      });
      const vp = g.node('MatMul', [pos, f32('vote_pos', [m, k], pm)], [g.unique('votes_pos')]);
      const vn = g.node('MatMul', [neg, f32('vote_neg', [m, k], nm)], [g.unique('votes_neg')]);
      g.node('Add', [vp, vn], [OUT]);
    }
  }
  return {
    irVersion: irVersionForOpset(CLASSIC_ONNX_OPSET),
    opsetImport: [{ domain: '', version: CLASSIC_ONNX_OPSET }],
    producerName: 'mlctl',
    producerVersion: '1',
    graph: {
      name: opts.name ?? `classic_${model.model}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(IN, DataType.FLOAT, [BATCH, ...opts.inputShape])],
      output: [valueInfo(OUT, DataType.FLOAT, [BATCH, k])],
    },
    metadataProps: [{ key: 'mlctl.classic.model', value: model.model }],
  };
}

export function classicOnnxModel(model: ClassicModel, opts: ClassicOnnxOptions): Uint8Array {
  return encodeModel(buildClassicOnnx(model, opts));
}

/**
 * One ONNX file for image → backbone → classic model: the backbone graph (its single output renamed into the
 * classic graph's input) followed by the classic graph with every internal name prefixed so nothing collides.
 */
export function appendToBackbone(backbone: ModelProto, classic: ModelProto, prefix = 'classic/'): ModelProto {
  const bOut = backbone.graph.output[0]!.name;
  const cIn = classic.graph.input[0]!.name, cOut = classic.graph.output[0]!.name;
  const rename = (n: string) => (n === cIn ? bOut : n === cOut ? n : `${prefix}${n}`);
  const nodes = classic.graph.node.map((n) => ({ ...n, ...(n.name ? { name: `${prefix}${n.name}` } : {}), input: n.input.map(rename), output: n.output.map(rename) }));
  const inits = classic.graph.initializer.map((t) => ({ ...t, name: rename(t.name!) }));
  return {
    ...backbone,
    graph: {
      ...backbone.graph,
      name: `${backbone.graph.name}_${classic.graph.name}`,
      node: [...backbone.graph.node, ...nodes],
      initializer: [...backbone.graph.initializer, ...inits],
      output: classic.graph.output,
    },
    metadataProps: [...(backbone.metadataProps ?? []), ...(classic.metadataProps ?? [])],
  };
}

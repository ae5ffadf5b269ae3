// Small real ONNX models with named tensors of several datatypes, built with mlctl's own ONNX builders (no Python):
// what the engine, batcher and serve tests of generic tensor models run.
import { DataType, encodeModel, graphBuilder, irVersionForOpset, valueInfo } from '../../src/onnx/index.js';

export const MIXED_BIAS = [0.5, -1, 2, -3];

/** y = x · float(k) + bias, flag = y > 0: x FP32 [N, 4], k INT64 [N, 1] → y FP32 [N, 4], flag BOOL [N, 4]. */
export function mixedModel(): Uint8Array {
  const g = graphBuilder(['x', 'k', 'y', 'flag']);
  const kf = g.node('Cast', ['k'], [g.unique('k_float')], { to: DataType.FLOAT });
  const scaled = g.node('Mul', ['x', kf], [g.unique('scaled')]);
  g.node('Add', [scaled, g.floatConst('bias', [4], MIXED_BIAS)], ['y']);
  g.node('Greater', ['y', g.floatConst('zero', [], [0])], ['flag']);
  const graph = {
    name: 'mixed',
    node: g.nodes,
    initializer: g.initializers,
    input: [valueInfo('x', DataType.FLOAT, ['batch', 4]), valueInfo('k', DataType.INT64, ['batch', 1])],
    output: [valueInfo('y', DataType.FLOAT, ['batch', 4]), valueInfo('flag', DataType.BOOL, ['batch', 4])],
  };
  return encodeModel({ irVersion: irVersionForOpset(13), opsetImport: [{ domain: '', version: 13 }], producerName: 'mlctl-test', graph });
}

/** z = 2 · w with a fixed shape [2, 3]: no batch dimension. */
export function fixedModel(): Uint8Array {
  const g = graphBuilder(['w', 'z']);
  g.node('Mul', ['w', g.floatConst('two', [], [2])], ['z']);
  const graph = { name: 'fixed', node: g.nodes, initializer: g.initializers, input: [valueInfo('w', DataType.FLOAT, [2, 3])], output: [valueInfo('z', DataType.FLOAT, [2, 3])] };
  return encodeModel({ irVersion: irVersionForOpset(13), opsetImport: [{ domain: '', version: 13 }], producerName: 'mlctl-test', graph });
}

// The ONNX model of an fc1 shard's forward product (onnx-shard.ts), built where protobuf is already loaded: the main
// thread builds it once and hands the bytes to each shard's worker.
import { graphBuilder, valueInfo } from '../onnx/builders.js';
import { DataType, encodeModel, irVersionForOpset } from '../onnx/proto.js';
import { FC_BLOCK } from './fc-kernel.js';

const OPSET = 17;

/** x [n, rows] · w [rows, paddedUnits] → [n, units] (the padding columns left out). */
export function fcForwardGraph(rows: number, units: number): Uint8Array {
  const padded = Math.ceil(units / FC_BLOCK) * FC_BLOCK;
  const b = graphBuilder(['x', 'w', 'z']);
  const full = padded === units ? 'z' : b.unique('zp');
  b.node('MatMul', ['x', 'w'], [full]);
  if (full !== 'z') b.node('Slice', [full, b.int64Const('start', [1], [0]), b.int64Const('end', [1], [units]), b.int64Const('axis', [1], [1])], ['z']);
  const F = DataType.FLOAT;
  return encodeModel({
    irVersion: irVersionForOpset(OPSET),
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'mlctl',
    graph: { name: 'fc1_shard', node: b.nodes, initializer: b.initializers, input: [valueInfo('x', F, ['n', rows]), valueInfo('w', F, [rows, padded])], output: [valueInfo('z', F, ['n', units])] },
  });
}

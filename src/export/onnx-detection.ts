// A detection model's decoding inside its ONNX graph: the CenterNet map (models/detection/decode.ts's rule) becomes
// boxes, scores and labels, then ONNX NonMaxSuppression per class, so Triton or plain ONNX Runtime serve boxes without
// mlctl. The steps: 3x3 max-pool peaks of the heat map, the top K peaks of each picture over all classes, their
// boxes from the size and offset channels, NonMaxSuppression (IoU threshold, per class) on those K, sorted by
// picture then score. Outputs, M detections over the batch: boxes [M, 4] (x1, y1, x2, y2 in the model's input
// pixels), scores [M], labels [M] (int64 label index), batch_index [M] (int64, which picture).
import type { CenterNetSection } from '../artifacts/manifest.js';
import { DataType, graphBuilder, valueInfo, type ModelProto } from '../onnx/index.js';

export const DECODED_OUTPUTS = { boxes: 'boxes', scores: 'scores', labels: 'labels', batchIndex: 'batch_index' } as const;

/** NonMaxSuppression's default IoU threshold: boxes of one class overlapping more than this keep the better one. */
export const DEFAULT_NMS_IOU = 0.5;

export interface DecodeGraphOptions {
  /** IoU above which NonMaxSuppression drops the lower-scoring box of a class (default 0.5). */
  iouThreshold?: number;
}

/** Append decoding + NMS to `proto` (in place): its one output (the centernet map) is replaced by the four above. */
export function appendCenterNetDecode(proto: ModelProto, d: CenterNetSection, opts: DecodeGraphOptions = {}): { iouThreshold: number; topK: number } {
  const graph = proto.graph;
  if (graph.output.length !== 1) throw new Error(`a centernet graph has one output (the map); this one has ${graph.output.length}`);
  const map = graph.output[0]!.name;
  const taken = [...graph.node.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]), ...graph.initializer.map((t) => t.name), ...graph.input.map((v) => v.name)].filter((x): x is string => typeof x === 'string');
  const g = graphBuilder([...taken, ...Object.values(DECODED_OUTPUTS)]);
  const [gh, gw] = d.grid;
  const C = d.classes;
  const S = gh * gw;
  const K = Math.min(d.maxDetections, S * C);
  const iou = opts.iouThreshold ?? DEFAULT_NMS_IOU;
  const n = (op: string, inputs: string[], attrs: Record<string, number | number[] | { float: number }> = {}, base = op.toLowerCase()) => g.node(op, inputs, [g.unique(`decode/${base}`)], attrs);
  const i64 = (name: string, values: number[], dims = [values.length]) => g.int64Const(`decode/${name}`, dims, values);
  const f32 = (name: string, values: number[], dims = [values.length]) => g.floatConst(`decode/${name}`, dims, values);

  // Heat map [B, gh, gw, C] and the regression channels [B, S, 4] (w, h, dx, dy in grid cells).
  const heat = n('Slice', [map, i64('heat_start', [0]), i64('heat_end', [C]), i64('last_axis', [3])], {}, 'heat');
  const reg = n('Reshape', [n('Slice', [map, i64('reg_start', [C]), i64('reg_end', [C + 4]), i64('last_axis', [3])], {}, 'reg_nhwc'), i64('reg_shape', [0, S, 4])], {}, 'reg');
  // A peak is the maximum of its 3x3 neighbourhood in its class (decode.ts: no neighbour scores higher).
  const nchw = n('Transpose', [heat], { perm: [0, 3, 1, 2] }, 'heat_nchw');
  const pooled = n('Transpose', [n('MaxPool', [nchw], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }, 'heat_max')], { perm: [0, 2, 3, 1] }, 'heat_max_nhwc');
  const peaks = n('Mul', [heat, n('Cast', [n('Equal', [heat, pooled], {}, 'is_peak')], { to: DataType.FLOAT }, 'peak_mask')], {}, 'peaks');
  // Top K of each picture over cells and classes: flat index = cell * C + class, as decode.ts ranks (cell, class).
  const flat = n('Reshape', [peaks, i64('flat_shape', [0, S * C])], {}, 'peaks_flat');
  const top = g.unique('decode/top_scores');
  const topIdx = g.unique('decode/top_index');
  g.node('TopK', [flat, i64('k', [K])], [top, topIdx], { axis: 1, largest: 1, sorted: 1 });
  const cell = n('Div', [topIdx, i64('classes', [C], [])], {}, 'cell');
  const label = n('Mod', [topIdx, i64('classes', [C], [])], {}, 'label');
  // The K candidates' regression values and grid positions.
  const gatherIdx = n('Expand', [n('Unsqueeze', [cell, i64('axis_last', [2])], {}, 'cell_3d'), n('Concat', [n('Shape', [cell], {}, 'bk'), i64('four', [4])], { axis: 0 }, 'bk4')], {}, 'cell_idx');
  const r = n('GatherElements', [reg, gatherIdx], { axis: 1 }, 'cand_reg');
  const ch = (i: number, name: string) => n('Squeeze', [n('Slice', [r, i64(`${name}_s`, [i]), i64(`${name}_e`, [i + 1]), i64('axis_last', [2])], {}, `${name}_3d`), i64('axis_last', [2])], {}, name);
  const w = n('Relu', [ch(0, 'w_raw')], {}, 'w');
  const h = n('Relu', [ch(1, 'h_raw')], {}, 'h');
  const cellF = n('Cast', [cell], { to: DataType.FLOAT }, 'cell_f');
  const gwF = f32('grid_w', [gw], []);
  const gy = n('Floor', [n('Div', [cellF, gwF], {}, 'row_f')], {}, 'row');
  const gx = n('Sub', [cellF, n('Mul', [gy, gwF], {}, 'row_start')], {}, 'col');
  const cx = n('Add', [gx, ch(2, 'dx')], {}, 'cx');
  const cy = n('Add', [gy, ch(3, 'dy')], {}, 'cy');
  const half = f32('half', [0.5], []);
  const hw = n('Mul', [w, half], {}, 'half_w');
  const hh = n('Mul', [h, half], {}, 'half_h');
  // Input pixels per grid cell (the grid covers the input exactly: validateManifest checks it).
  const sx = f32('stride', [d.stride], []);
  const sy = sx;
  const corner = (a: string, b: string, op: 'Sub' | 'Add', s: string, name: string) => n('Unsqueeze', [n('Mul', [n(op, [a, b], {}, `${name}_cells`), s], {}, `${name}_px`), i64('axis_last', [2])], {}, name);
  const boxes = n('Concat', [corner(cx, hw, 'Sub', sx, 'x1'), corner(cy, hh, 'Sub', sy, 'y1'), corner(cx, hw, 'Add', sx, 'x2'), corner(cy, hh, 'Add', sy, 'y2')], { axis: 2 }, 'cand_boxes');
  // Scores per class for NonMaxSuppression [B, C, K]: each candidate scores only in its own class.
  const onehot = n('OneHot', [label, i64('depth', [C], []), f32('onehot_values', [0, 1])], { axis: -1 }, 'label_onehot');
  const classScores = n('Transpose', [n('Mul', [onehot, n('Unsqueeze', [top, i64('axis_last', [2])], {}, 'top_3d')], {}, 'class_scores_bkc')], { perm: [0, 2, 1] }, 'class_scores');
  // score_threshold 0: NonMaxSuppression keeps scores above it, so the zeros of other classes and non-peaks drop out.
  const selected = n('NonMaxSuppression', [boxes, classScores, i64('max_per_class', [K]), f32('iou_threshold', [iou]), f32('score_threshold', [0])], { center_point_box: 0 }, 'selected');
  const col = (i: number, name: string) => n('Squeeze', [n('Slice', [selected, i64(`${name}_s`, [i]), i64(`${name}_e`, [i + 1]), i64('axis_1', [1])], {}, `${name}_2d`), i64('axis_1', [1])], {}, name);
  const b = col(0, 'sel_batch');
  const c = col(1, 'sel_class');
  const scores = n('GatherND', [classScores, selected], {}, 'sel_scores');
  const bk = n('Concat', [n('Unsqueeze', [b, i64('axis_1', [1])], {}, 'sel_b2'), n('Unsqueeze', [col(2, 'sel_cand'), i64('axis_1', [1])], {}, 'sel_k2')], { axis: 1 }, 'sel_bk');
  const selBoxes = n('GatherND', [boxes, bk], {}, 'sel_boxes');
  // Picture by picture, best first: ascending key = 2·picture + (1 − score) (scores are sigmoids in (0, 1]).
  const key = n('Add', [n('Mul', [n('Cast', [b], { to: DataType.FLOAT }, 'sel_b_f'), f32('two', [2], [])], {}, 'key_b'), n('Sub', [f32('one', [1], []), scores], {}, 'key_s')], {}, 'key');
  const order = g.unique('decode/order');
  g.node('TopK', [key, n('Shape', [key], {}, 'count')], [g.unique('decode/sorted_key'), order], { axis: 0, largest: 0, sorted: 1 });
  g.node('Gather', [selBoxes, order], [DECODED_OUTPUTS.boxes], { axis: 0 });
  g.node('Gather', [scores, order], [DECODED_OUTPUTS.scores], { axis: 0 });
  g.node('Gather', [c, order], [DECODED_OUTPUTS.labels], { axis: 0 });
  g.node('Gather', [b, order], [DECODED_OUTPUTS.batchIndex], { axis: 0 });
  graph.node = [...graph.node, ...g.nodes];
  graph.initializer = [...graph.initializer, ...g.initializers];
  graph.output = [
    valueInfo(DECODED_OUTPUTS.boxes, DataType.FLOAT, ['detections', 4]),
    valueInfo(DECODED_OUTPUTS.scores, DataType.FLOAT, ['detections']),
    valueInfo(DECODED_OUTPUTS.labels, DataType.INT64, ['detections']),
    valueInfo(DECODED_OUTPUTS.batchIndex, DataType.INT64, ['detections']),
  ];
  return { iouThreshold: iou, topK: K };
}

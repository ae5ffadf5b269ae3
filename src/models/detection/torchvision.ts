// torchvision detection models exported with their own post-processing (SSD, SSDLite, Faster R-CNN, RetinaNet):
// boxes [n, 4] as x1, y1, x2, y2 in input pixels, scores [n], labels [n] in torchvision's numbering (0: background).
// The model already ran NMS and kept its best detections: decoding only maps labels and applies the caller's limits.
import type { TorchvisionSection } from '../../artifacts/manifest.js';
import { toNumbers, type Tensor } from '../../runtime/tensor.js';
import type { DecodedBox, DecodeOptions } from './decode.js';

export type TorchvisionLayout = Pick<TorchvisionSection, 'classes' | 'labelOffset' | 'maxDetections'>;

/** One image's boxes, scores and labels → boxes in input pixels, best first (labels outside the model's classes dropped). */
export function decodeTorchvision(boxes: ArrayLike<number>, scores: ArrayLike<number>, labels: ArrayLike<number>, layout: TorchvisionLayout, opts: DecodeOptions = {}): DecodedBox[] {
  const minScore = opts.minScore ?? 0;
  const out: DecodedBox[] = [];
  for (let i = 0; i < scores.length; i++) {
    const label = Number(labels[i]) - layout.labelOffset;
    const score = scores[i]!;
    if (!(score >= minScore) || label < 0 || label >= layout.classes) continue;
    const [x1, y1, x2, y2] = [boxes[i * 4]!, boxes[i * 4 + 1]!, boxes[i * 4 + 2]!, boxes[i * 4 + 3]!];
    out.push({ label, score, x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) });
  }
  // torchvision answers best first already; sorting again keeps that promise for any exporter.
  out.sort((a, b) => b.score - a.score);
  return out.slice(0, opts.maxDetections ?? layout.maxDetections);
}

/** The fetches of one image (torchvision detection exports take one image, no batch dimension) → its boxes. */
export function decodeTorchvisionOutputs(section: TorchvisionSection, fetches: readonly Tensor[], opts: DecodeOptions = {}): DecodedBox[][] {
  const get = (name: string) => {
    const t = fetches.find((f) => f.name === name);
    if (!t) throw new RangeError(`the torchvision output ${name} is not among the fetched outputs (${fetches.map((f) => f.name).join(', ')})`);
    return t;
  };
  const [boxes, scores, labels] = [get(section.outputs.boxes), get(section.outputs.scores), get(section.outputs.labels)];
  // A batched export ([batch, n, 4]) decodes per image; the usual single-image export is one.
  const batch = boxes.shape.length === 3 ? boxes.shape[0]! : 1;
  const per = scores.shape[scores.shape.length - 1] ?? 0;
  const [b, s, l] = [toNumbers(boxes), toNumbers(scores), toNumbers(labels)];
  return Array.from({ length: batch }, (_, i) => decodeTorchvision(b.subarray(i * per * 4, (i + 1) * per * 4), s.subarray(i * per, (i + 1) * per), l.subarray(i * per, (i + 1) * per), section, opts));
}

// A detection model's output tensors → boxes per image, in model-input pixels: one entry point that dispatches on
// the manifest's detection head. centernet: the one [n, grid h, grid w, classes + 4] map (decode.ts). Heads for
// imported detectors (YOLO-style [n, 4 + classes, N], torchvision's boxes/scores/labels) are one more case each.
import type { CenterNetSection, DetectionSection } from '../../artifacts/manifest.js';
import { MlctlError } from '../../errors.js';
import { elementCount, toNumbers, type Tensor } from '../../runtime/tensor.js';
import { decodeCenterNet, type DecodedBox } from './decode.js';
import { decodeTorchvisionOutputs } from './torchvision.js';
import { decodeYoloOutputs } from './yolo.js';

export type { DecodedBox } from './decode.js';

export interface DecodeDetectionsOptions {
  /** The output the section describes (the manifest's output name); default: the first fetch. */
  outputName?: string;
  /** Drop boxes scoring below this (default 0: keep the top maxDetections, as COCO evaluation wants). */
  minScore?: number;
  /** Most boxes per image (default: the section's maxDetections). */
  maxDetections?: number;
}

/** The model input's size [h, w] a CenterNet section's boxes are in: the grid times the stride (an imported head's is the manifest's image input). */
export function detectionInputSize(section: DetectionSection | Pick<CenterNetSection, 'grid' | 'stride'>): [number, number] {
  if ('head' in section && section.head !== 'centernet') throw new MlctlError('PACKAGE_INVALID', [section.head, 'an imported detector\'s boxes are in its manifest\'s image input size, not a grid times a stride']);
  const s = section as Pick<CenterNetSection, 'grid' | 'stride'>;
  return [s.grid[0] * s.stride, s.grid[1] * s.stride];
}

function fetchOf(fetches: readonly Tensor[], name: string | undefined): Tensor {
  const t = (name !== undefined ? fetches.find((f) => f.name === name) : undefined) ?? fetches[0];
  if (!t) throw new MlctlError('PACKAGE_INVALID', [name ?? 'the detector', 'the model returned no output tensor']);
  return t;
}

/** One batch of a detector's fetches → per image, its boxes (best first) in model-input pixels. */
export function decodeDetections(section: DetectionSection, fetches: readonly Tensor[], opts: DecodeDetectionsOptions = {}): DecodedBox[][] {
  const decode = { minScore: opts.minScore ?? 0, maxDetections: opts.maxDetections ?? section.maxDetections };
  switch (section.head) {
    case 'centernet': {
      const out = fetchOf(fetches, opts.outputName);
      const per = section.grid[0] * section.grid[1] * (section.classes + 4);
      const n = out.shape.length ? out.shape[0]! : 1;
      const width = out.shape.length > 1 ? elementCount(out.shape.slice(1)) : per;
      if (width !== per) throw new MlctlError('PACKAGE_INVALID', [out.name, `the centernet output has ${width} values per image, the detection section describes ${section.grid[0]}x${section.grid[1]}x${section.classes + 4} = ${per}`]);
      const data = toNumbers(out);
      const size = detectionInputSize(section);
      return Array.from({ length: n }, (_, i) => decodeCenterNet(data.subarray(i * per, (i + 1) * per), section.grid, section.classes, size, decode));
    }
    case 'yolo':
      return decodeYoloOutputs(section, fetches, decode);
    case 'torchvision':
      return decodeTorchvisionOutputs(section, fetches, decode);
    default:
      throw new MlctlError('PACKAGE_INVALID', [String((section as { head?: unknown }).head), 'this mlctl cannot decode that detection head']);
  }
}

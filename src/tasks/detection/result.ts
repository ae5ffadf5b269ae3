// What the detection task makes of one image: its boxes in the picture's own pixels, best first.
import type { Box } from '../../data/detection/types.js';

export type { Box };

export interface Detection {
  label: string;
  /** The label's index in the model's labels (its heatmap channel): what metrics and watch key on. */
  classIndex: number;
  score: number;
  /** Top-left corner and size, in the original picture's pixels. */
  box: Box;
}

export interface DetectionResult {
  detections: Detection[];
}

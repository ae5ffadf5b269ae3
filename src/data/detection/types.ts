// What a detection dataset is to mlctl, whichever format it came in (COCO JSON, YOLO txt, Pascal VOC XML): images
// with their pixel size and boxes, class names, the splits the dataset declares, and every problem found, located.

/** A box in an image's own pixels: top-left corner and size (COCO's [x, y, w, h], the /predict answer's box). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface BoxAnnotation {
  /** Index into the dataset's labels. */
  label: number;
  box: Box;
  /** A COCO crowd region or a VOC "difficult" object: neither a true nor a false positive when evaluating. */
  iscrowd?: boolean;
  /** Where it was read: "labels/train/img1.txt:3", "annotations.json annotations[12]", "Annotations/a.xml object 2". */
  source: string;
}

export interface DetectionSample {
  /** 1-based image id (COCO's own ids when read from COCO). */
  id: number;
  /** Absolute path of the image file. */
  path: string;
  width: number;
  height: number;
  boxes: BoxAnnotation[];
}

export type DetectionFormat = 'coco' | 'yolo' | 'voc';
export type DetectionSplitName = 'train' | 'val' | 'test';

export type IssueKind = 'outside-image' | 'zero-area' | 'unknown-class' | 'malformed' | 'missing-image' | 'unreadable-image';

/** A problem found in a dataset, with where it is: a file and a line, or a file and an index. */
export interface DatasetIssue {
  kind: IssueKind;
  /** The annotation or image file concerned. */
  file: string;
  /** 1-based line (YOLO txt) or 0-based index (COCO annotations[], VOC object). */
  line?: number;
  index?: number;
  message: string;
}

export interface DetectionDataset {
  format: DetectionFormat;
  /** Where it was read from (the folder, the data.yaml or the annotations file). */
  root: string;
  labels: string[];
  /**
   * The dataset's own category id of each label (COCO category ids; for YOLO and VOC 1 + the class index), so results
   * written as COCO JSON carry the ids the annotations use.
   */
  categoryIds: number[];
  /** The splits the dataset declares (a split it does not declare is absent). */
  splits: Partial<Record<DetectionSplitName, DetectionSample[]>>;
  /** Problems found; invalid boxes are listed here and left out of the samples. */
  issues: DatasetIssue[];
}

export const boxArea = (b: Box) => b.width * b.height;

/** COCO's size classes: small < 32², medium < 96², large. */
export function cocoSizeClass(area: number): 'small' | 'medium' | 'large' {
  return area < 32 ** 2 ? 'small' : area < 96 ** 2 ? 'medium' : 'large';
}

/** "file:line", "file [index]" or "file": how messages name an issue's place. */
export function issuePlace(i: Pick<DatasetIssue, 'file' | 'line' | 'index'>): string {
  return i.line !== undefined ? `${i.file}:${i.line}` : i.index !== undefined ? `${i.file} [${i.index}]` : i.file;
}

// `mlctl import FILE --name NAME`: the option table (light; the runner is cli/run/import.ts). A model made elsewhere —
// ONNX, a TF.js layers model.json, a whole-model Keras .h5 — becomes a normal package (docs/import.md).
import { NAME } from '../options.js';
import { defineCommand, type ContextOf } from '../spec.js';

export const importCommand = defineCommand({
  name: 'import',
  summary: 'package a model made elsewhere (ONNX, TF.js model.json, Keras .h5) as a generic tensor model, a classifier or a detector',
  description:
    'Reads the model\'s inputs and outputs, inlines ONNX external data, opens it in ONNX Runtime and runs it once on zeros, so a model that cannot run ' +
    '(an operator ORT lacks, missing external data, a dynamic dimension it needs) fails here with the reason and nothing is written. ' +
    'Without --task the package is a generic tensor model, served over KServe V2, TF Serving :predict and Triton with its own named tensors. ' +
    'With --task image-classification (--labels, --preprocessing …) it is a classifier that serve /predict, evaluate, quantize and watch treat like a trained one; ' +
    'with --task detection --layout yolo|torchvision, a detector whose boxes decode as Ultralytics\' NMS or torchvision\'s outputs say. ' +
    'TF.js layers models and Keras .h5 models are converted to ONNX by mlctl\'s converter. The package has hashes, lineage (origin file and its sha256) and an audit line, and can be signed and encrypted.',
  args: ['<file>'],
  options: [
    { ...NAME, required: true },
    { flags: '--task <task>', description: 'what the model does (absent: a generic tensor model)', choices: ['image-classification', 'detection'] },
    { flags: '--labels <file|list>', description: 'class names in output order: a file (one per line, or a JSON array) or a comma list a,b,c' },
    { flags: '--preprocessing <mode>', description: 'how raw RGB pixels become the input: caffe (BGR minus ImageNet means), tf ([-1, 1]), torch (/255, ImageNet mean/std), unit (/255), raw', choices: ['caffe', 'tf', 'torch', 'unit', 'raw'] },
    { flags: '--image-size <HxW>', description: 'input height x width (or one number) when the model leaves them dynamic, e.g. 224 or 320x320' },
    { flags: '--layout <layout>', description: 'image tensor layout NCHW | NHWC (default: read from the input shape); with --task detection the output layout: yolo (Ultralytics [1, 4+classes(+1), anchors] before NMS) or torchvision (boxes, scores, labels)', choices: ['NCHW', 'NHWC', 'yolo', 'torchvision'] },
    { flags: '--channel-order <order>', description: 'channel order the model expects (default: the --preprocessing mode\'s: BGR for caffe, else RGB)', choices: ['RGB', 'BGR'] },
    { flags: '--mean <values>', description: 'per-channel mean subtracted after scaling, in the model\'s channel order (overrides the mode\'s), e.g. 0.485,0.456,0.406', type: 'list' },
    { flags: '--std <values>', description: 'per-channel divisor after the mean (overrides the mode\'s), e.g. 0.229,0.224,0.225', type: 'list' },
    { flags: '--resize <rule>', description: 'how pictures are fitted to the input: fill (stretch), cover (scale and centre-crop), contain (scale and pad)', choices: ['fill', 'cover', 'contain'], default: 'fill' },
    { flags: '--input-shape <name:dims...>', description: 'size of dynamic input dimensions, batch first, e.g. input:1x3x224x224 (repeat or comma-separate for several inputs; a dynamic batch dimension stays dynamic)', type: 'list' },
    { flags: '--max-detections <n>', description: 'detection: most boxes kept per image (default 300 for yolo, 100 for torchvision)', type: 'int', min: 1 },
    { flags: '--iou-threshold <x>', description: 'detection (yolo): NMS IoU threshold (default Ultralytics\': 0.7 for YOLOv8 heads, 0.45 with objectness)', type: 'float', min: 0.01, max: 1 },
    { flags: '--score-threshold <x>', description: 'detection (yolo): drop candidates scoring below this before NMS', type: 'float', min: 0, max: 0.999, default: 0.25 },
    { flags: '--version <n>', description: 'write this package version instead of the next free one (fails if it exists)', type: 'int', min: 1 },
  ],
  examples: [
    'mlctl import resnet18.onnx --name resnet18',
    'mlctl import resnet18.onnx --name resnet18-cls --task image-classification --labels imagenet.txt --preprocessing torch',
    'mlctl import model.onnx --name seg --input-shape input:1x3x512x512',
    'mlctl import yolov8n.onnx --name yolo --task detection --layout yolo --labels coco.txt --preprocessing unit',
    'mlctl import ssdlite.onnx --name ssd --task detection --layout torchvision --labels coco91.txt --preprocessing unit',
    'mlctl import web_model/model.json --name keras-cls --task image-classification --labels a,b,c --preprocessing tf',
  ],
});

export type ImportContext = ContextOf<typeof importCommand>;

// `mlctl export MODEL --format tfjs|onnx|triton|bundle --out DIR`: the option table of exports. Light: the runner
// (cli/run/export.ts) is imported only when export runs.
import type { ExportFormat } from '../../export/source.js';
import { DEVICE, WEIGHT_DTYPE_CHOICES } from '../options.js';
import { SIGNATURE_OPTIONS } from '../package-access.js';
import { choicesOf, defineCommand, type ContextOf } from '../spec.js';

export const EXPORT_FORMAT_CHOICES = choicesOf<ExportFormat>()(['tfjs', 'onnx', 'triton', 'bundle']);

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'export a model package as TF.js, ONNX, a Triton model repository entry or a deploy bundle',
  description: [
    'Export a model package for deployment. Every export records its source (package name, version, mlctl.json sha256 and file hashes) in its metadata. Output is built in a temporary directory and renamed into place; a non-empty --out is refused unless --force.',
    '',
    'Formats:',
    '  tfjs    model.json + shards (stock tf.loadLayersModel), labels, metadata',
    '  onnx    model.onnx (labels, preprocessing, variant, source in metadata_props),',
    '          labels.json, metadata.json; quantized packages keep their precision',
    '          (float16 initializers, uint8 weight-only DequantizeLinear, int8 QDQ)',
    '  triton  <out>/<name>/config.pbtxt, <version>/model.onnx, labels.txt;',
    '          --out is the model repository: only <out>/<name> is written',
    '  Detection models (onnx, triton): the graph decodes its CenterNet map and runs',
    '          NonMaxSuppression: outputs boxes [M,4] (x1,y1,x2,y2, input pixels),',
    '          scores [M], labels [M], batch_index [M]; onnx also writes the raw map',
    '          as model-raw.onnx (docs/detection-evaluate.md)',
    '  bundle  the package, mlctl, Dockerfile, Kubernetes manifests (Deployment,',
    '          Service, HPA, PDB), KServe InferenceService, batch Indexed Jobs',
    '          (predict / feature extraction in --shards pods, merge) and a README',
  ].join('\n'),
  args: ['<model>'],
  options: [
    { flags: '-f, --format <format>', description: 'output format', choices: EXPORT_FORMAT_CHOICES, required: true },
    { flags: '-o, --out <dir>', description: 'output directory (for triton: the model repository)', required: true },
    { flags: '--force', description: 'replace a non-empty output directory', type: 'boolean' },
    { flags: '--quantize <dtype>', description: 'tfjs: quantize float32 weights as tensorflowjs_converter does (already-quantized packages are exported as they are)', choices: WEIGHT_DTYPE_CHOICES },
    { flags: '--embed-preprocessing', description: 'onnx/triton: the model takes UINT8 RGB pixels [batch, H, W, 3] (resized by the caller) and does the channel order, scale and mean in the graph', type: 'boolean' },
    { flags: '--nms-iou <x>', description: 'onnx/triton, detection models: NonMaxSuppression IoU threshold of the decoding in the graph', type: 'float', default: 0.5, min: 0, max: 1 },
    { flags: '--raw-detections', description: 'onnx/triton, detection models: export the raw CenterNet map instead of boxes decoded in the graph', type: 'boolean' },
    { flags: '--opset <n>', description: 'onnx/triton: ai.onnx opset when converting from TF.js (default: the converter\'s)', type: 'int', min: 13, max: 21 },
    { flags: '--name <name>', description: 'triton: model name in the repository (default: the package name)' },
    { flags: '--model-version <n>', description: 'triton: version folder (default: the package version)', type: 'int', min: 1 },
    { flags: '--max-batch <n>', description: 'triton max_batch_size; bundle: mlctl serve --max-batch', type: 'int', default: 8, min: 1, max: 1024 },
    { flags: '--queue-delay-us <n>', description: 'triton: dynamic batching max_queue_delay_microseconds', type: 'int', default: 5000, min: 0 },
    { flags: '--instances <n>', description: 'triton: CPU model instances (instance_group count)', type: 'int', default: 1, min: 1 },
    { flags: '--image <ref>', description: 'bundle: container image the manifests deploy (default mlctl-<name>:<version>)' },
    { flags: '--base-image <ref>', description: 'bundle: Node base image, pinned by version (default node:20.20.2-bookworm-slim)' },
    { flags: '--min-replicas <n>', description: 'bundle: HPA / KServe minimum replicas', type: 'int', default: 2, min: 1 },
    { flags: '--max-replicas <n>', description: 'bundle: HPA / KServe maximum replicas', type: 'int', default: 10, min: 1 },
    { flags: '--shards <n>', description: 'bundle: pods of the batch Indexed Jobs (predict --shard, train --extract-only --shard)', type: 'int', default: 4, min: 1, max: 100000 },
    { ...DEVICE, description: 'bundle: the device the pods serve and predict on — cpu, cuda, tensorrt or auto; cuda/tensorrt request nvidia.com/gpu with a GPU node selector and install onnxruntime-node\'s CUDA 12 provider in the image (build it FROM a CUDA 12 + cuDNN 9 base: --base-image)', default: undefined, env: undefined },
    ...SIGNATURE_OPTIONS,
  ],
  examples: [
    'mlctl export sample --format tfjs --out exports/sample-web',
    'mlctl export sample --format tfjs --quantize uint8 --out exports/sample-web-q8',
    'mlctl export artifacts/sample/3 --format onnx --out exports/sample-onnx',
    'mlctl export sample --format triton --out model_repository --max-batch 16',
    'mlctl export sample --format triton --embed-preprocessing --name sample_pixels --out model_repository',
    'mlctl export shapes-det --format onnx --nms-iou 0.6 --out exports/det   # boxes decoded in the graph + model-raw.onnx',
    'mlctl export sample --format bundle --out deploy/sample --image registry.example.com/ml/sample:3 --json',
    'mlctl export sample --format bundle --device cuda --base-image registry.example.com/node20-cuda12:1 --out deploy/sample-gpu',
  ],
});

export type ExportContext = ContextOf<typeof exportCommand>;

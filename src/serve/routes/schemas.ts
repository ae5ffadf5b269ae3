// JSON schemas of serve's REST routes: Fastify validates requests with them (a mismatch is 400 INPUT_INVALID) and
// @fastify/swagger turns them into the OpenAPI document at /openapi.json. They check shapes and types; what needs a
// model to judge (input names, datatypes, image bytes) stays in the handlers, which answer REST and gRPC alike.

const modelName = { type: 'string', description: 'model name (a package name: letters, digits, ".", "_", "-")' } as const;
const versionParam = { type: 'string', description: 'model version (a positive integer); absent: the newest loaded version' } as const;
const errorBody = {
  type: 'object',
  description: 'an error: the message says what was wrong and what to do; code is stable (see docs/errors.md)',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 413: errorBody, 415: errorBody, 429: errorBody, 503: errorBody } as const;
const binary = (description: string) => ({ description, contentMediaType: 'application/octet-stream' });
const image = { description: 'one encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF)', contentMediaType: 'image/*' } as const;

/** POST /predict: images (multipart, raw or base64 JSON) or tabular rows (JSON) → predictions and top-k labels. */
export const predictSchema = {
  summary: 'Classify images (or tabular rows): top-k labels',
  description:
    'Send images as multipart/form-data (field "image", several files allowed), as one raw body with Content-Type image/*, or as JSON {"instances": [{"b64": "..."}]}; ' +
    'tabular models take JSON rows {"instances": [{"feature": value, ...}]}. With several models loaded, name one with ?model=.',
  querystring: {
    type: 'object',
    properties: {
      model: modelName,
      version: versionParam,
      top_k: { type: 'integer', minimum: 0, description: 'labels per image (default: serve --top-k)' },
      min_score: { type: 'number', minimum: 0, maximum: 1, description: 'detection models: drop boxes scoring below this (default: serve --min-score, else the model\'s)' },
      max_detections: { type: 'integer', minimum: 1, description: 'detection models: most boxes per image (default: serve --max-detections, else the model\'s)' },
    },
  },
  body: {
    content: {
      'application/json': {
        schema: {
          type: 'object',
          properties: {
            instances: { type: 'array', description: 'images as {"b64": base64}, or rows of features (tabular models)' },
            model: { type: 'string' },
            version: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
            min_score: { type: 'number', description: 'detection models: as the query parameter' },
            max_detections: { type: 'integer', description: 'detection models: as the query parameter' },
          },
        },
      },
      'multipart/form-data': { schema: { description: 'field "image": one or more image files; optional fields "model" and "version"' } },
      'image/jpeg': { schema: image },
      'image/png': { schema: image },
      'application/octet-stream': { schema: binary('one encoded image') },
    },
  },
  response: {
    200: {
      description: 'one entry per image, in request order',
      type: 'object',
      properties: {
        predictions: { type: 'array', items: { type: 'array', items: { type: 'number' } }, description: 'class probabilities (or scores) per image' },
        labels: { type: 'array', items: { type: 'array', items: { type: 'object', properties: { label: { type: 'string' }, score: { type: 'number' } } } }, description: 'top-k labels per image, best first' },
        detections: {
          type: 'array',
          description: 'detection models: the boxes found in each image, best first, in the image\'s own pixels (top-left corner and size)',
          items: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                label: { type: 'string' },
                score: { type: 'number' },
                box: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' }, width: { type: 'number' }, height: { type: 'number' } } },
              },
            },
          },
        },
        model: { type: 'string' },
        version: { type: 'integer' },
      },
    },
    ...errors,
  },
} as const;

const v2Params = { type: 'object', properties: { name: modelName, version: versionParam }, required: ['name'] } as const;

const tensor = {
  type: 'object',
  required: ['name', 'shape', 'datatype'],
  properties: {
    name: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
    datatype: {
      type: 'string',
      description: 'a V2 datatype as the model declares it (BOOL, UINT8 … INT64, FP16, FP32, FP64, BYTES). Image and tabular models take FP32 (preprocessed NHWC floats or feature rows) or BYTES (encoded images, base64 in JSON)',
    },
    parameters: { type: 'object', properties: { binary_data_size: { type: 'integer', minimum: 0 } } },
    data: { description: 'flat or nested values; absent with the binary tensor extension' },
  },
} as const;

/** POST /v2/models/{name}[/versions/{version}]/infer (KServe Open Inference Protocol). */
export const v2InferSchema = {
  summary: 'Inference (KServe V2): JSON tensors or the binary tensor extension',
  description:
    'With the binary extension, send the JSON header\'s length in Inference-Header-Content-Length, the binary tensors after it; ' +
    'that header marks the body as binary whatever its Content-Type says (as Triton reads it). Image models also take encoded images as the BYTES input "image".',
  params: v2Params,
  body: {
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['inputs'],
          properties: {
            id: { description: 'echoed in the response' },
            parameters: { type: 'object', properties: { binary_data_output: { type: 'boolean' } } },
            inputs: { type: 'array', minItems: 1, items: tensor },
            outputs: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string' },
                  parameters: {
                    type: 'object',
                    properties: {
                      binary_data: { type: 'boolean', description: 'this output as binary data after the JSON header (binary tensor extension)' },
                      classification: { type: 'integer', description: 'Triton classification extension: the top k classes as BYTES "score:index:label" strings, [batch, k]' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      'application/octet-stream': { schema: binary('JSON header (Inference-Header-Content-Length bytes) followed by the binary tensors') },
    },
  },
  response: { ...errors },
} as const;

export const v2MetadataSchema = {
  summary: 'Model metadata (KServe V2): inputs, outputs, versions, platform',
  description: 'Every input and output as the model is served (batch dimension first, -1 where dynamic). Image models list two inputs: the FP32 tensor (preprocessed NHWC) and the BYTES input "image" of encoded pictures.',
  params: v2Params,
  response: { ...errors },
} as const;

/** GET /v2/models/{name}[/versions/{version}]/config (Triton model configuration extension). */
export const tritonConfigSchema = {
  summary: 'Model configuration (Triton): the ModelConfig `export --format triton` writes, with the batching it is served with',
  params: v2Params,
  response: { ...errors },
} as const;

const statsSummary = 'Statistics (Triton): per version, success/fail counts, queue, input, engine and output time in ns, executions by batch size';
/** GET /v2/models/stats (every model the caller may use) and GET /v2/models/{name}[/versions/{version}]/stats. */
export const tritonStatsAllSchema = { summary: `${statsSummary}; every model the caller's key may use` } as const;
export const tritonStatsSchema = { summary: statsSummary, params: v2Params, response: { ...errors } } as const;
export const v2ReadySchema = { summary: 'Model readiness (KServe V2): 200 when loaded and warm, else 503', params: v2Params } as const;
export const v2ServerSchema = { summary: 'Server metadata (KServe V2): name, version, extensions' } as const;
export const v2LiveSchema = { summary: 'Liveness probe' } as const;
export const v2ReadyServerSchema = { summary: 'Readiness probe: 200 once every model is warm, 503 while loading or draining' } as const;

const tfParams = {
  type: 'object',
  properties: {
    model: { type: 'string', description: 'model name; for POST, followed by the verb: NAME:predict, NAME:classify or NAME:regress' },
    version: { type: 'string', description: 'version; for POST, followed by the verb: N:predict, N:classify or N:regress' },
  },
  required: ['model'],
} as const;

/** GET /v1/models/{model}[/versions/{version}] (TF Serving model status). */
export const tfStatusSchema = { summary: 'Model status (TF Serving)', params: tfParams, response: { ...errors } } as const;

/** GET /v1/models/{model}[/versions/{version}]/metadata (TF Serving GetModelMetadata). */
export const tfMetadataSchema = {
  summary: 'Model metadata (TF Serving): the SignatureDefs — serving_default, serving_image_bytes (image models), classify or regress',
  params: tfParams,
  response: { ...errors },
} as const;

/** POST /v1/models/{model}:predict|:classify|:regress (TF Serving REST). */
export const tfRunSchema = {
  summary: 'Predict, classify or regress (TF Serving REST): POST /v1/models/NAME:predict, NAME:classify or NAME:regress',
  description:
    ':predict takes row format {"instances": [...]} or columnar {"inputs": ...}; images as {"b64": base64}. ' +
    ':classify and :regress take tf.Example features {"examples": [{feature: value}], "context"?: {...}} (the image as a {"b64"} feature, tabular columns by name) ' +
    'and answer {"results": ...}: top-k [label, score] pairs per example, or one value per example.',
  params: tfParams,
  body: {
    content: {
      'application/json': {
        schema: {
          type: 'object',
          properties: {
            signature_name: { type: 'string', description: 'a signature from …/metadata; absent: serving_default' },
            instances: { description: 'row format: one entry per example' },
            inputs: { description: 'columnar format' },
            examples: { description: ':classify / :regress: a list of tf.Example feature objects' },
            context: { description: ':classify / :regress: features shared by every example' },
          },
        },
      },
    },
  },
  response: { ...errors },
} as const;

/** POST /v2/repository/... (model control, with --allow-model-control). */
export const modelLoadSchema = {
  summary: 'Load a model (model repository extension)',
  params: { type: 'object', properties: { name: modelName }, required: ['name'] },
  body: {
    content: {
      'application/json': { schema: { type: 'object', properties: { parameters: { type: 'object', properties: { version: { description: 'a positive integer (default: the newest on disk)' } } } } } },
    },
  },
  response: { ...errors },
} as const;
export const modelUnloadSchema = { summary: 'Unload every version of a model (model repository extension)', params: { type: 'object', properties: { name: modelName }, required: ['name'] }, response: { ...errors } } as const;
export const repositoryIndexSchema = {
  summary: 'Repository index (model repository extension): every version loaded or on disk, with its state',
  description: 'Open without --allow-model-control. {"ready": true} lists only READY versions.',
  body: { type: ['object', 'null'], properties: { ready: { type: 'boolean', description: 'only versions ready to serve' } } },
  response: {
    200: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          state: { type: 'string', description: 'READY, LOADING or UNAVAILABLE' },
          reason: { type: 'string', description: 'why a version is not READY' },
        },
      },
    },
    ...errors,
  },
} as const;
export const metricsSchema = { summary: 'Prometheus metrics (text exposition format)' } as const;

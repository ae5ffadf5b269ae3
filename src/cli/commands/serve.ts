// `mlctl serve MODEL_OR_DIR`: the option table of the server (REST, KServe V2 REST+gRPC, TF Serving, batching,
// limits, and the security extension's options). Light: the runner (cli/run/serve.ts) is imported only when it runs.
import { SECURITY_OPTIONS, WEB_OPTIONS } from '../../serve/options.js';
import { ENGINE } from '../options.js';
import { PACKAGE_ACCESS_OPTIONS } from '../package-access.js';
import { defineCommand, type ContextOf } from '../spec.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve model packages over HTTP: /predict, KServe V2, TF Serving REST, /metrics',
  description:
    'Serve one package, every version of a model, or every model in a directory. Concurrent requests are batched ' +
    '(--max-batch / --max-delay-ms); readiness (/v2/health/ready) turns true once every model is warm. ' +
    'Logs are JSON lines on stderr. SIGTERM/SIGINT stop accepting, finish in-flight requests and exit 0. ' +
    'Errors answer {"error": message, "code": CODE} with the HTTP status of the code (see Error codes); gRPC maps the same code to its status.',
  args: ['<model-or-dir>'],
  options: [
    { flags: '-p, --port <n>', description: 'TCP port (0 = any free port)', type: 'int', default: 5000, min: 0, max: 65535, env: 'MLCTL_PORT' },
    { flags: '--host <addr>', description: 'address to bind (0.0.0.0 for every interface)', default: '127.0.0.1', env: 'MLCTL_HOST' },
    { ...ENGINE, description: 'inference engine: auto prefers ONNX Runtime, then TF.js' },
    { flags: '--versions <which>', description: 'versions to load from a model directory', choices: ['all', 'latest'], default: 'all' },
    { flags: '--max-batch <n>', description: 'most examples per engine batch (1 = no batching)', type: 'int', default: 8, min: 1, max: 1024 },
    { flags: '--max-delay-ms <ms>', description: 'longest wait for a batch to fill (0 = run as soon as the engine is free)', type: 'float', default: 5, min: 0, max: 10_000 },
    { flags: '--max-queue <n>', description: 'most examples waiting per model version; beyond it requests get 503 + Retry-After (QUEUE_FULL)', type: 'int', default: 64, min: 1 },
    { flags: '--body-limit <size>', description: 'largest request body / uploaded file, e.g. 512kb, 10mb', default: '10mb' },
    { flags: '--max-pixels <n>', description: 'largest image accepted, in pixels (checked from the header before decoding)', type: 'int', default: 64 * 1024 * 1024, min: 1 },
    { flags: '--drain-timeout <duration>', description: 'on SIGTERM, longest wait for in-flight requests, e.g. 10s, 500ms', default: '10s' },
    { flags: '--top-k <n>', description: 'labels returned per image by /predict', type: 'int', default: 5, min: 0 },
    ...SECURITY_OPTIONS,
    ...WEB_OPTIONS,
    ...PACKAGE_ACCESS_OPTIONS,
  ],
  examples: [
    'mlctl serve sample',
    'mlctl serve artifacts/ --port 8080 --host 0.0.0.0',
    'mlctl serve artifacts/sample/3 --engine onnx --max-batch 16 --max-delay-ms 10',
    'mlctl serve artifacts/sample --watch --require-signature --trusted-keys keys/trusted --key-file /run/secrets/model.key',
    'curl -F image=@cat.jpg http://127.0.0.1:5000/predict',
    'mlctl serve artifacts/ --no-ui --no-docs   # API only: no page at /, no /docs',
  ],
});

export type ServeContext = ContextOf<typeof serveCommand>;

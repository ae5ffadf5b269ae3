// `mlctl serve MODEL_OR_DIR`: the option table of the server (REST, KServe V2 REST+gRPC, TF Serving, batching,
// limits, security plugins, page and docs). Light: the runner (cli/run/serve.ts) is imported only when it runs.
import { ENGINE, LOG_FORMAT, SESSION_OPTIONS } from '../options.js';
import { ALLOW_REJECTED, PACKAGE_ACCESS_OPTIONS } from '../package-access.js';
import { defineCommand, type ContextOf } from '../spec.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve model packages over HTTP: /predict, KServe V2, TF Serving REST, /metrics',
  description:
    'Serve one package, every version of a model, or every model in a directory. Concurrent requests are batched ' +
    '(--max-batch / --max-delay-ms); readiness (/v2/health/ready) turns true once every model is warm. ' +
    'Logs go to stderr, all in one format (--log-format: JSON lines by default, or text); stdout stays empty unless --json. SIGTERM/SIGINT stop accepting, finish in-flight requests and exit 0. ' +
    'Errors answer {"error": message, "code": CODE} with the HTTP status of the code (see Error codes); gRPC maps the same code to its status.',
  args: ['<model-or-dir>'],
  options: [
    { flags: '-p, --port <n>', description: 'TCP port (0 = any free port)', type: 'int', default: 5000, min: 0, max: 65535, env: 'MLCTL_PORT' },
    { flags: '--host <addr>', description: 'address to bind (0.0.0.0 for every interface)', default: '127.0.0.1', env: 'MLCTL_HOST' },
    { ...ENGINE, description: 'inference engine: auto prefers ONNX Runtime, then TF.js' },
    ...SESSION_OPTIONS,
    { flags: '--versions <which>', description: 'versions to load from a model directory', choices: ['all', 'latest'], default: 'all' },
    { flags: '--max-batch <n>', description: 'most examples per engine batch (1 = no batching)', type: 'int', default: 8, min: 1, max: 1024 },
    { flags: '--max-delay-ms <ms>', description: 'longest wait for a batch to fill (0 = run as soon as the engine is free)', type: 'float', default: 5, min: 0, max: 10_000 },
    { flags: '--instances <n>', description: 'engine instances per model version, running batches side by side (Triton\'s instance_group count); each gets cores/n ONNX Runtime threads unless --intra-op-threads is set, and holds its own copy of the weights. For machines where one instance cannot keep every core busy (on 2 cores it did not pay for MobileNetV2: smaller batches)', type: 'int', default: 1, min: 1, max: 64 },
    { flags: '--max-queue <n>', description: 'most examples waiting per model version; beyond it requests get 503 + Retry-After (QUEUE_FULL)', type: 'int', default: 64, min: 1 },
    { flags: '--body-limit <size>', description: 'largest request body / uploaded file, e.g. 512kb, 10mb', default: '10mb' },
    { flags: '--max-pixels <n>', description: 'largest image accepted, in pixels, counted at 8-bit RGBA: the decoded size (bit depth x channels) may not exceed n x 4 bytes, so a 16-bit RGBA image may have n/2 pixels (checked from the header before decoding)', type: 'int', default: 64 * 1024 * 1024, min: 1 },
    { flags: '--drain-timeout <duration>', description: 'on SIGTERM, longest wait for in-flight requests, e.g. 10s, 500ms', default: '10s' },
    { flags: '--request-timeout <duration>', description: 'longest time to receive a whole request (headers and body); slower clients get 408', default: '30s' },
    { flags: '--keep-alive-timeout <duration>', description: 'how long an idle keep-alive connection stays open between requests', default: '5s' },
    { flags: '--max-connections-per-client <n>', description: 'most open connections from one client address; more get 429 and are closed (0 = no cap; raise it behind a proxy)', type: 'int', default: 64, min: 0 },
    { flags: '--top-k <n>', description: 'labels returned per image by /predict', type: 'int', default: 5, min: 0 },
    { flags: '--min-score <x>', description: 'detection models: /predict drops boxes scoring below x (0..1; default: the model\'s, else 0.3; a request\'s min_score wins)', type: 'float', min: 0, max: 1 },
    { flags: '--max-detections <n>', description: 'detection models: most boxes /predict answers per image (default: the model\'s; a request\'s max_detections wins)', type: 'int', min: 1 },
    LOG_FORMAT,
    // The security plugins (serve/security.ts): gRPC, API keys, rate limits, TLS, audit log, hot reload, CORS.
    { flags: '--grpc-port <n>', description: 'also serve the KServe/Triton V2 gRPC API (inference.GRPCInferenceService) on this port (0 = any free port)', type: 'int', min: 0, max: 65535, env: 'MLCTL_GRPC_PORT' },
    { flags: '--grpc-max-message <size>', description: 'largest gRPC request/response message (the gRPC default is 4mb)', default: '64mb' },
    { flags: '--api-key <keys>', description: 'require an API key (Authorization: Bearer KEY or x-api-key: KEY) on inference, metadata and metrics calls; entries [ID:]KEY[@SCOPE+SCOPE] (a scope is a model name or /metrics; none = every model and /metrics), comma-separated (prefer the env var or a file: flags show in ps)', env: 'MLCTL_API_KEYS' },
    { flags: '--api-keys-file <file>', description: 'API keys, one [ID:]KEY[@MODEL+MODEL] entry per line, # comments' },
    { flags: '--rate-limit <n[/s|/m|/h]>', description: 'requests per key (per client address without keys), e.g. 600/m; over it: 429 + Retry-After' },
    { flags: '--tls-cert <pem>', description: 'serve HTTPS and gRPC over TLS with this certificate (chain)' },
    { flags: '--tls-key <pem>', description: 'private key for --tls-cert' },
    { flags: '--tls-ca <pem>', description: 'require client certificates signed by this CA (mTLS)' },
    { flags: '--audit-log <file>', description: 'append one JSON line per prediction and per model load (time, request id, key id, client, model, version, manifest sha256, input sha256, top label, latency)' },
    { flags: '--audit-max-size <size>', description: 'rotate the audit log beyond this size (to FILE.1 … FILE.N)', default: '100mb' },
    { flags: '--audit-keep <n>', description: 'rotated audit files kept', type: 'int', default: 5, min: 1, max: 1000 },
    { flags: '--watch', description: 'watch the model directory: load new versions (verified, warmed, then switched to); broken ones are refused and the old version keeps serving', type: 'boolean' },
    { flags: '--watch-interval <duration>', description: 'how often --watch re-scans the model directory', default: '2s' },
    { flags: '--keep-versions <n>', description: 'with --watch/model control: after a switch keep only the newest N versions of that model loaded (default: all; 1 with --versions latest)', type: 'int', min: 1 },
    { flags: '--allow-model-control', description: 'enable POST /v2/repository/models/{name}/load|unload and /v2/repository/index', type: 'boolean' },
    { flags: '--trust-proxy-header <name>', description: 'behind a reverse proxy: take the client address (rate limits, failed-key throttling, logs, audit) from the last entry of this header, e.g. x-forwarded-for; only set it when the proxy always writes that header' },
    { flags: '--metrics-port <n>', description: 'also serve GET /metrics without a key on this port (with API keys on, /metrics on the main port needs a key with the /metrics scope: ID:KEY@/metrics)', type: 'int', min: 0, max: 65535 },
    { flags: '--cors <origins>', description: 'allow browser calls from these origins (comma-separated, or *); CORS is off by default' },
    // The page at / and the API docs (serve/web.ts).
    { flags: '--no-ui', description: 'no page at / (pick a model, send an image or a webcam photo, see the top-k labels and the model\'s metadata)' },
    { flags: '--no-docs', description: 'no API docs: /openapi.json (OpenAPI 3.1, from the routes\' schemas) and /docs (Swagger UI)' },
    ...PACKAGE_ACCESS_OPTIONS,
    ALLOW_REJECTED,
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

// The option specs of serve's security extension (gRPC, API keys, rate limits, TLS, audit log, hot reload, model
// control, CORS): specs only, no imports beyond types, so `mlctl serve --help` never loads gRPC or Fastify. The serve
// command's table (cli/commands/serve.ts) lists them; an extension with options of its own adds its specs here too.
import type { OptionSpec } from '../cli/spec.js';

export const SECURITY_OPTIONS = [
  { flags: '--grpc-port <n>', description: 'also serve the KServe/Triton V2 gRPC API (inference.GRPCInferenceService) on this port (0 = any free port)', type: 'int', min: 0, max: 65535, env: 'MLCTL_GRPC_PORT' },
  { flags: '--grpc-max-message <size>', description: 'largest gRPC request/response message (the gRPC default is 4mb)', default: '64mb' },
  { flags: '--api-key <keys>', description: 'require an API key (Authorization: Bearer KEY or x-api-key: KEY) on inference and metadata calls; entries [ID:]KEY[@MODEL+MODEL], comma-separated (prefer the env var or a file: flags show in ps)', env: 'MLCTL_API_KEYS' },
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
  { flags: '--cors <origins>', description: 'allow browser calls from these origins (comma-separated, or *); CORS is off by default' },
] as const satisfies readonly OptionSpec[];

/** The web extension's options (serve/web.ts): the try-it page and the API docs are on unless turned off. */
export const WEB_OPTIONS = [
  { flags: '--no-ui', description: 'no page at / (pick a model, send an image or a webcam photo, see the top-k labels and the model\'s metadata)' },
  { flags: '--no-docs', description: 'no API docs: /openapi.json (OpenAPI 3.1, from the routes\' schemas) and /docs (Swagger UI)' },
] as const satisfies readonly OptionSpec[];

// The deploy bundle's Dockerfile and .dockerignore: a pinned Node base image, production-only dependencies from the
// lockfile, a numeric non-root user, a HEALTHCHECK on the readiness route and `mlctl serve` (REST and gRPC) as the
// entrypoint, with MLCTL_CACHE the one writable path.
import { SERVE } from './k8s.js';

/** Pinned by exact version (and Debian release) so rebuilding the bundle gives the same runtime. */
export const DEFAULT_NODE_IMAGE = 'node:20.20.2-bookworm-slim';

export interface DockerfileOptions {
  baseImage: string;
  /** Model name: the package is at /models/<name>/<version>/. */
  model: string;
  version: number;
  /** 'source': the bundle carries mlctl's TypeScript and the image compiles it; 'dist': it carries compiled JS. */
  app: 'source' | 'dist';
  header: string;
  /** Install onnxruntime-node's CUDA 12 provider libraries (cuda/tensorrt devices; the base image brings CUDA itself). */
  cudaProvider?: boolean;
}

/** Path of the model inside the image, as `mlctl serve` is given it. */
export function modelPathInImage(model: string): string {
  return `/models/${model}`;
}

/**
 * Node's own flags for the server. V8 answers the request bodies, decoded pixels and batches a server allocates
 * (external ArrayBuffer memory, not heap growth) with full collections of the main thread's heap once the old
 * generation's limit — small for serve's ~20 MB heap — is reached: 3.5–6.7 per 100 requests at 80 img/s. A 128 MB
 * initial old generation leaves room for them: `npm run bench -- serve-profile --node-flags
 * '--initial-old-space-size=128' --node-flags-before ''` measured 0 full collections, 0.89x the CPU per request and
 * 1.10x the img/s (MobileNetV2, c=8). It cannot be set from NODE_OPTIONS or at run time, so it goes on node's argv.
 */
export const SERVE_NODE_FLAGS = ['--initial-old-space-size=128'] as const;

/** argv of the image's ENTRYPOINT (JSON/exec form: signals reach node directly, SIGTERM drains the server). */
export function entrypoint(model: string): string[] {
  return ['node', ...SERVE_NODE_FLAGS, '/app/bin/mlctl.js', 'serve', modelPathInImage(model), '--host', '0.0.0.0', '--port', String(SERVE.port), '--grpc-port', String(SERVE.grpcPort)];
}

export function healthcheckCommand(): string[] {
  // The slim image has no curl or wget; Node 20's fetch does the probe.
  const js = `fetch('http://127.0.0.1:${SERVE.port}${SERVE.ready}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`;
  return ['node', '-e', js];
}

export function dockerfile(o: DockerfileOptions): string {
  const json = (a: string[]) => JSON.stringify(a);
  const build =
    o.app === 'source'
      ? [
          '# Build stage: compile mlctl from the TypeScript sources shipped in app/.',
          'FROM ${NODE_IMAGE} AS build',
          'WORKDIR /build',
          'COPY app/package.json app/package-lock.json ./',
          'RUN npm ci --ignore-scripts --no-audit --no-fund',
          'COPY app/tsconfig.json app/tsconfig.build.json ./',
          'COPY app/src ./src',
          'RUN npx tsc -p tsconfig.build.json',
          '',
        ]
      : [];
  const dist = o.app === 'source' ? 'COPY --from=build /build/dist ./dist' : 'COPY app/dist ./dist';
  return [
    '# syntax=docker/dockerfile:1',
    ...o.header.split('\n').map((l) => `# ${l}`.trimEnd()),
    `ARG NODE_IMAGE=${o.baseImage}`,
    '',
    ...build,
    '# Runtime stage: production dependencies only, exactly as locked.',
    'FROM ${NODE_IMAGE}',
    'ENV NODE_ENV=production',
    `ENV MLCTL_CACHE=${SERVE.cacheDir}`,
    'WORKDIR /app',
    'COPY app/package.json app/package-lock.json ./',
    // Optional native add-ons (tfjs-node) that cannot install are skipped by npm; serve then uses ONNX Runtime or wasm.
    // onnxruntime-node's install script fetches its CUDA 12 provider libraries (not on npm: too large) when asked.
    ...(o.cudaProvider ? ['ENV ONNXRUNTIME_NODE_INSTALL=cuda12'] : []),
    'RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force',
    'COPY app/bin ./bin',
    // The serve page (/) and its assets, beside dist/ as in the npm package.
    'COPY app/ui ./ui',
    dist,
    `# The model package, hashes intact; owned by root so the server cannot modify it.`,
    `COPY models/ /models/`,
    // The only path mlctl writes (ONNX conversions); Kubernetes mounts an emptyDir here over a read-only root.
    `RUN mkdir -p ${SERVE.cacheDir} && chown ${SERVE.uid}:${SERVE.uid} ${SERVE.cacheDir}`,
    `USER ${SERVE.uid}:${SERVE.uid}`,
    `EXPOSE ${SERVE.port} ${SERVE.grpcPort}`,
    'STOPSIGNAL SIGTERM',
    `HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ${json(healthcheckCommand())}`,
    `ENTRYPOINT ${json(entrypoint(o.model))}`,
    '',
  ].join('\n');
}

export function dockerignore(app: 'source' | 'dist'): string {
  return [
    '# Only app/ and models/ are needed to build the image.',
    'README.md',
    'metadata.json',
    'SHA256SUMS',
    'k8s/',
    'kserve/',
    '**/node_modules',
    '**/.git',
    '**/.DS_Store',
    '**/*.log',
    '# Keys never go into an image: an encrypted model\'s key is mounted from a Secret at run time.',
    '**/*.key',
    '**/*.key.pem',
    ...(app === 'source' ? ['app/dist'] : ['app/src']),
    '',
  ].join('\n');
}

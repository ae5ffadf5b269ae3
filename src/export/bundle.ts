// `--format bundle`: a self-contained deploy directory — the model package (hashes intact), mlctl itself, a production
// Dockerfile, Kubernetes manifests (Deployment, Service, HPA, PDB), a KServe InferenceService and a README.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyPackage, type LoadedPackage } from '../artifacts/package.js';
import { writeJsonAtomic } from '../artifacts/atomic.js';
import { sha256 } from '../artifacts/hash.js';
import { MANIFEST_FILE, type Manifest } from '../artifacts/manifest.js';
import { SIGNATURE_FILE } from '../artifacts/signing.js';
import { MlctlError } from '../errors.js';
import { formatDevice, needsNvidiaGpu, parseDevice } from '../runtime/device.js';
import type { Logger } from '../util/log.js';
import { bundleReadme } from './bundle-readme.js';
import { DEFAULT_NODE_IMAGE, dockerfile, dockerignore, entrypoint } from './dockerfile.js';
import { BATCH, batchVolumeClaims, NVIDIA_GPU, cacheSizeFor, deployment, extractJob, hpa, inferenceService, inferenceServiceGrpc, k8sName, kustomization, memoryFor, mergeJob, modelKeySecretName, podDisruptionBudget, predictJob, SERVE, service, toYaml, type DeploySettings } from './k8s.js';
import { exportMetadata, MLCTL_VERSION } from './source.js';
import { METADATA_JSON } from './tfjs.js';

export interface BundleOptions {
  /** Container image reference the manifests deploy (default mlctl-<name>:<version>). */
  image?: string;
  baseImage?: string;
  minReplicas?: number;
  maxReplicas?: number;
  maxBatch?: number;
  /** Pods (completions) of the batch Indexed Jobs: predict and feature extraction (default 4). */
  shards?: number;
  /**
   * Device the pods run on (runtime/device.ts names): cpu (default), cuda[:N], tensorrt[:N] or auto. NVIDIA devices make
   * the pods request `nvidia.com/gpu` on GPU nodes and the image install onnxruntime-node's CUDA 12 provider.
   */
  device?: string;
  /** mlctl installation to ship (default: the one running). */
  mlctlRoot?: string;
  logger?: Logger;
}

export const BUNDLE_DEFAULTS = { minReplicas: 2, maxReplicas: 10, maxBatch: 8, shards: 4 } as const;

export const BUNDLE_FILES = {
  dockerfile: 'Dockerfile',
  dockerignore: '.dockerignore',
  readme: 'README.md',
  checksums: 'SHA256SUMS',
  deployment: 'k8s/deployment.yaml',
  service: 'k8s/service.yaml',
  hpa: 'k8s/hpa.yaml',
  pdb: 'k8s/pdb.yaml',
  kustomization: 'k8s/kustomization.yaml',
  inferenceService: 'kserve/inferenceservice.yaml',
  inferenceServiceGrpc: 'kserve/inferenceservice-grpc.yaml',
  batchVolumes: 'k8s/batch/volumes.yaml',
  predictJob: 'k8s/batch/predict-job.yaml',
  mergeJob: 'k8s/batch/merge-job.yaml',
  extractJob: 'k8s/batch/extract-job.yaml',
} as const;

/**
 * `mlctl train` arguments that rebuild this package's frozen base, so the extract Job fills the feature store a later
 * `train` reads (same backbone, image size and weights). Undefined for packages without a trainable backbone here.
 */
export function extractTrainArgs(m: Manifest): string[] | undefined {
  const a = m.architecture as { backbone?: unknown; weights?: { kind?: string; seed?: number; source?: string } };
  if (m.input.kind !== 'image' || a.backbone !== 'vgg16') return undefined;
  const w = a.weights ?? {};
  const seed = w.seed ?? (m.training?.seed as number | undefined);
  const weights = w.kind === 'imagenet' ? 'imagenet' : w.kind === 'none' ? 'none' : `${BATCH.work}/weights/${(w.source ?? 'weights.h5').replace(/^file /, '')}`;
  return ['train', '--name', m.name, '--image-size', String(m.input.height), '--weights', weights, ...(w.kind === 'none' && seed !== undefined ? ['--seed', String(seed)] : [])];
}

/** Docker image reference: [registry/]path[:tag][@digest], nothing that could break out of a Dockerfile line. */
const IMAGE_REF = /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

function checkImageRef(ref: string, flag: string): void {
  if (!IMAGE_REF.test(ref)) throw new MlctlError('OPTION_INVALID', [`${flag} "${ref}" is not a valid image reference (e.g. registry.example.com/team/name:1.2.3)`]);
}

/** Pinned = an exact version tag (x.y.z…) or a digest; `node:20` or `latest` would change under a rebuild. */
export function isPinnedImage(ref: string): boolean {
  return /@sha256:[a-f0-9]{64}$/.test(ref) || /:v?\d+\.\d+\.\d+([.-][\w.-]*)?$/.test(ref);
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(() => true, () => false);
}

/** The mlctl installation this code runs from: the nearest package.json named "mlctl" above this module. */
export async function mlctlRoot(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (await exists(pj)) {
      const name = (JSON.parse(await fs.readFile(pj, 'utf8')) as { name?: string }).name;
      if (name === 'mlctl') return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new MlctlError('BUNDLE_SOURCE_MISSING', ['cannot find the mlctl installation (package.json named "mlctl") to put in the bundle']);
    dir = up;
  }
}

/**
 * Copy mlctl into app/: the sources when this is a source checkout (the image compiles them, so the bundle never
 * carries a stale build), otherwise the compiled dist/. package.json loses its lifecycle scripts so that
 * `npm ci --omit=dev` does not try to run the TypeScript build without TypeScript.
 */
async function copyApp(root: string, appDir: string): Promise<'source' | 'dist'> {
  const mode = (await exists(path.join(root, 'src', 'cli', 'main.ts'))) && (await exists(path.join(root, 'tsconfig.build.json'))) ? 'source' : 'dist';
  if (mode === 'dist' && !(await exists(path.join(root, 'dist', 'cli', 'main.js')))) {
    throw new MlctlError('BUNDLE_SOURCE_MISSING', [`the mlctl installation at ${root} has neither sources nor a compiled dist/ (run npm run build)`]);
  }
  if (!(await exists(path.join(root, 'package-lock.json')))) throw new MlctlError('BUNDLE_SOURCE_MISSING', [`the mlctl installation at ${root} has no package-lock.json; the image installs exactly what it locks`]);
  await fs.mkdir(appDir, { recursive: true });
  const pkgJson = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  delete pkgJson.scripts;
  await fs.writeFile(path.join(appDir, 'package.json'), JSON.stringify(pkgJson, null, 2) + '\n');
  await fs.copyFile(path.join(root, 'package-lock.json'), path.join(appDir, 'package-lock.json'));
  const skip = (src: string) => !/(^|[\\/])(\.DS_Store|node_modules)$/.test(src) && !src.endsWith('.map');
  await fs.cp(path.join(root, 'bin'), path.join(appDir, 'bin'), { recursive: true, filter: skip });
  // serve's page (/) reads its files from ui/ beside src/ or dist/.
  await fs.cp(path.join(root, 'ui'), path.join(appDir, 'ui'), { recursive: true, filter: skip });
  if (mode === 'source') {
    await fs.cp(path.join(root, 'src'), path.join(appDir, 'src'), { recursive: true, filter: skip });
    for (const f of ['tsconfig.json', 'tsconfig.build.json']) await fs.copyFile(path.join(root, f), path.join(appDir, f));
  } else {
    await fs.cp(path.join(root, 'dist'), path.join(appDir, 'dist'), { recursive: true, filter: skip });
  }
  return mode;
}

/**
 * Copy the package byte for byte into models/<name>/<version>/ (with its signature: same version, same manifest, so
 * it still holds) and re-verify every sha256 there. Returns the signature file's sha256 when there is one.
 */
async function copyPackage(pkg: LoadedPackage, target: string): Promise<string | undefined> {
  await fs.mkdir(target, { recursive: true });
  for (const rel of [MANIFEST_FILE, ...Object.keys(pkg.manifest.files)]) {
    await fs.mkdir(path.dirname(path.join(target, rel)), { recursive: true });
    await fs.copyFile(path.join(pkg.dir, rel), path.join(target, rel));
  }
  await verifyPackage(target, pkg.manifest);
  const sig = await fs.readFile(path.join(pkg.dir, SIGNATURE_FILE)).catch(() => undefined);
  if (!sig) return undefined;
  await fs.writeFile(path.join(target, SIGNATURE_FILE), sig);
  return sha256(sig);
}

function modelBytes(pkg: LoadedPackage): number {
  return Object.values(pkg.manifest.files).reduce((a, f) => a + f.bytes, 0);
}

export async function writeBundleExport(pkg: LoadedPackage, dir: string, opts: BundleOptions = {}): Promise<Record<string, unknown>> {
  const m = pkg.manifest;
  const maxBatch = opts.maxBatch ?? BUNDLE_DEFAULTS.maxBatch;
  const minReplicas = opts.minReplicas ?? BUNDLE_DEFAULTS.minReplicas;
  const maxReplicas = Math.max(minReplicas, opts.maxReplicas ?? BUNDLE_DEFAULTS.maxReplicas);
  const name = k8sName(m.name);
  const image = opts.image ?? `mlctl-${name}:${m.version}`;
  const baseImage = opts.baseImage ?? DEFAULT_NODE_IMAGE;
  checkImageRef(image, '--image');
  checkImageRef(baseImage, '--base-image');
  if (!isPinnedImage(baseImage)) opts.logger?.warn(`--base-image ${baseImage} is not pinned to an exact version or digest: rebuilds may get a different Node`);
  const memory = memoryFor(modelBytes(pkg), maxBatch);
  const device = bundleDevice(opts.device, opts.logger);
  if (device.nvidiaGpu && baseImage === DEFAULT_NODE_IMAGE) {
    opts.logger?.warn(`--device ${device.device}: ${baseImage} has no CUDA libraries; build FROM an image with Node 20, CUDA 12 and cuDNN 9 (--base-image), or the pods fail with DEVICE_UNAVAILABLE`);
  }
  const settings: DeploySettings = {
    model: m.name,
    version: m.version,
    k8sName: name,
    image,
    minReplicas,
    maxReplicas,
    maxBatch,
    cpuRequest: '1',
    cpuLimit: '2',
    memoryRequest: memory.request,
    memoryLimit: memory.limit,
    cacheSizeLimit: cacheSizeFor(modelBytes(pkg)),
    manifestSha256: pkg.manifestSha256,
    mlctlVersion: MLCTL_VERSION,
    ...(m.encryption ? { modelKey: { secretName: modelKeySecretName(name), keyId: m.encryption.keyId } } : {}),
    ...device,
  };
  const packagePath = `models/${m.name}/${m.version}`;
  opts.logger?.info(`copying the package to ${packagePath}/ and verifying its hashes`);
  const signatureSha256 = await copyPackage(pkg, path.join(dir, packagePath));
  const app = await copyApp(opts.mlctlRoot ?? (await mlctlRoot()), path.join(dir, 'app'));
  const header = `Written by mlctl ${MLCTL_VERSION} export --format bundle for ${m.name} v${m.version}\n(source mlctl.json sha256 ${pkg.manifestSha256})`;
  // sha256sum -c format, paths relative to the bundle: the package's own table plus mlctl.json itself.
  const sums = [[pkg.manifestSha256, MANIFEST_FILE] as const, ...(signatureSha256 ? [[signatureSha256, SIGNATURE_FILE] as const] : []), ...Object.entries(m.files).map(([f, e]) => [e.sha256, f] as const)]
    .map(([hash, f]) => `${hash}  ${packagePath}/${f}`)
    .join('\n');
  const files: Record<string, string> = {
    [BUNDLE_FILES.checksums]: sums + '\n',
    [BUNDLE_FILES.dockerfile]: dockerfile({ baseImage, model: m.name, version: m.version, app, header, cudaProvider: device.nvidiaGpu }),
    [BUNDLE_FILES.dockerignore]: dockerignore(app),
    [BUNDLE_FILES.deployment]: toYaml(deployment(settings), header),
    [BUNDLE_FILES.service]: toYaml(service(settings), header),
    [BUNDLE_FILES.hpa]: toYaml(hpa(settings), header),
    [BUNDLE_FILES.pdb]: toYaml(podDisruptionBudget(settings), header),
    [BUNDLE_FILES.kustomization]: toYaml(kustomization(['deployment.yaml', 'service.yaml', 'hpa.yaml', 'pdb.yaml']), header),
    [BUNDLE_FILES.inferenceService]: toYaml(
      inferenceService(settings),
      `${header}\nKServe custom predictor speaking the Open Inference Protocol V2 (env PROTOCOL=v2 is how KServe\nlearns a custom container's protocol). Push the image first: docker build -t ${image} . && docker push ${image}`,
    ),
    [BUNDLE_FILES.inferenceServiceGrpc]: toYaml(
      inferenceServiceGrpc(settings),
      `${header}\nThe same KServe predictor on gRPC (inference.GRPCInferenceService, port ${SERVE.grpcPort}): KServe exposes one port per\npredictor, REST (inferenceservice.yaml) or gRPC (this file); apply one of them.`,
    ),
  };
  const details = {
    packagePath,
    image,
    baseImage,
    app,
    entrypoint: entrypoint(m.name),
    port: SERVE.port,
    grpcPort: SERVE.grpcPort,
    cache: { env: 'MLCTL_CACHE', path: SERVE.cacheDir, sizeLimit: settings.cacheSizeLimit },
    probes: { readiness: SERVE.ready, liveness: SERVE.live },
    replicas: { min: minReplicas, max: maxReplicas },
    resources: { cpu: { request: settings.cpuRequest, limit: settings.cpuLimit }, memory: memory, ...(device.nvidiaGpu ? { [NVIDIA_GPU.resource]: 1 } : {}) },
    device: device.device,
    files: Object.keys(files),
    ...(settings.modelKey ? { modelKey: settings.modelKey } : {}),
    ...(pkg.signature ? { signature: { keyId: pkg.signature.keyId, signedAt: pkg.signature.signedAt } } : {}),
  };
  const shards = opts.shards ?? BUNDLE_DEFAULTS.shards;
  const extract = extractTrainArgs(m);
  const batchHeader = `${header}\nBatch work as a Kubernetes Indexed Job (${shards} pods, pod i takes --shard i/${shards}); see README.md.`;
  files[BUNDLE_FILES.batchVolumes] = batchVolumeClaims(settings).map((c) => toYaml(c, batchHeader)).join('---\n');
  files[BUNDLE_FILES.predictJob] = toYaml(predictJob(settings, shards), batchHeader);
  files[BUNDLE_FILES.mergeJob] = toYaml(mergeJob(settings, shards), `${header}\nRun after the predict Job completes: joins the shard outputs into one file.`);
  if (extract) files[BUNDLE_FILES.extractJob] = toYaml(extractJob(settings, shards, extract), batchHeader);
  Object.assign(details, { batch: { shards, jobs: [BUNDLE_FILES.predictJob, BUNDLE_FILES.mergeJob, ...(extract ? [BUNDLE_FILES.extractJob] : [])], volumes: BUNDLE_FILES.batchVolumes }, files: Object.keys(files) });
  const meta = exportMetadata(pkg, 'bundle', details);
  files[BUNDLE_FILES.readme] = bundleReadme(meta, settings, { packagePath, app, baseImage, signed: Boolean(signatureSha256), shards, extractArgs: extract });
  for (const [rel, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), text);
  }
  await writeJsonAtomic(path.join(dir, METADATA_JSON), meta);
  return details;
}

/**
 * The bundle's --device: the image is Linux (Debian or Ubuntu), so cpu, the NVIDIA ones (cuda, tensorrt) and auto;
 * coreml (macOS), dml (Windows) and openvino (no onnxruntime-node provider) cannot run in it. A pod sees the one GPU
 * it is given as device 0, so cuda:N becomes cuda:0.
 */
function bundleDevice(value: string | undefined, logger?: Logger): { device: string; nvidiaGpu: boolean } {
  const d = parseDevice(value ?? 'cpu');
  if (d !== 'auto' && (d.kind === 'coreml' || d.kind === 'dml' || d.kind === 'openvino')) {
    throw new MlctlError('OPTION_INVALID', [`--device ${formatDevice(d)} cannot run in the bundle's Linux image (coreml is macOS-only, dml Windows-only, and onnxruntime-node ships no openvino provider): use cpu, cuda, tensorrt or auto`]);
  }
  if (d !== 'auto' && (d.index ?? 0) > 0) logger?.warn(`--device ${formatDevice(d)}: a pod sees the GPU it is given as device 0; the manifests use ${d.kind}:0`);
  const device = d === 'auto' ? 'auto' : formatDevice({ kind: d.kind, ...(needsNvidiaGpu(d) ? { index: 0 } : {}) });
  return { device, nvidiaGpu: needsNvidiaGpu(d) };
}

// Kubernetes and KServe manifests for a deploy bundle, as plain objects serialised with the `yaml` library: a
// Deployment whose probes hit mlctl serve's health routes (REST and gRPC ports, read-only root filesystem with the
// cache on an emptyDir), a Service (gRPC port marked h2c), an autoscaling/v2 HPA, a PDB, and KServe InferenceServices
// (custom container speaking the Open Inference Protocol V2 over REST, and a gRPC variant).
import { Document } from 'yaml';

/** The `mlctl serve` contract the manifests and the Dockerfile rely on (routes from src/serve/routes/v2.ts). */
export const SERVE = {
  port: 8080,
  /** `mlctl serve --grpc-port`: the V2 gRPC service (inference.GRPCInferenceService) and grpc.health.v1. */
  grpcPort: 8081,
  /** MLCTL_CACHE inside the image: an emptyDir in the manifests, so a read-only root filesystem is never written. */
  cacheDir: '/var/cache/mlctl',
  live: '/v2/health/live',
  ready: '/v2/health/ready',
  metrics: '/metrics',
  /** Non-root uid/gid the image runs as (numeric, so runAsNonRoot can verify it). */
  uid: 1000,
} as const;

export interface DeploySettings {
  /** Model name as `mlctl serve` reports it (the package name). */
  model: string;
  version: number;
  /** DNS-1123 name for the Kubernetes objects. */
  k8sName: string;
  image: string;
  minReplicas: number;
  maxReplicas: number;
  maxBatch: number;
  cpuRequest: string;
  cpuLimit: string;
  memoryRequest: string;
  memoryLimit: string;
  /** emptyDir size for the cache (ONNX conversions of the model). */
  cacheSizeLimit: string;
  /** Source identity for annotations. */
  manifestSha256: string;
  mlctlVersion: string;
  /** An encrypted package: its key is mounted from this Secret at run time (never part of the bundle or image). */
  modelKey?: { secretName: string; keyId: string };
  /** `mlctl serve --device` in the pods (runtime/device.ts name); unset or cpu: no GPU asked for. */
  device?: string;
  /** The device runs on an NVIDIA GPU: pods request `nvidia.com/gpu` and schedule onto GPU nodes. */
  nvidiaGpu?: boolean;
}

/** The extended resource the NVIDIA device plugin advertises, and the label GPU feature discovery puts on GPU nodes. */
export const NVIDIA_GPU = { resource: 'nvidia.com/gpu', nodeLabel: 'nvidia.com/gpu.present' } as const;

/** `--device X` for mlctl in the pods (nothing for cpu: serve's default). */
function deviceArgs(s: DeploySettings): string[] {
  return s.device && s.device !== 'cpu' ? ['--device', s.device] : [];
}

/**
 * Pod-spec fields that put a GPU pod on a GPU node: a node selector on the GPU feature discovery label, and a
 * toleration for the `nvidia.com/gpu` taint cloud GPU node pools carry (GKE, AKS). Nothing for cpu.
 */
function gpuScheduling(s: DeploySettings) {
  if (!s.nvidiaGpu) return {};
  return {
    nodeSelector: { [NVIDIA_GPU.nodeLabel]: 'true' },
    tolerations: [{ key: NVIDIA_GPU.resource, operator: 'Exists', effect: 'NoSchedule' }],
  };
}

/** Where the model key Secret is mounted and the file `mlctl serve` reads it from (via MLCTL_MODEL_KEY_FILE). */
export const MODEL_KEY_MOUNT = { dir: '/var/run/secrets/mlctl', file: 'model.key', env: 'MLCTL_MODEL_KEY_FILE' } as const;

/** The Secret holding an encrypted package's key: created by the operator, never written by mlctl. */
export function modelKeySecretName(k8sObjectName: string): string {
  return `${k8sObjectName.slice(0, 53)}-model-key`;
}

/** env, volumeMounts and volumes that give the container the model key file (empty without encryption). */
function modelKeyParts(s: DeploySettings) {
  if (!s.modelKey) return { env: [], mounts: [], volumes: [] };
  return {
    env: [{ name: MODEL_KEY_MOUNT.env, value: `${MODEL_KEY_MOUNT.dir}/${MODEL_KEY_MOUNT.file}` }],
    mounts: [{ name: 'model-key', mountPath: MODEL_KEY_MOUNT.dir, readOnly: true }],
    // 0440 root:fsGroup: readable by the server's group only.
    volumes: [{ name: 'model-key', secret: { secretName: s.modelKey.secretName, defaultMode: 0o440, items: [{ key: MODEL_KEY_MOUNT.file, path: MODEL_KEY_MOUNT.file }] } }],
  };
}

/**
 * A Kubernetes object name from a model name: a DNS-1035 label (lower case [a-z0-9-], starting with a letter, at most
 * 63 characters), the strictest rule among the objects written (Services need it).
 */
export function k8sName(name: string): string {
  let s = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(s)) s = `m-${s}`;
  return s.slice(0, 63).replace(/-+$/, '');
}

const MI = 1024 * 1024;

/**
 * Memory sized from the package: the runtime, weights held by the engine (with copies during load), and
 * activation buffers that grow with the batch. A starting point; measured usage should replace it.
 */
export function memoryFor(modelBytes: number, maxBatch: number): { request: string; limit: string } {
  const mi = 512 + Math.ceil((4 * modelBytes) / MI) + 64 * maxBatch;
  const rounded = Math.ceil(mi / 64) * 64;
  return { request: `${rounded}Mi`, limit: `${rounded * 2}Mi` };
}

/** The cache emptyDir: an fp32 ONNX conversion is up to 4x a quantized package; room for two, and slack. */
export function cacheSizeFor(modelBytes: number): string {
  return `${Math.ceil((8 * modelBytes) / MI / 64) * 64 + 256}Mi`;
}

function labels(s: DeploySettings): Record<string, string> {
  return {
    'app.kubernetes.io/name': s.k8sName,
    'app.kubernetes.io/instance': s.k8sName,
    'app.kubernetes.io/version': String(s.version),
    'app.kubernetes.io/component': 'inference',
    'app.kubernetes.io/managed-by': 'mlctl',
  };
}

function selector(s: DeploySettings): Record<string, string> {
  return { 'app.kubernetes.io/name': s.k8sName, 'app.kubernetes.io/instance': s.k8sName };
}

function annotations(s: DeploySettings): Record<string, string> {
  return {
    'mlctl/model': s.model,
    'mlctl/model-version': String(s.version),
    'mlctl/source-manifest-sha256': s.manifestSha256,
    'mlctl/exported-by': `mlctl ${s.mlctlVersion}`,
  };
}

function probes(port: number | string) {
  return {
    startupProbe: { httpGet: { path: SERVE.live, port }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 60 },
    readinessProbe: { httpGet: { path: SERVE.ready, port }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: SERVE.live, port }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
  };
}

function resources(s: DeploySettings, gpu = true) {
  // Extended resources are not overcommitted: request and limit are both one whole GPU (a pod sees it as device 0).
  const g = gpu && s.nvidiaGpu ? { [NVIDIA_GPU.resource]: '1' } : {};
  return { requests: { cpu: s.cpuRequest, memory: s.memoryRequest, ...g }, limits: { cpu: s.cpuLimit, memory: s.memoryLimit, ...g } };
}

const containerSecurity = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } };

export function deployment(s: DeploySettings) {
  const key = modelKeyParts(s);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: s.k8sName, labels: labels(s), annotations: annotations(s) },
    spec: {
      // No `replicas`: the HorizontalPodAutoscaler owns the count (a fixed value here would fight it on every apply).
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector(s) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: labels(s),
          annotations: { ...annotations(s), 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(SERVE.port), 'prometheus.io/path': SERVE.metrics },
        },
        spec: {
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          securityContext: { runAsNonRoot: true, runAsUser: SERVE.uid, runAsGroup: SERVE.uid, fsGroup: SERVE.uid, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'mlctl-serve',
              image: s.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['--max-batch', String(s.maxBatch), ...deviceArgs(s)],
              ports: [
                { name: 'http', containerPort: SERVE.port, protocol: 'TCP' },
                { name: 'grpc', containerPort: SERVE.grpcPort, protocol: 'TCP' },
              ],
              env: [{ name: 'NODE_ENV', value: 'production' }, { name: 'MLCTL_CACHE', value: SERVE.cacheDir }, ...key.env],
              ...probes('http'),
              // Let the Service drop this pod from its endpoints before the server starts draining on SIGTERM.
              lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
              resources: resources(s),
              securityContext: containerSecurity,
              // The root filesystem is read-only: the cache (ONNX conversions) and /tmp are the only writable paths.
              volumeMounts: [{ name: 'cache', mountPath: SERVE.cacheDir }, { name: 'tmp', mountPath: '/tmp' }, ...key.mounts],
            },
          ],
          volumes: [{ name: 'cache', emptyDir: { sizeLimit: s.cacheSizeLimit } }, { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }, ...key.volumes],
          ...gpuScheduling(s),
        },
      },
    },
  };
}

export function service(s: DeploySettings) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.k8sName, labels: labels(s), annotations: annotations(s) },
    spec: {
      type: 'ClusterIP',
      selector: selector(s),
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        // gRPC is HTTP/2 without TLS: appProtocol tells ingress controllers and meshes (Istio also reads the "grpc" name).
        { name: 'grpc', port: SERVE.grpcPort, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
      ],
    },
  };
}

export function hpa(s: DeploySettings) {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: s.k8sName, labels: labels(s) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: s.k8sName },
      minReplicas: s.minReplicas,
      maxReplicas: s.maxReplicas,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 2, periodSeconds: 60 }] },
        scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
      },
    },
  };
}

export function podDisruptionBudget(s: DeploySettings) {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: s.k8sName, labels: labels(s) },
    spec: { minAvailable: 1, selector: { matchLabels: selector(s) } },
  };
}

export function kustomization(files: string[]) {
  return { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files };
}

function kserveContainer(s: DeploySettings) {
  const key = modelKeyParts(s);
  return {
    name: 'kserve-container',
    image: s.image,
    args: ['--max-batch', String(s.maxBatch), ...deviceArgs(s)],
    env: [{ name: 'PROTOCOL', value: 'v2' }, { name: 'NODE_ENV', value: 'production' }, ...key.env],
    ...(key.mounts.length ? { volumeMounts: key.mounts } : {}),
    resources: resources(s),
    // No read-only root here: Knative only mounts emptyDir volumes (for /tmp) when the cluster enables it.
    securityContext: { ...containerSecurity, readOnlyRootFilesystem: false },
  };
}

function kservePredictor(s: DeploySettings, container: Record<string, unknown>) {
  const key = modelKeyParts(s);
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: s.k8sName, labels: labels(s), annotations: annotations(s) },
    spec: {
      predictor: {
        minReplicas: s.minReplicas,
        maxReplicas: s.maxReplicas,
        scaleMetric: 'cpu',
        scaleTarget: 70,
        containers: [container],
        ...(key.volumes.length ? { volumes: key.volumes } : {}),
        ...gpuScheduling(s),
      },
    },
  };
}

/**
 * KServe custom predictor: the container must be named kserve-container, and KServe reads a custom container's
 * protocol from its PROTOCOL env var (`protocolVersion` exists only on model-format predictors).
 */
export function inferenceService(s: DeploySettings) {
  const c = kserveContainer(s);
  return kservePredictor(s, {
    ...c,
    ports: [{ name: 'http1', containerPort: SERVE.port, protocol: 'TCP' }],
    readinessProbe: probes(SERVE.port).readinessProbe,
    livenessProbe: probes(SERVE.port).livenessProbe,
  });
}

/**
 * The same predictor on gRPC. KServe routes one port per predictor (REST or gRPC, not both); Knative takes a port
 * named h2c as HTTP/2 cleartext, and probes only the declared port — so the probes are gRPC health checks
 * (grpc.health.v1, SERVING once the model is warm), the same readiness mlctl serve reports on /v2/health/ready.
 */
export function inferenceServiceGrpc(s: DeploySettings) {
  const c = kserveContainer(s);
  const grpcProbe = (p: { periodSeconds: number; timeoutSeconds: number; failureThreshold: number }) => ({ grpc: { port: SERVE.grpcPort }, periodSeconds: p.periodSeconds, timeoutSeconds: p.timeoutSeconds, failureThreshold: p.failureThreshold });
  const http = probes(SERVE.port);
  return kservePredictor(s, {
    ...c,
    ports: [{ name: 'h2c', containerPort: SERVE.grpcPort, protocol: 'TCP' }],
    readinessProbe: grpcProbe(http.readinessProbe),
    livenessProbe: grpcProbe(http.livenessProbe),
  });
}

/** YAML text with a leading comment block. */
export function toYaml(value: unknown, comment?: string): string {
  const doc = new Document(value);
  if (comment) doc.commentBefore = comment.split('\n').map((l) => ` ${l}`).join('\n');
  return doc.toString({ lineWidth: 0 });
}

// ---- Batch work as Kubernetes Indexed Jobs: predict (and feature extraction for training) spread over N pods, each
// taking shard $(JOB_COMPLETION_INDEX)/N of the same listing, then one Job merging the shard outputs.

/** Where the batch Jobs mount their volumes: data read-only, results (outputs, feature store) read-write. */
export const BATCH = {
  data: '/data',
  work: '/work',
  /** The Job controller sets it in every pod of an Indexed Job (0 … completions-1); args expand $(VAR). */
  indexVar: 'JOB_COMPLETION_INDEX',
} as const;

export interface BatchSettings {
  shards: number;
  /** argv after `node /app/bin/mlctl.js` for the extract Job (train --extract-only …), when the package allows one. */
  extractArgs?: string[];
}

const batchName = (s: DeploySettings, what: string) => `${s.k8sName.slice(0, 63 - what.length - 1).replace(/-+$/, '')}-${what}`;
export const batchPvc = (s: DeploySettings, which: 'data' | 'work') => batchName(s, which);

/** Predictions of one model version: shard outputs in their own folder (so --merge never mixes runs). */
export function batchPaths(s: DeploySettings, shards: number) {
  const dir = `${BATCH.work}/predictions/${s.model}-v${s.version}-${shards}-shards`;
  return { inputs: `${BATCH.data}/inputs`, dir, shardOut: `${dir}/predictions-$(${BATCH.indexVar})-of-${shards}.csv`, merged: `${BATCH.work}/predictions/${s.model}-v${s.version}.csv`, cache: `${BATCH.work}/cache`, train: `${BATCH.data}/train` };
}

function batchPod(s: DeploySettings, component: string, args: string[], env: Array<{ name: string; value: string }>, dataReadOnly = true, gpu = false) {
  // An encrypted package's pods read the key from the same Secret the Deployment mounts.
  const key = modelKeyParts(s);
  return {
    metadata: { labels: { ...labels(s), 'app.kubernetes.io/component': component }, annotations: annotations(s) },
    spec: {
      // backoffLimitPerIndex needs Never: a failed pod is replaced by a new one with the same index.
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: SERVE.uid, runAsGroup: SERVE.uid, fsGroup: SERVE.uid, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: `mlctl-${component}`,
          image: s.image,
          imagePullPolicy: 'IfNotPresent',
          // The image's entrypoint serves; batch pods run another mlctl command.
          command: ['node', '/app/bin/mlctl.js'],
          args: gpu ? [...args, ...deviceArgs(s)] : args,
          env: [{ name: 'NODE_ENV', value: 'production' }, ...env, ...key.env],
          resources: resources(s, gpu),
          securityContext: containerSecurity,
          volumeMounts: [
            { name: 'data', mountPath: BATCH.data, readOnly: dataReadOnly },
            { name: 'work', mountPath: BATCH.work },
            { name: 'tmp', mountPath: '/tmp' },
            ...key.mounts,
          ],
        },
      ],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: batchPvc(s, 'data'), readOnly: dataReadOnly } },
        { name: 'work', persistentVolumeClaim: { claimName: batchPvc(s, 'work') } },
        { name: 'tmp', emptyDir: { sizeLimit: '2Gi' } },
        ...key.volumes,
      ],
      ...(gpu ? gpuScheduling(s) : {}),
    },
  };
}

function indexedJob(s: DeploySettings, component: string, shards: number, args: string[], env: Array<{ name: string; value: string }>) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: batchName(s, component), labels: { ...labels(s), 'app.kubernetes.io/component': component }, annotations: annotations(s) },
    spec: {
      completionMode: 'Indexed',
      completions: shards,
      parallelism: shards,
      // Each index retries on its own (Kubernetes ≥ 1.29); a retried pod continues its shard (--resume / the store).
      backoffLimitPerIndex: 3,
      ttlSecondsAfterFinished: 7 * 24 * 3600,
      // Predict and feature extraction run the model: on the bundle's device (merge only joins files, on a CPU node).
      template: batchPod(s, component, args, env, true, true),
    },
  };
}

/** Indexed Job: pod i predicts shard i/N of /data/inputs into its own file on the work volume. */
export function predictJob(s: DeploySettings, shards: number) {
  const p = batchPaths(s, shards);
  const args = ['predict', `/models/${s.model}/${s.version}`, p.inputs, '--shard', `$(${BATCH.indexVar})/${shards}`, '--out', p.shardOut, '--resume', '--batch-size', String(s.maxBatch)];
  // The ONNX conversion cache is per pod (/tmp): converting once per pod is cheaper than sharing a volume for it.
  return indexedJob(s, 'predict', shards, args, [{ name: 'MLCTL_CACHE', value: '/tmp/mlctl-cache' }]);
}

/** One pod joining the shard outputs (after the predict Job completes) into the rows of one unsharded run. */
export function mergeJob(s: DeploySettings, shards: number) {
  const p = batchPaths(s, shards);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: batchName(s, 'merge'), labels: { ...labels(s), 'app.kubernetes.io/component': 'merge' }, annotations: annotations(s) },
    spec: { backoffLimit: 2, ttlSecondsAfterFinished: 7 * 24 * 3600, template: batchPod(s, 'merge', ['predict', '--merge', p.dir, '--out', p.merged, '--force'], []) },
  };
}

/** Indexed Job: pod i fills the shared feature store (MLCTL_CACHE on the work volume) for shard i/N of /data/train. */
export function extractJob(s: DeploySettings, shards: number, extractArgs: string[]) {
  const p = batchPaths(s, shards);
  const args = [...extractArgs, '--data', p.train, '--extract-only', '--shard', `$(${BATCH.indexVar})/${shards}`];
  return indexedJob(s, 'extract', shards, args, [{ name: 'MLCTL_CACHE', value: p.cache }]);
}

/** The two claims the batch Jobs mount; ReadWriteMany so every pod of a Job can use them at once. */
export function batchVolumeClaims(s: DeploySettings) {
  const claim = (which: 'data' | 'work', size: string, what: string) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: batchPvc(s, which), labels: { ...labels(s), 'app.kubernetes.io/component': 'batch' }, annotations: { 'mlctl/holds': what } },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: size } } },
  });
  return [claim('data', '100Gi', `${BATCH.data}/inputs (images to predict) and ${BATCH.data}/train (a dataset)`), claim('work', '50Gi', `${BATCH.work}/predictions and ${BATCH.work}/cache (the feature store)`)];
}

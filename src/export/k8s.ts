// Kubernetes and KServe manifests for a deploy bundle, as plain objects serialised with the `yaml` library: a
// Deployment whose probes hit mlctl serve's health routes, a Service, an autoscaling/v2 HPA, a PDB, and a KServe
// InferenceService (custom container speaking the Open Inference Protocol V2).
import { Document } from 'yaml';

/** The `mlctl serve` contract the manifests and the Dockerfile rely on (routes from src/serve/routes/v2.ts). */
export const SERVE = {
  port: 8080,
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
  /** Source identity for annotations. */
  manifestSha256: string;
  mlctlVersion: string;
  /** An encrypted package: its key is mounted from this Secret at run time (never part of the bundle or image). */
  modelKey?: { secretName: string; keyId: string };
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

function resources(s: DeploySettings) {
  return { requests: { cpu: s.cpuRequest, memory: s.memoryRequest }, limits: { cpu: s.cpuLimit, memory: s.memoryLimit } };
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
              args: ['--max-batch', String(s.maxBatch)],
              ports: [{ name: 'http', containerPort: SERVE.port, protocol: 'TCP' }],
              env: [{ name: 'NODE_ENV', value: 'production' }, ...key.env],
              ...probes('http'),
              // Let the Service drop this pod from its endpoints before the server starts draining on SIGTERM.
              lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
              resources: resources(s),
              securityContext: containerSecurity,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...key.mounts],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }, ...key.volumes],
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
    spec: { type: 'ClusterIP', selector: selector(s), ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
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

/**
 * KServe custom predictor: the container must be named kserve-container, and KServe reads a custom container's
 * protocol from its PROTOCOL env var (`protocolVersion` exists only on model-format predictors).
 */
export function inferenceService(s: DeploySettings) {
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
        containers: [
          {
            name: 'kserve-container',
            image: s.image,
            args: ['--max-batch', String(s.maxBatch)],
            env: [{ name: 'PROTOCOL', value: 'v2' }, { name: 'NODE_ENV', value: 'production' }, ...key.env],
            ...(key.mounts.length ? { volumeMounts: key.mounts } : {}),
            ports: [{ name: 'http1', containerPort: SERVE.port, protocol: 'TCP' }],
            readinessProbe: probes(SERVE.port).readinessProbe,
            livenessProbe: probes(SERVE.port).livenessProbe,
            resources: resources(s),
            // No read-only root here: Knative only mounts emptyDir volumes (for /tmp) when the cluster enables it.
            securityContext: { ...containerSecurity, readOnlyRootFilesystem: false },
          },
        ],
        ...(key.volumes.length ? { volumes: key.volumes } : {}),
      },
    },
  };
}

/** YAML text with a leading comment block. */
export function toYaml(value: unknown, comment?: string): string {
  const doc = new Document(value);
  if (comment) doc.commentBefore = comment.split('\n').map((l) => ` ${l}`).join('\n');
  return doc.toString({ lineWidth: 0 });
}

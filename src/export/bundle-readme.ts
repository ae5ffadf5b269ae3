// README.md of a deploy bundle: what is in it, where it came from, and the exact commands to build, run and deploy.
import type { DeploySettings } from './k8s.js';
import { BATCH, batchPaths, batchPvc, MODEL_KEY_MOUNT, SERVE } from './k8s.js';
import type { ExportMetadata } from './source.js';
import { describeResize } from '../data/preprocess.js';

/** How a client turns an image into what the model takes: decode, the recorded resize, then the recorded arithmetic. */
function inputSection(meta: ExportMetadata): string {
  if (meta.input.kind !== 'image') return '';
  const p = meta.input.preprocessing;
  const nums = (xs: number[]) => `[${xs.map((x) => Number(x.toFixed(6))).join(', ')}]`;
  return `
## Input preprocessing

A client that sends images (\`POST /predict\`, V2 BYTES inputs) gets this done by the server. A client that sends
FP32 tensors, or runs the exported ONNX/Triton model itself, must do exactly this (metadata.json \`input\`, ONNX
metadata and Triton parameters \`mlctl.preprocessing\` / \`mlctl.resize\` say the same):

1. Decode, apply the EXIF orientation, drop alpha, convert to sRGB RGB.
2. Resize: ${describeResize(meta.input)}.
3. ${p.channelOrder === 'BGR' ? 'Reorder the channels to BGR, then c' : 'C'}ompute (pixel × ${Number(p.scale.toPrecision(6))} − mean) / std per channel, mean ${nums(p.mean)}, std ${nums(p.std)} (\`${p.mode}\` mode), NHWC float32.

A different resize kernel (sharp's default lanczos3, OpenCV's INTER_LINEAR without antialiasing) feeds the model other
pixels than it was trained on and costs accuracy. \`--embed-preprocessing\` exports take UINT8 pixels after step 2.
`;
}

/** The section an encrypted package's bundle needs: where the key comes from (a Secret), never the key. */
function modelKeySection(s: DeploySettings): string {
  if (!s.modelKey) return '';
  const mounted = `${MODEL_KEY_MOUNT.dir}/${MODEL_KEY_MOUNT.file}`;
  return `
## Model key (encrypted package)

The weights in this bundle are AES-256-GCM encrypted (key id \`${s.modelKey.keyId}\`). The key is not in the
bundle and must never be in the image: the server reads it at start-up from the file named by
\`${MODEL_KEY_MOUNT.env}\` and decrypts in memory only (no plaintext is written, the ONNX conversion cache is off).

\`\`\`sh
# Kubernetes and KServe: the manifests mount this Secret read-only at ${MODEL_KEY_MOUNT.dir}/
kubectl create secret generic ${s.modelKey.secretName} --from-file=${MODEL_KEY_MOUNT.file}=/secure/path/model.key
# Locally:
docker run --rm -p ${SERVE.port}:${SERVE.port} -v /secure/path/model.key:${mounted}:ro -e ${MODEL_KEY_MOUNT.env}=${mounted} ${s.image}
\`\`\`

Without the key (or with another one) the pod exits 1 saying which key id it needs, and never becomes ready.
Rotate by encrypting a new package version with the new key (\`mlctl decrypt\` + \`mlctl encrypt\` on a
trusted host), exporting it, and updating the Secret with the rollout.
`;
}

function signatureSection(signed: boolean): string {
  if (!signed) return '';
  return `
## Signature

\`models/.../mlctl.sig\` is the package's Ed25519 signature over its \`mlctl.json\` (which hashes every file). Check it
with \`mlctl verify <package dir> --trusted DIR\`, and make the server refuse anything else by adding
\`--require-signature --trusted-keys DIR\` to the serve arguments with DIR mounted from a ConfigMap of public keys.
`;
}


/** The batch section: predict (and feature extraction) as Indexed Jobs, then the merge. */
function batchSection(s: DeploySettings, shards: number, extractArgs: string[] | undefined): string {
  const p = batchPaths(s, shards);
  const jobName = (what: string) => `${s.k8sName.slice(0, 63 - what.length - 1).replace(/-+$/, '')}-${what}`;
  const extract = extractArgs
    ? `
### Training data: spread the backbone pass over ${shards} pods

\`k8s/batch/extract-job.yaml\` runs \`mlctl ${extractArgs.join(' ')} --data ${p.train} --extract-only --shard $(${BATCH.indexVar})/${shards}\`:
each pod computes the frozen base's features of its 1/${shards} of the dataset in \`${p.train}\` (one subfolder per class) and
writes them to the shared feature store under \`MLCTL_CACHE=${p.cache}\` (the store takes many writers at once; a retried
pod skips what is stored). Then train the head on one machine from the filled store — with the same MLCTL_CACHE, the
same dataset path and the same backbone options, nothing is recomputed:

\`\`\`sh
kubectl apply -f k8s/batch/extract-job.yaml
kubectl wait --for=condition=complete --timeout=24h job/${jobName('extract')}
# on one machine (or pod) with both volumes mounted at ${BATCH.data} and ${BATCH.work}:
MLCTL_CACHE=${p.cache} mlctl ${extractArgs.join(' ')} --data ${p.train}
\`\`\`
`
    : '';
  return `## Batch prediction on Kubernetes (Indexed Job)

For large input sets, \`k8s/batch/\` runs \`mlctl predict\` as an Indexed Job of ${shards} pods (\`completionMode: Indexed\`,
\`completions\` = \`parallelism\` = ${shards}). Kubernetes gives pod i \`${BATCH.indexVar}\`=i, and its args pass
\`--shard $(${BATCH.indexVar})/${shards}\`: every pod lists the same inputs and keeps those whose sha256(input path) mod ${shards}
is its index, so the shards are disjoint and cover everything without any coordination. Each pod writes its own file,
\`${p.shardOut}\`, appending whole fsync'd lines; a pod that is retried
(\`backoffLimitPerIndex: 3\`) continues its file with \`--resume\`. The merge Job then joins the shards into
\`${p.merged}\` — the same rows, in the same order, as one unsharded run (it refuses a set with a
missing, unfinished or foreign shard).

| File | What |
|---|---|
| \`k8s/batch/volumes.yaml\` | PersistentVolumeClaims \`${batchPvc(s, 'data')}\` (mounted read-only at \`${BATCH.data}\`: images to predict in \`${p.inputs}\`${extractArgs ? `, a dataset in \`${p.train}\`` : ''}) and \`${batchPvc(s, 'work')}\` (\`${BATCH.work}\`: outputs${extractArgs ? ', feature store' : ''}); ReadWriteMany — or point the Jobs at claims you have |
| \`k8s/batch/predict-job.yaml\` | the Indexed Job: \`mlctl predict /models/${s.model}/${s.version} ${p.inputs} --shard $(${BATCH.indexVar})/${shards} --out … --resume\` |
| \`k8s/batch/merge-job.yaml\` | one pod: \`mlctl predict --merge ${p.dir} --out ${p.merged}\` |${extractArgs ? `
| \`k8s/batch/extract-job.yaml\` | the training-data variant: \`train --extract-only --shard $(${BATCH.indexVar})/${shards}\` filling the shared feature store |` : ''}

\`\`\`sh
kubectl apply -f k8s/batch/volumes.yaml            # once; copy the images to ${p.inputs} on ${batchPvc(s, 'data')}
kubectl apply -f k8s/batch/predict-job.yaml
kubectl wait --for=condition=complete --timeout=24h job/${jobName('predict')}
kubectl apply -f k8s/batch/merge-job.yaml
kubectl wait --for=condition=complete job/${jobName('merge')}
\`\`\`

The same works outside Kubernetes: run \`mlctl predict MODEL INPUTS --shard i/${shards} --out shard-i.csv\` on ${shards} machines
that see the same inputs, then \`mlctl predict --merge shard-*.csv --out all.csv\`. Change the number of shards with
\`mlctl export --format bundle --shards N\` (a finished shard set is only merged with its own N).
${extract}`;
}

export function bundleReadme(meta: ExportMetadata, s: DeploySettings, o: { packagePath: string; app: 'source' | 'dist'; baseImage: string; signed?: boolean; shards: number; extractArgs?: string[] }): string {
  const src = meta.source;
  const input = meta.input.kind === 'image' ? `${meta.input.height}x${meta.input.width} RGB image, ${meta.input.preprocessing.mode} preprocessing` : meta.input.kind === 'tabular' ? `tabular (${meta.input.features.length} features)` : `${meta.input.tensors.length} tensor(s)`;
  const fileRows = Object.entries(src.files)
    .map(([f, e]) => `| \`${f}\` | ${e.bytes} | \`${e.sha256}\` |`)
    .join('\n');
  const commented = (lines: Array<[string, string]>) => {
    const width = Math.max(...lines.map(([c]) => c.length)) + 2;
    return lines.map(([c, note]) => (note ? `${c.padEnd(width)}# ${note}` : c)).join('\n');
  };
  const port = SERVE.port;
  return `# ${meta.name} v${src.version} — deploy bundle

Written by ${meta.exportedBy} on ${meta.exportedAt}. Everything needed to build a container image that serves
this model with \`mlctl serve\` and to run it on Kubernetes (plain manifests or KServe).

- Task: ${meta.task ?? 'none (generic tensor model)'}; input: ${input}; ${meta.labels.length} labels (${meta.labels.slice(0, 8).join(', ')}${meta.labels.length > 8 ? ', …' : ''}).
- Source package: \`${src.name}\` version ${src.version}, mlctl.json sha256 \`${src.manifestSha256}\`.

## Layout

| Path | What |
|---|---|
| \`${o.packagePath}/\` | the model package, byte for byte (\`mlctl.json\` lists every file's sha256) |
| \`app/\` | mlctl ${meta.exportedBy.replace(/^mlctl /, '')} (${o.app === 'source' ? 'TypeScript sources, compiled in the image build stage' : 'compiled JavaScript'}), the serve page's files (ui/), its package.json and package-lock.json |
| \`Dockerfile\`, \`.dockerignore\` | production image: \`${o.baseImage}\`, \`npm ci --omit=dev\`, uid ${SERVE.uid}, HEALTHCHECK on \`${SERVE.ready}\` |
| \`k8s/\` | Deployment, Service, HorizontalPodAutoscaler (autoscaling/v2), PodDisruptionBudget, kustomization.yaml |
| \`kserve/inferenceservice.yaml\` | KServe InferenceService (serving.kserve.io/v1beta1, custom container, Open Inference Protocol V2 over REST) |
| \`kserve/inferenceservice-grpc.yaml\` | the same predictor on gRPC (port \`h2c\` ${SERVE.grpcPort}, gRPC health probes) |
| \`k8s/batch/\` | batch prediction (and feature extraction) as Kubernetes Indexed Jobs, the merge Job and their volumes |
| \`metadata.json\`, \`SHA256SUMS\` | labels, preprocessing, source package, file hashes and lineage; checksums for \`sha256sum -c\` |

## Build and run locally

\`\`\`sh
${commented([
  ['sha256sum -c SHA256SUMS', 'the model files are the ones exported'],
  [`docker build -t ${s.image} .`, ''],
  [`docker run --rm -p ${port}:${port} -p ${SERVE.grpcPort}:${SERVE.grpcPort} ${s.image}`, 'extra serve flags go after the image name'],
  [`curl -fsS localhost:${port}${SERVE.ready}`, '200 once the model is loaded and warm'],
  [`curl -fsS -F image=@cat.jpg localhost:${port}/predict`, '{"predictions": [[...]], "labels": [[...]], ...}'],
  [`curl -fsS localhost:${port}/v2/models/${meta.name}`, 'V2 model metadata (inputs, outputs)'],
  [`grpcurl -plaintext -proto health.proto localhost:${SERVE.grpcPort} grpc.health.v1.Health/Check`, 'gRPC health: {"status": "SERVING"} (no server reflection: grpcurl needs the .proto)'],
])}
\`\`\`

gRPC clients (tritonclient.grpc, the KServe SDK, grpcurl with open_inference_grpc.proto) use port ${SERVE.grpcPort}:
\`inference.GRPCInferenceService\` (ModelInfer, ModelMetadata, ServerReady …) and \`grpc.health.v1.Health\`.

The image runs \`mlctl serve /models/${meta.name} --host 0.0.0.0 --port ${SERVE.port} --grpc-port ${SERVE.grpcPort}\` as a non-root user; append flags
such as \`--max-batch 16\` or \`--engine onnx\` to \`docker run\` (or to \`args:\` in the manifests). SIGTERM drains
in-flight requests before exit.

${inputSection(meta)}${modelKeySection(s)}${signatureSection(Boolean(o.signed))}
## Deploy on Kubernetes

\`\`\`sh
${commented([[`docker push ${s.image}`, 'or retag for your registry and edit image: in k8s/ and kserve/']])}
kubectl apply -k k8s/
kubectl rollout status deployment/${s.k8sName}
kubectl port-forward service/${s.k8sName} 8080:80
\`\`\`

- Probes: readiness \`${SERVE.ready}\` (false until the model is warm, and while draining), liveness
  \`${SERVE.live}\`, a startup probe allowing 5 minutes for the first load. Port ${SERVE.port} (named \`http\`, Service port 80)
  and gRPC port ${SERVE.grpcPort} (named \`grpc\`, Service port ${SERVE.grpcPort} with \`appProtocol: kubernetes.io/h2c\`).
- Read-only root filesystem: the pod writes only to \`MLCTL_CACHE=${SERVE.cacheDir}\` (an emptyDir of ${s.cacheSizeLimit}
  holding the ONNX conversion of the model) and \`/tmp\` (an emptyDir); the model files are owned by root.
- Resources per pod: cpu ${s.cpuRequest} requested / ${s.cpuLimit} limit, memory ${s.memoryRequest} / ${s.memoryLimit}
  (estimated from the model size and \`--max-batch ${s.maxBatch}\`; replace with measured figures).
- Scaling: the HPA keeps ${s.minReplicas}–${s.maxReplicas} replicas at 70% CPU; the Deployment has no fixed
  \`replicas\` so re-applying never fights the autoscaler. Prometheus metrics at \`${SERVE.metrics}\`.

## Deploy on KServe

\`\`\`sh
kubectl apply -f kserve/inferenceservice.yaml
kubectl get inferenceservice ${s.k8sName}
\`\`\`

The predictor is a custom container named \`kserve-container\` with \`PROTOCOL=v2\`: KServe routes V2 requests
(\`POST /v2/models/${meta.name}/infer\`) to it and uses the same readiness and liveness routes. KServe exposes one
port per predictor: for gRPC clients apply \`kserve/inferenceservice-grpc.yaml\` instead (port \`h2c\` ${SERVE.grpcPort},
readiness and liveness as gRPC health checks, which report the same readiness).

${batchSection(s, o.shards, o.extractArgs)}
## Model files

\`sha256sum -c SHA256SUMS\` checks them (and \`mlctl.json\`, whose sha256 identifies the package in lineage).

| File | Bytes | sha256 |
|---|---|---|
${fileRows}
`;
}

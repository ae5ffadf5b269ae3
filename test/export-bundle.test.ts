// mlctl export --format bundle: every YAML parses and carries the fields Kubernetes and KServe require, the probes,
// ports and user agree with the Dockerfile, and the Dockerfile's own entrypoint — run as the real `mlctl serve` on
// the bundled package copy — answers the probe and HEALTHCHECK routes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { parseCLI } from '../src/cli/main.js';
import { MlctlError } from '../src/errors.js';
import { exportModel, type ExportResult } from '../src/export/index.js';
import { k8sName } from '../src/export/k8s.js';
import { createMemoryLogger } from '../src/util/log.js';
import { servingOn } from './helpers/cli.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let root: string;
let cleanup: () => Promise<void>;
let pkg: LoadedPackage;
let out: string;
let res: ExportResult;

// Parsed manifests are checked field by field below; `any` keeps those checks readable.
type Obj = Record<string, any>;

async function yamlFile(rel: string): Promise<Obj> {
  const docs = parseAllDocuments(await fs.readFile(path.join(out, rel), 'utf8'));
  expect(Array.isArray(docs) ? docs.length : 0).toBe(1);
  const doc = (docs as ReturnType<typeof parseAllDocuments> & unknown[])[0] as { errors: unknown[]; warnings: unknown[]; toJS(): Obj };
  expect(doc.errors).toEqual([]);
  expect(doc.warnings).toEqual([]);
  return doc.toJS();
}

interface Dockerfile {
  from: string[];
  instructions: Array<{ op: string; args: string }>;
}

function parseDockerfile(text: string): Dockerfile {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), args: l.slice(l.split(/\s+/)[0]!.length).trim() }));
  const arg = Object.fromEntries(instructions.filter((i) => i.op === 'ARG').map((i) => i.args.split('=') as [string, string]));
  const from = instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]!.replace(/\$\{(\w+)\}/g, (_, k: string) => arg[k] ?? ''));
  return { from, instructions };
}

const one = (df: Dockerfile, op: string) => {
  const found = df.instructions.filter((i) => i.op === op);
  expect(found.length, `one ${op}`).toBe(1);
  return found[0]!.args;
};

/** grpc.health.v1 Check ("") and V2 ModelMetadata over a real gRPC client. */
async function grpcCall(port: number): Promise<{ health: string; metadata: Obj }> {
  const grpc = await import('@grpc/grpc-js');
  const { healthService, predictV2Service } = await import('../src/serve/grpc/proto.js');
  const Health = healthService();
  const V2 = predictV2Service();
  const h = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const v2 = new V2(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = <T>(client: InstanceType<typeof Health>, method: string, req: Obj) =>
    new Promise<T>((resolve, reject) => (client[method] as (r: Obj, cb: (e: Error | null, v: T) => void) => void).call(client, req, (e, v) => (e ? reject(e) : resolve(v))));
  try {
    const health = await call<{ status: string }>(h, 'Check', { service: '' });
    const metadata = await call<Obj>(v2, 'ModelMetadata', { name: 'Tiny_Net.v2' });
    return { health: health.status, metadata };
  } finally {
    h.close();
    v2.close();
  }
}

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('mlctl-bundle-'));
  pkg = await tinyPackage(path.join(root, 'artifacts'), { name: 'Tiny_Net.v2', size: 32 });
  out = path.join(root, 'bundle');
  res = await exportModel(pkg, { format: 'bundle', out, image: 'registry.example.com/ml/tiny:1', minReplicas: 2, maxReplicas: 6, maxBatch: 4 });
});
afterAll(() => cleanup());

describe('export --format bundle', () => {
  it('carries the package with its hashes intact, mlctl itself, and its source in metadata.json', async () => {
    const copy = await loadPackage(path.join(out, 'models', 'Tiny_Net.v2')); // verifies every sha256
    expect(copy.manifestSha256).toBe(pkg.manifestSha256);
    expect(copy.manifest.version).toBe(pkg.manifest.version);
    const meta = JSON.parse(await fs.readFile(path.join(out, 'metadata.json'), 'utf8')) as Obj;
    expect(meta.source).toMatchObject({ name: 'Tiny_Net.v2', manifestSha256: pkg.manifestSha256, files: pkg.manifest.files });
    expect(meta.lineage.at(-1).op).toBe('export:bundle');
    const app = JSON.parse(await fs.readFile(path.join(out, 'app', 'package.json'), 'utf8')) as Obj;
    expect(app.name).toBe('mlctl');
    expect(app.scripts).toBeUndefined(); // npm ci --omit=dev must not run the TypeScript build
    expect(existsSync(path.join(out, 'app', 'package-lock.json'))).toBe(true);
    expect(existsSync(path.join(out, 'app', 'bin', 'mlctl.js'))).toBe(true);
    expect(existsSync(path.join(out, 'app', 'ui', 'index.html')), 'the serve page ships (serve reads it at start)').toBe(true);
    expect(existsSync(path.join(out, 'app', res.details.app === 'source' ? 'src/cli/main.ts' : 'dist/cli/main.js'))).toBe(true);
    for (const [rel, entry] of Object.entries(res.files)) expect(entry.bytes, rel).toBeGreaterThan(0);
    const sums = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' });
    expect(sums.status, sums.stdout + sums.stderr).toBe(0);
    expect(sums.stdout.trim().split('\n')).toHaveLength(Object.keys(pkg.manifest.files).length + 1);
    const readme = await fs.readFile(path.join(out, 'README.md'), 'utf8');
    expect(readme).toContain(pkg.manifestSha256);
    expect(readme).toContain('kubectl apply -k k8s/');
    // A client preprocessing images itself learns the resize kernel, not only the mode.
    expect(readme).toMatch(/## Input preprocessing[\s\S]*Resize: stretched \(aspect ratio not kept\) to \d+x\d+, bilinear with antialiasing/);
    expect(meta.input.preprocessing).toMatchObject({ interpolation: 'bilinear', antialias: true });
  });

  it('Dockerfile: pinned Node image, npm ci --omit=dev, numeric non-root user, HEALTHCHECK on readiness, serve entrypoint', async () => {
    const df = parseDockerfile(await fs.readFile(path.join(out, 'Dockerfile'), 'utf8'));
    for (const image of df.from) expect(image).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+(-slim)?$/);
    expect(df.instructions.some((i) => i.op === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    const user = one(df, 'USER');
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(one(df, 'EXPOSE')).toBe('8080 8081');
    expect(df.instructions.filter((i) => i.op === 'ENV').map((i) => i.args)).toEqual(['NODE_ENV=production', 'MLCTL_CACHE=/var/cache/mlctl']);
    // The cache directory exists and belongs to the runtime user (docker run without a volume still works).
    expect(df.instructions.some((i) => i.op === 'RUN' && i.args === `mkdir -p /var/cache/mlctl && chown ${one(df, 'USER')} /var/cache/mlctl`)).toBe(true);
    expect(one(df, 'HEALTHCHECK')).toMatch(/^--interval=\S+ .*CMD \[/);
    expect(JSON.parse(one(df, 'ENTRYPOINT'))).toEqual(['node', '--initial-old-space-size=128', '/app/bin/mlctl.js', 'serve', '/models/Tiny_Net.v2', '--host', '0.0.0.0', '--port', '8080', '--grpc-port', '8081']);
    expect(df.instructions.some((i) => i.op === 'COPY' && i.args === 'models/ /models/')).toBe(true);
    expect(df.instructions.some((i) => i.op === 'COPY' && i.args === 'app/ui ./ui')).toBe(true);
    const ignore = await fs.readFile(path.join(out, '.dockerignore'), 'utf8');
    expect(ignore.split('\n')).not.toContain('models/');
    expect(ignore.split('\n')).not.toContain('app/');
  });

  it('Kubernetes manifests: Deployment, Service, HPA (autoscaling/v2) and PDB agree on names, labels, ports and probes', async () => {
    const dep = await yamlFile('k8s/deployment.yaml');
    const svc = await yamlFile('k8s/service.yaml');
    const hpa = await yamlFile('k8s/hpa.yaml');
    const pdb = await yamlFile('k8s/pdb.yaml');
    const kust = await yamlFile('k8s/kustomization.yaml');
    const df = parseDockerfile(await fs.readFile(path.join(out, 'Dockerfile'), 'utf8'));
    const name = 'tiny-net-v2'; // DNS-1123 from Tiny_Net.v2

    expect(dep).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name } });
    const labels = dep.spec.template.metadata.labels as Record<string, string>;
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels as Record<string, string>)) expect(labels[k]).toBe(v);
    expect(dep.spec.replicas).toBeUndefined(); // the HPA owns it
    const pod = dep.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(`${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`).toBe(one(df, 'USER'));
    const [c] = pod.containers;
    expect(c.image).toBe('registry.example.com/ml/tiny:1');
    expect(c.args).toEqual(['--max-batch', '4']);
    const port = c.ports.find((p: Obj) => p.name === c.readinessProbe.httpGet.port);
    expect(port.containerPort).toBe(Number(one(df, 'EXPOSE').split(' ')[0]));
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'grpc', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(one(df, 'EXPOSE').split(' ').map(Number)).toEqual(c.ports.map((p: Obj) => p.containerPort));
    expect(c.readinessProbe.httpGet.path).toBe('/v2/health/ready');
    expect(c.livenessProbe.httpGet.path).toBe('/v2/health/live');
    expect(c.livenessProbe.httpGet.port).toBe(port.name);
    for (const r of ['cpu', 'memory']) {
      expect(c.resources.requests[r]).toBeDefined();
      expect(c.resources.limits[r]).toBeDefined();
    }
    expect(parseInt(c.resources.limits.memory)).toBeGreaterThanOrEqual(parseInt(c.resources.requests.memory));
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // Read-only root: the cache (MLCTL_CACHE) and /tmp are emptyDirs, the only writable paths.
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.env).toContainEqual({ name: 'MLCTL_CACHE', value: '/var/cache/mlctl' });
    expect(c.volumeMounts).toEqual([
      { name: 'cache', mountPath: '/var/cache/mlctl' },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
    for (const m of c.volumeMounts) expect(pod.volumes.find((v: Obj) => v.name === m.name).emptyDir.sizeLimit).toMatch(/^\d+Mi$/);

    expect(svc).toMatchObject({ apiVersion: 'v1', kind: 'Service', metadata: { name } });
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) expect(labels[k]).toBe(v);
    const target = svc.spec.ports[0].targetPort;
    expect(c.ports.find((p: Obj) => p.name === target || p.containerPort === target)?.containerPort).toBe(8080);
    // gRPC: a Service port for HTTP/2 cleartext (appProtocol kubernetes.io/h2c, KEP-3726), to the container's grpc port.
    expect(svc.spec.ports[1]).toEqual({ name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' });
    expect(c.ports.find((p: Obj) => p.name === svc.spec.ports[1].targetPort).containerPort).toBe(8081);
    // Probes stay on HTTP.
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect(c[probe].httpGet.port).toBe('http');

    expect(hpa).toMatchObject({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name }, minReplicas: 2, maxReplicas: 6 } });
    expect(hpa.spec.metrics[0]).toMatchObject({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization' } } });
    expect(pdb).toMatchObject({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', spec: { selector: { matchLabels: dep.spec.selector.matchLabels } } });
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
    expect(kust.resources.sort()).toEqual(['deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'service.yaml']);
    for (const f of kust.resources) expect(existsSync(path.join(out, 'k8s', f))).toBe(true);
  });

  it('KServe InferenceService: v1beta1 custom container on the V2 protocol with the same port and probes', async () => {
    const isvc = await yamlFile('kserve/inferenceservice.yaml');
    const dep = await yamlFile('k8s/deployment.yaml');
    expect(isvc).toMatchObject({ apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'tiny-net-v2' } });
    expect(isvc.spec.predictor).toMatchObject({ minReplicas: 2, maxReplicas: 6 });
    const [c] = isvc.spec.predictor.containers;
    expect(c.name).toBe('kserve-container');
    expect(c.env).toContainEqual({ name: 'PROTOCOL', value: 'v2' });
    expect(c.ports).toEqual([{ name: 'http1', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 8080 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 8080 });
    expect(c.image).toBe(dep.spec.template.spec.containers[0].image);
    expect(c.args).toEqual(dep.spec.template.spec.containers[0].args);

    // The gRPC variant: one port named h2c (Knative's HTTP/2 cleartext), probed with gRPC health checks on it.
    const grpcIsvc = await yamlFile('kserve/inferenceservice-grpc.yaml');
    expect(grpcIsvc).toMatchObject({ apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'tiny-net-v2' } });
    const [g] = grpcIsvc.spec.predictor.containers;
    expect(g).toMatchObject({ name: 'kserve-container', image: c.image, args: c.args, env: c.env });
    expect(g.ports).toEqual([{ name: 'h2c', containerPort: 8081, protocol: 'TCP' }]);
    expect(g.readinessProbe.grpc).toEqual({ port: 8081 });
    expect(g.livenessProbe.grpc).toEqual({ port: 8081 });
    expect(g.readinessProbe.periodSeconds).toBe(c.readinessProbe.periodSeconds);
  });

  it('derives valid Kubernetes names (DNS-1035 labels) from any model name', () => {
    for (const [name, want] of [['Tiny_Net.v2', 'tiny-net-v2'], ['3d-seg', 'm-3d-seg'], ['__x__', 'x'], ['a'.repeat(80), 'a'.repeat(63)], ['-', 'm']] as const) {
      expect(k8sName(name)).toBe(want);
      expect(k8sName(name)).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    }
  });

  it('refuses image references that could break the Dockerfile, and warns about an unpinned base image', async () => {
    const bad = path.join(root, 'bad-bundle');
    for (const image of ['evil\nRUN curl x | sh', 'Upper/Case:1']) {
      const err = await exportModel(pkg, { format: 'bundle', out: bad, image }).catch((e: unknown) => e);
      expect((err as MlctlError).code).toBe('OPTION_INVALID');
      expect(existsSync(bad)).toBe(false);
    }
    const logger = createMemoryLogger();
    await exportModel(pkg, { format: 'bundle', out: bad, baseImage: 'node:20-slim', logger });
    expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('not pinned'))).toBe(true);
    expect(await fs.readFile(path.join(bad, 'Dockerfile'), 'utf8')).toContain('ARG NODE_IMAGE=node:20-slim');
  });

  it('the entrypoint and manifest args are valid `mlctl serve` flags', async () => {
    const df = parseDockerfile(await fs.readFile(path.join(out, 'Dockerfile'), 'utf8'));
    const dep = await yamlFile('k8s/deployment.yaml');
    const image = JSON.parse(one(df, 'ENTRYPOINT')) as string[];
    // node's own flags come before the script; mlctl parses what follows it.
    const argv = [...image.slice(image.indexOf('/app/bin/mlctl.js')), ...dep.spec.template.spec.containers[0].args];
    const parsed = parseCLI(['node', ...argv]);
    expect(parsed?.command).toEqual(['serve']);
    expect(parsed?.args[0]).toBe('/models/Tiny_Net.v2');
    expect(parsed?.opts).toMatchObject({ host: '0.0.0.0', port: 8080, grpcPort: 8081, maxBatch: 4 });
  });

  it('running the entrypoint on the bundled package answers every probe path and the HEALTHCHECK command', async () => {
    const df = parseDockerfile(await fs.readFile(path.join(out, 'Dockerfile'), 'utf8'));
    const dep = await yamlFile('k8s/deployment.yaml');
    const isvc = await yamlFile('kserve/inferenceservice.yaml');
    const launcher = path.join(root, 'launch.mjs');
    await fs.writeFile(launcher, `import { main } from ${JSON.stringify(path.join(here, '..', 'src', 'cli', 'main.ts'))};\nmain(process.argv).then((c) => { process.exitCode = c; });\n`);
    // The image's argv, mapped onto this machine: the launcher for /app/bin/mlctl.js, the bundle for /models,
    // loopback instead of 0.0.0.0, and port 0 for 8080 and 8081 (the ports bound are read back from its start-up line).
    const entry = (JSON.parse(one(df, 'ENTRYPOINT')) as string[]).slice(1).map((a) =>
      a === '/app/bin/mlctl.js' ? launcher : a.startsWith('/models/') ? path.join(out, a) : a === '0.0.0.0' ? '127.0.0.1' : a === '8080' || a === '8081' ? '0' : a,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', ...entry, ...dep.spec.template.spec.containers[0].args, '--backend', 'cpu', '--engine', 'tfjs'], {
      cwd: path.join(here, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const listening = servingOn(child);
    try {
      const { url: base, port, grpcPort } = await listening;
      expect(grpcPort, stderr).toBeGreaterThan(0);
      expect((await fetch(`${base}/v2/health/ready`)).status, stderr).toBe(200);
      const c = dep.spec.template.spec.containers[0];
      const paths = new Set<string>([
        c.readinessProbe.httpGet.path,
        c.livenessProbe.httpGet.path,
        c.startupProbe.httpGet.path,
        isvc.spec.predictor.containers[0].readinessProbe.httpGet.path,
        isvc.spec.predictor.containers[0].livenessProbe.httpGet.path,
        dep.spec.template.metadata.annotations['prometheus.io/path'],
      ]);
      for (const p of paths) expect((await fetch(`${base}${p}`)).status, p).toBe(200);
      const meta = (await (await fetch(`${base}/v2/models/Tiny_Net.v2`)).json()) as Obj;
      expect(meta.name).toBe('Tiny_Net.v2');

      // The gRPC port answers what the gRPC InferenceService probes and what gRPC clients call.
      const grpcMeta = await grpcCall(grpcPort!);
      expect(grpcMeta.health).toBe('SERVING');
      expect(grpcMeta.metadata).toMatchObject({ name: 'Tiny_Net.v2', inputs: [{ name: 'input', datatype: 'FP32' }, { name: 'image', datatype: 'BYTES' }] });

      const hc = JSON.parse(one(df, 'HEALTHCHECK').replace(/^.*?CMD /, '')) as string[];
      const probe = spawnSync(hc[0] === 'node' ? process.execPath : hc[0]!, hc.slice(1).map((a) => a.replace(':8080/', `:${port}/`)), { timeout: 10_000 });
      expect(probe.status).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

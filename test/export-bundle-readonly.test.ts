// The deploy bundle on a read-only root filesystem, as Kubernetes runs it (readOnlyRootFilesystem, runAsNonRoot): the
// bundle's entrypoint runs as `nobody` in a private mount namespace whose / is remounted read-only, with HOME
// unwritable and only the cache (MLCTL_CACHE, an emptyDir in the manifests) and /tmp bind-mounted writable. It must
// serve REST and gRPC, write its ONNX conversion to the cache and nothing anywhere else; without a writable cache it
// warns once and serves from memory.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exportModel } from '../src/export/index.js';
import { servingOn } from './helpers/cli.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { isCi } from './helpers/system-tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NOBODY = 65534;

/**
 * How this run acts as root: it is root, or — on a CI runner that is not, which `.ci/run` supports — through
 * passwordless `sudo -n`, the way `.ci/run` installs packages there.
 */
function rootPrefix(): string[] | undefined {
  if (process.platform !== 'linux') return undefined;
  if (process.getuid?.() === 0) return [];
  if (!isCi()) return undefined; // a developer's sudo is theirs: only a CI run uses it
  return spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0 ? ['sudo', '-n'] : undefined;
}
const asRoot = rootPrefix();

/** `cmd args` as root (spawn arguments). */
function rootCommand(cmd: string, args: string[]): [string, string[]] {
  const [sudo, ...flags] = asRoot ?? [];
  return sudo ? [sudo, [...flags, cmd, ...args]] : [cmd, args];
}

/** Root, with unshare/setpriv and the right to make a private mount namespace (a container may refuse it). */
function canIsolate(): boolean {
  if (!asRoot) return false;
  const r = spawnSync(...rootCommand('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -o remount,bind,ro / && setpriv --reuid=65534 --regid=65534 --clear-groups true']), { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}
const isolated = canIsolate();
const NEEDS = 'needs root (or, under CI, passwordless sudo), unshare and setpriv, and the right to make a private mount namespace, to run the entrypoint as nobody on a read-only root';
// Under CI this file must run, not skip: a runner that cannot isolate fails here, saying what it lacks.
if (!isolated && isCi()) throw new Error(`CI=true and export-bundle-readonly cannot run: it ${NEEDS} (a container needs CAP_SYS_ADMIN, e.g. --privileged)`);
if (!isolated) console.log(`export-bundle-readonly: skipped (${NEEDS})`);

/** chown to nobody (the emptyDirs the pod's user owns). */
function chownNobody(dir: string): void {
  const r = spawnSync(...rootCommand('chown', [`${NOBODY}:${NOBODY}`, dir]), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chown ${dir} failed: ${r.stderr}`);
}

let root: string;
let cleanup: () => Promise<void>;
/** The image's filesystem, as the Dockerfile lays it out: /app (mlctl) and /models (the package). */
let image: string;
let entry: string[];
let modelName: string;

async function listTree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

interface Run {
  code: number | null;
  stderr: string;
}

/**
 * Run the entrypoint as nobody with / read-only; `writable` dirs are bind-mounted (the emptyDirs), `env` is the whole
 * environment. `whileUp` runs once the readiness route answers 200.
 */
async function runReadOnly(writable: string[], env: Record<string, string>, whileUp: (ports: { http: number; grpc: number }) => Promise<void>): Promise<Run> {
  // Port 0 for 8080 and 8081: the server binds free ports itself and says which in its start-up line.
  const argv = entry.map((a) =>
    a === '/app/bin/mlctl.js' ? path.join(image, 'app', 'launch.mjs') : a.startsWith('/models/') ? path.join(image, a) : a === '0.0.0.0' ? '127.0.0.1' : a === '8080' || a === '8081' ? '0' : a,
  );
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    'set -e',
    ...writable.map((d) => `mount --bind ${q(d)} ${q(d)}`),
    // The container's root filesystem: read-only for everything but the mounts above (and /dev/shm, as in a pod).
    'mount -o remount,bind,ro /',
    `cd ${q(path.join(image, 'app'))}`,
    `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups env -i ${Object.entries(env)
      .map(([k, v]) => q(`${k}=${v}`))
      .join(' ')} ${q(process.execPath)} --import tsx ${argv.slice(1).map(q).join(' ')} --backend cpu --max-batch 4`,
  ].join('\n');
  const child = spawn(...rootCommand('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const listening = servingOn(child);
  try {
    const { port, grpcPort } = await listening;
    expect((await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status, stderr).toBe(200);
    await whileUp({ http: port, grpc: grpcPort! });
  } finally {
    child.kill('SIGTERM');
  }
  return { code: await exited, stderr };
}

/** What a client does against the pod: an image upload, a V2 infer (REST) and a V2 ModelInfer (gRPC). */
async function exercise(ports: { http: number; grpc: number }): Promise<void> {
  const base = `http://127.0.0.1:${ports.http}`;
  const png = await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
  const form = new FormData();
  form.append('image', new Blob([png], { type: 'image/png' }), 'x.png');
  const predicted = await fetch(`${base}/predict`, { method: 'POST', body: form });
  expect(predicted.status, await predicted.clone().text()).toBe(200);
  expect(((await predicted.json()) as { predictions: number[][] }).predictions[0]).toHaveLength(3);
  const infer = await fetch(`${base}/v2/models/${modelName}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: new Array(32 * 32 * 3).fill(1) }] }),
  });
  expect(infer.status).toBe(200);
  const grpc = await import('@grpc/grpc-js');
  const { predictV2Service } = await import('../src/serve/grpc/proto.js');
  const V2 = predictV2Service();
  const client = new V2(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<{ outputs: Array<{ shape: number[] }> }>((resolve, reject) =>
      (client.ModelInfer as (r: unknown, cb: (e: Error | null, v: { outputs: Array<{ shape: number[] }> }) => void) => void).call(
        client,
        { model_name: modelName, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], contents: { fp32_contents: new Array(32 * 32 * 3).fill(1) } }] },
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    );
    expect(res.outputs[0]!.shape).toEqual([1, 3]);
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  if (!isolated) return;
  ({ dir: root, cleanup } = await tempDir('mlctl-bundle-ro-'));
  await fs.chmod(root, 0o755);
  const pkg = await tinyPackage(path.join(root, 'artifacts'), { name: 'ro-net', size: 32 });
  modelName = pkg.manifest.name;
  const out = path.join(root, 'bundle');
  const res = await exportModel(pkg, { format: 'bundle', out });
  entry = res.details.entrypoint as string[];
  // The image: the bundle's app/ (its own copy of mlctl's sources, run with tsx as the image runs the compiled
  // ones) with the production dependencies in place, and models/ — all owned by root, nothing writable by nobody.
  image = path.join(root, 'image');
  await fs.mkdir(image);
  await fs.cp(path.join(out, 'app'), path.join(image, 'app'), { recursive: true });
  await fs.cp(path.join(out, 'models'), path.join(image, 'models'), { recursive: true });
  await fs.symlink(path.join(here, '..', 'node_modules'), path.join(image, 'app', 'node_modules'));
  const main = path.join(image, 'app', 'src', 'cli', 'main.ts');
  expect(existsSync(main), 'the bundle carries the sources').toBe(true);
  await fs.writeFile(path.join(image, 'app', 'launch.mjs'), `import { main } from ${JSON.stringify(main)};\nmain(process.argv).then((c) => { process.exitCode = c; });\n`);
}, 120_000);
afterAll(async () => {
  // Through sudo, what nobody wrote in the emptyDirs is not the runner's to delete.
  if (asRoot?.length && root) spawnSync(...rootCommand('rm', ['-rf', root]), { stdio: 'ignore' });
  await cleanup?.();
});

describe.skipIf(!isolated)('deploy bundle on a read-only root filesystem (as nobody)', () => {
  it('serves REST and gRPC writing only to MLCTL_CACHE (the emptyDir the Deployment mounts)', async () => {
    const dep = parse(await fs.readFile(path.join(root, 'bundle', 'k8s', 'deployment.yaml'), 'utf8')) as { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> } } } };
    const cacheEnv = dep.spec.template.spec.containers[0]!.env.find((e) => e.name === 'MLCTL_CACHE')!;
    // The emptyDirs, owned by the pod's user; the manifest's MLCTL_CACHE path maps onto this directory.
    const cache = path.join(root, 'emptydir-cache');
    const tmp = path.join(root, 'emptydir-tmp');
    for (const d of [cache, tmp]) {
      await fs.mkdir(d);
      chownNobody(d);
    }
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent', NODE_ENV: 'production', MLCTL_CACHE: cache, TMPDIR: tmp, TSX_DISABLE_CACHE: '1' };
    expect(cacheEnv.value).toBe('/var/cache/mlctl');
    const run = await runReadOnly([cache, tmp], env, exercise);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/cannot be written|EROFS|EACCES|read-only file system/i);
    // The ONNX conversion went to the cache, with its record; /tmp stayed empty.
    const cached = await listTree(cache);
    expect(cached.some((f) => f.startsWith('onnx/') && f.endsWith('.onnx'))).toBe(true);
    expect(cached.some((f) => f.endsWith('.entry.json'))).toBe(true);
    expect(await listTree(tmp)).toEqual([]);
  });

  it('without a writable cache (HOME unwritable, no MLCTL_CACHE): one warning, then serves from memory', async () => {
    const tmp = path.join(root, 'emptydir-tmp-2');
    await fs.mkdir(tmp);
    chownNobody(tmp);
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent', NODE_ENV: 'production', TMPDIR: tmp, TSX_DISABLE_CACHE: '1' };
    const run = await runReadOnly([tmp], env, exercise);
    expect(run.code, run.stderr).toBe(0);
    const warnings = run.stderr.split('\n').filter((l) => /cannot be written/.test(l));
    expect(warnings, run.stderr).toHaveLength(1);
    expect(warnings[0]).toMatch(/\/nonexistent\/\.cache\/mlctl/);
    expect(warnings[0]).toMatch(/MLCTL_CACHE/);
    expect(await listTree(tmp)).toEqual([]);
  });
});

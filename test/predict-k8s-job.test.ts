// The bundle's batch Indexed Jobs (export --format bundle): the manifests are well-formed Kubernetes objects
// (Indexed completion, JOB_COMPLETION_INDEX → --shard, volumes), and their commands really work: each pod's args,
// with $(JOB_COMPLETION_INDEX) expanded and the volumes mapped to folders, run through mlctl, then the merge Job's
// args join the shards into exactly the rows of one unsharded run.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { parseCLI } from '../src/cli/main.js';
import { exportModel } from '../src/export/index.js';
import { showPackage } from '../src/registry/show.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runCli } from './helpers/cli.js';
import { modelPackage, synthDataset, tempDir, tinyModel } from './helpers/fixtures.js';

type Obj = Record<string, any>;
let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
let out: string;
let data: string;

async function yamlDocs(rel: string): Promise<Obj[]> {
  const docs = parseAllDocuments(await readFile(path.join(out, rel), 'utf8')) as unknown as Array<{ errors: unknown[]; toJS(): Obj }>;
  for (const d of docs) expect(d.errors).toEqual([]);
  return docs.map((d) => d.toJS());
}

const mlctl = (argv: string[]) => runCli([...argv, '--backend', 'cpu', '--engine', 'tfjs']);

beforeAll(async () => {
  tmp = await tempDir('mlctl-k8s-job-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  await selectBackend('cpu');
  const model = tinyModel(32, 3, 4);
  // A VGG16-transfer manifest (random-init weights, seed 5) so the bundle also carries the extract Job.
  pkg = await modelPackage(path.join(tmp.dir, 'artifacts'), model, { name: 'shapes', labels: ['checker', 'circle', 'square'], architecture: { type: 'vgg16-transfer', backbone: 'vgg16', weights: { kind: 'none', seed: 5 } } });
  model.dispose();
  out = path.join(tmp.dir, 'bundle');
  await exportModel(pkg, { format: 'bundle', out, image: 'registry.example.com/ml/shapes:1', shards: 3, maxBatch: 4 });
  data = path.join(tmp.dir, 'volumes');
  await synthDataset(path.join(data, 'data', 'inputs'), { classes: 3, perClass: 5, size: 32 });
});

afterAll(async () => {
  delete process.env.MLCTL_CACHE;
  await tmp?.cleanup();
});

describe('export --format bundle: batch Indexed Jobs', () => {
  it('writes an Indexed Job whose pods take --shard $(JOB_COMPLETION_INDEX)/N, a merge Job, an extract Job and their claims', async () => {
    const [job] = await yamlDocs('k8s/batch/predict-job.yaml');
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'shapes-predict' }, spec: { completionMode: 'Indexed', completions: 3, parallelism: 3, backoffLimitPerIndex: 3 } });
    const pod = job!.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    const c = pod.containers[0];
    expect(c.image).toBe('registry.example.com/ml/shapes:1');
    expect(c.command).toEqual(['node', '/app/bin/mlctl.js']);
    expect(c.args.slice(0, 5)).toEqual(['predict', '/models/shapes/1', '/data/inputs', '--shard', '$(JOB_COMPLETION_INDEX)/3']);
    expect(c.args).toContain('--resume');
    expect(c.volumeMounts.map((m: Obj) => [m.mountPath, Boolean(m.readOnly)])).toEqual([['/data', true], ['/work', false], ['/tmp', false]]);
    const claims = await yamlDocs('k8s/batch/volumes.yaml');
    expect(claims.map((x) => [x.kind, x.metadata.name, x.spec.accessModes[0]])).toEqual([['PersistentVolumeClaim', 'shapes-data', 'ReadWriteMany'], ['PersistentVolumeClaim', 'shapes-work', 'ReadWriteMany']]);
    expect(pod.volumes.map((v: Obj) => v.persistentVolumeClaim?.claimName).filter(Boolean)).toEqual(['shapes-data', 'shapes-work']);
    const [extract] = await yamlDocs('k8s/batch/extract-job.yaml');
    expect(extract!.spec).toMatchObject({ completionMode: 'Indexed', completions: 3 });
    const ea = extract!.spec.template.spec.containers[0].args as string[];
    expect(ea).toEqual(['train', '--name', 'shapes', '--image-size', '32', '--weights', 'none', '--seed', '5', '--data', '/data/train', '--extract-only', '--shard', '$(JOB_COMPLETION_INDEX)/3']);
    expect(extract!.spec.template.spec.containers[0].env).toContainEqual({ name: 'MLCTL_CACHE', value: '/work/cache' });
    // Every command the Jobs run is a valid mlctl invocation.
    for (const args of [c.args, ea, (await yamlDocs('k8s/batch/merge-job.yaml'))[0]!.spec.template.spec.containers[0].args]) {
      expect(parseCLI(['node', 'mlctl', ...(args as string[]).map((a) => a.replace('$(JOB_COMPLETION_INDEX)', '0'))])?.command[0]).toMatch(/^(predict|train)$/);
    }
    // The export is in the model's registry: `models show` ends the lineage chain with it.
    const shown = await showPackage(pkg.dir);
    expect(shown.lineage.at(-1)).toMatchObject({ op: 'export:bundle', from: 'shapes@1', produced: out });
    const readme = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(readme).toMatch(/## Batch prediction on Kubernetes \(Indexed Job\)/);
    expect(readme).toMatch(/--shard \$\(JOB_COMPLETION_INDEX\)\/3/);
    expect(readme).toMatch(/kubectl apply -f k8s\/batch\/merge-job.yaml/);
    expect(readme).toMatch(/train --extract-only --shard/);
  });

  it('runs: each pod\'s args (index expanded, volumes mapped) then the merge Job give the rows of one run', async () => {
    const map = (a: string, i?: number) =>
      a.replace('$(JOB_COMPLETION_INDEX)', String(i)).replace(/^\/models\/shapes\/1$/, pkg.dir).replace(/^\/data/, path.join(data, 'data')).replace(/^\/work/, path.join(data, 'work'));
    const [job] = await yamlDocs('k8s/batch/predict-job.yaml');
    const args = job!.spec.template.spec.containers[0].args as string[];
    for (let i = 0; i < 3; i++) {
      const r = await mlctl(args.map((a) => map(a, i)));
      expect(r.code, r.stderr).toBe(0);
    }
    const [merge] = await yamlDocs('k8s/batch/merge-job.yaml');
    const margs = (merge!.spec.template.spec.containers[0].args as string[]).map((a) => map(a));
    const m = await mlctl(margs);
    expect(m.code, m.stderr).toBe(0);
    const merged = await readFile(margs[margs.indexOf('--out') + 1]!, 'utf8');
    await mkdir(path.join(tmp.dir, 'single'), { recursive: true });
    const single = path.join(tmp.dir, 'single', 'all.csv');
    expect((await mlctl(['predict', pkg.dir, path.join(data, 'data', 'inputs'), '--out', single, '--batch-size', '4'])).code).toBe(0);
    const cols = (t: string) => t.trim().split('\n').map((l) => l.split(',').slice(0, 3).join(','));
    expect(cols(merged)).toHaveLength(16);
    expect(cols(merged)).toEqual(cols(await readFile(single, 'utf8')));
  });
});

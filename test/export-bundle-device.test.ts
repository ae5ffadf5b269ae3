// export --format bundle --device: NVIDIA devices make the serving and batch pods request nvidia.com/gpu (request =
// limit = 1) on GPU nodes (node selector + the GPU taint's toleration) and run mlctl with --device; the merge Job and
// cpu bundles ask for none; devices the Linux image cannot run are refused before anything is written.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { exportModel } from '../src/export/index.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, tinyPackage, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let pkg: LoadedPackage;
let gpu: string;
const logger = createMemoryLogger();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are checked field by field
type Obj = Record<string, any>;
const yamlOf = async (dir: string, rel: string): Promise<Obj> => parse(await fs.readFile(path.join(dir, rel), 'utf8'));
const podOf = (doc: Obj): Obj => (doc.kind === 'InferenceService' ? doc.spec.predictor : doc.spec.template.spec);

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-bundle-device-');
  pkg = await tinyPackage(tmp.artifacts, { name: 'tiny', size: 32 });
  gpu = path.join(tmp.dir, 'gpu');
  await exportModel(pkg, { format: 'bundle', out: gpu, device: 'cuda:1', image: 'registry.example.com/ml/tiny:1', logger });
});
afterAll(() => tmp?.cleanup());

describe('export --format bundle --device', () => {
  it('cuda: the Deployment, KServe predictor and predict Job request one nvidia.com/gpu on GPU nodes and serve with --device cuda:0', async () => {
    for (const rel of ['k8s/deployment.yaml', 'kserve/inferenceservice.yaml', 'k8s/batch/predict-job.yaml']) {
      const pod = podOf(await yamlFile(rel));
      const c = pod.containers[0];
      expect(c.resources.requests['nvidia.com/gpu'], rel).toBe('1');
      expect(c.resources.limits['nvidia.com/gpu'], rel).toBe('1');
      expect(c.args.slice(-2), rel).toEqual(['--device', 'cuda:0']);
      expect(pod.nodeSelector, rel).toEqual({ 'nvidia.com/gpu.present': 'true' });
      expect(pod.tolerations, rel).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    }
    // The merge Job only joins files: no GPU for it.
    const merge = podOf(await yamlFile('k8s/batch/merge-job.yaml'));
    expect(merge.containers[0].resources.limits['nvidia.com/gpu']).toBeUndefined();
    expect(merge.nodeSelector).toBeUndefined();
    expect(merge.containers[0].args).not.toContain('--device');
    // The image installs onnxruntime-node's CUDA provider; the default Node image has no CUDA, which export says.
    expect(await fs.readFile(path.join(gpu, 'Dockerfile'), 'utf8')).toMatch(/ENV ONNXRUNTIME_NODE_INSTALL=cuda12\nRUN npm ci --omit=dev/);
    expect(logger.lines.map((l) => l.msg).join('\n')).toMatch(/has no CUDA libraries; build FROM an image with Node 20, CUDA 12 and cuDNN 9/);
    expect(logger.lines.map((l) => l.msg).join('\n')).toMatch(/a pod sees the GPU it is given as device 0/);
    const meta = JSON.parse(await fs.readFile(path.join(gpu, 'metadata.json'), 'utf8'));
    expect(JSON.stringify(meta)).toMatch(/"device":"cuda:0"/);
  });

  it('cpu (the default): no GPU requests, node selectors or --device anywhere', async () => {
    const cpu = path.join(tmp.dir, 'cpu');
    const r = await runCli(['export', 'tiny', '--format', 'bundle', '--out', cpu, '--json', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const dep = await yamlOf(cpu, 'k8s/deployment.yaml');
    const pod = dep.spec.template.spec;
    expect(Object.keys(pod.containers[0].resources.limits).sort()).toEqual(['cpu', 'memory']);
    expect(pod.nodeSelector).toBeUndefined();
    expect(pod.containers[0].args).not.toContain('--device');
    expect(await fs.readFile(path.join(cpu, 'Dockerfile'), 'utf8')).not.toMatch(/ONNXRUNTIME_NODE_INSTALL/);
  });

  it('devices the Linux image cannot run are OPTION_INVALID (exit 2), nothing written', async () => {
    const out = path.join(tmp.dir, 'coreml');
    const r = await runCli(['export', 'tiny', '--format', 'bundle', '--out', out, '--device', 'coreml', '--json', '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ code: 'OPTION_INVALID' });
    expect(r.json.error.message).toMatch(/coreml is macOS-only/);
    expect(existsSync(out)).toBe(false);
  });
});

function yamlFile(rel: string): Promise<Obj> {
  return yamlOf(gpu, rel);
}

// The library as a user gets it: build (tsc -p tsconfig.build.json, .d.ts included) into a staging copy, `npm pack`
// it, unpack the tarball into a consumer project's node_modules (offline: its dependencies are linked from this
// repo's node_modules, as npm would have installed them), type-check an example program against the package's
// `exports`/`types` with tsc, refuse a program with a wrong option type, and run the example: a real ONNX engine.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/fixtures.js';
import { fixedModel } from './helpers/tensor-models.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
let dir: string;
let cleanup: () => Promise<void>;
let consumer: string;
let tarball: string;

const EXAMPLE = `
import { openEngine, resolveDevice, ortProviders, MlctlError, parseDevice, type InferenceEngine, type PredictOptions, type TrainOptions, type Tensor } from 'mlctl';

const device = resolveDevice('auto');
let unavailable = '';
try {
  resolveDevice('openvino');
} catch (e) {
  if (e instanceof MlctlError) unavailable = e.code;
}
// Option objects are typed: these must compile as written.
const p: PredictOptions = { inputs: ['a.jpg'], topK: 3, signal: AbortSignal.timeout(1000) };
const t: TrainOptions = { data: 'images/', epochs: 2, onProgress: (e) => void e.metrics.accuracy };
void p; void t; void parseDevice('cuda:1');
const engine: InferenceEngine = await openEngine({ kind: 'onnx', model: process.argv[2]! }, { engine: 'onnx', device: 'cpu', threads: 1 });
const w: Tensor = { name: engine.inputs[0]!.name, datatype: 'FP32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
const [z] = await engine.run([w]);
await engine.dispose();
console.log(JSON.stringify({ device: device.device.kind, unavailable, providers: ortProviders().map((x) => x.name), z: Array.from(z!.data as Float32Array) }));
`;

const WRONG = `
import { predict } from 'mlctl';
await predict('model', { inputs: 'not-a-list', topK: 'three' });
`;

const TSCONFIG = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], skipLibCheck: true, noEmit: false, outDir: 'out' }, files: ['example.ts'] };

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('mlctl-library-'));
  const stage = path.join(dir, 'stage');
  await fs.mkdir(stage);
  for (const f of ['package.json', 'README.md', 'bin', 'ui']) await fs.cp(path.join(ROOT, f), path.join(stage, f), { recursive: true });
  // The package's own build, into the staging copy (the worktree's dist/ is left alone).
  await run(process.execPath, [TSC, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(stage, 'dist'), '--sourceMap', 'false']);
  const packed = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: stage });
  tarball = path.join(dir, packed.stdout.trim().split('\n').pop()!);
  consumer = path.join(dir, 'consumer');
  const nm = path.join(consumer, 'node_modules');
  await fs.mkdir(nm, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', nm]);
  await fs.rename(path.join(nm, 'package'), path.join(nm, 'mlctl'));
  // Offline: the dependencies npm would install are this repo's (the registry is not asked).
  for (const entry of await fs.readdir(path.join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'mlctl') continue;
    await fs.symlink(path.join(ROOT, 'node_modules', entry), path.join(nm, entry));
  }
  await fs.writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await fs.writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  await fs.writeFile(path.join(consumer, 'model.onnx'), fixedModel());
}, 300_000);
afterAll(() => cleanup?.());

describe('mlctl as a library (npm pack → install → tsc → run)', () => {
  it('packs dist/index.js with its .d.ts, and a package.json whose exports/types point at them', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(consumer, 'node_modules', 'mlctl', 'package.json'), 'utf8'));
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(pkg.types).toBe('./dist/index.d.ts');
    const dts = await fs.readFile(path.join(consumer, 'node_modules', 'mlctl', 'dist', 'index.d.ts'), 'utf8');
    for (const name of ['train', 'evaluate', 'quantize', 'serve', 'predict', 'watch']) expect(dts).toMatch(new RegExp(`export declare function ${name}\\(`));
    expect(dts).toMatch(/export \{[^}]*\bloadPackage\b[^}]*\bopenEngine\b[^}]*\bexportModel\b/);
  });

  it('type-checks an example program against the installed package and runs it on a real ONNX model', async () => {
    await fs.writeFile(path.join(consumer, 'example.ts'), EXAMPLE);
    await run(process.execPath, [TSC, '-p', consumer], { cwd: consumer }).catch((e) => {
      throw new Error(`tsc rejected the example:\n${e.stdout}${e.stderr}`);
    });
    const out = await run(process.execPath, [path.join(consumer, 'out', 'example.js'), path.join(consumer, 'model.onnx')], { cwd: consumer });
    const doc = JSON.parse(out.stdout.trim().split('\n').pop()!);
    expect(doc.device).toBe(doc.providers.includes('cuda') && doc.device !== 'cpu' ? 'cuda' : 'cpu');
    expect(doc.unavailable).toBe('DEVICE_UNAVAILABLE');
    expect(doc.providers).toContain('cpu');
    expect(doc.z).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it('rejects a program passing options of the wrong type (the .d.ts carry real types)', async () => {
    await fs.writeFile(path.join(consumer, 'example.ts'), WRONG);
    const err = await run(process.execPath, [TSC, '-p', consumer, '--noEmit'], { cwd: consumer }).then(
      () => undefined,
      (e: { stdout: string }) => e.stdout,
    );
    expect(err).toMatch(/example\.ts.*error TS2322|error TS2769|error TS2345/);
    expect(err).toMatch(/inputs|string\[\]/);
  });
});

// No colour codes or other ANSI escapes from mlctl — or from ONNX Runtime, which colours its warnings whatever the
// stream — when stdout/stderr are not terminals (CI logs, `2> file`, a pod's log). Real child processes with piped
// streams run the commands that open ORT sessions: export (its check session), evaluate (the engine), int8 quantize
// (the calibration session), on a package whose own ONNX model makes ORT warn.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertLayersModel, decodeModel, encodeModel, floatTensor } from '../src/onnx/index.js';
import { selectBackend } from '../src/runtime/backend.js';
import { modelPackage, synthDataset, tempDir, tinyModel } from './helpers/fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(here, '..', 'src', 'cli', 'main.ts');
const ESC = '\u001b';

let root: string;
let cleanup: () => Promise<void>;
let data: string;
let noisy: Uint8Array;

/** Run a node program with piped stdout/stderr (not TTYs) and colour not forced; stderr and stdout as written. */
function runPiped(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv = { ...process.env, ...env };
  for (const k of ['FORCE_COLOR', 'NO_COLOR', 'ORT_DISABLE_TELEMETRY']) if (!(k in env)) delete childEnv[k];
  const child = spawn(process.execPath, args, { cwd: path.join(here, '..'), env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const mlctl = (...args: string[]) =>
  runPiped(['--import', 'tsx', '--input-type=module', '-e', `const {main} = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)])`, ...args, '--backend', 'cpu'], {
    MLCTL_ARTIFACTS: path.join(root, 'artifacts'),
    MLCTL_CACHE: path.join(root, 'cache'),
  });

beforeAll(async () => {
  await selectBackend('cpu');
  ({ dir: root, cleanup } = await tempDir('mlctl-stderr-'));
  data = path.join(root, 'data');
  await synthDataset(data, { classes: 3, perClass: 6 });
  // An ONNX model with an initializer no node uses: ONNX Runtime warns about it (in colour) when it loads the graph.
  const model = tinyModel(32, 3, 2);
  const proto = decodeModel(convertLayersModel(model, { inputName: 'input', outputName: 'predictions' }));
  proto.graph.initializer.push(floatTensor('unused_weight', [4], [1, 2, 3, 4]));
  noisy = encodeModel(proto);
  await modelPackage(path.join(root, 'artifacts'), model, { name: 'noisy', labels: ['circle', 'square', 'triangle'], formats: { tfjs: 'model.json', onnx: 'model.onnx' }, extraFiles: { 'model.onnx': noisy } });
  model.dispose();
}, 120_000);
afterAll(() => cleanup());

describe('no ANSI escapes off a terminal', () => {
  it('control: plain onnxruntime-node does colour its warning about this model on a pipe', async () => {
    const file = path.join(root, 'noisy.onnx');
    await fs.writeFile(file, noisy);
    const script = `import * as ort from 'onnxruntime-node'; await ort.InferenceSession.create(${JSON.stringify(file)}, { graphOptimizationLevel: 'basic' });`;
    const r = await runPiped(['--input-type=module', '-e', script], { ORT_DISABLE_TELEMETRY: '1' });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('unused_weight');
    expect(r.stderr).toContain(`${ESC}[`);
  });

  it('export onnx and triton (the ONNX Runtime check session)', async () => {
    for (const format of ['onnx', 'triton']) {
      const r = await mlctl('export', 'noisy', '--format', format, '--out', path.join(root, `out-${format}`));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('unused_weight');
      expect(r.stderr).not.toContain(ESC);
      expect(r.stdout).not.toContain(ESC);
      expect(r.stderr).toMatch(/checking the .* ONNX model/); // the logger did write: plainly
    }
  });

  it('evaluate on the ONNX Runtime engine, with --json', async () => {
    const r = await mlctl('evaluate', 'noisy', '--data', data, '--engine', 'onnx', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
    expect(r.stderr + r.stdout).not.toContain(ESC);
  });

  it('int8 quantize (the QDQ calibration session) and the tables it prints', async () => {
    const r = await mlctl('quantize', 'noisy@1', '--dtype', 'int8', '--calibration', '4', '--data', data, '--max-accuracy-drop', '1', '--latency-runs', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/int8 ONNX/);
    expect(r.stderr + r.stdout).not.toContain(ESC);
  });
});

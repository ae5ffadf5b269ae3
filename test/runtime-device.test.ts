// --device: the one mapping from a device to ONNX Runtime execution providers, the probe of this onnxruntime-node
// build, the CLI failing on a device this machine cannot run (one --json document, never a quiet cpu run), auto
// choosing cpu here and saying so, and the engine running on the resolved session settings.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openEngine } from '../src/runtime/engine.js';
import '../src/engines/index.js';
import { formatDevice, parseDevice, setSessionDefaults } from '../src/runtime/device.js';
import { deviceProblem, executionProviders, onnxSessionOptions, ortProviders, resolveDevice } from '../src/runtime/ort.js';
import { MlctlError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, tinyPackage, type MlctlHome } from './helpers/fixtures.js';
import { fixedModel } from './helpers/tensor-models.js';

let tmp: MlctlHome;
let data: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-device-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 2, size: 32 });
  await tinyPackage(tmp.artifacts, { name: 'tiny' });
});
afterAll(() => tmp?.cleanup());
afterEach(() => setSessionDefaults({}));

/** Whether this machine's onnxruntime-node can load its CUDA provider (not on the CPU-only build machines). */
const cudaHere = deviceProblem({ kind: 'cuda' }) === undefined;

describe('device names', () => {
  it('parses cpu, cuda[:N], tensorrt[:N], openvino, coreml, dml[:N] and auto, and refuses the rest with OPTION_INVALID', () => {
    expect(parseDevice('cpu')).toEqual({ kind: 'cpu' });
    expect(parseDevice('CUDA:1')).toEqual({ kind: 'cuda', index: 1 });
    expect(parseDevice('tensorrt')).toEqual({ kind: 'tensorrt' });
    expect(parseDevice('auto')).toBe('auto');
    expect(formatDevice(parseDevice('cuda'))).toBe('cuda:0');
    expect(formatDevice(parseDevice('coreml'))).toBe('coreml');
    for (const bad of ['gpu', 'cuda:', 'cpu:1', 'coreml:0', 'auto:1', 'cuda:x']) {
      expect(() => parseDevice(bad), bad).toThrowError(expect.objectContaining({ code: 'OPTION_INVALID' }));
    }
  });

  it('maps each device to its execution providers with typed options, in one place', () => {
    expect(executionProviders({ kind: 'cpu' })).toEqual(['cpu']);
    expect(executionProviders({ kind: 'cuda', index: 1 })).toEqual([{ name: 'cuda', deviceId: 1 }]);
    expect(executionProviders({ kind: 'tensorrt' })).toEqual([{ name: 'tensorrt', deviceId: 0 }, { name: 'cuda', deviceId: 0 }]);
    expect(executionProviders({ kind: 'dml', index: 2 })).toEqual([{ name: 'dml', deviceId: 2 }]);
    expect(executionProviders({ kind: 'coreml' })).toEqual([{ name: 'coreml' }]);
    const o = onnxSessionOptions({ device: { kind: 'cuda', index: 0 }, intraOpThreads: 3, interOpThreads: 2, graphOptimization: 'basic' });
    expect(o).toMatchObject({ executionProviders: [{ name: 'cuda', deviceId: 0 }], intraOpNumThreads: 3, interOpNumThreads: 2, graphOptimizationLevel: 'basic', executionMode: 'parallel' });
    expect(onnxSessionOptions(2)).toMatchObject({ executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  });

  it('probes the providers this onnxruntime-node build has: cpu always, installed or not for the rest', () => {
    const list = ortProviders();
    expect(list.find((p) => p.name === 'cpu')).toEqual({ name: 'cpu', bundled: true, installed: true });
    expect(deviceProblem({ kind: 'openvino' })).toMatch(/has no openvino execution provider/);
  });
});

describe.skipIf(cudaHere)('a device this machine cannot run (no CUDA provider installed here)', () => {
  it('resolveDevice fails with DEVICE_UNAVAILABLE naming the build\'s providers and what to install', () => {
    let err: MlctlError | undefined;
    try {
      resolveDevice('cuda');
    } catch (e) {
      err = e as MlctlError;
    }
    expect(err?.code).toBe('DEVICE_UNAVAILABLE');
    expect(err?.message).toMatch(/^device cuda:0 is not available: /);
    expect(err?.message).toMatch(/this onnxruntime-node \d+\.\d+\.\d+ build has: cpu/);
    expect(err?.message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it('mlctl predict --device cuda exits 1 before reading anything, with one --json document', async () => {
    const r = await runCli(['predict', 'tiny', data, '--device', 'cuda', '--json', '--out', path.join(tmp.dir, 'never.csv'), '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stdoutWrites).toBe(1);
    expect(r.json).toMatchObject({ ok: false, error: { code: 'DEVICE_UNAVAILABLE' } });
    expect(r.json.error.message).toMatch(/device cuda:0 is not available: .*build has: cpu.*Install the CUDA 12 provider libraries/);
    expect(r.stderr).toMatch(/device cuda:0 is not available/);
    await expect(stat(path.join(tmp.dir, 'never.csv'))).rejects.toThrow(/ENOENT/);
  });

  it('evaluate --device tensorrt:1 fails the same way (exit 1, the code in the document)', async () => {
    const r = await runCli(['evaluate', 'tiny', '--data', data, '--device', 'tensorrt:1', '--json', '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('DEVICE_UNAVAILABLE');
    expect(r.json.error.message).toMatch(/device tensorrt:1 .*TensorRT 10/);
  });

  it('an unknown device name is a usage error (exit 2)', async () => {
    const r = await runCli(['predict', 'tiny', data, '--device', 'gpu', '--json', '--out', path.join(tmp.dir, 'never.csv'), '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('OPTION_INVALID');
  });

  it('the library: openEngine with a GPU device fails, and --engine auto never falls back to TF.js on the CPU', async () => {
    await expect(openEngine({ kind: 'onnx', model: fixedModel() }, { device: 'cuda' })).rejects.toMatchObject({ code: 'DEVICE_UNAVAILABLE' });
    const { loadPackage } = await import('../src/artifacts/package.js');
    const pkg = await loadPackage(path.join(tmp.artifacts, 'tiny', '1'));
    await expect(openEngine(pkg, { device: 'cuda:0', engine: 'auto' })).rejects.toMatchObject({ code: 'DEVICE_UNAVAILABLE' });
    await expect(openEngine(pkg, { device: 'cuda:0', engine: 'tfjs' })).rejects.toThrow(/TF\.js runs on the CPU only/);
  });

  it('auto chooses cpu here and says so, naming what it passed over', async () => {
    const r = resolveDevice('auto');
    expect(r.device).toEqual({ kind: 'cpu' });
    expect(r.skipped.map((s) => s.device)).toContain('cuda:0');
    const cli = await runCli(['predict', 'tiny', data, '--device', 'auto', '--engine', 'onnx', '--backend', 'cpu', '--top-k', '1']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).toMatch(/device: cpu, chosen automatically \(cuda:0 unavailable/);
    expect(cli.stderr).toMatch(/onnxruntime-node [\d.]+ \(cpu, /);
  });
});

describe('session settings reach the engine', () => {
  it('threads and graph optimisation from the engine options (and the process defaults) are what the session runs with', async () => {
    const engine = await openEngine({ kind: 'onnx', model: fixedModel() }, { engine: 'onnx', device: 'cpu', threads: 1, graphOptimization: 'basic' });
    try {
      expect(engine.description).toMatch(/\(cpu, 1 thread\)/);
    } finally {
      await engine.dispose();
    }
    setSessionDefaults({ intraOpThreads: 2 });
    const withDefaults = await openEngine({ kind: 'onnx', model: fixedModel() }, { engine: 'onnx', worker: true });
    try {
      expect(withDefaults.description).toMatch(/\(cpu, 2 threads\), in a worker thread/);
    } finally {
      await withDefaults.dispose();
    }
  });
});
